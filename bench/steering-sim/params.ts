/**
 * The published parameters of the steering simulation (written into the result JSON), and
 * the smaller runs: `--quick` and the test's tiny world.
 */
import { DEFAULT_SELECT_OPTIONS } from '../../steering/select.js'
import type { SimParams } from './sim.js'

export const DAY: SimParams = {
  world: {
    seed: 1,
    sites: 500,
    edges: 10_000,
    clients: 1_000_000,
    clientSpreadKm: 60,
    zoneCellDeg: 0.1,
    targetPeakLoad: 0.6,
    bigEdgeShare: 0.25,
    sessionBytesPerSec: 625_000,
  },
  workload: {
    seed: 2,
    sessionsPerClient: 1.5,
    durationMedianMin: 30,
    durationSigma: 0.8,
    durationMaxMin: 180,
    titles: 5_000,
    zipfS: 0.9,
    peakHour: 21,
    hours: 24,
    warmupHours: 4,
  },
  failures: { seed: 3, randomEdges: 40, downMedianMin: 45, siteOutage: { minutes: 60 } },
  // steering's defaults (steering/config.ts), but a 10 s health period where the default is 2 s.
  steering: {
    failAfter: 2,
    recoverAfter: 2,
    loadHigh: 0.85,
    loadLow: 0.7,
    bandKm: DEFAULT_SELECT_OPTIONS.bandKm,
    boundedLoadFactor: DEFAULT_SELECT_OPTIONS.boundedLoadFactor,
    boundedLoadFloor: DEFAULT_SELECT_OPTIONS.boundedLoadFloor,
    maxResults: 5,
  },
  checkIntervalSec: 10,
  probeRadiusKm: 300,
  sampleSec: 60,
}

/** A tenth of the day's world, for a quick look. */
export const QUICK: SimParams = {
  ...DAY,
  world: { ...DAY.world, sites: 100, edges: 1_000, clients: 100_000 },
  failures: { ...DAY.failures, randomEdges: 10 },
}

/** A trace small enough for a test of the hit-ratio replay: 12 titles (+2 a day), short titles. */
import { DEFAULT_WORKLOAD } from '../../bench/hit-ratio/generate.js'

export const SMALL_WORKLOAD = {
  ...DEFAULT_WORKLOAD,
  requests: 20_000,
  days: 3,
  titles: 12,
  newTitlesPerDay: 2,
  featureMinutes: [20, 30] as const,
  episodeMinutes: [5, 10] as const,
}

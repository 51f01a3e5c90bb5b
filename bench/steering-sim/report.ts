/** The steering simulation's markdown report and chart, from its result document. */
import { lineChartSvg } from '../lib/chart.js'
import { fmt, markdownTable } from '../lib/report.js'
import type { HourRow, Result } from './record.js'

const pct = (v: number) => (Number.isFinite(v) ? `${(v * 100).toFixed(1)}%` : 'n/a')
const n = (v: number) => v.toLocaleString('en-US')

export interface Summary {
  edgeFailures: number
  /** Sessions moved per failed edge (single-edge failures). */
  movedPerEdge: number
  /** Of the probed choices near failures, those the failure changed that were not on a failed edge. */
  movedOthers: number
  probed: number
  probedOnFailed: number
  /** Single-edge failures: mean and worst time until steering took the edge out and loads settled. */
  detectedMeanSec: number
  restabilisedMaxSec: number
  peakHour: HourRow
}

export function summarise(r: Result): Summary {
  const edges = r.failures.filter((f) => f.kind === 'edge')
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0)
  const peakHour = r.hours.reduce((a, b) => (b.activeSessions > a.activeSessions ? b : a), r.hours[0]!)
  return {
    edgeFailures: edges.length,
    movedPerEdge: edges.length ? sum(edges.map((f) => f.sessionsMoved)) / edges.length : 0,
    movedOthers: sum(r.failures.map((f) => f.movedOthers)),
    probed: sum(r.failures.map((f) => f.probed)),
    probedOnFailed: sum(r.failures.map((f) => f.probedOnFailed)),
    detectedMeanSec: edges.length ? sum(edges.map((f) => f.detectedAfterSec ?? 0)) / edges.length : 0,
    restabilisedMaxSec: Math.max(0, ...edges.map((f) => f.restabilisedAfterSec ?? 0)),
    peakHour,
  }
}

export function markdown(r: Result, command: string, quick: boolean): string {
  const p = r.params
  const s = summarise(r)
  const site = r.failures.find((f) => f.kind === 'site')
  const w = r.world
  return [
    '# Steering simulation',
    '',
    `Run: \`${command}\`${quick ? ' (--quick)' : ''}, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}: ${fmt(r.setupMs / 1000)} s to build the world and draw the sessions, ${fmt(r.runMs / 1000)} s to simulate ${p.workload.hours} h (${n(r.decisions)} decisions by steering's own Decider). The figures do not depend on the machine: the same seeds give the same tables.`,
    '',
    `World: ${n(w.sites)} sites around ${w.metros} metros, ${n(w.edges)} edges (${w.edgesPerSite.min} / ${w.edgesPerSite.median} / ${w.edgesPerSite.max} per site, min / median / max; ${pct(p.world.bigEdgeShare)} of them twice the size with weight 2), ${n(w.clients)} clients in ${n(w.zones)} coverage zones (${p.world.zoneCellDeg}° cells), ${n(w.sessions)} sessions (${p.workload.warmupHours} h of warm-up included). Capacity per metro: its expected peak at ${p.world.targetPeakLoad} load if spread evenly. Sessions: ${p.workload.sessionsPerClient} per client per day, log-normal ${p.workload.durationMedianMin} min median (sigma ${p.workload.durationSigma}, at most ${p.workload.durationMaxMin} min), ${n(p.workload.titles)} titles Zipf ${p.workload.zipfS}, local peak at ${p.workload.peakHour}:00. Health period ${p.checkIntervalSec} s; steering: fail after ${p.steering.failAfter}, recover after ${p.steering.recoverAfter}, load high/low ${p.steering.loadHigh}/${p.steering.loadLow}, band ${p.steering.bandKm} km, bounded load ${p.steering.boundedLoadFactor}× (floor ${p.steering.boundedLoadFloor}). Failures: ${s.edgeFailures} single edges (median ${p.failures.downMedianMin} min down)${site ? `, and site ${site.site} (${site.edges} edges) for ${site.downMin} min from ${site.atHour}:00 UTC, its local evening peak` : ''}.`,
    '',
    '## Summary',
    '',
    `- Peak hour (${s.peakHour.hour}:00 UTC, ${n(Math.round(s.peakHour.activeSessions))} sessions): fleet max/mean ${fmt(s.peakHour.maxOverMean)}, p99/mean ${fmt(s.peakHour.p99OverMean)}, within-site max/mean ${fmt(s.peakHour.siteMaxOverMean)}; ${pct(s.peakHour.beyondNearestSite)} of starts sent beyond the nearest site (${pct(s.peakHour.beyondBand)} beyond the ${p.steering.bandKm} km band), ${fmt(s.peakHour.extraKm)} km further on average.`,
    `- A single edge failing moved ${fmt(s.movedPerEdge)} sessions on average (its own); steering took it out after ${fmt(s.detectedMeanSec)} s on average; loads had settled within ${fmt(s.restabilisedMaxSec)} s at worst.`,
    `- Minimal disruption: of ${n(s.probed)} choices of sessions in progress near a failure, probed with the failed edges in and out at the same loads, ${n(s.probedOnFailed)} were on a failed edge and ${n(s.movedOthers)} others changed.`,
    site
      ? `- Site outage (${site.site}, ${site.edges} edges): ${n(site.sessionsMoved)} sessions moved (${n(site.waiting)} found no edge of their list answering and retried), ${site.receiverCount} edges took them, the busiest reaching load ${fmt(site.receiverPeakLoad)}; settled after ${site.restabilisedAfterSec === null ? 'n/a' : `${fmt(site.restabilisedAfterSec)} s`}.`
      : '',
    `- Sessions never served: ${n(r.unserved)}; ${n(r.waits.count)} waited for an edge (longest ${fmt(r.waits.maxSec)} s).`,
    '',
    '![load spread and distance over the day](steering-sim.svg)',
    '',
    '## Per hour (UTC)',
    '',
    'Loads are sampled every minute over the edges that answer; each column is the hour\'s mean over its samples (max load and worst max/mean: the hour\'s highest). "site max/mean": each site\'s busiest edge over the site\'s mean, weighted by its sessions. "beyond site": starts sent to a site other than the nearest one to the client\'s zone; "beyond band": more than the band further than it. "over capacity": sessions on an edge whose load is above 1. "edges/title/site": edges serving a title in a site (1: each title keeps to one edge of a site).',
    '',
    markdownTable(r.hours, [
      { header: 'hour', cell: (h) => String(h.hour), right: true },
      { header: 'sessions', cell: (h) => n(Math.round(h.activeSessions)), right: true },
      { header: 'mean load', cell: (h) => fmt(h.meanLoad), right: true },
      { header: 'max/mean', cell: (h) => fmt(h.maxOverMean), right: true },
      { header: 'worst max/mean', cell: (h) => fmt(h.maxOverMeanWorst), right: true },
      { header: 'p99/mean', cell: (h) => fmt(h.p99OverMean), right: true },
      { header: 'site max/mean', cell: (h) => fmt(h.siteMaxOverMean), right: true },
      { header: 'max load', cell: (h) => fmt(h.maxLoad), right: true },
      { header: 'starts', cell: (h) => n(h.starts), right: true },
      { header: 'beyond site', cell: (h) => pct(h.beyondNearestSite), right: true },
      { header: 'extra km', cell: (h) => fmt(h.extraKm), right: true },
      { header: 'beyond band', cell: (h) => pct(h.beyondBand), right: true },
      { header: 'failovers', cell: (h) => n(h.failovers), right: true },
      { header: 'overload events', cell: (h) => n(h.overloadEvents), right: true },
      { header: 'over capacity', cell: (h) => pct(h.overCapacityShare), right: true },
      { header: 'edges/title/site', cell: (h) => fmt(h.edgesPerTitleSite), right: true },
    ]),
    '',
    '## Failures',
    '',
    '"moved": sessions on the failed edges, steered again at once (a player failing over down its list; "waiting": none of its list answered, it retried at the next round). "detected": until steering took every failed edge out. "probed": choices of sessions in progress within ' +
      `${p.probeRadiusKm} km, computed at that moment with the failed edges in and out (same loads): "on failed" were the failed edges' own, "others moved" changed although they were not. "receivers": edges that took moved sessions, their peak load in the next hour; "settled": until steering had the edges out and no receiver was above ${p.steering.loadHigh}.`,
    '',
    markdownTable(r.failures, [
      { header: 'kind', cell: (f) => f.kind },
      { header: 'site', cell: (f) => f.site },
      { header: 'edges', cell: (f) => String(f.edges), right: true },
      { header: 'at (h UTC)', cell: (f) => fmt(f.atHour), right: true },
      { header: 'down (min)', cell: (f) => String(f.downMin), right: true },
      { header: 'moved', cell: (f) => n(f.sessionsMoved), right: true },
      { header: 'same site', cell: (f) => n(f.sameSite), right: true },
      { header: 'waiting', cell: (f) => n(f.waiting), right: true },
      { header: 'move km', cell: (f) => fmt(f.meanMoveKm), right: true },
      {
        header: 'detected (s)',
        cell: (f) => (f.detectedAfterSec === null ? 'n/a' : fmt(f.detectedAfterSec)),
        right: true,
      },
      { header: 'probed', cell: (f) => n(f.probed), right: true },
      { header: 'on failed', cell: (f) => n(f.probedOnFailed), right: true },
      { header: 'others moved', cell: (f) => n(f.movedOthers), right: true },
      { header: 'receivers', cell: (f) => n(f.receiverCount), right: true },
      { header: 'receiver peak load', cell: (f) => fmt(f.receiverPeakLoad), right: true },
      {
        header: 'settled (s)',
        cell: (f) => (f.restabilisedAfterSec === null ? 'n/a' : fmt(f.restabilisedAfterSec)),
        right: true,
      },
    ]),
    '',
  ].join('\n')
}

export function chart(r: Result): string {
  const t = r.timeline
  const site = r.failures.find((f) => f.kind === 'site')
  const hours = r.params.workload.hours
  return lineChartSvg({
    title: `Steering simulation: ${n(r.world.edges)} edges, ${n(r.world.clients)} clients, one day`,
    xLabel: 'hour of the day (UTC)',
    xMin: 0,
    xMax: hours,
    xTicks: Array.from({ length: Math.floor(hours / 3) + 1 }, (_, i) => i * 3),
    marks: site
      ? [{ from: site.atHour, to: site.atHour + site.downMin / 60, label: `${site.site} down` }]
      : [],
    panels: [
      {
        yLabel: 'load spread (÷ mean)',
        series: [
          { name: 'fleet max/mean', colour: '#d62728', points: t.map((p) => [p.hour, p.maxOverMean]) },
          { name: 'fleet p99/mean', colour: '#ff7f0e', points: t.map((p) => [p.hour, p.p99OverMean]) },
          { name: 'site max/mean', colour: '#1f77b4', points: t.map((p) => [p.hour, p.siteMaxOverMean]) },
        ],
      },
      {
        yLabel: 'share',
        yMax: 1,
        yFormat: (v) => `${Math.round(v * 100)}%`,
        series: [
          { name: 'mean edge load', colour: '#2ca02c', points: t.map((p) => [p.hour, p.meanLoad]) },
          {
            name: 'starts beyond nearest site',
            colour: '#9467bd',
            points: r.hours.map((h) => [h.hour + 0.5, h.beyondNearestSite]),
          },
          {
            name: 'starts beyond the band',
            colour: '#8c564b',
            dashed: true,
            points: r.hours.map((h) => [h.hour + 0.5, h.beyondBand]),
          },
        ],
      },
    ],
  })
}

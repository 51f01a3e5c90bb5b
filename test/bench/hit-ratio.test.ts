/**
 * The hit-ratio replay (bench/hit-ratio): hand-computed hit ratios on tiny traces, the bounds'
 * order, the Che check, trace files, and proof that the replay drives the edge's own cache
 * modules: the same trace through the model and through a real TieredStore on a temp dir gives
 * the same outcome for every request.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { crc32 } from 'node:zlib'
import t from 'tap'
import { SMALL_WORKLOAD } from './small-workload.js'
import { FrequencyAdmission, TinyLfuAdmission } from '../../edge/cache/admission.js'
import { DiskIndex } from '../../edge/cache/disk-index.js'
import { DiskStore } from '../../edge/cache/disk-store.js'
import { MemoryStore } from '../../edge/cache/memory-store.js'
import { TieredStore } from '../../edge/cache/tiered-store.js'
import { DemandAdmission } from '../../edge/cache/demand-order.js'
import { admissionFor, demandFor, memoryTier } from '../../edge/main.js'
import { ALL_POLICIES, cheByDay, compare, configFor, irmTrace } from '../../bench/hit-ratio/compare.js'
import { cheApproximation } from '../../bench/hit-ratio/che.js'
import { Entries, HIT_DISK, HIT_MEMORY, MISS, ReplayEdge } from '../../bench/hit-ratio/edge-model.js'
import { generateTrace } from '../../bench/hit-ratio/generate.js'
import { beladyPolicy, lruPolicy } from '../../bench/hit-ratio/policies.js'
import { ReplayClock, replay } from '../../bench/hit-ratio/replay.js'
import { chartSvg } from '../../bench/hit-ratio/svg.js'
import {
  DAY_MS,
  parseTraceLine,
  readTraceFile,
  type Trace,
  TraceBuilder,
} from '../../bench/hit-ratio/trace.js'
import { tempDir } from '../helpers/edge.js'

/** A trace of equal-sized objects named by letters, one request a second. */
function letters(seq: string, bytes = 10_000): Trace {
  const b = new TraceBuilder()
  ;[...seq].forEach((c, i) => b.push(i * 1000, b.objects.intern(`/vod/${c}/v1/720p/seg-00001.m4s`, bytes)))
  return b.build(Date.UTC(2026, 0, 5, 4))
}

const SMALL = { ...SMALL_WORKLOAD, requests: 30_000, titles: 16 }

t.test('LRU and Belady on tiny traces: the hit ratios worked by hand', async (t) => {
  const cyclic = letters('ABCABCA')
  const e = new Entries(cyclic.objects)
  const two = 2 * e.fileSize(0, false) + 100
  // LRU with room for two of a cycle of three never hits.
  t.equal((await replay(cyclic, lruPolicy(two, e), { warmupDays: 0 })).objectHitRatio, 0)
  // MIN: A B miss; C misses and is not kept (its next use, 5, is the farthest); A and B hit;
  // C misses and is not kept (never used again); A hits. 3 hits of 7.
  const min = await replay(cyclic, beladyPolicy(cyclic, two, e), { warmupDays: 0 })
  t.equal(min.objectHitRatio, 3 / 7)
  t.equal(min.byteHitRatio, 3 / 7)
  t.equal(min.upstream.objects, 4)

  const mixed = letters('ABACAB')
  const m = new Entries(mixed.objects)
  const room = 2 * m.fileSize(0, false) + 100
  // LRU: A B miss, A hit, C miss (evicts B), A hit, B miss: 2 of 6.
  t.equal((await replay(mixed, lruPolicy(room, m), { warmupDays: 0 })).objectHitRatio, 2 / 6)
  // MIN does not admit C (never used again), so B stays: 3 of 6.
  t.equal((await replay(mixed, beladyPolicy(mixed, room, m), { warmupDays: 0 })).objectHitRatio, 3 / 6)
})

const MODEL_CASES = {
  'the defaults (demand eviction and admission)': {},
  'every miss to disk, plain LRU': { diskAdmission: 'all', diskEviction: 'lru', diskLowRendition: 0 },
  'frequency admission and ladder-aware eviction': {
    diskAdmission: 'frequency',
    diskAdmissionWindow: 12,
    diskEviction: 'lru',
    diskLowRendition: 480,
  },
  'TinyLFU admission': {
    diskAdmission: 'tinylfu',
    diskAdmissionWindow: 40,
    diskEviction: 'lru',
    diskLowRendition: 0,
  },
  'TinyLFU admission and ladder-aware eviction': {
    diskAdmission: 'tinylfu',
    diskAdmissionWindow: 40,
    diskEviction: 'lru',
    diskLowRendition: 480,
  },
  'demand eviction and admission': {
    diskAdmission: 'demand',
    diskEviction: 'demand',
    diskLowRendition: 0,
  },
  'TinyLFU admission and demand eviction': {
    diskAdmission: 'tinylfu',
    diskAdmissionWindow: 40,
    diskEviction: 'demand',
    diskLowRendition: 0,
  },
} as const

for (const [name, policy] of Object.entries(MODEL_CASES))
  t.test(
    `the replay model gives the outcome a real tiered store gives, request by request: ${name}`,
    async (t) => {
      // Objects of three sizes; memory holds about two of the middle size, disk about six.
      const b = new TraceBuilder()
      const sizes = [6000, 12_000, 30_000]
      const rungs = ['240p', '720p', '1080p']
      const pattern = [0, 1, 2, 0, 3, 4, 1, 5, 6, 0, 7, 2, 8, 1, 0, 9, 3, 10, 0, 11, 4, 1, 2, 0, 5, 6, 7, 0]
      // Four titles; object n at position 1 + n / 4 of its title's rendition.
      const at = (n: number) => String(1 + Math.floor(n / 4)).padStart(5, '0')
      pattern.forEach((n, i) =>
        b.push(
          i * 1000,
          b.objects.intern(`/vod/t${n % 4}/v1/${rungs[n % 3]}/seg-${at(n)}.m4s`, sizes[n % 3]!),
        ),
      )
      const trace = b.build(Date.UTC(2026, 0, 5, 4))
      const config = configFor(90_000, {
        memorySize: 30_000,
        memoryObjectShare: 0.5,
        protectedShare: 0.5,
        ...policy,
      })
      const entries = new Entries(trace.objects)
      // The demand model's time: the trace's, for both.
      const clock = new ReplayClock()
      const model = new ReplayEdge(config, entries, clock)
      t.ok(model.memory instanceof MemoryStore, "the edge's memory tier")
      t.ok(model.index instanceof DiskIndex, "the edge's disk index")

      const demand = demandFor(config, clock)
      const disk = await DiskStore.open({
        ...(config.diskEviction === 'demand' ? { demand } : {}),
        dir: tempDir(t),
        maxBytes: config.diskSize,
        protectedShare: config.protectedShare,
        maxFds: 4,
        heuristicMaxMs: config.heuristicMax,
        lowRendition: config.diskLowRendition,
      })
      t.equal(disk.index.maxBytes, model.index.maxBytes)
      t.equal(disk.index.protectedMaxBytes, model.index.protectedMaxBytes)
      t.equal(model.index.lowRendition, config.diskLowRendition)
      t.equal(
        disk.index.order !== undefined,
        config.diskEviction === 'demand',
        'the eviction the config names',
      )
      t.equal(model.index.order !== undefined, config.diskEviction === 'demand')
      const real = new TieredStore(memoryTier(config), disk, admissionFor(config, demand))
      t.teardown(() => real.close())
      const names = { [HIT_MEMORY]: 'memory', [HIT_DISK]: 'disk', [MISS]: 'miss' } as const
      const fromModel: string[] = []
      const fromReal: string[] = []
      for (let i = 0; i < trace.ids.length; i++) {
        const id = trace.ids[i]!
        clock.at = trace.times[i]!
        fromModel.push(names[model.request(id)])
        // The request path counts every request before it looks it up (edge/http/serve.ts).
        real.noteRequest(trace.objects.keys[id]!)
        const got = await real.get(trace.objects.keys[id]!)
        if (got) fromReal.push(got.tier)
        else {
          fromReal.push('miss')
          const body = Buffer.alloc(trace.objects.bytes[id]!)
          const w = real.createWriter({ ...entries.meta(id, false), crc32: crc32(body) })
          w.write(body)
          const stored = await w.commit({ bodyLength: body.length, crc32: crc32(body) })
          // Refused by the disk tier and too large for memory's share: stored nowhere.
          if (config.diskAdmission === 'all') t.ok(stored, 'stored')
        }
      }
      t.same(fromModel, fromReal)
      t.ok(
        fromReal.includes('memory') && fromReal.includes('disk') && fromReal.includes('miss'),
        'every outcome occurs',
      )
      if (config.diskEviction === 'demand') {
        t.ok(model.index.evictions > 0, 'the demand order evicted')
        t.equal(disk.index.evictions, model.index.evictions, 'as often in both')
      }
      if (config.diskAdmission === 'demand') {
        const a = model.admission as DemandAdmission
        const b = real.admission as DemandAdmission
        t.ok(a instanceof DemandAdmission && b instanceof DemandAdmission, 'the demand admission')
        t.ok(a.refused > 0 && a.admitted > 0, 'the admission refused and admitted')
        t.same([b.refused, b.admitted], [a.refused, a.admitted], 'the same writes refused in both')
      } else if (config.diskAdmission !== 'all') {
        const admission = (
          model.admission instanceof DemandAdmission ? model.admission.inner : model.admission
        ) as FrequencyAdmission | TinyLfuAdmission
        const kind = config.diskAdmission === 'tinylfu' ? TinyLfuAdmission : FrequencyAdmission
        const other = (real.admission instanceof DemandAdmission ? real.admission.inner : real.admission) as
          FrequencyAdmission | TinyLfuAdmission
        t.ok(admission instanceof kind && other instanceof kind, 'the admission the config names')
        t.ok(admission.refused > 0 && admission.admitted > 0, 'the admission refused and admitted')
        t.same(
          [other.refused, other.admitted],
          [admission.refused, admission.admitted],
          'the same writes refused in both',
        )
      }
    },
  )

t.test('on a generated trace the bounds come out in order', async (t) => {
  const g = generateTrace(SMALL)
  const again = generateTrace(SMALL)
  t.same(again.trace.ids, g.trace.ids, 'same seed, same trace')
  t.ok(g.trace.ids.length > 20_000)
  const total = g.catalogue.totalBytes()
  const seen: string[] = []
  const [size] = await compare({
    trace: g.trace,
    catalogue: g.catalogue,
    catalogueBytes: total,
    shares: [0.1],
    warmupDays: 1,
    model: { ageFloor: SMALL.ageFloor, ageHalfLifeDays: SMALL.ageHalfLifeDays },
    workload: { params: SMALL, sessionsPerDay: g.sessionsPerDay },
    onResult: (_s, name) => seen.push(name),
  })
  const r = size!.results
  t.same(seen, ALL_POLICIES, 'every policy ran, in order')
  t.ok(r.belady!.byteHitRatio >= r.lru!.byteHitRatio, 'Belady at least LRU (bytes)')
  t.ok(r.belady!.objectHitRatio >= r.lru!.objectHitRatio, 'Belady at least LRU (objects)')
  t.ok(r.clairvoyant!.byteHitRatio >= r.edge!.byteHitRatio, 'the clairvoyant fill at least the edge')
  t.ok(r['edge+prefill(forecast)']!.prefill.bytes > 0, 'the forecast prefill fetched through the planner')
  t.ok(r['edge+prefill(popularity)']!.prefill.bytes > 0, 'the popularity prefill fetched through the planner')
  t.ok(
    r['edge(demand)+prefill(forecast)']!.prefill.bytes > 0,
    'the forecast prefill over the demand policy fetched through the planner',
  )
  t.ok(
    r['clairvoyant(demand)']!.byteHitRatio >= r['edge(demand)']!.byteHitRatio,
    'the clairvoyant fill over the demand policy at least the demand policy alone',
  )
  t.not(
    r['edge(demand)+prefill(forecast)']!.byteHitRatio,
    r['edge+prefill(forecast)']!.byteHitRatio,
    'the demand policy changed what the prefilled edge kept',
  )
  t.ok(
    r.belady!.byteHitRatio >= r['edge(demand-oracle)']!.byteHitRatio,
    'Belady at least the demand policy told the true rates',
  )
  t.ok(r['edge(demand-oracle)']!.byteHitRatio > r.lru!.byteHitRatio, 'the true rates beat LRU')
  // The names say what ran: `edge` is the edge's defaults, the demand policy; `edge(lru)` the
  // defaults before it (the rows named `edge` in bench/results until then), every miss to disk.
  t.same(r.edge, { ...r['edge(demand)']!, seconds: r.edge!.seconds }, 'the default edge is edge(demand)')
  t.same(r['edge(lru)'], { ...r['edge(all)']!, seconds: r['edge(lru)']!.seconds }, 'edge(lru) is edge(all)')
  t.ok(r['edge(lru)']!.byteHitRatio < r.edge!.byteHitRatio, 'the demand policy above LRU here too')
  t.ok(r.edge!.memory.objects > 0 && r.edge!.disk.objects > 0, 'both tiers serve')
  const viewers = r.edge!.requests.bytes
  t.equal(
    r.edge!.memory.bytes + r.edge!.disk.bytes + r.edge!.upstream.bytes,
    viewers,
    'every byte accounted once',
  )
  const svg = chartSvg([size!], 'test')
  t.match(svg, /<svg[^>]*>/)
  t.equal(svg.match(/<polyline/g)?.length, ALL_POLICIES.length, 'one line per policy')
  t.ok(r['edge(frequency)']!.upstream.bytes > 0, 'the frequency admission ran')
  t.ok(cheByDay(g.trace, total * 0.1, 1, (id) => g.trace.objects.bytes[id]!).byteHitRatio > 0)
})

t.test('LRU agrees with the Che approximation under independent requests', async (t) => {
  const g = generateTrace({ ...SMALL, requests: 10_000, days: 1 })
  const irm = irmTrace(g.trace, 20 * g.trace.objects.size, 3)
  const e = new Entries(irm.trace.objects)
  const bytes = Array.from({ length: irm.rates.length }, (_, id) => e.fileSize(id, false))
  const held = bytes.reduce((s, b) => s + b, 0)
  for (const share of [0.05, 0.2]) {
    const sim = await replay(irm.trace, lruPolicy(held * share, e), { warmupDays: 1 })
    const che = cheApproximation(irm.rates, bytes, held * share)
    t.ok(
      Math.abs(sim.byteHitRatio - che.byteHitRatio) < 0.02,
      `bytes at ${share}: ${sim.byteHitRatio} vs ${che.byteHitRatio}`,
    )
    t.ok(Math.abs(sim.objectHitRatio - che.objectHitRatio) < 0.02, `objects at ${share}`)
  }
  t.equal(cheApproximation([1, 2], [10, 10], 100).byteHitRatio, 1, 'everything fits')
})

t.test('traces read from a file: plain lines and the edge access log', async (t) => {
  t.same(parseTraceLine('1767585600 /vod/a/v1/720p/seg-00001.m4s 1000'), {
    timeMs: 1767585600_000,
    path: '/vod/a/v1/720p/seg-00001.m4s',
    bytes: 1000,
  })
  t.equal(parseTraceLine('2026-01-05T04:00:00Z /x?y=1 5')?.timeMs, Date.UTC(2026, 0, 5, 4))
  t.equal(parseTraceLine('2026-01-05T04:00:00Z /x?y=1 5')?.path, '/x')
  for (const bad of ['', '# comment', 'nonsense', 'x /a 1', '1 /a -1', '{"url":"/a"}', '{bad json'])
    t.equal(parseTraceLine(bad), undefined, JSON.stringify(bad))
  const log = (o: object) => JSON.stringify({ level: 30, msg: 'access', ...o })
  t.equal(parseTraceLine(log({ time: 5, url: '/a', method: 'HEAD', status: 200, bytes: 0 })), undefined)
  t.equal(parseTraceLine(log({ time: 5, url: '/a', method: 'GET', status: 404, bytes: 9 })), undefined)
  const file = join(tempDir(t), 'trace.log')
  const t0 = Date.UTC(2026, 0, 5, 10)
  writeFileSync(
    file,
    [
      log({ time: t0, url: '/vod/a/v1/720p/seg-00001.m4s?CMCD=x', method: 'GET', status: 200, bytes: 700 }),
      `${t0 + DAY_MS} /vod/a/v1/720p/seg-00001.m4s 900`,
      `${(t0 + 1000) / 1000} /vod/b/v1/240p/seg-00001.m4s 100`,
    ].join('\n'),
  )
  const trace = await readTraceFile(file)
  t.equal(trace.ids.length, 3)
  t.equal(trace.objects.size, 2)
  t.equal(trace.objects.bytes[0], 900, 'an object is as large as its largest answer')
  t.equal(trace.objects.rungs[0], 1, '720p')
  t.equal(trace.startMs, Date.UTC(2026, 0, 5, 4), 'days start at 04:00')
  t.same([...trace.times], [6 * 3_600_000, 6 * 3_600_000 + 1000, 6 * 3_600_000 + DAY_MS])
})

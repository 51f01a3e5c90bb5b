/**
 * One restart of bench:disk-scale, in its own process as an edge's restart is (nothing of the
 * bench's heap in it): `node dist/bench/disk-scale/restart.js DIR N`. Opens the disk tier of DIR
 * and measures until DiskStore.open resolves (the tier serves every object): wall time, this
 * process's CPU time over it (process.cpuUsage), peak RSS until then (getrusage) and the heap once ready;
 * then the CPU per disk hit, measured two ways at every size (a single figure mixed them: at 1,000
 * objects 19 of every 20 hits were of a key already read, at 100,000 and more none were):
 * - first use: keys never read since the restart, each once (a restored record's entry built from
 *   its snapshot block, its file opened and its fd checked, the crc32 verified, an older fd closed
 *   once the fd LRU is full);
 * - steady state: a hot set of HOT keys spread over the whole index, read once to warm them, then
 *   read again and again (fd cached, body verified, ctime trusted: what a hit costs in service);
 * and the CPU per get+touch of the index, over the same hot set and over SPREAD distinct keys
 * spread over the index (as many as there are up to that); then closes (the close's snapshot is not timed).
 * Prints one JSON line. With `--open-only` it stops once ready (for a profile of the restart:
 * `node --cpu-prof dist/bench/disk-scale/restart.js DIR N --open-only`).
 */
import { DiskStore } from '../../edge/cache/disk-store.js'
import { ENTRY_OPTS, keyOf } from './cache.js'

/** Keys of the hot set read again and again (the steady state), and rounds over it. */
const HOT = 1000
const STEADY_ROUNDS = 20
/** Distinct keys read once each (first use), spread over the index. */
const SPREAD = 20_000

const [dir, count] = process.argv.slice(2)
const n = Number(count)
const t0 = performance.now()
const c0 = process.cpuUsage()
const store = await DiskStore.open({
  dir: dir!,
  maxBytes: 100e9,
  protectedShare: 0.5,
  maxFds: 1024,
  ...ENTRY_OPTS,
})
const cpu = process.cpuUsage(c0)
const readyMs = performance.now() - t0
const peakRssMB = process.resourceUsage().maxRSS / 1024
const mem = process.memoryUsage()
const objects = store.stats().disk!.objects
if (objects !== n) throw new Error(`the restart found ${objects} objects of ${n}`)
if (process.argv.includes('--open-only')) {
  process.stdout.write(`${JSON.stringify({ readyMs, cpuMs: (cpu.user + cpu.system) / 1000, peakRssMB })}\n`)
  process.exit(0)
}

/** Up to `count` distinct keys, evenly spaced over the `n` held. */
function spread(count: number): string[] {
  const m = Math.min(count, n)
  const step = Math.floor(n / m)
  return Array.from({ length: m }, (_, i) => keyOf((i * step + 13) % n))
}
/** CPU µs per getToSend over `keys`, `rounds` times. */
async function hits(keys: string[], rounds: number): Promise<number> {
  const h0 = process.cpuUsage()
  for (let r = 0; r < rounds; r++)
    for (const k of keys) {
      const got = await store.getToSend(k)
      if (!got) throw new Error(`miss for ${k}`)
      got.release?.()
    }
  const h = process.cpuUsage(h0)
  return (h.user + h.system) / (rounds * keys.length)
}
/** CPU ns per index get + touch over `keys`, `rounds` times. */
function lookups(keys: string[], rounds: number): number {
  const i0 = process.cpuUsage()
  for (let r = 0; r < rounds; r++)
    for (const k of keys) {
      const rec = store.index.get(k)!
      store.index.touch(rec)
    }
  const i = process.cpuUsage(i0)
  return ((i.user + i.system) * 1000) / (rounds * keys.length)
}

// First use: every key of the spread set read once, none read before (the hot set is a part of it).
const firstKeys = spread(SPREAD)
const firstUseUs = await hits(firstKeys, 1)
const hot = spread(HOT)
await hits(hot, 1)
const steadyUs = await hits(hot, STEADY_ROUNDS)
const indexHotNs = lookups(hot, 100)
const indexSpreadNs = lookups(firstKeys, Math.max(1, Math.floor(100 * (HOT / firstKeys.length))))
const restored = store.restored
await store.close()
process.stdout.write(
  `${JSON.stringify({
    readyMs,
    cpuMs: (cpu.user + cpu.system) / 1000,
    peakRssMB,
    heapUsedMB: mem.heapUsed / 1e6,
    heapTotalMB: mem.heapTotal / 1e6,
    externalMB: mem.external / 1e6,
    restored,
    firstUseUs,
    steadyUs,
    indexHotNs,
    indexSpreadNs,
  })}\n`,
)

/**
 * Disk tier at scale: `npm run bench:disk-scale` (after `npm run build`, on an otherwise quiet
 * machine). Options: `--sizes 1000,100000,1000000`, `--rounds 3`, `--full-scan-max 100000` (the
 * full scan, minutes at a million objects, is timed only up to this size), `--dir DIR` (keep the
 * cache directories in DIR/{size}, built once: see cache.ts) and `--prepare` (only build them, so
 * that a run under the bench lock measures and does not build).
 *
 * For each size, in each round:
 * - restart to ready, each in its own process (restart.ts): DiskStore.open (directory lock, index
 *   rebuilt, statfs) until it resolves, from the snapshot the last close wrote (every bucket
 *   validated by its mtime), and with no snapshot (every file read: the full scan); wall time,
 *   the restart's CPU time, its peak RSS and heap; page cache warm;
 * - per-hit CPU after the restart (restart.ts): steady-state hits of a hot set, and first-use hits
 *   of keys not read since the restart, reported apart; and the index part alone (get + touch);
 * - per-eviction time: adding objects to a full index, each add evicting one (ordinary LRU), and
 *   protecting objects into a full protected share spread over 200 ranked titles, each evicting
 *   the least popular title's oldest (the index alone: the unlink is not timed).
 * Writes bench/results/disk-scale.{json,md} with min/median/max over rounds and load averages.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { DiskIndex, DiskRecord } from '../../edge/cache/disk-index.js'
import { SNAPSHOT_FILE } from '../../edge/cache/disk-snapshot.js'
import { benchArgs, numberArg, numberListArg } from '../lib/args.js'
import { repoRoot } from '../lib/paths.js'
import { fmt, markdownTable, writeResults } from '../lib/report.js'
import { max, median } from '../lib/stats.js'
import { buildObjects, ENTRY_OPTS, keyOf, metaOf, writeBenchSnapshot } from './cache.js'

const root = repoRoot(import.meta.url)
const USAGE = `Usage: npm run bench:disk-scale -- [flags]
  --sizes N,N,...       object counts of the caches measured (default: 1000,100000,1000000)
  --rounds N            rounds per size (default: 3)
  --full-scan-max N     time the full scan (minutes at a million objects) only up to this size (default: 100000)
  --dir DIR             keep the cache directories in DIR/{size}, built once (default: a temporary directory)
  --prepare             only build the cache directories, so that a run under the bench lock measures (default: off)
  -h, --help            print this and exit`
const args = benchArgs(USAGE, {
  options: {
    sizes: { type: 'string' },
    rounds: { type: 'string' },
    'full-scan-max': { type: 'string' },
    dir: { type: 'string' },
    prepare: { type: 'boolean' },
  },
})
const SIZES = numberListArg(args.sizes ?? '1000,100000,1000000', '--sizes', { integer: true, min: 1 })
const ROUNDS = numberArg(args.rounds, '--rounds', 3, { integer: true, min: 1 })
const FULL_SCAN_MAX = numberArg(args['full-scan-max'], '--full-scan-max', 100000, { min: 0 })
const KEEP = args.dir ?? ''
const PREPARE = args.prepare === true
const EVICTIONS = 20_000
const log = (s: string) => process.stderr.write(`bench:disk-scale: ${s}\n`)

/** What restart.ts prints. */
interface Restart {
  readyMs: number
  cpuMs: number
  peakRssMB: number
  heapUsedMB: number
  heapTotalMB: number
  externalMB: number
  restored: { trusted: number; scanned: number }
  firstUseUs: number
  steadyUs: number
  indexHotNs: number
  indexSpreadNs: number
}

function restart(dir: string, n: number): Restart {
  const out = execFileSync(
    process.execPath,
    [join(root, 'dist/bench/disk-scale/restart.js'), dir, String(n)],
    {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
      maxBuffer: 1 << 20,
    },
  )
  return JSON.parse(out.trim().split('\n').pop()!) as Restart
}

function record(i: number, size: number): DiskRecord {
  const key = keyOf(i)
  const fields = { key, file: key, size, id: { dev: 0, ino: i, size, mtimeMs: 0 }, protected: false }
  // As restored from a snapshot: the entry is built on first use (the index never uses it).
  return new DiskRecord(fields, metaOf(key, Buffer.alloc(1)), ENTRY_OPTS)
}

/** µs per eviction: ordinary LRU, then the protected share (200 ranked titles). */
function evictions(n: number): { lruUs: number; protectedUs: number } {
  const recs = Array.from({ length: n + EVICTIONS }, (_, i) => record(i, 1))
  const lru = new DiskIndex(n, n, () => undefined)
  for (let i = 0; i < n; i++) lru.add(recs[i]!)
  let t0 = performance.now()
  for (let i = n; i < n + EVICTIONS; i++) lru.add(recs[i]!)
  const lruUs = ((performance.now() - t0) * 1000) / EVICTIONS
  if (lru.evictions !== EVICTIONS) throw new Error(`expected ${EVICTIONS} evictions, got ${lru.evictions}`)

  const guard = new DiskIndex(Number.POSITIVE_INFINITY, n, () => undefined)
  const fresh = recs.map((r, i) => record(i, r.size))
  for (const r of fresh) guard.add(r)
  const titles = 200
  const rankOf = (i: number) => (i * 31) % titles
  const title = (i: number) => `t${Math.floor(i / 5000)}`
  for (let i = 0; i < n; i++) guard.protect(fresh[i]!.key, title(i), rankOf(Math.floor(i / 5000)))
  t0 = performance.now()
  for (let i = n; i < n + EVICTIONS; i++) guard.protect(fresh[i]!.key, title(i), rankOf(Math.floor(i / 5000)))
  const protectedUs = ((performance.now() - t0) * 1000) / EVICTIONS
  if (guard.evictions < EVICTIONS)
    throw new Error(`expected ${EVICTIONS} protected evictions, got ${guard.evictions}`)
  return { lruUs, protectedUs }
}

interface Row {
  objects: number
  fullScanMs: number[]
  fullScanCpuMs: number[]
  snapshotMs: number[]
  snapshotCpuMs: number[]
  peakRssMB: number[]
  heapUsedMB: number[]
  bucketsTrusted: number
  firstUseUs: number[]
  steadyUs: number[]
  indexHotNs: number[]
  indexSpreadNs: number[]
  lruEvictUs: number[]
  protectedEvictUs: number[]
  /** 1-minute load average just before each round. */
  load1: number[]
}

/** A directory holding `n` objects and their snapshot. */
async function prepare(n: number): Promise<string> {
  const dir = KEEP ? join(KEEP, String(n)) : mkdtempSync(join(tmpdir(), 'cdn-disk-scale-'))
  mkdirSync(dir, { recursive: true })
  const b0 = performance.now()
  if (buildObjects(dir, n, log)) log(`${n} objects written in ${fmt((performance.now() - b0) / 1000)} s`)
  // A kept directory's snapshot is rewritten only by --prepare (the restarts' closes keep it).
  if (PREPARE || !existsSync(join(dir, SNAPSHOT_FILE))) {
    await writeBenchSnapshot(dir, n)
    log(`${n}: snapshot written`)
  }
  return dir
}

const load0 = loadavg()
const rows: Row[] = []
for (const n of SIZES) {
  const dir = await prepare(n)
  if (PREPARE) continue
  try {
    const row: Row = {
      objects: n,
      fullScanMs: [],
      fullScanCpuMs: [],
      snapshotMs: [],
      snapshotCpuMs: [],
      peakRssMB: [],
      heapUsedMB: [],
      bucketsTrusted: 0,
      firstUseUs: [],
      steadyUs: [],
      indexHotNs: [],
      indexSpreadNs: [],
      lruEvictUs: [],
      protectedEvictUs: [],
      load1: [],
    }
    for (let r = 0; r < ROUNDS; r++) {
      row.load1.push(loadavg()[0]!)
      const snap = restart(dir, n)
      if (snap.restored.scanned !== 0) throw new Error(`${snap.restored.scanned} buckets scanned`)
      row.snapshotMs.push(snap.readyMs)
      row.snapshotCpuMs.push(snap.cpuMs)
      row.peakRssMB.push(snap.peakRssMB)
      row.heapUsedMB.push(snap.heapUsedMB)
      row.bucketsTrusted = snap.restored.trusted
      row.firstUseUs.push(snap.firstUseUs)
      row.steadyUs.push(snap.steadyUs)
      row.indexHotNs.push(snap.indexHotNs)
      row.indexSpreadNs.push(snap.indexSpreadNs)
      let full: Restart | undefined
      if (n <= FULL_SCAN_MAX) {
        // Its close writes the next round's snapshot.
        renameSync(join(dir, SNAPSHOT_FILE), join(dir, `${SNAPSHOT_FILE}.aside`))
        full = restart(dir, n)
        rmSync(join(dir, `${SNAPSHOT_FILE}.aside`), { force: true })
        row.fullScanMs.push(full.readyMs)
        row.fullScanCpuMs.push(full.cpuMs)
      }
      const e = evictions(n)
      row.lruEvictUs.push(e.lruUs)
      row.protectedEvictUs.push(e.protectedUs)
      log(
        `${n}: round ${r + 1}: snapshot ${fmt(snap.readyMs)} ms (${fmt(snap.cpuMs)} ms CPU, peak RSS ${fmt(snap.peakRssMB)} MB), full scan ${fmt(full?.readyMs)} ms, hit ${fmt(snap.steadyUs)} µs CPU steady, ${fmt(snap.firstUseUs)} first use, evict ${fmt(e.lruUs)}/${fmt(e.protectedUs)} µs`,
      )
    }
    rows.push(row)
  } finally {
    if (!KEEP) rmSync(dir, { recursive: true, force: true })
  }
}
if (PREPARE) process.exit(0)

const spread = (v: number[]) =>
  v.length ? `${fmt(Math.min(...v))} / ${fmt(median(v))} / ${fmt(max(v))}` : 'n/a'
const loads = (l: number[]) => l.map((x) => x.toFixed(2)).join(' ')
const load1 = loadavg()
const md = [
  '# Disk tier at scale',
  '',
  `\`npm run bench:disk-scale -- --sizes ${SIZES.join(',')} --rounds ${ROUNDS}\`, Node ${process.version}, load average (1, 5, 15 min) ${loads(load0)} before the run and ${loads(load1)} after it, on ${execFileSync('nproc', { encoding: 'utf8' }).trim()} cores. Each cell min / median / max over rounds. Objects of 100 bytes, 5,000 per title, page cache warm. Restart: a new process, until DiskStore.open resolves (the tier serves every object); its CPU is the process's user+system time over that span, its peak RSS the process's maximum resident set until then, its heap what is used once ready. Full scan: no snapshot, every file read (up to ${FULL_SCAN_MAX.toLocaleString('en-US')} objects). Disk hit: process CPU per getToSend of 100-byte objects, two ways: *steady*, a hot set of 1,000 keys evenly spaced over the index, read once, then 20 times over (fd cached, body verified once, ctime trusted: a hit in service); *first use*, up to 20,000 keys evenly spaced over the index, each read once, the first since the restart (the restored record's entry built from its snapshot block, the file opened and its fd checked, the crc32 verified, an older fd closed once the LRU of 1,024 fds is full; at 1,000 objects all 1,000 keys). Index get+touch: CPU per look-up and LRU touch, over the hot set (*hot*) and over the first-use keys (*spread*: 20,000 keys, or every key at 1,000 objects). Evictions: index only (the unlink is not timed).`,
  '',
  markdownTable(rows, [
    { header: 'objects', cell: (r) => r.objects.toLocaleString('en-US'), right: true },
    { header: 'restart, snapshot (ms)', cell: (r) => spread(r.snapshotMs), right: true },
    { header: 'its CPU (ms)', cell: (r) => spread(r.snapshotCpuMs), right: true },
    { header: 'peak RSS (MB)', cell: (r) => spread(r.peakRssMB), right: true },
    { header: 'heap (MB)', cell: (r) => spread(r.heapUsedMB), right: true },
    { header: 'restart, full scan (ms)', cell: (r) => spread(r.fullScanMs), right: true },
    { header: 'its CPU (ms)', cell: (r) => spread(r.fullScanCpuMs), right: true },
    { header: 'buckets from snapshot', cell: (r) => r.bucketsTrusted.toLocaleString('en-US'), right: true },
    { header: 'disk hit CPU, steady (µs)', cell: (r) => spread(r.steadyUs), right: true },
    { header: 'disk hit CPU, first use (µs)', cell: (r) => spread(r.firstUseUs), right: true },
    { header: 'index get+touch, hot (ns)', cell: (r) => spread(r.indexHotNs), right: true },
    { header: 'index get+touch, spread (ns)', cell: (r) => spread(r.indexSpreadNs), right: true },
    { header: 'LRU eviction (µs)', cell: (r) => spread(r.lruEvictUs), right: true },
    { header: 'protected eviction (µs)', cell: (r) => spread(r.protectedEvictUs), right: true },
    { header: 'load (1 min)', cell: (r) => spread(r.load1), right: true },
  ]),
  '',
].join('\n')
writeResults(
  join(root, 'bench', 'results', 'disk-scale.json'),
  join(root, 'bench', 'results', 'disk-scale.md'),
  {
    sizes: SIZES,
    rounds: ROUNDS,
    fullScanMax: FULL_SCAN_MAX,
    node: process.version,
    loadavgBefore: load0,
    loadavgAfter: load1,
    rows,
  },
  md,
)
process.stdout.write(md)

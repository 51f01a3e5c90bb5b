/**
 * Disk tier at scale: `npm run bench:disk-scale` (after `npm run build`, on an otherwise quiet
 * machine). Options: `--sizes 1000,100000,1000000`, `--rounds 3`, `--full-scan-max 100000` (above
 * it the full scan, minutes at a million objects, is timed in the first round only).
 *
 * For each size it builds a cache directory of that many small objects (100-byte bodies, 5,000
 * objects per title), written straight in the on-disk format (disk-format.ts's trailer, no
 * edge), then measures:
 * - restart to ready: DiskStore.open (directory lock, index rebuilt, statfs) until it resolves,
 *   with no snapshot (every file read: the full scan) and with the snapshot its close wrote
 *   (every bucket validated by its mtime); the page cache is warm (the files were just written);
 * - per-hit CPU: `getToSend` of random held keys (index look-up, LRU touch, fd, pread, crc32
 *   on the first read through an fd), process CPU per hit; and the index part alone (get + touch);
 * - per-eviction time: adding objects to a full index, each add evicting one (ordinary LRU), and
 *   protecting objects into a full protected share spread over 200 ranked titles, each evicting
 *   the least popular title's oldest (the index alone: the unlink is not timed).
 * Writes bench/results/disk-scale.{json,md} with min/median/max over rounds and the load average.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { crc32 } from 'node:zlib'
import { encodeTrailer, objectDir, objectName } from '../../edge/cache/disk-format.js'
import { DiskIndex, DiskRecord } from '../../edge/cache/disk-index.js'
import { SETTLE_MS } from '../../edge/cache/disk-snapshot.js'
import { DiskStore } from '../../edge/cache/disk-store.js'
import type { EntryMeta } from '../../edge/cache/entry.js'
import { repoRoot } from '../lib/paths.js'
import { fmt, markdownTable, writeResults } from '../lib/report.js'
import { max, median } from '../lib/stats.js'

const root = repoRoot(import.meta.url)
const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`)
  return i > 0 ? process.argv[i + 1]! : dflt
}
const SIZES = arg('sizes', '1000,100000,1000000').split(',').map(Number)
const ROUNDS = Number(arg('rounds', '3'))
const FULL_SCAN_MAX = Number(arg('full-scan-max', '100000'))
const PER_TITLE = 5000
const HITS = 20_000
const EVICTIONS = 20_000
const log = (s: string) => process.stderr.write(`bench:disk-scale: ${s}\n`)
const ENTRY_OPTS = { heuristicMaxMs: 86_400_000 }

function metaOf(key: string, body: Buffer): EntryMeta {
  const t = Date.UTC(2026, 0, 1)
  return {
    key,
    status: 200,
    headers: {
      'content-type': 'video/iso.segment',
      'cache-control': 'public, max-age=31536000, immutable',
      date: new Date(t).toUTCString(),
      etag: `"${crc32(body).toString(16)}"`,
      'last-modified': new Date(t).toUTCString(),
    },
    requestTime: t,
    responseTime: t,
    bodyLength: body.length,
    crc32: crc32(body),
  }
}

const keyOf = (i: number) => `/vod/t${Math.floor(i / PER_TITLE)}/v1/360p/seg-${i % PER_TITLE}.m4s`

/** Writes `n` object files in the on-disk format. */
function build(dir: string, n: number): void {
  const made = new Set<string>()
  for (let i = 0; i < n; i++) {
    const key = keyOf(i)
    const body = Buffer.alloc(100, i & 0xff)
    const name = objectName(key)
    const d = objectDir(dir, `t${Math.floor(i / PER_TITLE)}`, name)
    if (!made.has(d)) {
      mkdirSync(d, { recursive: true })
      made.add(d)
    }
    writeFileSync(join(d, name), Buffer.concat([body, encodeTrailer(metaOf(key, body))]))
  }
}

const open = (dir: string) =>
  DiskStore.open({ dir, maxBytes: 100e9, protectedShare: 0.5, maxFds: 1024, ...ENTRY_OPTS })

async function timedOpen(dir: string): Promise<{ ms: number; store: DiskStore }> {
  const t0 = performance.now()
  const store = await open(dir)
  return { ms: performance.now() - t0, store }
}

/** CPU µs per disk hit (random keys) and ns per index get+touch. */
async function hits(store: DiskStore, n: number): Promise<{ hitCpuUs: number; indexNs: number }> {
  const keys = Array.from({ length: HITS }, (_, i) => keyOf((i * 7919 + 13) % n))
  const c0 = process.cpuUsage()
  for (const k of keys) {
    const r = await store.getToSend(k)
    if (!r) throw new Error(`miss for ${k}`)
    r.release?.()
  }
  const c = process.cpuUsage(c0)
  const t0 = process.hrtime.bigint()
  for (let round = 0; round < 10; round++)
    for (const k of keys) {
      const rec = store.index.get(k)!
      store.index.touch(rec)
    }
  const ns = Number(process.hrtime.bigint() - t0) / (10 * keys.length)
  return { hitCpuUs: (c.user + c.system) / keys.length, indexNs: ns }
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
  for (let i = 0; i < n; i++)
    guard.protect(fresh[i]!.key, `t${Math.floor(i / PER_TITLE)}`, rankOf(Math.floor(i / PER_TITLE)))
  t0 = performance.now()
  for (let i = n; i < n + EVICTIONS; i++)
    guard.protect(fresh[i]!.key, `t${Math.floor(i / PER_TITLE)}`, rankOf(Math.floor(i / PER_TITLE)))
  const protectedUs = ((performance.now() - t0) * 1000) / EVICTIONS
  if (guard.evictions < EVICTIONS)
    throw new Error(`expected ${EVICTIONS} protected evictions, got ${guard.evictions}`)
  return { lruUs, protectedUs }
}

interface Row {
  objects: number
  buildS: number
  fullScanMs: number[]
  snapshotMs: number[]
  bucketsTrusted: number
  hitCpuUs: number[]
  indexNs: number[]
  lruEvictUs: number[]
  protectedEvictUs: number[]
  heapMB: number
}

const rows: Row[] = []
for (const n of SIZES) {
  const dir = mkdtempSync(join(tmpdir(), 'cdn-disk-scale-'))
  try {
    const b0 = performance.now()
    build(dir, n)
    const row: Row = {
      objects: n,
      buildS: (performance.now() - b0) / 1000,
      fullScanMs: [],
      snapshotMs: [],
      bucketsTrusted: 0,
      hitCpuUs: [],
      indexNs: [],
      lruEvictUs: [],
      protectedEvictUs: [],
      heapMB: 0,
    }
    log(`${n} objects built in ${fmt(row.buildS)} s`)
    // The snapshot does not vouch for a bucket changed within SETTLE_MS of it (timestamp
    // granularity): let the last ones settle, as a cache written before a restart has.
    await new Promise((r) => setTimeout(r, SETTLE_MS + 500))
    for (let r = 0; r < ROUNDS; r++) {
      let fullMs = Number.NaN
      if (r === 0 || n <= FULL_SCAN_MAX) {
        rmSync(join(dir, 'index.snapshot'), { force: true })
        const full = await timedOpen(dir)
        if (full.store.stats().disk!.objects !== n)
          throw new Error(`scan found ${full.store.stats().disk!.objects}`)
        row.fullScanMs.push((fullMs = full.ms))
        await full.store.close()
      }
      const snap = await timedOpen(dir)
      if (snap.store.stats().disk!.objects !== n)
        throw new Error(`snapshot found ${snap.store.stats().disk!.objects}`)
      row.snapshotMs.push(snap.ms)
      if (snap.store.restored.scanned !== 0) throw new Error(`${snap.store.restored.scanned} buckets scanned`)
      row.bucketsTrusted = snap.store.restored.trusted
      row.heapMB = process.memoryUsage().heapUsed / 1e6
      const h = await hits(snap.store, n)
      row.hitCpuUs.push(h.hitCpuUs)
      row.indexNs.push(h.indexNs)
      await snap.store.close()
      const e = evictions(n)
      row.lruEvictUs.push(e.lruUs)
      row.protectedEvictUs.push(e.protectedUs)
      log(
        `${n}: round ${r + 1}: full scan ${fmt(fullMs)} ms, snapshot ${fmt(snap.ms)} ms, hit ${fmt(h.hitCpuUs)} µs CPU, evict ${fmt(e.lruUs)}/${fmt(e.protectedUs)} µs`,
      )
    }
    rows.push(row)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

const spread = (v: number[]) => `${fmt(Math.min(...v))} / ${fmt(median(v))} / ${fmt(max(v))}`
const md = [
  '# Disk tier at scale',
  '',
  `\`npm run bench:disk-scale -- --sizes ${SIZES.join(',')} --rounds ${ROUNDS}\`, Node ${process.version}, load average after the run ${loadavg()
    .map((l) => l.toFixed(2))
    .join(
      ' ',
    )}. Each cell min / median / max over rounds. Objects of 100 bytes, 5,000 per title, page cache warm. Restart: until DiskStore.open resolves (the tier serves); above ${FULL_SCAN_MAX.toLocaleString('en-US')} objects the full scan is timed in the first round only. Disk hit: random held keys, process CPU per getToSend, the first use of a restored record building its entry included. Evictions: index only (the unlink is not timed). Heap: after the snapshot restart.`,
  '',
  markdownTable(rows, [
    { header: 'objects', cell: (r) => r.objects.toLocaleString('en-US'), right: true },
    { header: 'restart, full scan (ms)', cell: (r) => spread(r.fullScanMs), right: true },
    { header: 'restart, snapshot (ms)', cell: (r) => spread(r.snapshotMs), right: true },
    { header: 'buckets from snapshot', cell: (r) => r.bucketsTrusted.toLocaleString('en-US'), right: true },
    { header: 'disk hit CPU (µs)', cell: (r) => spread(r.hitCpuUs), right: true },
    { header: 'index get+touch (ns)', cell: (r) => spread(r.indexNs), right: true },
    { header: 'LRU eviction (µs)', cell: (r) => spread(r.lruEvictUs), right: true },
    { header: 'protected eviction (µs)', cell: (r) => spread(r.protectedEvictUs), right: true },
    { header: 'heap (MB)', cell: (r) => fmt(r.heapMB), right: true },
  ]),
  '',
].join('\n')
writeResults(
  join(root, 'bench', 'results', 'disk-scale.json'),
  join(root, 'bench', 'results', 'disk-scale.md'),
  { sizes: SIZES, rounds: ROUNDS, node: process.version, loadavg: loadavg(), rows },
  md,
)
process.stdout.write(md)

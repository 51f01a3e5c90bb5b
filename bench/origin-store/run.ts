/**
 * Origin store benchmark: one `cdn origin` process serving a local directory against one
 * serving S3-compatible object storage (Swift with s3api on loopback, scripts/object-store.sh),
 * for a media playlist and a segment (req/s, MB/s, p50/p99, CPU per request of the origin and of
 * the Swift servers), and the publish time of one ladder into each store.
 *
 *   eval "$(scripts/object-store.sh start)"
 *   flock /work/wt/bench.lock npm run bench:origin-store [-- --duration 5 --rounds 3 --connections 8]
 *
 * Swift's CPU is read from the pids under $CDN_OBJECT_STORE_DIR (the script's default without it).
 * Writes bench/results/origin-store.json and bench/results/origin-store.md.
 */
import { cp, mkdtemp, rm } from 'node:fs/promises'
import { readFileSync } from 'node:fs'
import { availableParallelism, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fixtureFfmpeg, sampleSource } from '../../fixtures/media.js'
import type { TitleEntry } from '../../origin/store/content-store.js'
import { ContentStore } from '../../origin/store/content-store.js'
import { openStore } from '../../origin/store/open-store.js'
import type { OriginStore } from '../../origin/store/store.js'
import { ingest } from '../../origin/transcode/ingest.js'
import { systemClock } from '../../src/clock.js'
import { benchArgs, numberArg } from '../lib/args.js'
import { treeCpuSeconds } from '../lib/cpu.js'
import { measure, type Sample, summarise } from '../lib/measure.js'
import { freePort, startProcess } from '../lib/proc.js'
import { fmt, markdownTable, writeResults } from '../lib/report.js'
import { repoRoot } from '../lib/paths.js'
import { interleave } from '../lib/rounds.js'
import { max, median } from '../lib/stats.js'

const USAGE = `Usage: npm run bench:origin-store -- [flags]
  (after eval "$(scripts/object-store.sh start)")
  --duration S       seconds of load per run (default: 5)
  --rounds N         rounds, each loading both stores (default: 3)
  --connections N    connections of the load (default: 8)
  --seconds S        length of the sample source published into each store (default: 12)
  -h, --help         print this and exit`
const values = benchArgs(USAGE, {
  options: {
    duration: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '3' },
    connections: { type: 'string', default: '8' },
    seconds: { type: 'string', default: '12' },
  },
})
const durationS = numberArg(values.duration, '--duration', 5, { min: 0 })
const rounds = Math.max(1, numberArg(values.rounds, '--rounds', 3, { integer: true }))
const connections = numberArg(values.connections, '--connections', 8, { integer: true, min: 1 })
const sourceSeconds = numberArg(values.seconds, '--seconds', 12, { min: 0 })
const endpoint = process.env.CDN_TEST_S3_ENDPOINT
if (!endpoint) {
  process.stderr.write('bench origin-store: run eval "$(scripts/object-store.sh start)" first\n')
  process.exit(2)
}
const s3 = {
  s3Endpoint: endpoint,
  s3Region: process.env.AWS_REGION ?? 'us-east-1',
  s3AccessKeyId: process.env.AWS_ACCESS_KEY_ID ?? 'test:tester',
  s3SecretAccessKey: process.env.AWS_SECRET_ACCESS_KEY ?? 'testing',
}
const swiftPids = (() => {
  try {
    return readFileSync(join(process.env.CDN_OBJECT_STORE_DIR ?? '/tmp/cdn-object-store', 'pids'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map(Number)
  } catch {
    return []
  }
})()

const root = repoRoot(import.meta.url)
const work = await mkdtemp(join(tmpdir(), 'cdn-bench-origin-store-'))
const s3Url = `s3://cdn-bench/run-${Date.now()}`

async function timedPublish(
  store: OriginStore,
  staged: string,
  entry: TitleEntry,
  title: string,
): Promise<number> {
  const version = entry.versions.find((v) => v.id === entry.current)!
  const dir = await store.createStaging(title)
  await rm(dir, { recursive: true })
  await cp(staged, dir, { recursive: true })
  const t0 = systemClock.monotonic()
  await store.publish(title, dir, version, new Date())
  const s = (systemClock.monotonic() - t0) / 1000
  await rm(dir, { recursive: true, force: true })
  return s
}

try {
  // One ingest: a 720p ladder, the content both stores serve.
  const source = await sampleSource({ seconds: sourceSeconds, width: 1280, height: 720 })
  const localRoot = join(work, 'local')
  const local = await new ContentStore(localRoot).init()
  const r = await ingest(source, { title: 'src', store: local, ffmpeg: fixtureFfmpeg() })
  const staged = join(localRoot, 'titles/src', r.version.id)
  const entry = r.entry
  const objectStore = await openStore({ store: s3Url, ...s3, workDir: join(work, 's3-work') })
  const publish: Record<string, number[]> = { local: [], s3: [] }
  for (let i = 0; i < rounds; i++) {
    publish.local!.push(await timedPublish(local, staged, entry, `show-${i}`))
    publish.s3!.push(await timedPublish(objectStore, staged, entry, `show-${i}`))
  }
  await objectStore.close()
  const ladderBytes = r.version.bytes
  const seg = r.version.renditions[0]!
  const paths = {
    playlist: `/vod/show-0/${r.version.id}/${seg.name}/index.m3u8`,
    segment: `/vod/show-0/${r.version.id}/${seg.name}/seg-00001.m4s`,
  }

  const cli = join(root, 'dist/src/cli/main.js')
  const origins = {} as Record<'local' | 's3', { url: string; pid: number; stop: () => Promise<void> }>
  for (const [name, store] of [
    ['local', localRoot],
    ['s3', s3Url],
  ] as const) {
    const port = await freePort()
    const child = await startProcess({
      name: `origin-${name}`,
      cmd: process.execPath,
      args: [cli, 'origin', '--store', store, '--port', String(port), '--work-dir', join(work, `w-${name}`)],
      env: {
        ...process.env,
        CDN_LOG_LEVEL: 'warn',
        AWS_ENDPOINT_URL_S3: s3.s3Endpoint,
        AWS_ACCESS_KEY_ID: s3.s3AccessKeyId,
        AWS_SECRET_ACCESS_KEY: s3.s3SecretAccessKey,
      },
      readyUrl: `http://127.0.0.1:${port}/healthz`,
    })
    origins[name] = { url: `http://127.0.0.1:${port}`, pid: child.pid, stop: () => child.stop() }
  }

  type Variant = 'local playlist' | 's3 playlist' | 'local segment' | 's3 segment'
  const variants: Variant[] = ['local playlist', 's3 playlist', 'local segment', 's3 segment']
  const swiftCpu = () => swiftPids.reduce((a, p) => a + treeCpuSeconds(p), 0)
  const results = await interleave(variants, rounds, async (v) => {
    const [backend, object] = v.split(' ') as ['local' | 's3', 'playlist' | 'segment']
    const o = origins[backend]
    const url = `${o.url}${paths[object]}`
    await fetch(url).then((x) => x.arrayBuffer()) // warm: the pointer and metadata caches
    const swift0 = swiftCpu()
    const sample = await measure('autocannon', [o.pid], { url, connections, durationS })
    return { ...sample, storeCpuUsPerReq: ((swiftCpu() - swift0) * 1e6) / Math.max(1, sample.requests) }
  })
  for (const o of Object.values(origins)) await o.stop()

  const rows = variants.map((v) => {
    const samples = results.get(v)! as (Sample & { storeCpuUsPerReq: number })[]
    const s = summarise(samples)
    return {
      variant: v,
      ...s,
      storeCpuUsPerReq: v.startsWith('s3') ? median(samples.map((x) => x.storeCpuUsPerReq)) : 0,
      rpsMin: Math.min(...samples.map((x) => x.rps)),
      rpsMax: max(samples.map((x) => x.rps)),
    }
  })
  const publishRows = (['local', 's3'] as const).map((b) => ({
    backend: b,
    min: Math.min(...publish[b]!),
    median: median(publish[b]!),
    max: max(publish[b]!),
    mbps: ladderBytes / median(publish[b]!) / 1e6,
  }))
  const machine = { cpus: availableParallelism(), loadavg: loadavg(), node: process.version }
  const doc = {
    bench: 'origin-store',
    date: new Date().toISOString(),
    machine,
    params: { durationS, rounds, connections, sourceSeconds },
    ladder: {
      renditions: r.version.renditions.map((x) => x.name),
      bytes: ladderBytes,
      segmentBytes: seg.bytes / seg.segments,
    },
    serve: rows,
    publish: publishRows,
  }
  const md = [
    `# Origin: local directory vs object store (Swift s3api on loopback)`,
    '',
    `${new Date().toISOString()}, ${machine.cpus} CPUs, load ${machine.loadavg.map((x) => x.toFixed(1)).join(' ')}, ${process.version}; autocannon, ${connections} connections, ${durationS} s x ${rounds} rounds (interleaved), median (min–max req/s). Objects of the top rung (${seg.name}).`,
    `Reproduce: \`eval "$(scripts/object-store.sh start)"; flock /work/wt/bench.lock npm run bench:origin-store\``,
    '',
    markdownTable(rows, [
      { header: 'store / object', cell: (x) => x.variant },
      { header: 'req/s', cell: (x) => `${fmt(x.rps)} (${fmt(x.rpsMin)}–${fmt(x.rpsMax)})`, right: true },
      { header: 'MB/s', cell: (x) => fmt(x.mbps), right: true },
      { header: 'p50 ms', cell: (x) => fmt(x.p50Ms), right: true },
      { header: 'p99 ms', cell: (x) => fmt(x.p99Ms), right: true },
      { header: 'origin CPU µs/req', cell: (x) => fmt(x.cpuUsPerReq), right: true },
      { header: 'Swift CPU µs/req', cell: (x) => fmt(x.storeCpuUsPerReq), right: true },
      { header: 'errors', cell: (x) => String(x.errors + x.non2xx), right: true },
      { header: 'foreign CPU', cell: (x) => fmt(x.foreignCpuShareMax, 2), right: true },
    ]),
    '',
    `Publish of one ladder (${r.version.renditions.length} renditions, ${fmt(ladderBytes / 1e6)} MB; local: fsync + rename + pointer; s3: upload + manifest + pointer), s over ${rounds} rounds:`,
    '',
    markdownTable(publishRows, [
      { header: 'store', cell: (x) => x.backend },
      { header: 'min s', cell: (x) => fmt(x.min), right: true },
      { header: 'median s', cell: (x) => fmt(x.median), right: true },
      { header: 'max s', cell: (x) => fmt(x.max), right: true },
      { header: 'MB/s', cell: (x) => fmt(x.mbps), right: true },
    ]),
    '',
  ].join('\n')
  writeResults(
    join(root, 'bench/results/origin-store.json'),
    join(root, 'bench/results/origin-store.md'),
    doc,
    md,
  )
  process.stdout.write(md)
} finally {
  await rm(work, { recursive: true, force: true })
}

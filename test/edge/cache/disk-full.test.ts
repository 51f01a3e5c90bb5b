/**
 * The disk tier on a filesystem smaller than --disk-size (a real 4 MiB tmpfs, mounted for the
 * test: root only): clamped at start with a warning; once the filesystem fills (ENOSPC) the
 * effective size is lowered, the tier evicts and keeps caching, says so once, exports the lower
 * size, and raises it again when space returns.
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, statfsSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { ManualClock } from '../../../src/clock.js'
import { RECHECK_MS } from '../../../edge/cache/disk-capacity.js'
import { DiskStore } from '../../../edge/cache/disk-store.js'
import { createEdgeMetrics } from '../../../edge/metrics.js'
import { EdgeStats } from '../../../edge/stats.js'
import { tempDir } from '../../helpers/edge.js'
import { metricSum, until } from '../../helpers/wait.js'
import { put } from './store-contract.js'

const MiB = 1024 * 1024

function mount(dir: string, size: string): boolean {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/** Why this machine cannot run the test (not root, or no right to mount), or false. */
function cannotMount(): string | false {
  if (process.getuid?.() !== 0) return 'needs root to mount a 4 MiB tmpfs (mount -t tmpfs)'
  const probe = mkdtempSync(join(tmpdir(), 'cdn-full-probe-'))
  try {
    if (!mount(probe, '1m')) return 'mount -t tmpfs is refused here (a container without CAP_SYS_ADMIN?)'
    execFileSync('umount', [probe], { stdio: 'ignore' })
    return false
  } finally {
    rmSync(probe, { recursive: true, force: true })
  }
}

function mountTmpfs(t: Test, size: string): string {
  const dir = tempDir(t, 'cdn-full-')
  if (!mount(dir, size)) throw new Error('mount -t tmpfs failed')
  t.teardown(() => execFileSync('umount', [dir], { stdio: 'ignore' }))
  return dir
}

/** A disk store asking for 64 MiB, more than any filesystem these tests mount. */
const openStore = (dir: string, clock?: ManualClock) =>
  DiskStore.open({
    dir,
    maxBytes: 64 * MiB,
    protectedShare: 0.5,
    maxFds: 8,
    heuristicMaxMs: 86_400_000,
    clock,
  })

interface Line {
  level: 'warn' | 'info'
  obj: Record<string, unknown>
  msg: string
}

const skip = cannotMount()

t.test(
  'a full filesystem lowers the effective size; the tier keeps caching and recovers',
  { skip },
  async (t) => {
    const fs = mountTmpfs(t, '4m')
    const clock = new ManualClock()
    const dir = join(fs, 'cache')
    mkdirSync(dir)
    const store = await openStore(dir, clock)
    t.teardown(() => store.close())
    const lines: Line[] = []
    store.attachLog({
      warn: (obj, msg) => lines.push({ level: 'warn', obj, msg }),
      info: (obj, msg) => lines.push({ level: 'info', obj, msg }),
    })
    const metrics = createEdgeMetrics(
      new EdgeStats(clock),
      () => store.stats(),
      () => store.errorsByCode,
      {
        bytes: 0,
        limit: 0,
        stalls: 0,
        drops: 0,
        refused: 0,
      },
    )
    const effective = async () => metricSum(await metrics.render(), 'cdn_edge_disk_effective_bytes')

    // At start: 64 MiB asked, a 4 MiB filesystem: clamped, with a warning.
    const clamped = await effective()
    t.ok(clamped > 0 && clamped < 4 * MiB, `clamped to what the filesystem holds (${clamped})`)
    t.match(lines, [{ level: 'warn', obj: { configuredBytes: 64 * MiB, effectiveBytes: clamped } }])

    // Something else takes 2 MiB of the filesystem: the cache can no longer reach its size.
    writeFileSync(join(fs, 'ballast'), Buffer.alloc(2 * MiB))
    const body = (i: number) => Buffer.alloc(200_000, i)
    let stored = 0
    let i = 0
    while (store.capacity.lowered === 0)
      if (await put(store, `/vod/f/v1/360p/seg-${i++}.m4s`, body(i))) stored++
    t.ok(stored >= 1, `cached ${stored} objects until the filesystem was full`)
    t.ok(store.stats().diskErrors! >= 1, 'the failed write is counted')
    const lowered = await effective()
    t.ok(lowered < clamped, `effective size lowered (${lowered} < ${clamped})`)
    t.ok(store.stats().disk!.bytes <= lowered, 'evicted down to it')

    // It keeps caching new objects by evicting old ones, without failing again.
    const evictions = store.stats().disk!.evictions
    const errors = store.stats().diskErrors!
    for (let n = 0; n < 20; n++)
      t.ok(await put(store, `/vod/g/v1/360p/seg-${n}.m4s`, body(n)), `new object ${n} cached`)
    t.ok(store.has('/vod/g/v1/360p/seg-19.m4s'))
    t.ok(store.stats().disk!.evictions > evictions, 'by evicting')
    t.equal(store.stats().diskErrors, errors, 'no write failed once the size was lowered')
    t.equal(lines.filter((l) => l.msg.includes('lack of space')).length, 1, 'the lowering is logged once')
    const warn = lines.find((l) => l.msg.includes('lack of space'))!
    t.match(warn.obj, { code: 'ENOSPC', role: 'temp', effectiveBytes: lowered })
    t.notOk(JSON.stringify(lines).includes(fs), 'no path in the log')

    // Space returns: the next write after RECHECK_MS checks statfs and raises the size.
    rmSync(join(fs, 'ballast'))
    clock.advance(RECHECK_MS)
    t.ok(await put(store, '/vod/h/v1/360p/seg-0.m4s', body(1)))
    await until(() => store.capacity.raised > 0)
    const raised = await effective()
    t.ok(raised > lowered, `effective size raised (${raised} > ${lowered})`)
    t.ok(raised <= 4 * MiB, 'to what the filesystem holds')
    t.match(lines.at(-1), { level: 'info', obj: { effectiveBytes: raised } })
  },
)

t.test(
  'a write the filesystem cuts short is not committed: the rest is written again and fails ENOSPC',
  { skip },
  async (t) => {
    const fs = mountTmpfs(t, '4m')
    const dir = join(fs, 'cache')
    mkdirSync(dir)
    const store = await openStore(dir)
    t.teardown(() => store.close())
    // Leave about 256 KiB free, then write a 700 KB object: under one batch, so its body and
    // trailer go in one writev, which the filesystem cuts short without an error.
    const st = statfsSync(fs)
    writeFileSync(join(fs, 'ballast'), Buffer.alloc(st.bavail * st.bsize - 256 * 1024))
    const key = '/vod/s/v1/720p/seg-00001.m4s'
    t.equal(await put(store, key, Buffer.alloc(700_000, 7)), undefined, 'not committed')
    t.notOk(store.has(key), 'not in the index')
    t.equal(store.errorsByCode.get('ENOSPC'), 1, 'the failure is the real reason, counted once')
    t.equal(await store.get(key), undefined, 'nothing to read back')
  },
)

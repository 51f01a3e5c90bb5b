/**
 * The benchmark harness's shared pieces on real processes: a server started as a child (its CPU
 * read from /proc), one bounded autocannon run measured against it, the summary of rounds,
 * interleaved round order, and the result files.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { machineBusySeconds, selfAndChildrenCpuSeconds, treeCpuSeconds } from '../../bench/lib/cpu.js'
import { measure, summarise } from '../../bench/lib/measure.js'
import { freePort, runCommand, startProcess } from '../../bench/lib/proc.js'
import { fmt, markdownTable, ratio, writeResults } from '../../bench/lib/report.js'
import { interleave } from '../../bench/lib/rounds.js'
import { onPath } from '../../bench/lib/tools.js'
import { tempDir } from '../helpers/origin.js'

t.test('interleave: every variant once per round, the order flipped each round', async (t) => {
  const order: string[] = []
  const out = await interleave(['a', 'b', 'c'] as const, 3, async (v, round) => {
    order.push(`${v}${round}`)
    return round
  })
  t.same(order, ['a0', 'b0', 'c0', 'c1', 'b1', 'a1', 'a2', 'b2', 'c2'])
  t.same(out.get('b'), [0, 1, 2])
})

t.test('report: tables, numbers, ratios, result files', async (t) => {
  const table = markdownTable(
    [{ name: 'a|b', n: 1234.5 }],
    [
      { header: 'name', cell: (r) => r.name },
      { header: 'n', cell: (r) => fmt(r.n), right: true },
    ],
  )
  t.equal(table, '| name | n |\n|:---|---:|\n| a\\|b | 1,235 |', 'pipes escaped, numbers right-aligned')
  t.equal(fmt(0.012345), '0.0123')
  t.equal(fmt(Number.NaN), 'n/a')
  t.equal(fmt(undefined), 'n/a')
  t.equal(ratio(3, 2), 1.5)
  t.ok(Number.isNaN(ratio(3, 0)), 'no ratio against 0')
  t.ok(Number.isNaN(ratio(undefined, 2)))
  const dir = await tempDir(t)
  writeResults(join(dir, 'j/r.json'), join(dir, 'm/r.md'), { x: 1 }, '# r')
  t.same(JSON.parse(readFileSync(join(dir, 'j/r.json'), 'utf8')), { x: 1 })
  t.equal(readFileSync(join(dir, 'm/r.md'), 'utf8'), '# r\n', 'a final newline added')
})

t.test('cpu: this process, the machine, a pid that does not exist', async (t) => {
  t.ok(treeCpuSeconds(process.pid) > 0, 'this process has used CPU')
  t.ok(machineBusySeconds() > 0)
  t.ok(selfAndChildrenCpuSeconds() > 0)
  t.ok(Number.isNaN(treeCpuSeconds(2 ** 22 + 1)), 'no such pid: NaN, not 0')
})

t.test('a child server measured under one bounded autocannon run', async (t) => {
  const port = await freePort()
  const server = `require('node:http').createServer((q, s) => s.end('hello')).listen(${port}, '127.0.0.1')`
  const child = await startProcess({
    name: 'tiny',
    cmd: process.execPath,
    args: ['-e', server],
    readyUrl: `http://127.0.0.1:${port}/`,
    readyTimeoutMs: 30_000,
  })
  t.teardown(() => child.stop(2000))
  const opts = { url: `http://127.0.0.1:${port}/`, connections: 2, durationS: 30, maxRequests: 300 }
  const a = await measure('autocannon', [child.pid], opts)
  const b = await measure('autocannon', [child.pid], opts)
  t.ok(a.requests >= 300, `the run completed its requests (${a.requests})`)
  t.equal(a.errors, 0)
  t.equal(a.non2xx, 0)
  t.ok(
    a.cpuSeconds >= 0 && Number.isFinite(a.cpuUsPerReq),
    `server CPU read from /proc (${a.cpuUsPerReq} µs/req)`,
  )
  t.ok(a.foreignCpuShare >= 0)
  t.ok(
    a.transferCpuUsPerReq >= a.cpuUsPerReq,
    `server + generator CPU per request (${a.transferCpuUsPerReq} µs) holds the server's`,
  )
  const s = summarise([a, b])
  if (onPath('wrk', process.env.PATH ?? '')) {
    // wrk runs as a child for a bounded second; its report is parsed from its Lua JSON line.
    const w = await measure('wrk', [child.pid], { ...opts, durationS: 1, threads: 1 })
    t.equal(w.generator, 'wrk')
    t.ok(w.requests > 0, `wrk completed requests (${w.requests})`)
    t.equal(w.non2xx, 0)
    t.ok(w.generatorCpuSeconds >= 0)
  } else t.comment('no wrk on PATH: its run is not measured here')
  t.equal(s.rounds, 2)
  t.equal(s.generator, 'autocannon')
  t.equal(s.rps, (a.rps + b.rps) / 2, 'the median of two rounds')
  await child.stop(2000)
  t.not(await child.exited, undefined, 'the child exited')
})

t.test('runCommand: exit code and output, bounded in time', async (t) => {
  const ok = await runCommand(process.execPath, ['-e', 'console.log("out"); console.error("err")'], 30_000)
  t.equal(ok.code, 0)
  t.equal(ok.stdout, 'out\n')
  t.equal(ok.stderr, 'err\n')
  const failed = await runCommand(process.execPath, ['-e', 'process.exit(3)'], 30_000)
  t.equal(failed.code, 3)
})

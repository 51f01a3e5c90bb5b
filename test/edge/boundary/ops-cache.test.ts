/**
 * With --workers, /status and /metrics ask every worker. Many concurrent unauthenticated calls
 * must not become as many fan-outs: they share one answer (counted by the primary's
 * cdn_edge_ops_refreshes_total, which the /metrics answer itself carries).
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { cli } from '../../helpers/repo.js'

function refreshes(text: string, endpoint: string): number {
  const line = text
    .split('\n')
    .find((l) => l.startsWith(`cdn_edge_ops_refreshes_total{endpoint="${endpoint}"}`))
  return line === undefined ? 0 : Number(line.split(' ').pop())
}

t.test('N concurrent /status and /metrics calls on a cluster cause one fan-out each', async (t) => {
  const cacheDir = mkdtempSync(join(tmpdir(), 'cdn-ops-cache-'))
  const args = ['edge', '--workers', '2', '--port', '0', '--host', '127.0.0.1']
  args.push('--upstream', 'http://127.0.0.1:9', '--cache-dir', cacheDir, '--log-level', 'info')
  // The answers are reused for a minute here (edge/cluster/host-ops.ts test hook): N calls share
  // one however slowly a busy machine delivers them; what is tested is that they do share it.
  const proc = spawn(process.execPath, [cli, ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, CDN_EDGE_TEST_OPS_REUSE_MS: '60000' },
  })
  const exited = once(proc, 'exit')
  t.teardown(async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGTERM')
      await exited
    }
    rmSync(cacheDir, { recursive: true, force: true })
  })
  let err = ''
  proc.stderr!.setEncoding('utf8')
  const url = await new Promise<string>((res, rej) => {
    proc.stderr!.on('data', (d: string) => {
      err += d
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(err)
      if (m) res(m[1]!)
    })
    void exited.then(() => rej(new Error(`cdn edge exited before listening:\n${err}`)))
  })

  const N = 20
  const statuses = await Promise.all(Array.from({ length: N }, () => fetch(`${url}/status`)))
  t.same(
    statuses.map((r) => r.status),
    statuses.map(() => 200),
  )
  await Promise.all(statuses.map((r) => r.arrayBuffer()))
  const metrics = await Promise.all(
    Array.from({ length: N }, () => fetch(`${url}/metrics`).then((r) => r.text())),
  )
  t.same(
    metrics.map((m) => refreshes(m, 'metrics')),
    metrics.map(() => 1),
    `${N} concurrent /metrics: the workers were asked once`,
  )
  t.same(
    metrics.map((m) => refreshes(m, 'status')),
    metrics.map(() => 1),
    `${N} concurrent /status: the workers were asked once`,
  )
})

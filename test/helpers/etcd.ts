/**
 * The real etcd cluster for tests (scripts/etcd.sh: three members of Debian's etcd-server on
 * loopback), found through CDN_TEST_ETCD_ENDPOINTS. Without it a test needing etcd fails in CI
 * (CI=true: .ci/run always starts it) and is skipped, loudly, elsewhere.
 */
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { connect, createServer, type Socket } from 'node:net'
import { promisify } from 'node:util'
import type { Etcd3 } from 'etcd3'
import type { Test } from 'tap'
import { etcdClient } from '../../src/fleet-registry.js'
import { repoPath } from './repo.js'

export function requireEtcd(t: Test): string[] | undefined {
  const endpoints = process.env.CDN_TEST_ETCD_ENDPOINTS
  if (endpoints) return endpoints.split(',')
  const reason =
    'CDN_TEST_ETCD_ENDPOINTS is not set: the fleet registry tests did NOT run. Start etcd with: eval "$(scripts/etcd.sh start)"'
  if (process.env.CI) t.fail(reason)
  else {
    process.stderr.write(`\n*** ${reason}\n`)
    t.skip(reason, () => {})
  }
  return undefined
}

/**
 * What most etcd tests open with: the cluster's endpoints, a prefix of the test's own and a
 * client closed at teardown; undefined (the test returns) when requireEtcd skipped or failed it.
 */
export function etcdSetup(t: Test): { endpoints: string[]; prefix: string; client: Etcd3 } | undefined {
  const endpoints = requireEtcd(t)
  if (!endpoints) return undefined
  const client = etcdClient(endpoints)
  t.teardown(() => client.close())
  return { endpoints, prefix: testPrefix(), client }
}

/** A registry prefix of this test's own, so tests sharing the cluster never see each other. */
export function testPrefix(): string {
  return `/cdn-test/${randomBytes(6).toString('hex')}/edges/`
}

/** scripts/etcd.sh kill N / revive N: one member down and back, for failure tests. */
export async function etcdMember(action: 'kill' | 'revive', n: number): Promise<void> {
  const script = repoPath('scripts/etcd.sh')
  await promisify(execFile)('bash', [script, action, String(n)])
}

/**
 * A TCP relay to `target` that can be cut (every connection dropped, new ones refused) and mended,
 * or frozen: connections stay open and every byte either way is dropped (a hung member).
 */
export async function cuttableRelay(t: Test, target: string) {
  const to = new URL(target)
  let open = true
  let frozen = false
  const sockets = new Set<Socket>()
  const server = createServer((client) => {
    if (!open) return void client.destroy()
    const upstream = connect(Number(to.port), to.hostname)
    for (const s of [client, upstream]) {
      sockets.add(s)
      s.on('error', () => undefined)
      s.on('close', () => {
        sockets.delete(s)
        client.destroy()
        upstream.destroy()
      })
    }
    client.on('data', (b: Buffer) => void (frozen || upstream.write(b)))
    upstream.on('data', (b: Buffer) => void (frozen || client.write(b)))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    for (const s of sockets) s.destroy()
    server.close()
  })
  const addr = server.address() as { port: number }
  return {
    url: `http://127.0.0.1:${addr.port}`,
    cut: () => {
      open = false
      for (const s of sockets) s.destroy()
    },
    mend: () => void (open = true),
    freeze: () => void (frozen = true),
    /** Lets bytes through again (what was dropped meanwhile stays lost). */
    thaw: () => void (frozen = false),
  }
}

/** startEdge's options for an edge in Rome that registers itself as rome-1 under `prefix`. */
export function registeringRome(endpoints: string[], prefix: string) {
  return {
    id: 'rome-1',
    registryEtcd: endpoints,
    registryPrefix: prefix,
    site: 'rome',
    lat: 41.9,
    lon: 12.5,
    capacity: 1e9,
  }
}

/**
 * The etcd client every role uses (src/fleet-registry.ts etcdClient): once closed, it lets the
 * process exit, even with a watcher that never connected (etcd3 1.1 alone retries it for ever).
 * Run in a child process, whose exit is the event waited for; no etcd is needed. And a unary
 * call to a member that stopped answering fails at its deadline (the real cluster, through a
 * relay that freezes).
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { etcdCallOptions, etcdClient } from '../../src/fleet-registry.js'
import { cuttableRelay, etcdSetup } from '../helpers/etcd.js'
import { deadUrl } from '../helpers/steering.js'
import { until } from '../helpers/wait.js'
import { repoPath } from '../helpers/repo.js'

const registryModule = repoPath('dist/src/fleet-registry.js')

/** Runs `source` (an ES module) in a child node; its stdout, stderr and exit code. */
async function runChild(t: Test, source: string) {
  const dir = await mkdtemp(join(tmpdir(), 'etcd-client-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const script = join(dir, 'child.mjs')
  await writeFile(script, source)
  const child = spawn(process.execPath, [...process.execArgv, script], { stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => void child.kill('SIGKILL'))
  let out = ''
  let err = ''
  child.stdout.on('data', (b: Buffer) => (out += b))
  child.stderr.on('data', (b: Buffer) => (err += b))
  const [code] = (await once(child, 'exit')) as [number | null]
  return { out, err, code }
}

t.test('a closed client with a watcher still connecting lets the process exit', async (t) => {
  const { out, code } = await runChild(
    t,
    `import { etcdClient } from ${JSON.stringify(registryModule)}
const client = etcdClient([${JSON.stringify(await deadUrl())}])
// Nothing listens there: create() never resolves, and the watcher stays attached.
const pending = client.watch().key('/x').create()
pending.catch(() => undefined)
const disconnected = new Promise((resolve) => client.watch().key('/y').watcher().once('disconnected', resolve))
await disconnected
client.close()
process.stdout.write('closed\\n')
`,
  )
  t.equal(out, 'closed\n', 'it closed the client after a failed connect')
  t.equal(code, 0, 'and exited on its own')
})

t.test('a client closed with a watch connected survives an event on its stream', async (t) => {
  const setup = etcdSetup(t)
  if (!setup) return
  const { endpoints, prefix } = setup
  // Both clients on one member: its put event leaves for both watches at once. The witness's
  // event arrived: the closed client's had, were its stream still open.
  const { out, err, code } = await runChild(
    t,
    `import { etcdClient } from ${JSON.stringify(registryModule)}
const [endpoint, key] = [${JSON.stringify(endpoints[0])}, ${JSON.stringify(`${prefix}k`)}]
const client = etcdClient([endpoint])
const witness = etcdClient([endpoint])
const watcher = await client.watch().key(key).create()
watcher.on('put', () => undefined)
const seen = await witness.watch().key(key).create()
const put = new Promise((resolve) => seen.once('put', resolve))
client.close()
await witness.put(key).value('x')
await put
await new Promise(setImmediate)
witness.close()
process.stdout.write('survived\\n')
`,
  )
  t.notMatch(err, /Failed to find watcher/, 'etcd3 never met an event for a watcher it no longer lists')
  t.equal(out, 'survived\n')
  t.equal(code, 0, 'and exited on its own')
})

t.test('a unary call to a member that stopped answering fails at its deadline', async (t) => {
  const setup = etcdSetup(t)
  if (!setup) return
  // Without a deadline the call waits for ever: this fails by the test's timeout instead.
  t.setTimeout(60_000)
  const relay = await cuttableRelay(t, setup.endpoints[0]!)
  const client = etcdClient([relay.url], 2000, 500)
  t.teardown(() => client.close())
  const key = `${setup.prefix}deadline`
  await client.put(key).value('v')
  t.equal(await client.get(key).string(), 'v', 'answered through the relay')
  relay.freeze()
  await t.rejects(client.get(key).string(), /deadline/i, 'a read fails at its deadline')
  // The member is then held broken for a while (etcd3's circuit breaker): the next call fails at once.
  await t.rejects(
    client.put(key).value('w').exec(),
    /deadline|circuit breaker is open/i,
    'and so does a write',
  )
})

t.test('each unary call but a transaction has a deadline; streams have none', async (t) => {
  const options = etcdCallOptions(5000)
  const before = Date.now()
  for (const method of ['range', 'put', 'deleteRange', 'leaseGrant', 'leaseRevoke']) {
    const { deadline } = options({ isStream: false, method })
    t.ok(deadline! >= before + 5000 && deadline! <= Date.now() + 5000, `${method}: 5 s from now`)
  }
  // etcd3 runs a call again after its deadline: a compare-and-swap already applied would then
  // fail its compare, and a job claim or a pointer swap would be reported lost.
  t.same(options({ isStream: false, method: 'txn' }), {}, 'a transaction: none')
  t.same(options({ isStream: true, method: 'watch' }), {}, 'a stream: none')
})

t.test('a watch on a member that stopped answering moves on: the keepalive finds it', async (t) => {
  const setup = etcdSetup(t)
  if (!setup) return
  // Without a keepalive the watch waits for ever: this fails by the test's timeout instead.
  t.setTimeout(60_000)
  const relay = await cuttableRelay(t, setup.endpoints[0]!)
  // Pinged every second (scripts/etcd.sh lets its members take that), dropped after 500 ms.
  const client = etcdClient([relay.url], 2000, 5000, 1000)
  t.teardown(() => client.close())
  const key = `${setup.prefix}keepalive`
  const watcher = await client.watch().key(key).create()
  const seen: string[] = []
  watcher.on('put', (kv) => void seen.push(kv.value.toString()))
  await setup.client.put(key).value('a')
  await until(() => seen.length === 1)
  const disconnected = new Promise<void>((resolve) => watcher.once('disconnected', () => resolve()))
  relay.freeze()
  await disconnected
  t.pass('the frozen connection was found dead and closed')
  const connected = new Promise<void>((resolve) => watcher.once('connected', () => resolve()))
  relay.thaw()
  await connected
  await setup.client.put(key).value('b')
  await until(() => seen.length === 2)
  t.same(seen, ['a', 'b'], 'and the watch goes on')
})

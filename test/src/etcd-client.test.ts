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
import t from 'tap'
import { etcdClient } from '../../src/fleet-registry.js'
import { cuttableRelay, etcdSetup } from '../helpers/etcd.js'
import { deadUrl } from '../helpers/steering.js'
import { repoPath } from '../helpers/repo.js'

t.test('a closed client with a watcher still connecting lets the process exit', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'etcd-client-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const module = repoPath('dist/src/fleet-registry.js')
  const script = join(dir, 'child.mts')
  await writeFile(
    script,
    `import { etcdClient } from ${JSON.stringify(module)}
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
  const child = spawn(process.execPath, [...process.execArgv, script], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  t.teardown(() => void child.kill('SIGKILL'))
  let out = ''
  child.stdout.on('data', (b: Buffer) => (out += b))
  const [code] = (await once(child, 'exit')) as [number | null]
  t.equal(out, 'closed\n', 'it closed the client after a failed connect')
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

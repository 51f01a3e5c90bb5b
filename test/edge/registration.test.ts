/**
 * An edge's own registration (edge/registry.ts) against the real etcd cluster: its key stays in
 * the registry for as long as the edge keeps its lease alive, whoever else touches the key.
 */
import t from 'tap'
import { Registration } from '../../edge/registry.js'
import type { EdgeRecord } from '../../src/fleet-registry.js'
import { cuttableRelay, etcdSetup } from '../helpers/etcd.js'
import { until } from '../helpers/wait.js'

function record(id: string, port: number): EdgeRecord {
  return {
    id,
    url: `http://127.0.0.1:${port}`,
    site: 'rome',
    lat: 41.9,
    lon: 12.5,
    capacityBytesPerSec: 1e9,
    tier: 1,
  }
}

function registration(
  endpoints: string[],
  prefix: string,
  r: EdgeRecord,
  events: string[] = [],
  checkIntervalMs?: number,
) {
  const log = {
    info: (o: Record<string, unknown>) => void events.push(String(o.event)),
    warn: (o: Record<string, unknown>) => void events.push(String(o.event)),
  }
  // A TTL far above a heartbeat's delay: no test here waits for one to run out.
  return new Registration({
    endpoints,
    prefix,
    ttlSec: 60,
    record: r,
    log,
    ...(checkIntervalMs ? { checkIntervalMs } : {}),
  })
}

t.test('a key deleted while the edge lives is written again', async (t) => {
  const setup = etcdSetup(t)
  if (!setup) return
  const { endpoints, prefix, client: etcd } = setup
  const reg = registration(endpoints, prefix, record('rome-1', 42401))
  t.teardown(() => reg.stop())
  reg.start()
  await reg.registered
  await etcd.delete().key(`${prefix}rome-1`)
  await until(async () => (await etcd.get(`${prefix}rome-1`).string()) !== null)
  const back = JSON.parse((await etcd.get(`${prefix}rome-1`).string())!) as EdgeRecord
  t.equal(back.url, 'http://127.0.0.1:42401', 'the edge registered itself again')
})

t.test('a delete its watch never delivers: the periodic read writes the key again', async (t) => {
  const setup = etcdSetup(t)
  if (!setup) return
  const { endpoints, prefix, client: etcd } = setup
  const events: string[] = []
  const reg = registration(endpoints, prefix, record('rome-1', 42401), events, 100)
  t.teardown(() => reg.stop())
  reg.start()
  await reg.registered
  await until(() => (reg as unknown as { watcher: unknown }).watcher !== null)
  // A deaf watch (microsoft/etcd3 issues 72, 78): the etcd3 watcher's own 'data' listener, which
  // turns the stream's responses into events, is gone; nothing errors.
  ;(reg as unknown as { watcher: { removeAllListeners(e: string): void } }).watcher.removeAllListeners('data')
  await etcd.delete().key(`${prefix}rome-1`)
  await until(async () => (await etcd.get(`${prefix}rome-1`).string()) !== null)
  t.ok(events.includes('registry-key-gone'), 'found gone, and written again')
})

t.test('an edge stops while its watch stream is not read: it still leaves the registry', async (t) => {
  const setup = etcdSetup(t)
  if (!setup) return
  const { endpoints, prefix, client: etcd } = setup
  const reg = registration(endpoints, prefix, record('rome-1', 42401))
  reg.start()
  await reg.registered
  await until(() => (reg as unknown as { watcher: unknown }).watcher !== null)
  // One exception in etcd3's stream handler and grpc-js is never asked for the stream's next
  // message (steering/registry-watch.ts, replaceDeaf): a paused stream is in that state. Stopping
  // cancels the watch first, and that cancel's answer is never read. Before, stop() waited for it
  // for ever: the lease was never revoked, and the edge never closed.
  const client = (reg as unknown as { client: { watchManager: { stream: { pause(): void } } } }).client
  client.watchManager.stream.pause()
  await reg.stop()
  t.equal(await etcd.get(`${prefix}rome-1`).string(), null, 'the lease revoked: the key is gone')
})

t.test('two edges with one id: the other is warned, and takes the key back when it is free', async (t) => {
  const setup = etcdSetup(t)
  if (!setup) return
  const { endpoints, prefix, client: etcd } = setup
  const events: string[] = []
  const a = registration(endpoints, prefix, record('rome-1', 42401), events)
  t.teardown(() => a.stop())
  a.start()
  await a.registered
  const b = registration(endpoints, prefix, record('rome-1', 42402))
  b.start()
  await b.registered
  const url = async () => {
    const v = await etcd.get(`${prefix}rome-1`).string()
    return v === null ? null : (JSON.parse(v) as EdgeRecord).url
  }
  t.equal(await url(), 'http://127.0.0.1:42402', 'the last to register holds the id')
  await until(() => events.includes('registry-id-taken'))
  t.pass('the edge whose id was taken logged it')
  await b.stop()
  await until(async () => (await url()) === 'http://127.0.0.1:42401')
  t.pass('the edge still alive took its id back once the other left')
  await a.stop()
  t.equal(await url(), null, 'its key goes when it leaves')
})

t.test('cut off from etcd while its key goes: the edge registers again once it is back', async (t) => {
  const setup = etcdSetup(t)
  if (!setup) return
  const { endpoints, prefix, client: etcd } = setup
  const relay = await cuttableRelay(t, endpoints[0]!)
  const events: string[] = []
  const reg = registration([relay.url], prefix, record('rome-1', 42401), events)
  t.teardown(() => reg.stop())
  reg.start()
  await reg.registered
  relay.cut()
  // The lease (60 s) outlives the cut: only the key goes, as an operator's `etcdctl del` would.
  // The watch, which saw no event before, resumes from the present: it never hears of the delete.
  await etcd.delete().key(`${prefix}rome-1`)
  relay.mend()
  await until(async () => (await etcd.get(`${prefix}rome-1`).string()) !== null)
  t.ok(events.includes('registry-key-gone'), 'the key found gone on reconnecting was logged')
})

/**
 * The fleet file read again without a restart (what SIGHUP calls: RunningSteering.reloadFleet):
 * an edge added joins, one removed leaves, one unchanged keeps its health; a file that does not
 * read or validate is refused whole and the fleet in use is kept. With a registry, the file's
 * edges merge with the registered ones as at start.
 */
import { spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { parseCommand } from '../../src/config/options.js'
import { STEERING_SPEC, type SteeringOptions } from '../../steering/config-spec.js'
import { startSteering } from '../../steering/main.js'
import { Registration } from '../../edge/registry.js'
import { tempDir } from '../helpers/edge.js'
import { etcdSetup } from '../helpers/etcd.js'
import { PLACES, startContractEdge } from '../helpers/steering.js'
import { until } from '../helpers/wait.js'
import { cli } from '../helpers/repo.js'

const entry = (id: string, url: string, at: { lat: number; lon: number }) => ({
  id,
  url,
  site: id.replace(/-\d+$/, ''),
  ...at,
  capacityBytesPerSec: 1e9,
})

async function ids(url: string): Promise<string[]> {
  const doc = (await (await fetch(`${url}/edges`)).json()) as { edges: { id: string; state: string }[] }
  return doc.edges.map((e) => `${e.id}:${e.state}`).sort()
}

async function start(t: Parameters<typeof tempDir>[0], edges: unknown[], extra: string[] = []) {
  const fleet = join(tempDir(t), 'fleet.json')
  writeFileSync(fleet, JSON.stringify({ edges }))
  const argv = ['--fleet', fleet, '--port', '0', '--host', '127.0.0.1', '--log-level', 'silent', ...extra]
  const options = parseCommand<SteeringOptions>(STEERING_SPEC, argv, {}).config
  const steering = await startSteering({ ...options, checkInterval: 3_600_000, checkTimeout: 30_000 })
  t.teardown(() => steering.close())
  return {
    steering,
    write: (doc: unknown) => writeFileSync(fleet, typeof doc === 'string' ? doc : JSON.stringify(doc)),
  }
}

t.test('edges join and leave; an unchanged one keeps its health; a bad file changes nothing', async (t) => {
  const rome = await startContractEdge(t, 'rome-1')
  const milan = await startContractEdge(t, 'milan-1')
  const tokyo = await startContractEdge(t, 'tokyo-1')
  const { steering, write } = await start(t, [
    entry('rome-1', rome.url, PLACES.rome),
    entry('milan-1', milan.url, PLACES.milan),
  ])
  const health = steering.app.steering.health
  t.same(await ids(steering.url), ['milan-1:up', 'rome-1:up'])

  write({ edges: [entry('rome-1', rome.url, PLACES.rome), entry('tokyo-1', tokyo.url, PLACES.tokyo)] })
  t.ok(steering.reloadFleet(), 'read and applied')
  t.same(await ids(steering.url), ['rome-1:up', 'tokyo-1:unknown'], 'milan left, tokyo joined unchecked')
  await health.checkNow()
  t.same(await ids(steering.url), ['rome-1:up', 'tokyo-1:up'])

  for (const bad of ['{', { edges: [{ id: 'x y', url: 'ftp://x' }] }]) {
    write(bad)
    t.notOk(steering.reloadFleet(), 'refused')
    t.same(await ids(steering.url), ['rome-1:up', 'tokyo-1:up'], 'the fleet in use is kept')
  }
})

t.test('with a registry: the file reloaded merges with the registered edges', async (t) => {
  const setup = etcdSetup(t)
  if (!setup) return
  const { endpoints, prefix } = setup
  const rome = await startContractEdge(t, 'rome-1')
  const nyc = await startContractEdge(t, 'nyc-1')
  const reg = new Registration({
    endpoints,
    prefix,
    ttlSec: 60,
    record: { ...entry('nyc-1', nyc.url, PLACES.newYork), tier: 1 },
    log: { info: () => undefined, warn: () => undefined },
  })
  reg.start()
  t.teardown(() => reg.stop())
  await reg.registered
  const { steering, write } = await start(
    t,
    [entry('rome-1', rome.url, PLACES.rome)],
    ['--registry-etcd', endpoints.join(','), '--registry-prefix', prefix],
  )
  await until(async () => (await ids(steering.url)).length === 2)
  await steering.app.steering.health.checkNow()
  t.same(await ids(steering.url), ['nyc-1:up', 'rome-1:up'])
  // The file now names the registered edge's URL under its own id: the file wins the URL.
  write({ edges: [entry('rome-1', rome.url, PLACES.rome), entry('pinned-1', nyc.url, PLACES.newYork)] })
  t.ok(steering.reloadFleet())
  await until(async () => !(await ids(steering.url)).some((e) => e.startsWith('nyc-1')))
  t.same(
    await ids(steering.url),
    ['pinned-1:unknown', 'rome-1:up'],
    'the registered record at its URL is left out',
  )
})

t.test('cdn steering: SIGHUP reads the fleet file again (the built CLI)', async (t) => {
  const rome = await startContractEdge(t, 'rome-1')
  const milan = await startContractEdge(t, 'milan-1')
  const fleet = join(tempDir(t), 'fleet.json')
  writeFileSync(fleet, JSON.stringify({ edges: [entry('rome-1', rome.url, PLACES.rome)] }))
  const args = ['steering', '--fleet', fleet, '--port', '0', '--host', '127.0.0.1', '--log-level', 'info']
  const proc = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => void proc.kill('SIGKILL'))
  let out = ''
  proc.stdout.setEncoding('utf8')
  proc.stdout.on('data', (d: string) => (out += d))
  await until(() => /steering listening on (http:\S+)/.test(out))
  const url = /steering listening on (http:\S+)/.exec(out)![1]!
  t.same(await ids(url), ['rome-1:up'])
  writeFileSync(
    fleet,
    JSON.stringify({
      edges: [entry('rome-1', rome.url, PLACES.rome), entry('milan-1', milan.url, PLACES.milan)],
    }),
  )
  proc.kill('SIGHUP')
  await until(() => out.includes('"event":"fleet-reloaded"'))
  t.same(await ids(url), ['milan-1:unknown', 'rome-1:up'])
})

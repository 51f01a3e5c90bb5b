/**
 * Helpers for steering tests. `startContractEdge` is a tiny HTTP server that speaks the
 * edge's wire contract as steering sees it (GET /status per src/http/status.ts, and a
 * master playlist under /vod/): it stands in for an edge where a test needs to set the
 * reported load or make /status fail on cue. Tests with real edges are in
 * test/steering/integration.test.ts.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Fastify from 'fastify'
import type { Test } from 'tap'
import type { Clock } from '../../src/clock.js'
import type { EdgeStatus } from '../../src/http/status.js'
import { buildSteeringApp } from '../../steering/app.js'
import { steeringConfig } from '../../steering/config.js'
import { type SteeringOptions } from '../../steering/config-spec.js'
import { parseZones } from '../../steering/geo.js'
import { parseFleet } from '../../steering/registry.js'

export type ContractMode = 'ok' | 'error' | 'bad-json'

export interface ContractEdge {
  readonly url: string
  readonly requests: string[]
  status: EdgeStatus
  mode: ContractMode
  close(): Promise<void>
}

export function edgeStatus(id: string, over: Partial<EdgeStatus> = {}): EdgeStatus {
  return {
    id,
    version: 'test',
    uptimeSec: 1,
    activeConnections: 0,
    requestsPerSec: 0,
    egressBytesPerSec: 0,
    tiers: {
      memory: { bytes: 0, capacityBytes: 1e6, objects: 0 },
      disk: { bytes: 0, capacityBytes: 1e9, objects: 0 },
    },
    hitRatio: 0,
    hits: { memory: 0, disk: 0, miss: 0 },
    bytesServed: 0,
    titles: [],
    titlesComplete: [],
    ...over,
  }
}

export const SAMPLE_MASTER = `#EXTM3U
#EXT-X-VERSION:7
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aac",NAME="English",LANGUAGE="en",DEFAULT=YES,AUTOSELECT=YES,CHANNELS="2",URI="v1/audio/index.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=2500000,AVERAGE-BANDWIDTH=2000000,CODECS="avc1.64001f,mp4a.40.2",RESOLUTION=1280x720,FRAME-RATE=30.000,AUDIO="aac"
v1/720p/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=800000,AVERAGE-BANDWIDTH=700000,CODECS="avc1.64001e,mp4a.40.2",RESOLUTION=640x360,FRAME-RATE=30.000,AUDIO="aac"
v1/360p/index.m3u8
`

export async function startContractEdge(
  t: Test,
  id: string,
  over: Partial<EdgeStatus> = {},
): Promise<ContractEdge> {
  const app = Fastify()
  const edge = {
    url: '',
    requests: [] as string[],
    status: edgeStatus(id, over),
    mode: 'ok' as ContractMode,
    close: async () => {
      await app.close()
    },
  }
  app.addHook('onRequest', async (req) => {
    edge.requests.push(req.url)
  })
  app.get('/status', async (_req, reply) => {
    if (edge.mode === 'error') return reply.code(500).send({ error: 'down' })
    if (edge.mode === 'bad-json') return reply.type('application/json').send('{not json')
    return edge.status
  })
  app.get('/*', async (req, reply) => {
    if (req.url.endsWith('/master.m3u8'))
      return reply.type('application/vnd.apple.mpegurl').send(SAMPLE_MASTER)
    return reply.code(404).send()
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const addr = app.server.address() as { port: number }
  edge.url = `http://127.0.0.1:${addr.port}`
  t.teardown(() => app.close())
  return edge
}

/** A TCP server that accepts connections and never answers: the worst kind of edge. */
export async function startHangingServer(t: Test): Promise<{ url: string; sockets: number }> {
  const sockets = new Set<Socket>()
  const out = { url: '', sockets: 0 }
  const server: Server = createServer((s) => {
    sockets.add(s)
    out.sockets++
    s.on('close', () => sockets.delete(s))
    s.on('error', () => undefined)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  out.url = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  )
  return out
}

/** The ports deadUrl() has handed out in this process. */
const deadPorts = new Set<number>()

/**
 * A URL where nothing listens (a port we bound, then released), never one handed out before in
 * this process. The kernel gives a released port again now and then (about one pair in 7000 on
 * Linux): two edges a test put at two dead URLs were then at one, and the registry's one edge
 * per URL rule left the second out (registry-left-out waited for its sentinel for ever).
 */
export async function deadUrl(): Promise<string> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const server = createServer()
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const port = (server.address() as { port: number }).port
    await new Promise<void>((resolve) => server.close(() => resolve()))
    if (deadPorts.has(port)) continue
    deadPorts.add(port)
    return `http://127.0.0.1:${port}`
  }
  throw new Error('deadUrl: 100 ports in a row were handed out before')
}

export interface FleetEdge {
  id: string
  url: string
  site: string
  lat: number
  lon: number
  capacityBytesPerSec?: number
  weight?: number
}

export const PLACES = {
  rome: { lat: 41.9, lon: 12.5 },
  milan: { lat: 45.46, lon: 9.19 },
  newYork: { lat: 40.71, lon: -74.0 },
  tokyo: { lat: 35.68, lon: 139.69 },
} as const

/**
 * Builds and readies a steering app on 127.0.0.1:0. The health loop's interval is an hour,
 * so after the first round (run by ready()) only the test moves it, with
 * `health.checkNow()`: no sleeping, no races with a timer.
 */
export async function startSteering(
  t: Test,
  edges: FleetEdge[],
  options: Partial<SteeringOptions> = {},
  extra: { zones?: unknown; clock?: Clock } = {},
) {
  const registry = parseFleet({
    edges: edges.map((e) => ({ capacityBytesPerSec: 1e9, ...e })),
  })
  const config = steeringConfig({
    checkInterval: 3_600_000,
    // Far above any answer of a live edge on a busy machine (CI saw a 300 ms check time out at
    // load 19): a check fails only where a test makes it fail, and such a test sets its own.
    checkTimeout: 30_000,
    failAfter: 2,
    recoverAfter: 2,
    ...options,
  })
  const app = await buildSteeringApp({
    config,
    registry,
    ...(extra.zones ? { zones: parseZones(extra.zones) } : {}),
    ...(extra.clock ? { clock: extra.clock } : {}),
  })
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
  return { app, url, health: app.steering.health, config }
}

/** A fresh temp dir with these files, removed at teardown (tap's fixture plugin is off here). */
export function tempDir(t: Test, files: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'cdn-steering-'))
  for (const [name, body] of Object.entries(files)) writeFileSync(join(dir, name), body)
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** Writes DIR/fleet.json naming one edge, e1 in Rome at this URL, and returns its path. */
export function writeOneEdgeFleet(dir: string, url: string): string {
  const fleet = join(dir, 'fleet.json')
  writeFileSync(
    fleet,
    JSON.stringify({
      edges: [{ id: 'e1', site: 'rome', url, lat: 41.9, lon: 12.5, capacityBytesPerSec: 1e9 }],
    }),
  )
  return fleet
}

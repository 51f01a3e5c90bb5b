/**
 * The boundary benchmark's load: an in-process upstream with three kinds of object (small
 * ones the memory tier keeps, 1-1.6 MB ones only the disk tier keeps, and an endless supply of
 * never-seen ones for misses), autocannon connections cycling through a mix of them, and raw
 * sockets that send one request and never read (slow readers).
 */
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import { connect, type Socket } from 'node:net'
import { type AutocannonStep, runAutocannon } from '../lib/autocannon.js'
import type { LoadResult } from '../lib/load.js'

export const MEM_OBJECTS = 100
export const MEM_BYTES = 64 * 1024
export const DISK_OBJECTS = 200
export const MISS_BYTES = 1_000_000
const IMMUTABLE = 'public, max-age=31536000, immutable'

/** 1.0-1.6 MB, fixed per object. */
export function diskBytes(i: number): number {
  return 1_000_000 + ((i * 7919) % 600_001)
}

export const memPath = (i: number) => `/vod/mem/v1/720p/seg-${i}.m4s`
export const diskPath = (i: number) => `/vod/disk/v1/720p/seg-${i}.m4s`
export const missPath = (id: string) => `/vod/miss/v1/720p/seg-${id}.m4s`

const FILL = Buffer.alloc(1_700_000, 0x5a)

export async function startUpstream(): Promise<{ url: string; server: Server; requests: () => number }> {
  let requests = 0
  const server = createServer((req, res) => {
    requests++
    const url = req.url ?? ''
    const m = /^\/vod\/(mem|disk|miss)\/v1\/720p\/seg-([\w-]+)\.m4s$/.exec(url)
    if (!m) {
      res.writeHead(404).end()
      return
    }
    const n = Number(m[2])
    const size = m[1] === 'mem' ? MEM_BYTES : m[1] === 'disk' ? diskBytes(n) : MISS_BYTES
    res.writeHead(200, {
      'content-length': String(size),
      'cache-control': IMMUTABLE,
      etag: `"${m[1]}-${m[2]}"`,
    })
    res.end(FILL.subarray(0, size))
  })
  server.keepAliveTimeout = 30_000
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    server,
    requests: () => requests,
  }
}

/** Every memory and disk object fetched once (so hits are hits), `parallel` at a time. */
export async function warm(edge: string, parallel = 8): Promise<void> {
  const paths = [
    ...Array.from({ length: MEM_OBJECTS }, (_, i) => memPath(i)),
    ...Array.from({ length: DISK_OBJECTS }, (_, i) => diskPath(i)),
  ]
  let next = 0
  const worker = async () => {
    while (next < paths.length) {
      const p = paths[next++]!
      const r = await fetch(edge + p)
      await r.arrayBuffer()
      if (r.status !== 200) throw new Error(`warm ${p}: ${r.status}`)
    }
  }
  await Promise.all(Array.from({ length: parallel }, worker))
}

/**
 * `connections` autocannon connections for `durationS`, each cycling through memory hit, disk
 * hit, memory hit, disk hit, miss (a new object every time), on random objects.
 */
export async function runMix(edge: string, connections: number, durationS: number): Promise<LoadResult> {
  let misses = 0
  const pick = (n: number) => Math.floor(Math.random() * n)
  const step = (path: () => string): AutocannonStep => ({
    method: 'GET',
    setupRequest: (req) => ({ ...req, path: path() }),
  })
  const requests = [
    step(() => memPath(pick(MEM_OBJECTS))),
    step(() => diskPath(pick(DISK_OBJECTS))),
    step(() => memPath(pick(MEM_OBJECTS))),
    step(() => diskPath(pick(DISK_OBJECTS))),
    step(() => missPath(`${process.pid}-${Date.now()}-${misses++}`)),
  ]
  return runAutocannon({ url: edge, connections, durationS, requests, timeoutS: 20 })
}

/** Raw sockets that each ask for one object and never read the answer (half disk hits, half misses). */
export async function slowReaders(edge: string, n: number, tag: string): Promise<Socket[]> {
  const { port } = new URL(edge)
  const out: Socket[] = []
  for (let i = 0; i < n; i++) {
    const s = connect({ port: Number(port), host: '127.0.0.1' })
    s.on('error', () => undefined)
    await once(s, 'connect')
    s.pause()
    const path = i % 2 === 0 ? diskPath(i % DISK_OBJECTS) : missPath(`slow-${tag}-${i}`)
    s.write(`GET ${path} HTTP/1.1\r\nHost: edge\r\n\r\n`)
    out.push(s)
  }
  return out
}

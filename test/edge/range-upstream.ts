/**
 * A real upstream for the slice tests (test/edge/slices*.test.ts): one object served with single
 * byte ranges (or ignoring Range when told), a strong ETag and 304s to a matching If-None-Match,
 * dated by the test's clock when given; it records the Range and If-None-Match of every GET.
 */
import { createServer, request } from 'node:http'
import type { Test } from 'tap'
import type { Clock } from '../../src/clock.js'
import { listenLoopback } from '../helpers/loopback.js'

export interface RangeUpstream {
  url: string
  /** The Range of each GET received, in order (undefined: none). */
  seen: (string | undefined)[]
  /** The If-None-Match of each GET received, in order (undefined: none). */
  inm: (string | undefined)[]
  /** Methods received, in order. */
  methods: string[]
  state: {
    body: Buffer
    etag: string
    honour: boolean
    gate: Promise<void> | undefined
    /** Bytes sent of a whole answer before its connection is cut (undefined: all). */
    cutAt?: number
    /** A whole answer sends its first `bytes`, then the rest once `until` resolves. */
    pauseAt?: { bytes: number; until: Promise<void> }
    /** The answers' Cache-Control. */
    cacheControl: string
    /** Every GET answered with this error status instead (undefined: served). */
    failWith?: number
  }
}

export async function rangeUpstream(t: Test, body: Buffer, clock?: Clock): Promise<RangeUpstream> {
  const state: RangeUpstream['state'] = {
    body,
    etag: '"v1"',
    honour: true,
    gate: undefined,
    cacheControl: 'max-age=600',
  }
  const seen: RangeUpstream['seen'] = []
  const inm: RangeUpstream['inm'] = []
  const methods: string[] = []
  const server = createServer((req, res) => {
    methods.push(req.method!)
    if (req.method === 'GET') {
      seen.push(req.headers.range)
      inm.push(req.headers['if-none-match'])
    }
    req.resume()
    void (state.gate ?? Promise.resolve()).then(() => {
      const b = state.body
      const h = {
        'cache-control': state.cacheControl,
        'content-type': 'video/mp4',
        etag: state.etag,
        ...(clock ? { date: new Date(clock.now()).toUTCString() } : {}),
      }
      if (req.method !== 'GET') {
        res.writeHead(204)
        return res.end()
      }
      if (state.failWith !== undefined) {
        res.writeHead(state.failWith, { 'content-length': '0' })
        return res.end()
      }
      // If-None-Match comes before Range (RFC 9110 §13.2.2).
      if (req.headers['if-none-match'] === state.etag) {
        res.writeHead(304, h)
        return res.end()
      }
      const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '')
      if (state.honour && m) {
        const start = Number(m[1])
        const end = Math.min(m[2] ? Number(m[2]) : b.length - 1, b.length - 1)
        if (start >= b.length) {
          res.writeHead(416, { 'content-range': `bytes */${b.length}` })
          return res.end()
        }
        res.writeHead(206, {
          ...h,
          'content-range': `bytes ${start}-${end}/${b.length}`,
          'content-length': String(end - start + 1),
        })
        return res.end(b.subarray(start, end + 1))
      }
      res.writeHead(200, { ...h, 'content-length': String(b.length) })
      const pause = state.pauseAt
      if (pause) {
        res.write(b.subarray(0, pause.bytes))
        return void pause.until.then(() => res.end(b.subarray(pause.bytes)))
      }
      if (state.cutAt === undefined) return res.end(b)
      res.write(b.subarray(0, state.cutAt), () => res.destroy())
    })
  })
  return { url: await listenLoopback(t, server), seen, inm, methods, state }
}

/** A GET that reports a connection closed before the announced length instead of failing. */
export function fetchRaw(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; length: number | undefined; body: Buffer; complete: boolean }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers, agent: false }, (res) => {
      const chunks: Buffer[] = []
      const length = res.headers['content-length'] ? Number(res.headers['content-length']) : undefined
      const done = (complete: boolean) =>
        resolve({ status: res.statusCode!, length, body: Buffer.concat(chunks), complete })
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => done(res.complete))
      res.on('aborted', () => done(false))
      res.on('error', () => done(false))
    })
    req.on('error', reject)
    req.end()
  })
}

export const latin1 = (b: Buffer) => b.toString('latin1')

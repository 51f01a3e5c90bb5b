/**
 * GET /status on the origin: what steering's fleet view and `cdn status` show about the root
 * of the delivery tree, in the shape of the edges' /status where the two mean the same
 * (requestsPerSec and egressBytesPerSec over the last 10 s, bytesServed, titles). An origin
 * has no cache: every request is answered from its store, so it has no hit ratio.
 */
import type { FastifyInstance } from 'fastify'
import type { Clock } from '../../src/clock.js'
import type { ContentStore } from '../store/content-store.js'
import type { JobQueue } from '../transcode/jobs.js'

const WINDOW_SEC = 10
/** Titles listed in /status at most (a real catalogue is larger; the count is always right). */
const MAX_TITLES = 1000
/** The title list is read from the store at most this often (steering polls every second or two). */
const TITLES_TTL_MS = 5000

/** Requests and /vod bytes sent, with a 10-second window for the rates. */
export class OriginTraffic {
  bytesServed = 0
  requests = 0
  private readonly reqBuckets = new Float64Array(WINDOW_SEC)
  private readonly byteBuckets = new Float64Array(WINDOW_SEC)
  private readonly bucketSec = new Float64Array(WINDOW_SEC).fill(-1)
  readonly startedMono: number

  constructor(private readonly clock: Clock) {
    this.startedMono = clock.monotonic()
  }

  private bucket(): number {
    const sec = Math.floor(this.clock.monotonic() / 1000)
    const i = sec % WINDOW_SEC
    if (this.bucketSec[i] !== sec) {
      this.bucketSec[i] = sec
      this.reqBuckets[i] = 0
      this.byteBuckets[i] = 0
    }
    return i
  }

  request(): void {
    this.requests++
    this.reqBuckets[this.bucket()]! += 1
  }

  bytes(n: number): void {
    this.bytesServed += n
    this.byteBuckets[this.bucket()]! += n
  }

  rates(): { requestsPerSec: number; egressBytesPerSec: number } {
    const now = Math.floor(this.clock.monotonic() / 1000)
    let req = 0
    let bytes = 0
    for (let i = 0; i < WINDOW_SEC; i++) {
      const s = this.bucketSec[i]!
      if (s >= 0 && now - s < WINDOW_SEC) {
        req += this.reqBuckets[i]!
        bytes += this.byteBuckets[i]!
      }
    }
    const span = Math.min(WINDOW_SEC, Math.max(1, (this.clock.monotonic() - this.startedMono) / 1000))
    return { requestsPerSec: req / span, egressBytesPerSec: bytes / span }
  }
}

export interface OriginStatus {
  id: string
  role: 'origin'
  uptimeSec: number
  requestsPerSec: number
  egressBytesPerSec: number
  bytesServed: number
  requests: number
  titleCount: number
  titles: string[]
  jobs: Record<string, number>
}

export function statusRoute(
  app: FastifyInstance,
  deps: { id: string; traffic: OriginTraffic; store: ContentStore; jobs: JobQueue; clock: Clock },
): void {
  let cached: { at: number; titles: Promise<string[]> } | undefined
  const listTitles = () => {
    const now = deps.clock.monotonic()
    if (!cached || now - cached.at > TITLES_TTL_MS) {
      const titles = deps.store.listTitles().then((l) => l.map((t) => t.id).sort())
      // A failed read is not kept: the next /status tries again.
      titles.catch(() => {
        cached = undefined
      })
      cached = { at: now, titles }
    }
    return cached.titles
  }
  app.get('/status', async (_req, reply): Promise<OriginStatus> => {
    const { traffic, clock } = deps
    const titles = await listTitles()
    reply.header('cache-control', 'no-store')
    return {
      id: deps.id,
      role: 'origin',
      uptimeSec: Math.round((clock.monotonic() - traffic.startedMono) / 1000),
      ...traffic.rates(),
      bytesServed: traffic.bytesServed,
      requests: traffic.requests,
      titleCount: titles.length,
      titles: titles.slice(0, MAX_TITLES),
      jobs: deps.jobs.counts(),
    }
  })
}

/**
 * GET /status on the origin: what steering's fleet view and `cdn status` show about the root
 * of the delivery tree, in the shape of the edges' /status where the two mean the same
 * (requestsPerSec and egressBytesPerSec over the last 10 s, bytesServed, titles). An origin
 * has no cache: every request is answered from its store, so it has no hit ratio.
 */
import type { FastifyInstance } from 'fastify'
import type { Clock } from '../../src/clock.js'
import { RateWindow } from '../../src/rate-window.js'
import type { OriginStore } from '../store/store.js'
import type { JobQueue } from '../transcode/jobs.js'

/** Titles listed in /status at most (a real catalogue is larger; the count is always right). */
const MAX_TITLES = 1000
/** The title list is read from the store at most this often (steering polls every second or two). */
const TITLES_TTL_MS = 5000

/** Requests and /vod bytes sent, with a 10-second window for the rates. */
export class OriginTraffic {
  bytesServed = 0
  requests = 0
  private readonly window: RateWindow

  constructor(clock: Clock) {
    this.window = new RateWindow(clock)
  }

  get startedMono(): number {
    return this.window.startedMono
  }

  request(): void {
    this.requests++
    this.window.add(1, 0)
  }

  bytes(n: number): void {
    this.bytesServed += n
    this.window.add(0, n)
  }

  rates(): { requestsPerSec: number; egressBytesPerSec: number } {
    return this.window.rates()
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
  /** The content store: kind, location (no credentials) and how its pointers are swapped. */
  store: ReturnType<OriginStore['describe']>
}

export function statusRoute(
  app: FastifyInstance,
  deps: { id: string; traffic: OriginTraffic; store: OriginStore; jobs: JobQueue; clock: Clock },
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
      store: deps.store.describe(),
    }
  })
}

/**
 * The messages between a cluster primary and its workers (child_process IPC, JSON).
 *
 * The primary owns the disk tier, the upstream, single-flight across workers, prefill, purge,
 * /status and /metrics; it serves its workers over a unix socket. A worker owns a share of
 * the memory tier and reads the disk tier directly through a mirror of the primary's index.
 *
 *   worker  → primary  hello                         (once, at start)
 *   primary → worker   init {config, socket, disk}   (the index as it is; later changes follow)
 *   worker  → primary  listening
 *   primary → worker   conn {id, at, plain} + socket handle (a client connection, dealt round-robin
 *                                                    at host time `at`; plain: to the --http-port
 *                                                    listener beside HTTPS)
 *   primary → worker   tls {ticketKeys | reload}     (new session ticket keys; certificates changed)
 *   worker  → primary  took {id}                     (the primary closes its copy)
 *   worker  → primary  late {id}                     (dealt too long ago: left to the primary, which
 *                                                    has dealt it, or now deals it, to another worker)
 *   primary → worker   disk {events}                 (index changes, batched per tick)
 *   worker  → primary  usage {keys, titles}          (disk keys read, requests per title; each second)
 *   worker  → primary  prefetch {started | served}   (a CMCD prefetch it began; a request it got for
 *                                                    another worker's prefetch)
 *   primary → worker   prefetch {watch | settle}     (the same, passed to every other worker)
 *   primary → worker   ask {id, what}                (purge, delete, stats, metrics, cache, stop)
 *   worker  → primary  answer {id, ...}              (a purge's: the keys its memory held)
 */
import { hrtime } from 'node:process'
import type { DiskEvent } from './disk-mirror.js'
import type { TierStats } from '../cache/store.js'
import type { EdgeConfig } from '../config/spec.js'
import type { ClientSnapshot } from '../stats.js'
import type { DemandStatus } from '../../src/http/status.js'

export type Ask =
  | { what: 'purge'; title: string }
  | { what: 'delete'; key: string }
  | { what: 'stats' }
  | { what: 'metrics' }
  /** What its memory tier holds, for GET /admin/cache. */
  | { what: 'cache' }
  | { what: 'stop' }
  /** The host drains: keep-alive clients are told to go (answered once they are). */
  | { what: 'drain' }

export interface WorkerStats {
  clients: ClientSnapshot
  memory: TierStats | undefined
  /** Miss causes, steered requests, prefetch and CMCD counts (absent from a stand-in for exited workers' counts without any). */
  demand?: DemandStatus
  /** Titles with an object in its memory tier. */
  titles?: string[]
}

/** A worker's memory tier, for GET /admin/cache: its stats, and its keys by title and version. */
export interface WorkerCache {
  memory: TierStats | undefined
  titles: Record<string, Record<string, string[]>>
}

export type ToWorker =
  | {
      type: 'init'
      config: EdgeConfig
      socketPath: string
      /** A private path the worker's server listens on (its clients come from the primary). */
      listenPath: string
      worker: number
      disk: DiskEvent[]
      /** With TLS: the session ticket keys every worker shares (base64), so any resumes any. */
      ticketKeys?: string
      /** The host is draining: keep-alive clients are told to go from the start (drain). */
      draining?: boolean
    }
  | { type: 'disk'; events: DiskEvent[] }
  /** A client connection, its handle sent with the message; answered with `took` or `late`. */
  | { type: 'conn'; id: number; at: number; plain?: boolean }
  | { type: 'tls'; ticketKeys?: string; reload?: boolean }
  /** Another worker's prefetches: keys to watch for, and keys another worker had requests for. */
  | { type: 'prefetch'; watch?: string[]; settle?: string[] }
  | ({ type: 'ask'; id: number } & Ask)

export type ToPrimary =
  | { type: 'hello' }
  | { type: 'listening' }
  | { type: 'took'; id: number }
  | { type: 'late'; id: number }
  | { type: 'usage'; keys: string[]; titles: Record<string, number> }
  | { type: 'prefetch'; started?: string[]; served?: string[] }
  | {
      type: 'answer'
      id: number
      stats?: WorkerStats
      metrics?: unknown[]
      cache?: WorkerCache
      /** A purge's: the keys of the title its memory held. */
      keys?: string[]
      error?: string
    }

export function isMessage<T extends { type: string }>(m: unknown): m is T {
  return typeof m === 'object' && m !== null && typeof (m as { type?: unknown }).type === 'string'
}

/**
 * How long after it was dealt a worker still takes a connection (ms of `hostMonotonic`): the
 * primary deals one not taken within DEAL_DEADLINE_MS (dealer.ts) to another worker, so a worker
 * that reads its channel later than this (it was stopped, or its event loop held) must leave it.
 * The margin between the two is for a `took` sent in time that the primary reads late.
 */
export const TAKE_WITHIN_MS = 500
export const DEAL_DEADLINE_MS = 2 * TAKE_WITHIN_MS

/** Monotonic milliseconds that every process of the host reads alike (CLOCK_MONOTONIC, not per process as performance.now()). */
export function hostMonotonic(): number {
  return Number(hrtime.bigint() / 1000n) / 1000
}

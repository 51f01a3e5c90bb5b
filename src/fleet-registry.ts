/**
 * The fleet registry's wire contract, shared by the edges that register and the steering
 * instances that watch: etcd v3 (through the `etcd3` client), one key per edge under a prefix,
 * its value the edge's record as JSON, attached to a lease the edge keeps alive. An edge that
 * stops revokes its lease (its key goes at once); one that dies stops keeping it alive and etcd
 * drops its key when the lease's TTL runs out.
 *
 *   key:   {prefix}{id}                         e.g. /cdn/fleet/edges/rome-1
 *   value: { "id": "rome-1", "url": "http://10.0.0.7:8081", "site": "rome", "lat": 41.9,
 *            "lon": 12.5, "capacityBytesPerSec": 1250000000, "tier": 1 }
 *
 * The record is the fleet file's edge entry (same fields, same rules) plus `tier`; steering
 * validates every value it reads and ignores (and logs) one that does not pass.
 */
import { createRequire } from 'node:module'
import type { Etcd3, Watcher } from 'etcd3'
import { compileSchema, LATITUDE, LONGITUDE } from './config/schema.js'

export const DEFAULT_REGISTRY_PREFIX = '/cdn/fleet/edges/'

export interface EdgeRecord {
  readonly id: string
  readonly url: string
  readonly site: string
  readonly lat: number
  readonly lon: number
  readonly capacityBytesPerSec: number
  /** 1 for an edge players are sent to; 2 for a parent (registered, never steered to). */
  readonly tier: number
  readonly weight?: number
  readonly cluster?: string
}

const NAME = { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$' }

const validateRecord = compileSchema({
  type: 'object',
  properties: {
    id: NAME,
    // Checked by edgeUrlProblem, which never repeats a user name or password (a schema would).
    url: { type: 'string', minLength: 1 },
    site: NAME,
    lat: LATITUDE,
    lon: LONGITUDE,
    capacityBytesPerSec: { type: 'number', exclusiveMinimum: 0 },
    tier: { type: 'integer', minimum: 1, maximum: 2 },
    weight: { type: 'number', exclusiveMinimum: 0, maximum: 1000 },
    cluster: { type: 'string', minLength: 1 },
  },
  required: ['id', 'url', 'site', 'lat', 'lon', 'capacityBytesPerSec', 'tier'],
  additionalProperties: false,
})

/**
 * What keeps `url` from being an edge's base URL (undefined when nothing does): it must be an
 * absolute http(s) URL with no credentials, query or fragment, and hold no whitespace or control
 * character. The WHATWG parser drops tabs and line breaks without a word, so a URL that parses
 * may not be the string given; handed out raw, such a URL fails every Location header it goes
 * into. A user name or password would be handed to every client (browsers refuse such URLs
 * anyway), so it is refused, and never repeated in the message. `who` (e.g. `edge "rome-1"`)
 * names the owner in the message. The fleet file and the registry share this rule.
 */
export function edgeUrlProblem(url: string, who: string): string | undefined {
  let u: URL
  try {
    u = new URL(url)
  } catch {
    return `"${withoutUserinfo(url)}" is not an absolute URL`
  }
  if (u.username || u.password)
    return `${who}: the URL carries a user name or password (not shown): players would all be handed it`
  const bad = /[\s\p{Cc}]/u.exec(url)
  if (bad) {
    const cp = bad[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')
    return `${who}: ${JSON.stringify(url)} holds whitespace or a control character (U+${cp} at offset ${bad.index})`
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return 'expected http(s)'
  if (u.search || u.hash || url.includes('#') || url.includes('?')) return 'no query or fragment allowed'
  return undefined
}

/** `url` with anything before an `@` of its authority replaced, for messages about a bad URL. */
function withoutUserinfo(url: string): string {
  return url.replace(/^([^:/?#]*:[/\\]*)[^/\\?#]*@/, '$1***@')
}

/**
 * An edge URL that passed `edgeUrlProblem` as it is stored: as the URL parser writes it (host in
 * lower case, default port dropped, other characters percent-encoded), no trailing slash.
 */
export function normalEdgeUrl(url: string): string {
  return new URL(url).href.replace(/\/+$/, '')
}

/** The record under `key`, or the problems that keep it out (its id must match its key). */
export function parseRecord(key: string, value: string, prefix: string): EdgeRecord | string[] {
  let doc: unknown
  try {
    doc = JSON.parse(value)
  } catch {
    return ['not JSON']
  }
  const problems = validateRecord(doc)
  if (problems.length) return problems
  const record = doc as EdgeRecord
  if (`${prefix}${record.id}` !== key) return [`id "${record.id}" does not match its key`]
  const why = edgeUrlProblem(record.url, `edge "${record.id}"`)
  if (why) return [`/url: ${why}`]
  return { ...record, url: normalEdgeUrl(record.url) }
}

export function recordKey(prefix: string, id: string): string {
  return `${prefix}${id}`
}

/**
 * Longest a unary etcd call (a read, a put, a delete, a lease grant or revoke) may take before
 * it fails (gRPC DEADLINE_EXCEEDED). etcd3 then tries it again, on another member if one is
 * up, up to 3 times in all; the caller retries as after any failure. Far above a call on a busy
 * member (milliseconds; an fsync under load, hundreds).
 */
export const ETCD_CALL_TIMEOUT_MS = 5000

/**
 * How often a connection with calls open (a watch, a lease keepalive) is pinged; one whose ping
 * is not answered within half of it is closed, and its watches and keepalives move to another
 * member. etcd refuses pings more often than every 5 s (--grpc-keepalive-min-time).
 */
export const ETCD_KEEPALIVE_MS = 10_000

/**
 * The deadline each unary etcd call gets. None for a stream (a watch or a lease keepalive lives
 * as long as it is needed) nor for a transaction: etcd3 runs a call again after a deadline, and a
 * compare-and-swap that had been applied would then fail its compare and report a claim or a
 * pointer swap as lost; a transaction waits for its answer, as every call did before.
 */
export function etcdCallOptions(
  callTimeoutMs: number,
): (context: { isStream: boolean; method: string }) => { deadline?: number } {
  return (context) =>
    context.isStream || context.method === 'txn' ? {} : { deadline: Date.now() + callTimeoutMs }
}

/**
 * An etcd client over every endpoint given (it fails over between them on its own). The client
 * (gRPC and protobuf: about 27 MB of resident memory) is loaded here, on first use, so a node
 * that does not use the registry never pays for it.
 */
export function etcdClient(
  endpoints: readonly string[],
  dialTimeoutMs = 2000,
  callTimeoutMs = ETCD_CALL_TIMEOUT_MS,
  keepaliveMs = ETCD_KEEPALIVE_MS,
): Etcd3 {
  const { Etcd3: Client } = createRequire(import.meta.url)('etcd3') as typeof import('etcd3')
  const client = new Client({
    hosts: [...endpoints],
    dialTimeout: dialTimeoutMs,
    // A member that stopped answering on an open connection (a hung process or VM, a black-holed
    // route) held a call for ever: gRPC sets no deadline and no keepalive of its own.
    defaultCallOptions: etcdCallOptions(callTimeoutMs),
    grpcOptions: {
      'grpc.keepalive_time_ms': keepaliveMs,
      'grpc.keepalive_timeout_ms': Math.ceil(keepaliveMs / 2),
    },
  })
  const close = client.close.bind(client)
  client.close = () => {
    dropWatchers(client)
    close()
  }
  return client
}

/**
 * etcd3 1.1's close() leaves its watch manager holding every watcher still attached: one whose
 * create() had not resolved (its member down) or whose stream broke. The manager then retries
 * for ever on the closed client, a timer each time, and the process never exits. With no
 * watcher left, its next retry finds nothing to watch and stops. The watch stream is cancelled
 * too: gRPC lets a closed client's calls run on, and an event on it for a watcher no longer
 * listed made etcd3 throw from the stream's handler ("Failed to find watcher for
 * IWatchResponse", uncaught: the process died), e.g. the delete of an edge's own key when it
 * revoked its lease and closed while its watch was being made again. The manager is the
 * client's own (private fields); if a later etcd3 moves them, close() is left as it is.
 */
function dropWatchers(client: Etcd3): void {
  const manager = (
    client as unknown as { watchManager?: { watchers?: unknown; stream?: { cancel?: () => void } } }
  ).watchManager
  if (manager && Array.isArray(manager.watchers)) manager.watchers = []
  // A stream etcd3 stopped reading (a deaf watch's: steering/registry-watch.ts) would also stay
  // open on the member.
  manager?.stream?.cancel?.()
}

/**
 * Cancels `watcher`, waiting at most `ms` for etcd3 to see the answer: on a watch stream etcd3
 * no longer reads (steering/registry-watch.ts, `replaceDeaf`) it never does. False when it did
 * not; closing the client then cancels the stream (`dropWatchers`).
 */
export async function cancelWithin(watcher: Watcher, ms: number): Promise<boolean> {
  const cancelled = watcher.cancel().then(
    () => true,
    () => true,
  )
  return (await within(cancelled, ms)) ?? false
}

/**
 * `p`'s value, or undefined once `ms` passed without it (`p` is left to settle). The timer is
 * unref'd: a wait on a stalled etcd stream holds no process up.
 */
export async function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms).unref()))
  try {
    return await Promise.race([p, late])
  } finally {
    clearTimeout(timer)
  }
}

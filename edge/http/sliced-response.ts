/**
 * One client's answer about a sliced object (edge/cache/slices.ts, slicer.ts): the slice that
 * holds the first byte asked (the lead) tells the object's length and version, the head is
 * written from it (200 with the total as Content-Length, or 206 with the right Content-Range,
 * 304/412/416 decided as for any entry), then the slices the answer covers are sent in order,
 * each from the cache or fetched with an upstream Range request through the single-flight
 * (concurrent requests for one slice share one fetch), streamed as its bytes arrive. A stale
 * slice is revalidated (its validators with the same Range): a 304 refreshes it, and an answer of
 * another version drops the URL's other slices (slice-sink.ts).
 *
 * A slice of another version (its ETag, Last-Modified or total differ from the lead's) is never
 * sent: every slice of the URL is dropped and the connection closed, so the next request starts
 * on one version; bytes of two versions are never spliced. A lead answered 200 (the upstream
 * ignored Range) or with an error is handed to a plain client sink: the whole object is served
 * (and stored under the URL when it fits), as a miss of the URL would be.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { CdnError } from '../../src/errors.js'
import { decide, statusOf } from '../../src/http/respond.js'
import type { ForwardFacts } from '../cache/cache-status.js'
import { type CacheEntry, makeEntry } from '../cache/entry.js'
import { currentAge, freshState } from '../cache/freshness.js'
import type { CacheTarget } from '../cache/key.js'
import type { Outcome } from '../cache/outcome.js'
import {
  leadSlice,
  sameVersion,
  sliceKey,
  sliceRange,
  type SliceVersion,
  versionOf,
} from '../cache/slices.js'
import type { Flight } from '../upstream/flight.js'
import type { UpstreamRequest } from '../upstream/forward.js'
import { ClientSink, drained } from './client-sink.js'
import { type Told, writeEntryHead } from './responder.js'
import { SliceSink } from './slice-sink.js'
import type { SlicerParts } from './slicer.js'

/** A slice held fresh in the cache. */
interface Held {
  entry: CacheEntry
  body: Buffer
  outcome: Outcome
}

export class SlicedResponse {
  private version: SliceVersion | undefined
  /** The client's bytes (inclusive) once the head is written; slices outside are not sent. */
  private from = 0
  private to = -1
  /** The slice whose bytes are being written now: a slice's chunks are sent only in its turn. */
  private current = -1
  private sent = 0
  private status = 0
  private outcome: Outcome = 'miss'
  private over = false
  private readonly releases: (() => void)[] = []
  /** The URL's other slices being dropped (a revalidation found a new version): lookups wait for it. */
  private dropping: Promise<unknown> | undefined

  constructor(
    private readonly parts: SlicerParts,
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly target: CacheTarget,
    private readonly upstream: UpstreamRequest,
    private readonly size: number,
    private readonly started: number,
  ) {
    res.once('close', () => {
      this.over = true
      for (const r of this.releases.splice(0)) r()
    })
  }

  /** Sends the answer; never throws (errors become the client's answer or a closed connection). */
  async run(): Promise<void> {
    try {
      const lead = leadSlice(this.req.headers.range, this.size)
      const { held, stale } = await this.lookup(lead)
      let leadDone: Promise<boolean> | undefined
      if (held) {
        const v = versionOf(held.entry.meta.headers)!
        if (!this.begin(v, held.entry, held.outcome, lead, undefined)) return
      } else {
        const started = this.fetch(lead, true, stale)
        if (started === undefined) return
        leadDone = started
        // The head is written when the lead's headers come (or the answer handed on).
        if (!(await leadDone) || this.version === undefined) return
      }
      const first = Math.floor(this.from / this.size)
      const last = Math.floor(this.to / this.size)
      for (let i = first; i <= last && !this.over; i++) {
        this.current = i
        const ok =
          i === lead && held
            ? this.writeHeld(i, held)
            : i === lead && leadDone && first === lead
              ? await leadDone
              : await this.piece(i)
        if (!ok) return
        await drained(this.res)
      }
      if (this.over) return
      this.res.end()
      this.parts.answers.done(this.req, this.outcome, this.status, this.sent, this.started)
    } catch (err) {
      this.fail(err)
    }
  }

  /** Slice `i` in the cache: `held` when fresh, `stale` when it must be revalidated first. */
  private async lookup(i: number): Promise<{ held?: Held; stale?: CacheEntry }> {
    const { store, clock } = this.parts
    await this.dropping
    const got = await store.get(sliceKey(this.target.key, i))
    if (!got?.entry.body || !this.whole(i, got.entry)) return {}
    if (freshState(got.entry.fresh, clock.now()) !== 'fresh') return { stale: got.entry }
    return {
      held: {
        entry: got.entry,
        body: got.entry.body,
        outcome: got.tier === 'memory' ? 'hit-mem' : 'hit-disk',
      },
    }
  }

  /** Does an entry hold all of slice `i` of the version it names? */
  private whole(i: number, e: CacheEntry): boolean {
    const v = versionOf(e.meta.headers)
    return v !== undefined && e.body?.length === Math.min(this.size, v.total - i * this.size)
  }

  /** Sends slice `i` from the cache or from its fetch; false when the answer ended early. */
  private async piece(i: number): Promise<boolean> {
    const { held, stale } = await this.lookup(i)
    if (held) return this.writeHeld(i, held)
    return (await this.fetch(i, false, stale)) ?? false
  }

  /**
   * Slice `i`'s stale copy came back as `e`: refreshed by a 304 (`revalidated`), or served
   * because the upstream failed within stale-if-error (`stale`). Sent as a held slice; the lead's
   * `fwd` (what its fetch did) writes the head. False when the answer ended.
   */
  refreshed(i: number, e: CacheEntry, outcome: Outcome, fwd: ForwardFacts | undefined): boolean {
    if (!e.body || !this.whole(i, e)) {
      this.fail(new CdnError('CDN_ERR_UPSTREAM', 'a revalidated slice without its bytes'))
      return false
    }
    this.parts.observer?.slice('revalidated')
    const v = versionOf(e.meta.headers)!
    if (fwd) {
      if (!this.begin(v, e, outcome, i, fwd)) return false
    } else if (!this.same(v)) return false
    this.write(i * this.size, e.body)
    return true
  }

  /** A revalidation of slice `i` found another version: every other slice of the URL goes. */
  changed(i: number): void {
    this.parts.observer?.slice('version-changed')
    this.dropping = this.parts.drop(this.target.key, this.target.title, sliceKey(this.target.key, i))
  }

  private writeHeld(i: number, h: Held): boolean {
    this.parts.observer?.slice('hit')
    if (!this.same(versionOf(h.entry.meta.headers))) return false
    this.write(i * this.size, h.body)
    return true
  }

  /**
   * Fetches slice `i` through the single-flight. Resolves true once its bytes were sent, false
   * when the answer ended (error, another version, handed on); undefined when it could not start.
   */
  private fetch(i: number, lead: boolean, stale?: CacheEntry): Promise<boolean> | undefined {
    let settle!: (ok: boolean) => void
    const done = new Promise<boolean>((resolve) => (settle = resolve))
    const sink = new SliceSink(this, i, i * this.size, lead, settle)
    const key = sliceKey(this.target.key, i)
    const flights = this.parts.flights
    try {
      // Known before joining: a finished fetch replays its answer at once.
      sink.joined = flights.find(key, this.upstream).flight !== undefined
      this.parts.observer?.slice(sink.joined ? 'joined' : 'fetched')
      const { flight } = flights.request({ key, path: this.target.path }, sink, {
        upstream: this.upstream,
        slice: sliceRange(i, this.size),
        ...(stale ? { stale } : {}),
      })
      sink.flight = flight
    } catch (err) {
      this.fail(err)
      return undefined
    }
    return done
  }

  /**
   * Writes the head from the lead slice (`entry`, of version `v`). False when no body follows
   * (HEAD, 304, 412, 416: the answer is over).
   */
  begin(
    v: SliceVersion,
    entry: CacheEntry,
    outcome: Outcome,
    lead: number,
    fwd: ForwardFacts | undefined,
  ): boolean {
    this.version = v
    const headers = { ...entry.meta.headers }
    delete headers['content-range']
    const whole = makeEntry(
      { ...entry.meta, key: this.target.key, status: 200, headers, bodyLength: v.total },
      undefined,
      this.parts.entryOptions,
    )
    const d = decide(this.req.headers, 200, v.total, whole)
    this.from = d.kind === 'partial' ? d.start : 0
    this.to = d.kind === 'partial' ? d.end : v.total - 1
    // A hit only when every slice the answer covers is held: otherwise the request went upstream.
    if (outcome === 'hit-mem' || outcome === 'hit-disk') {
      const first = Math.floor(this.from / this.size)
      const last = Math.floor(this.to / this.size)
      for (let i = first; i <= last && fwd === undefined; i++)
        if (i !== lead && !this.freshHeld(i)) fwd = { fwd: 'uri-miss', stored: true }
      if (fwd) outcome = 'miss'
    }
    this.outcome = outcome
    this.status = statusOf(d, 200)
    const age = Math.floor(currentAge(whole.fresh, this.parts.clock.now()) / 1000)
    const told: Told = { cs: this.parts.answers.cacheStatus, fwd, ttl: true }
    const head = this.req.method === 'HEAD'
    if (!writeEntryHead(this.res, whole, d, outcome, age, v.total, head, told)) {
      this.over = true
      this.parts.answers.done(this.req, outcome, this.status, 0, this.started)
      return false
    }
    this.current = Math.floor(this.from / this.size)
    this.res.flushHeaders()
    return true
  }

  private freshHeld(i: number): boolean {
    const { store, clock } = this.parts
    const key = sliceKey(this.target.key, i)
    const e = store.lookup?.(key)
    return e ? freshState(e.fresh, clock.now()) === 'fresh' : store.has(key)
  }

  /** Is a slice of the version the answer is of? If not, every slice of the URL goes and the answer ends. */
  same(v: SliceVersion | undefined): boolean {
    if (v && this.version && sameVersion(this.version, v)) return true
    this.parts.observer?.slice('version-changed')
    this.parts.log?.warn(
      { key: this.target.key, was: this.version, now: v },
      'sliced object changed upstream: its slices are dropped',
    )
    void this.parts.drop(this.target.key, this.target.title)
    this.fail(new CdnError('CDN_ERR_UPSTREAM_TRUNCATED', 'the object changed between its slices'))
    return false
  }

  /** Bytes at `offset` of the object: the part inside the client's range is sent, in its slice's turn. */
  write(offset: number, chunk: Buffer, slice = Math.floor(offset / this.size), written?: () => void): void {
    if (this.over || slice !== this.current) return written?.()
    const a = Math.max(this.from, offset)
    const b = Math.min(this.to + 1, offset + chunk.length)
    if (b <= a) return written?.()
    this.sent += b - a
    this.res.write(chunk.subarray(a - offset, b - offset), written)
  }

  /** The lead's answer is not a slice (a 200 of the whole object, an error): a client sink serves it. */
  handOn(f: Flight, sink: SliceSink): ClientSink {
    if (f.head?.status === 200) {
      this.parts.observer?.slice('range-ignored')
      this.parts.rangeIgnored(this.target.key)
    }
    this.over = true
    const cs = new ClientSink(
      this.parts.answers,
      this.req,
      this.res,
      sink.joined ? 'coalesced' : 'miss',
      this.started,
    )
    cs.attach(f)
    return cs
  }

  /** Ends the answer: an error answer before the head, a closed connection after it. */
  fail(err: unknown, f?: Flight): void {
    if (this.over && this.res.headersSent) return
    this.over = true
    const fwd = f ? { ...f.forwarded } : undefined
    this.parts.answers.sendError(this.req, this.res, err, this.started, fwd)
  }

  /** Keeps `release` until the answer is over. */
  hold(release: () => void): void {
    if (this.over && this.res.closed) release()
    else this.releases.push(release)
  }

  get closed(): boolean {
    return this.over
  }
}

/**
 * Follows the fetch of one slice for one sliced answer (sliced-response.ts): the lead's head
 * writes the answer's, a later slice is checked against the lead's version, its bytes are written
 * in their turn. A stale slice's fetch is a revalidation (its validators and the same Range): a
 * 304 hands the refreshed entry back, and a lead answered with another version than its stale
 * copy drops the URL's other slices (they are of the old one).
 */
import { CdnError } from '../../src/errors.js'
import type { ForwardFacts } from '../cache/cache-status.js'
import type { CacheEntry } from '../cache/entry.js'
import type { Outcome } from '../cache/outcome.js'
import { sameVersion, versionOf } from '../cache/slices.js'
import type { Flight, FlightSink } from '../upstream/flight.js'
import type { ClientSink } from './client-sink.js'
import type { SlicedResponse } from './sliced-response.js'

export class SliceSink implements FlightSink {
  flight: Flight | undefined
  joined = false
  private handed: ClientSink | undefined
  private ended = false
  /** Writes of this slice's bytes not yet taken by the socket; its buffer is pinned until then. */
  private pending = 0
  private unpin: (() => void) | undefined

  constructor(
    private readonly answer: SlicedResponse,
    private readonly index: number,
    /** The slice's first byte in the object. */
    private readonly start: number,
    private readonly lead: boolean,
    private readonly settle: (ok: boolean) => void,
  ) {}

  /** Moved to another fetch (single-flight.ts: its answer is another request's, or another variant's). */
  attach(flight: Flight, outcome?: Outcome): void {
    this.flight = flight
    if (outcome !== undefined) this.joined = outcome === 'coalesced'
    if (this.ended) flight.leave(this)
  }

  headers(f: Flight): void {
    const { status, entry } = f.head!
    if (status !== 206) {
      if (this.lead) {
        this.handed = this.answer.handOn(f, this)
        this.handed.headers(f)
        return this.finish(false)
      }
      // A later slice answered whole or unsatisfiable: the object is not the one the lead was.
      if (status === 200 || status === 416) return this.finish(this.answer.same(undefined))
      this.answer.fail(new CdnError('CDN_ERR_UPSTREAM', `upstream answered ${status} for a slice`), f)
      return this.finish(false)
    }
    const v = versionOf(entry.meta.headers)
    // The lead's revalidation answered with another version: the other slices held are of the
    // old one (a later slice's is refused by `same` below, which drops them all).
    const was = this.lead && f.stale ? versionOf(f.stale.meta.headers) : undefined
    if (was && v && !sameVersion(was, v)) this.answer.changed(this.index)
    const unpin = f.pin()
    let pinned = true
    this.unpin = () => {
      if (!pinned) return
      pinned = false
      unpin()
    }
    this.answer.hold(this.unpin)
    if (this.lead) {
      if (!this.answer.begin(v!, entry, this.joined ? 'coalesced' : 'miss', this.index, this.facts(f)))
        this.finish(false)
    } else if (!this.answer.same(v)) this.finish(false)
  }

  data(chunk: Buffer, offset: number): void {
    if (this.handed) return this.handed.data(chunk, offset)
    if (this.ended) return
    this.pending++
    this.answer.write(this.start + offset, chunk, this.index, () => {
      this.pending--
      this.release()
    })
  }

  end(): void {
    if (this.handed) return this.handed.end()
    this.finish(true)
  }

  error(err: CdnError, afterHeaders: boolean, flight?: Flight): void {
    if (this.handed) return this.handed.error(err, afterHeaders, flight)
    if (!this.ended) this.answer.fail(err, flight ?? this.flight)
    this.finish(false)
  }

  /** A stale slice refreshed by a 304, or served stale because the upstream failed. */
  entry(e: CacheEntry, outcome: Outcome, flight: Flight): void {
    if (this.handed) return this.handed.entry(e, outcome, flight)
    if (this.ended) return
    this.finish(this.answer.refreshed(this.index, e, outcome, this.lead ? this.facts(flight) : undefined))
  }

  hints(fields: Record<string, string | string[]>): void {
    this.handed?.hints(fields)
  }

  /** What the fetch did upstream, for the answer's Cache-Status. */
  private facts(f: Flight): ForwardFacts {
    return { ...f.forwarded, ...(this.joined ? { collapsed: true } : {}) }
  }

  /** The buffer goes back once the slice is over and the socket took its bytes. */
  private release(): void {
    if (this.ended && this.pending === 0) this.unpin?.()
  }

  private finish(ok: boolean): void {
    if (this.ended) return
    this.ended = true
    if (!this.handed) this.flight?.leave(this)
    this.release()
    this.settle(ok && !this.answer.closed)
  }
}

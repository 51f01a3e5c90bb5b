/**
 * The body of one upstream fetch (flight-run.ts): each chunk goes to the flight's clients and
 * to the cache writer at once. Nothing is committed unless the whole body arrived with the
 * announced length; a stream too large to keep is paced so no client falls a window behind.
 */
import type { Readable } from 'node:stream'
import { crc32 } from 'node:zlib'
import { CdnError } from '../../src/errors.js'
import type { SliceWriter } from '../cache/slice-writer.js'
import type { CacheWriter } from '../cache/store.js'
import { CLIENT_WINDOW_BYTES, type Hold } from '../inflight-budget.js'
import type { Flight } from './flight.js'
import type { RunContext } from './flight-run.js'
import type { SingleFlightOptions } from './single-flight.js'

/** The upstream answer being read and where its bytes go. */
export interface BodyRun {
  body: Readable
  /** Content-Length, when the upstream sent one. */
  cl: number | undefined
  keepLimit: number
  hold: Hold
  writer: CacheWriter | undefined
  /** A stream too large to keep whole, stored as slices as it passes (slice-writer.ts). */
  slices?: SliceWriter
  /** Seconds since the fetch started (for the observer). */
  elapsed: () => number
}

/** Streams the body; resolves once it ended, failed, or its cache write was committed. */
export async function pumpBody(ctx: RunContext, f: Flight, run: BodyRun): Promise<void> {
  const { body, cl, keepLimit, hold, writer, slices, elapsed } = run
  let crc = 0
  let dropped = false
  /**
   * The cache write is given up: a stream too large to keep, or its title purged (single-flight.ts
   * purge: nothing of it is stored, whether the purge came mid-body or after the last byte).
   */
  const drop = (): void => {
    dropped = true
    writer?.abort()
  }
  await new Promise<void>((resolve) => {
    f.onAbandon = () =>
      body.destroy(new CdnError('CDN_ERR_UPSTREAM_TRUNCATED', 'every client left an uncached stream'))
    body.on('data', (chunk: Buffer) => {
      if (f.state !== 'streaming') return
      // A body without Content-Length is reserved as it arrives, while it is kept.
      if (cl === undefined && !f.unbuffered) hold.grow(chunk.length)
      const view = f.push(chunk, keepLimit)
      if (!view) {
        body.destroy(new CdnError('CDN_ERR_UPSTREAM_TRUNCATED', 'upstream sent more than Content-Length'))
        return
      }
      slices?.write(view)
      if (!writer) return
      if (f.unbuffered && !dropped) {
        drop()
        ctx.unlist(f)
      }
      if (f.purged && !dropped) drop()
      if (!dropped) {
        crc = crc32(view, crc)
        writer.write(view)
      }
    })
    body.on('data', (chunk: Buffer) => {
      if (f.unbuffered && f.state === 'streaming') pace(ctx.options, f, body)
      else if (f.throttle && f.state === 'streaming') {
        const wait = f.throttle(chunk.length)
        if (wait > 0) holdBody(f, body, wait)
      }
    })
    body.on('error', (err: Error) => {
      writer?.abort()
      slices?.abort()
      ctx.options.observer.fetchFinished(elapsed(), 'truncated')
      const e =
        err instanceof CdnError
          ? err
          : new CdnError('CDN_ERR_UPSTREAM_TRUNCATED', 'upstream body ended early', { cause: err })
      f.fail(e)
      resolve()
    })
    body.on('end', () => {
      if (cl !== undefined && f.received !== cl) {
        writer?.abort()
        slices?.abort()
        ctx.options.observer.fetchFinished(elapsed(), 'truncated')
        f.fail(new CdnError('CDN_ERR_UPSTREAM_TRUNCATED', 'upstream body shorter than Content-Length'))
        return resolve()
      }
      ctx.options.observer.fetchFinished(elapsed(), 'ok')
      if (f.purged && !dropped) drop()
      f.committed =
        writer && !dropped
          ? writer.commit({ bodyLength: f.received, crc32: crc })
          : (slices?.committed() ?? Promise.resolve(undefined))
      f.committed.then(
        (e) => e && ctx.stored(e.meta.key),
        () => undefined,
      )
      f.finish()
      // Keep the flight joinable (from its buffer) until the entry is visible in the store.
      f.committed.then(
        () => resolve(),
        () => resolve(),
      )
    })
  })
}

/**
 * A stream not kept whole cannot let a client fall behind: nothing holds the bytes it missed
 * and the upstream goes on. A client more than a window behind while another keeps up is
 * dropped (logged); when every client is behind, the upstream is paused until one drains
 * (the next chunk then drops those still behind).
 */
function pace(options: SingleFlightOptions, f: Flight, body: Readable): void {
  const slow = f.behind(CLIENT_WINDOW_BYTES)
  if (slow.length === 0) return
  if (slow.length < f.sinks.size) {
    for (const s of slow) {
      f.leave(s)
      options.budget.dropped()
      options.log?.warn(
        { reason: 'client a window behind a shared uncached stream', windowBytes: CLIENT_WINDOW_BYTES },
        'slow client dropped',
      )
      s.error(new CdnError('CDN_ERR_OVERLOADED', 'client too slow for a shared stream'), true, f)
    }
    return
  }
  if (body.isPaused()) return
  body.pause()
  options.budget.stalled()
  void Promise.race(slow.map((s) => s.drained?.())).then(() => body.resume())
}

/**
 * Holds a paced body for `ms` (the upstream's socket backs up meanwhile), or until someone joins
 * the flight (`unthrottle`). The event loop is free for viewers in between.
 */
function holdBody(f: Flight, body: Readable, ms: number): void {
  if (body.isPaused()) return
  body.pause()
  const resume = () => {
    clearTimeout(timer)
    if (f.unthrottle === resume) f.unthrottle = undefined
    body.resume()
  }
  const timer = setTimeout(resume, ms)
  f.unthrottle = resume
}

/**
 * The plan of a prefill: for each title (in rank order) the renditions and every object to
 * hold, with sizes; which titles fit the protected share and why the others do not; and the
 * time the fetch needs at the rate cap next to the fill window. A dry run returns this plan;
 * the real job executes the same plan.
 *
 * Reading (`planTitle`, here) talks to the target; deciding (`decide`, fit.ts) is a pure
 * function of the title plans, the protected share and the rate settings.
 */
import { CdnError, isCdnError } from '../../src/errors.js'
import { masterPath, parseVodPath } from '../../src/http/paths.js'
import { readMaster, readMedia, type VariantRef } from './playlists.js'
import { forEachLimit } from './pool.js'
import type { RetryHooks, RetryPolicy } from './retry.js'
import { withRetry } from './retry.js'
import type { PrefillTarget } from './target.js'

export interface TitleRequest {
  readonly title: string
  /** 0 = most popular. */
  readonly rank: number
  readonly weight?: number
}

/** Which renditions to fill; audio and subtitle renditions are always kept. */
export interface RenditionFilter {
  /** Keep video renditions at most this tall ("up to 720p"). */
  readonly maxHeight?: number
  /** Keep only these rendition names, e.g. ["720p", "360p"]. */
  readonly names?: readonly string[]
}

export interface PlannedObject {
  readonly path: string
  readonly bytes: number
  readonly kind: 'playlist' | 'init' | 'segment'
  /** The rendition it belongs to (its name in the master). */
  readonly rendition?: string
  /** A segment's start in the presentation, seconds. */
  readonly startSec?: number
  /** Held before the job. */
  readonly held?: boolean
}

export interface RenditionPlan {
  readonly name: string
  readonly height: number | undefined
  readonly objects: number
  readonly bytes: number
  readonly durationSec: number
}

export interface TitleError {
  readonly code: string
  readonly message: string
  readonly path?: string
  readonly status?: number
}

export interface TitlePlan {
  readonly title: string
  readonly rank: number
  readonly weight?: number
  readonly version?: string
  readonly renditions: RenditionPlan[]
  readonly objects: PlannedObject[]
  readonly bytesTotal: number
  /** Bytes already held before the job (fetched by nobody). */
  readonly bytesHeld: number
  /** Sizes that no HEAD or byte range told, estimated from BANDWIDTH × duration. */
  readonly estimatedObjects: number
  /** Set when the title cannot be planned (unknown title, playlist does not parse, ...). */
  readonly error?: TitleError
}

export interface PlanOptions {
  readonly renditions?: RenditionFilter
  readonly concurrency: number
  readonly retry: RetryPolicy
  readonly hooks: RetryHooks
}

export function describeError(err: unknown): TitleError {
  if (isCdnError(err)) {
    const d = err.details ?? {}
    return {
      code: err.code,
      message: err.message,
      ...(typeof d.path === 'string' ? { path: d.path } : {}),
      ...(typeof d.status === 'number' ? { status: d.status } : {}),
    }
  }
  return { code: 'CDN_ERR_INTERNAL', message: (err as Error)?.message ?? String(err) }
}

/** Turns a target's 404 into the precise error for what was missing. */
export function notFound(err: unknown, path: string, title: string): unknown {
  const status = isCdnError(err) ? err.details?.status : undefined
  if (status !== 404 && status !== 410) return err
  if (path === masterPath(title))
    return new CdnError('CDN_ERR_UNKNOWN_TITLE', `unknown title ${title}: upstream ${status} for ${path}`, {
      details: { path, status },
    })
  return new CdnError('CDN_ERR_UPSTREAM_NOT_FOUND', `upstream ${status} for ${path}`, {
    details: { path, status },
  })
}

export function keepRendition(v: VariantRef, filter: RenditionFilter | undefined): boolean {
  if (v.kind !== 'video' || !filter) return true
  if (filter.names && !filter.names.includes(v.name)) return false
  if (filter.maxHeight !== undefined) {
    const h = v.height ?? Number(/^(\d+)p$/.exec(v.name)?.[1] ?? Number.NaN)
    if (!(h <= filter.maxHeight)) return false
  }
  return true
}

/** Reads one title's playlists and sizes every object. Never throws: errors land in `error`. */
export async function planTitle(
  target: PrefillTarget,
  req: TitleRequest,
  options: PlanOptions,
): Promise<TitlePlan> {
  const base = {
    title: req.title,
    rank: req.rank,
    ...(req.weight === undefined ? {} : { weight: req.weight }),
  }
  const retry = <T>(fn: () => Promise<T>) => withRetry(fn, options.retry, options.hooks)
  const text = async (path: string) => {
    try {
      return await retry(() => target.fetchText(path, { signal: options.hooks.signal }))
    } catch (err) {
      throw notFound(err, path, req.title)
    }
  }
  try {
    const master = masterPath(req.title)
    const variants = readMaster(await text(master), master).filter((v) =>
      keepRendition(v, options.renditions),
    )
    if (!variants.some((v) => v.kind === 'video'))
      throw new CdnError('CDN_ERR_BAD_BODY', `no rendition of ${req.title} matches the renditions filter`, {
        details: { field: 'renditions' },
      })
    const objects: PlannedObject[] = []
    const renditions: RenditionPlan[] = []
    let version: string | undefined
    let estimated = 0
    for (const v of variants) {
      const body = await text(v.path)
      const listing = readMedia(body, v.path)
      const vp = parseVodPath(v.path.split('?')[0]!)
      if (vp?.kind === 'media') version ??= vp.version
      const sized: PlannedObject[] = new Array(listing.objects.length)
      const perObject = v.bandwidth ? (v.bandwidth * listing.durationSec) / 8 / listing.objects.length : 0
      await forEachLimit(
        listing.objects,
        options.concurrency,
        async (o, i) => {
          let bytes = o.rangeBytes
          if (bytes === undefined) {
            try {
              bytes = await retry(() => target.size(o.path, { signal: options.hooks.signal }))
            } catch (err) {
              throw notFound(err, o.path, req.title)
            }
          }
          if (bytes === undefined) {
            estimated++
            bytes = Math.round(perObject)
          }
          sized[i] = {
            path: o.path,
            bytes,
            kind: o.kind,
            rendition: v.name,
            ...(o.startSec === undefined ? {} : { startSec: o.startSec }),
          }
        },
        options.hooks.signal,
      )
      const own: PlannedObject[] = [
        { path: v.path, bytes: Buffer.byteLength(body), kind: 'playlist', rendition: v.name },
        ...sized.filter(Boolean),
      ]
      objects.push(...own)
      renditions.push({
        name: v.name,
        height: v.height,
        objects: own.length,
        bytes: own.reduce((s, o) => s + o.bytes, 0),
        durationSec: Math.round(listing.durationSec * 1000) / 1000,
      })
    }
    let bytesHeld = 0
    const marked: PlannedObject[] = []
    for (const o of objects)
      if (await target.has(o.path)) {
        bytesHeld += o.bytes
        marked.push({ ...o, held: true })
      } else marked.push(o)
    return {
      ...base,
      ...(version ? { version } : {}),
      renditions,
      objects: marked,
      bytesTotal: objects.reduce((s, o) => s + o.bytes, 0),
      bytesHeld,
      estimatedObjects: estimated,
    }
  } catch (err) {
    return {
      ...base,
      renditions: [],
      objects: [],
      bytesTotal: 0,
      bytesHeld: 0,
      estimatedObjects: 0,
      error: describeError(err),
    }
  }
}

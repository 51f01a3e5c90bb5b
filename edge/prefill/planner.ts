/**
 * The plan of a prefill: for each title (in rank order) the renditions and every object to
 * hold, with sizes; which titles fit the protected share and why the others do not; and the
 * time the fetch needs at the rate cap next to the fill window. A dry run returns this plan;
 * the real job executes the same plan.
 *
 * Reading (`planTitle`) talks to the target; deciding (`decide`) is a pure function of the
 * title plans, the protected share and the rate settings, so it is tested as a table.
 */
import { formatBytes } from '../../src/config/units.js'
import { CdnError, isCdnError } from '../../src/errors.js'
import { masterPath, parseVodPath } from '../../src/http/paths.js'
import { readMaster, readMedia, type VariantRef } from './playlists.js'
import { forEachLimit } from './pool.js'
import type { RetryHooks, RetryPolicy } from './retry.js'
import { withRetry } from './retry.js'
import type { PrefillTarget } from './target.js'
import { type FillWindow, windowState } from './window.js'

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
          sized[i] = { path: o.path, bytes, kind: o.kind }
        },
        options.hooks.signal,
      )
      const own: PlannedObject[] = [
        { path: v.path, bytes: Buffer.byteLength(body), kind: 'playlist' },
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
    for (const o of objects) if (await target.has(o.path)) bytesHeld += o.bytes
    return {
      ...base,
      ...(version ? { version } : {}),
      renditions,
      objects,
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

export type TitleDecision = 'fill' | 'left-out' | 'error'

export interface DecidedTitle {
  readonly plan: TitlePlan
  readonly decision: TitleDecision
  /** One line for every title left out (and for errors). */
  readonly reason?: string
}

export interface Plan {
  readonly titles: DecidedTitle[]
  readonly objectsTotal: number
  readonly bytesTotal: number
  readonly bytesToFetch: number
  readonly protectedShare: { capacityBytes: number; usedBytesBefore: number; usedBytesAfter: number }
  /** Protected titles of earlier prefills this plan releases to make room, lowest rank first. */
  readonly unprotect: Array<{ title: string; rank: number; bytes: number }>
  readonly timing: {
    readonly maxBytesPerSecond: number | undefined
    /** Seconds the fetch needs at the cap (undefined when uncapped). */
    readonly seconds: number | undefined
    readonly window?: {
      readonly spec: string
      readonly lengthSec: number
      readonly open: boolean
      readonly opensInSec: number
      readonly fits: boolean
    }
  }
}

export interface DecideInput {
  readonly titles: readonly TitlePlan[]
  readonly capacityBytes: number
  /** What the protected share holds now, all titles. */
  readonly protectedTitles: ReadonlyArray<{ title: string; rank: number; bytes: number }>
  readonly maxBytesPerSecond: number | undefined
  readonly window: FillWindow | undefined
  readonly nowMs: number
}

/**
 * Fits titles into the protected share in rank order: a title that does not fit is left out
 * with a reason and smaller, lower-ranked titles may still fit. Earlier prefills' titles that
 * are not in this plan are released lowest rank first, only as far as needed.
 */
export function decide(input: DecideInput): Plan {
  const cap = input.capacityBytes
  const ordered = [...input.titles].sort((a, b) => a.rank - b.rank)
  const usedBefore = input.protectedTitles.reduce((s, p) => s + p.bytes, 0)
  const titles: DecidedTitle[] = []
  let taken = 0
  let accepted = 0
  for (const plan of ordered) {
    if (plan.error) {
      titles.push({ plan, decision: 'error', reason: plan.error.message })
      continue
    }
    if (taken + plan.bytesTotal <= cap) {
      taken += plan.bytesTotal
      accepted++
      titles.push({ plan, decision: 'fill' })
      continue
    }
    const left = cap - taken
    const reason =
      plan.bytesTotal > cap
        ? `needs ${formatBytes(plan.bytesTotal)}, more than the whole protected share (${formatBytes(cap)})`
        : `needs ${formatBytes(plan.bytesTotal)}; ${formatBytes(left)} of the protected share (${formatBytes(cap)}) left after ${accepted} higher-ranked title${accepted === 1 ? '' : 's'}`
    titles.push({ plan, decision: 'left-out', reason })
  }
  // A title this plan leaves out loses its protection (it ranks below what fills now); other
  // protected titles are released highest rank number (least popular) first, as needed.
  const filled = new Set(titles.filter((t) => t.decision === 'fill').map((t) => t.plan.title))
  const leftOut = new Set(titles.filter((t) => t.decision === 'left-out').map((t) => t.plan.title))
  const unprotect = input.protectedTitles.filter((p) => leftOut.has(p.title))
  const others = input.protectedTitles.filter((p) => !filled.has(p.title) && !leftOut.has(p.title))
  let otherBytes = others.reduce((s, p) => s + p.bytes, 0)
  for (const p of [...others].sort((a, b) => b.rank - a.rank || b.bytes - a.bytes)) {
    if (taken + otherBytes <= cap) break
    unprotect.push(p)
    otherBytes -= p.bytes
  }
  const filling = titles.filter((t) => t.decision === 'fill').map((t) => t.plan)
  const bytesToFetch = filling.reduce((s, p) => s + p.bytesTotal - p.bytesHeld, 0)
  const rate = input.maxBytesPerSecond
  const seconds = rate ? Math.ceil(bytesToFetch / rate) : undefined
  let window: Plan['timing']['window']
  if (input.window) {
    const st = windowState(input.window, input.nowMs)
    const lengthSec = st.lengthMs / 1000
    const available = st.open ? st.msUntilClose / 1000 : lengthSec
    window = {
      spec: input.window.spec,
      lengthSec,
      open: st.open,
      opensInSec: Math.round(st.msUntilOpen / 1000),
      fits: seconds === undefined ? true : seconds <= available,
    }
  }
  return {
    titles,
    objectsTotal: filling.reduce((s, p) => s + p.objects.length, 0),
    bytesTotal: filling.reduce((s, p) => s + p.bytesTotal, 0),
    bytesToFetch,
    protectedShare: { capacityBytes: cap, usedBytesBefore: usedBefore, usedBytesAfter: taken + otherBytes },
    unprotect,
    timing: { maxBytesPerSecond: rate, seconds, ...(window ? { window } : {}) },
  }
}

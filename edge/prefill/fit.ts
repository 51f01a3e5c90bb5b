/**
 * Deciding a plan: which titles fit the protected share (rank order, a reason for each left
 * out), which earlier titles to release, and the time the fetch needs at the rate cap next to
 * the fill window. A pure function of its input, tested as a table.
 */
import { formatBytes } from '../../src/config/units.js'
import type { PlannedObject, TitlePlan } from './planner.js'
import { renditionShares, startupShares, survival, type ViewingModel } from './viewing.js'
import { type FillWindow, windowState } from './window.js'

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
  /**
   * With a viewing model, objects rather than whole titles are fitted: every object of every
   * title ranked by its expected requests (viewing.ts: the title's sessions × rendition share ×
   * the share of sessions that reach it; for the byte hit ratio, the bytes each byte held is
   * expected to serve), taken greedily while they fit. Without, whole titles in rank order.
   */
  readonly viewing?: ViewingModel
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
  const { titles, taken } = input.viewing ? fitObjects(ordered, cap, input.viewing) : fitTitles(ordered, cap)
  return finish(input, titles, taken, usedBefore)
}

/** Whole titles in rank order; one that does not fit is left out and smaller ones may follow. */
function fitTitles(ordered: readonly TitlePlan[], cap: number): { titles: DecidedTitle[]; taken: number } {
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
  return { titles, taken }
}

/** A title's rendition shares: of its later segments, and of each of its first positions. */
interface Shares {
  readonly steady: ReadonlyMap<string, number>
  readonly startup: ReadonlyArray<ReadonlyMap<string, number>>
}

/**
 * An object's expected requests under the viewing model, relative to its title's weight.
 * `position`: a segment's index among its rendition's segments. A playlist or an init segment
 * is needed by every session that plays the rendition anywhere: its largest share.
 */
function objectValue(
  o: PlannedObject,
  position: number,
  shares: Shares,
  durations: ReadonlyMap<string, number>,
  m: ViewingModel,
): number {
  if (o.rendition === undefined) return 1
  const steady = shares.steady.get(o.rendition) ?? 0
  if (o.kind !== 'segment' || o.startSec === undefined)
    return Math.max(steady, ...shares.startup.map((s) => s.get(o.rendition!) ?? 0))
  const share = position < shares.startup.length ? (shares.startup[position]!.get(o.rendition) ?? 0) : steady
  return share * survival(m, o.startSec, durations.get(o.rendition) ?? 0)
}

/**
 * A title's expected sessions: its weight, which counts requests unless the model says
 * sessions, divided by the requests one session makes (the sum of its objects' values);
 * without a weight, 1/(rank+1) sessions.
 */
function sessionsOf(plan: TitlePlan, values: readonly number[], m: ViewingModel): number {
  if (plan.weight === undefined) return 1 / (plan.rank + 1)
  if (m.weights === 'sessions') return plan.weight
  const perSession = values.reduce((s, v) => s + v, 0)
  return perSession > 0 ? plan.weight / perSession : 0
}

/**
 * Objects of every title by expected requests, taken while they fit: the first minutes
 * of the popular titles in the renditions sessions play come before the tails of any title.
 * A title keeps the objects taken (in playlist order); one with none is left out.
 */
function fitObjects(
  ordered: readonly TitlePlan[],
  cap: number,
  m: ViewingModel,
): { titles: DecidedTitle[]; taken: number } {
  const candidates: Array<{ t: number; o: number; value: number; bytes: number }> = []
  ordered.forEach((plan, t) => {
    if (plan.error) return
    const names = plan.renditions.map((r) => r.name)
    const shares = { steady: renditionShares(m, names), startup: startupShares(m, names) }
    const durations = new Map(plan.renditions.map((r) => [r.name, r.durationSec]))
    // Objects come in playlist order: a segment's position is the count of its rendition's before it.
    const seen = new Map<string, number>()
    const values = plan.objects.map((o) => {
      let position = 0
      if (o.kind === 'segment') {
        const key = o.rendition ?? ''
        position = seen.get(key) ?? 0
        seen.set(key, position + 1)
      }
      return objectValue(o, position, shares, durations, m)
    })
    const sessions = sessionsOf(plan, values, m)
    values.forEach((value, i) => {
      const v = sessions * value
      if (v > 0) candidates.push({ t, o: i, value: v, bytes: plan.objects[i]!.bytes })
    })
  })
  candidates.sort((a, b) => b.value - a.value || a.bytes - b.bytes || a.t - b.t || a.o - b.o)
  const chosen = ordered.map(() => new Set<number>())
  let taken = 0
  for (const c of candidates) {
    if (taken + c.bytes > cap) continue
    taken += c.bytes
    chosen[c.t]!.add(c.o)
  }
  const titles = ordered.map((plan, t): DecidedTitle => {
    if (plan.error) return { plan, decision: 'error', reason: plan.error.message }
    const objects = plan.objects.filter((_, i) => chosen[t]!.has(i))
    if (!objects.length)
      return {
        plan,
        decision: 'left-out',
        reason: `no object ranks within the protected share (${formatBytes(cap)}) by expected requests`,
      }
    const bytes = (os: readonly PlannedObject[]) => os.reduce((s, o) => s + o.bytes, 0)
    return {
      plan: {
        ...plan,
        objects,
        bytesTotal: bytes(objects),
        bytesHeld: bytes(objects.filter((o) => o.held)),
      },
      decision: 'fill',
    }
  })
  return { titles, taken }
}

/** Releases, totals and timing of a plan whose titles are decided. */
function finish(input: DecideInput, titles: DecidedTitle[], taken: number, usedBefore: number): Plan {
  const cap = input.capacityBytes
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

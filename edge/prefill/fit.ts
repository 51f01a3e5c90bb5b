/**
 * Deciding a plan: which titles fit the protected share (rank order, a reason for each left
 * out), which earlier titles to release, and the time the fetch needs at the rate cap next to
 * the fill window. A pure function of its input, tested as a table.
 */
import { formatBytes } from '../../src/config/units.js'
import type { TitlePlan } from './planner.js'
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

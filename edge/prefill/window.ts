/**
 * The fill window: "02:00-06:00" in the edge's local time (or a named IANA zone). A window
 * may cross midnight ("22:00-04:00"). Outside it a job waits, or trickles at a low rate.
 * Daylight-saving jumps shift a window by the jump for that one night; nothing more.
 */
import { CdnError } from '../../src/errors.js'

export interface FillWindow {
  /** The spec as given, e.g. "02:00-06:00". */
  readonly spec: string
  /** Minutes after local midnight. */
  readonly startMin: number
  readonly endMin: number
  /** IANA time zone; undefined = the process's local zone. */
  readonly timeZone: string | undefined
}

export interface WindowState {
  readonly open: boolean
  /** 0 when open. */
  readonly msUntilOpen: number
  /** 0 when closed. */
  readonly msUntilClose: number
  readonly lengthMs: number
}

const DAY_MIN = 24 * 60
const WINDOW_RE = /^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]|24):([0-5]\d)$/

/** Parses "HH:MM-HH:MM"; throws CDN_ERR_BAD_BODY naming `field`. */
export function parseWindow(spec: string, timeZone?: string, field = 'window'): FillWindow {
  const m = WINDOW_RE.exec(spec)
  const bad = (why: string) =>
    new CdnError('CDN_ERR_BAD_BODY', `${field}: ${why} (got ${JSON.stringify(spec)})`, { details: { field } })
  if (!m) throw bad('expected "HH:MM-HH:MM" in 24-hour local time, e.g. "02:00-06:00"')
  const startMin = Number(m[1]) * 60 + Number(m[2])
  const endMin = (Number(m[3]) * 60 + Number(m[4])) % DAY_MIN
  if (Number(m[3]) === 24 && Number(m[4]) !== 0) throw bad('24:MM is only valid as 24:00')
  if (startMin === endMin) throw bad('start and end are equal; omit the window to fill at any time')
  if (timeZone !== undefined) {
    try {
      new Intl.DateTimeFormat('en-US', { timeZone })
    } catch {
      throw bad(`unknown time zone ${JSON.stringify(timeZone)}`)
    }
  }
  return { spec, startMin, endMin, timeZone }
}

/** Minutes (fractional) after local midnight at `nowMs`. */
export function localMinuteOfDay(nowMs: number, timeZone: string | undefined): number {
  const d = new Date(nowMs)
  if (timeZone === undefined)
    return d.getHours() * 60 + d.getMinutes() + d.getSeconds() / 60 + d.getMilliseconds() / 60_000
  const parts = new Intl.DateTimeFormat('en-GB', {
    timeZone,
    hourCycle: 'h23',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  }).formatToParts(d)
  const get = (type: string) => Number(parts.find((p) => p.type === type)?.value ?? 0)
  return get('hour') * 60 + get('minute') + get('second') / 60 + d.getMilliseconds() / 60_000
}

export function windowLengthMs(w: FillWindow): number {
  return ((w.endMin - w.startMin + DAY_MIN) % DAY_MIN || DAY_MIN) * 60_000
}

export function windowState(w: FillWindow, nowMs: number): WindowState {
  const m = localMinuteOfDay(nowMs, w.timeZone)
  const open = w.startMin < w.endMin ? m >= w.startMin && m < w.endMin : m >= w.startMin || m < w.endMin
  const until = (target: number) => Math.round(((target - m + DAY_MIN) % DAY_MIN) * 60_000)
  return {
    open,
    msUntilOpen: open ? 0 : until(w.startMin),
    msUntilClose: open ? until(w.endMin) : 0,
    lengthMs: windowLengthMs(w),
  }
}

/**
 * The byte rate a job may use now: the cap inside the window (or with no window); outside it
 * the trickle rate, or 0 (wait) when there is none.
 */
export function rateNow(
  w: FillWindow | undefined,
  nowMs: number,
  cap: number | undefined,
  trickle: number | undefined,
): number | undefined {
  if (!w || windowState(w, nowMs).open) return cap
  if (!trickle) return 0
  return cap === undefined ? trickle : Math.min(cap, trickle)
}

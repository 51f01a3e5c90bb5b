/**
 * A request trace held compactly: one time and one object id per request, and a table of the
 * objects (key, bytes, title, rendition). Generated traces (generate.ts) and traces read from a
 * file share it. A file has one request per line, either `TIME PATH BYTES` (TIME in epoch
 * seconds or milliseconds, or ISO 8601) or an edge access-log line (pino JSON with `time`,
 * `url`, `bytes`; only GETs answered 200 count). An object's size is the largest byte count
 * seen for its path.
 */
import { createReadStream } from 'node:fs'
import { createInterface } from 'node:readline'
import { RUNG_NAMES } from '../../src/hls/ladder.js'
import { parseVodPath, titleOfPath } from '../../src/http/paths.js'

export const DAY_MS = 86_400_000

export class ObjectTable {
  readonly keys: string[] = []
  readonly bytes: number[] = []
  readonly titles: Array<string | undefined> = []
  /** Index in the ladder (0 = top rung), -1 when the path names no known rendition. */
  readonly rungs: number[] = []
  private readonly byKey = new Map<string, number>()

  get size(): number {
    return this.keys.length
  }

  idOf(key: string): number | undefined {
    return this.byKey.get(key)
  }

  intern(key: string, bytes: number): number {
    const known = this.byKey.get(key)
    if (known !== undefined) {
      if (bytes > this.bytes[known]!) this.bytes[known] = bytes
      return known
    }
    const id = this.keys.length
    this.keys.push(key)
    this.bytes.push(bytes)
    this.titles.push(titleOfPath(key))
    const vp = parseVodPath(key)
    this.rungs.push(vp?.kind === 'media' ? RUNG_NAMES.indexOf(vp.rendition) : -1)
    this.byKey.set(key, id)
    return id
  }
}

export interface Trace {
  /** Milliseconds from the trace's start, ascending. */
  readonly times: Float64Array
  readonly ids: Int32Array
  readonly objects: ObjectTable
  /** Epoch ms of time 0 (a day boundary of the replay: the nightly fill runs there). */
  readonly startMs: number
}

export function traceDays(trace: Trace): number {
  const n = trace.times.length
  return n === 0 ? 0 : Math.floor(trace.times[n - 1]! / DAY_MS) + 1
}

/**
 * The byte hit ratio of an infinite cache from day `fromDay` on (objects first requested
 * before then are held): the ceiling of any demand cache, reached when only first requests miss.
 */
export function infiniteCache(trace: Trace, fromDay: number): number {
  const seen = new Uint8Array(trace.objects.size)
  let all = 0
  let hit = 0
  for (let i = 0; i < trace.ids.length; i++) {
    const id = trace.ids[i]!
    const bytes = trace.objects.bytes[id]!
    if (trace.times[i]! >= fromDay * DAY_MS) {
      all += bytes
      if (seen[id]) hit += bytes
    }
    seen[id] = 1
  }
  return all ? hit / all : 0
}

/** Appends requests, growing typed arrays by doubling. */
export class TraceBuilder {
  private times = new Float64Array(1024)
  private ids = new Int32Array(1024)
  length = 0

  constructor(readonly objects = new ObjectTable()) {}

  push(timeMs: number, id: number): void {
    if (this.length === this.times.length) {
      const t = new Float64Array(this.length * 2)
      t.set(this.times)
      this.times = t
      const i = new Int32Array(this.length * 2)
      i.set(this.ids)
      this.ids = i
    }
    this.times[this.length] = timeMs
    this.ids[this.length] = id
    this.length++
  }

  /** The trace, sorted by time (stable for equal times), starting at `startMs`. */
  build(startMs: number): Trace {
    const n = this.length
    const order = sortedOrder(this.times.subarray(0, n))
    const outT = new Float64Array(n)
    const outI = new Int32Array(n)
    for (let i = 0; i < n; i++) {
      outT[i] = this.times[order[i]!]!
      outI[i] = this.ids[order[i]!]!
    }
    return { times: outT, ids: outI, objects: this.objects, startMs }
  }
}

const SLOT = 2 ** 24

/**
 * Indices of `times` in ascending order, equal times in insertion order. Packs a 10 ms time
 * and the index into one double for the native numeric sort (a comparator is several times
 * slower on millions); falls back to the comparator past 2^24 requests or 60 days.
 */
export function sortedOrder(times: Float64Array): Uint32Array {
  const n = times.length
  let max = 0
  let min = 0
  for (let i = 0; i < n; i++) {
    max = Math.max(max, times[i]!)
    min = Math.min(min, times[i]!)
  }
  const order = new Uint32Array(n)
  if (n < SLOT && min >= 0 && max / 10 < 2 ** 28) {
    const packed = new Float64Array(n)
    for (let i = 0; i < n; i++) packed[i] = Math.floor(times[i]! / 10) * SLOT + i
    packed.sort()
    for (let i = 0; i < n; i++) order[i] = packed[i]! % SLOT
    // Within one 10 ms slot, order by exact time (insertion order breaks ties).
    for (let i = 1; i < n; i++) {
      let j = i
      const cur = order[j]!
      while (j > 0 && times[order[j - 1]!]! > times[cur]!) {
        order[j] = order[j - 1]!
        j--
      }
      order[j] = cur
    }
    return order
  }
  for (let i = 0; i < n; i++) order[i] = i
  order.sort((a, b) => times[a]! - times[b]! || a - b)
  return order
}

/** One request of a trace file, or undefined for a line that is not one (blank, comment, HEAD, error). */
export function parseTraceLine(line: string): { timeMs: number; path: string; bytes: number } | undefined {
  const s = line.trim()
  if (!s || s.startsWith('#')) return undefined
  if (s.startsWith('{')) {
    let j: { time?: unknown; url?: unknown; bytes?: unknown; method?: unknown; status?: unknown }
    try {
      j = JSON.parse(s) as typeof j
    } catch {
      return undefined
    }
    if (typeof j.url !== 'string' || typeof j.bytes !== 'number' || typeof j.time !== 'number')
      return undefined
    if ((j.method !== undefined && j.method !== 'GET') || (j.status !== undefined && j.status !== 200))
      return undefined
    return { timeMs: j.time, path: j.url.split('?')[0]!, bytes: j.bytes }
  }
  const [t, path, b] = s.split(/\s+/)
  const bytes = Number(b)
  if (!t || !path || !Number.isFinite(bytes) || bytes < 0) return undefined
  const n = Number(t)
  // Epoch seconds until the year 5138; milliseconds above that.
  const timeMs = Number.isFinite(n) ? (n < 1e11 ? n * 1000 : n) : Date.parse(t)
  if (!Number.isFinite(timeMs)) return undefined
  return { timeMs, path: path.split('?')[0]!, bytes }
}

/**
 * Reads a trace file. Time 0 is the midnight (UTC) plus `dayStartHour` before the first
 * request, so the replay's nightly fill runs at that hour.
 */
export async function readTraceFile(file: string, dayStartHour = 4): Promise<Trace> {
  const b = new TraceBuilder()
  const rl = createInterface({ input: createReadStream(file), crlfDelay: Infinity })
  let first = Number.POSITIVE_INFINITY
  for await (const line of rl) {
    const r = parseTraceLine(line)
    if (!r) continue
    first = Math.min(first, r.timeMs)
    b.push(r.timeMs, b.objects.intern(r.path, r.bytes))
  }
  const offset = dayStartHour * 3_600_000
  const start = b.length ? Math.floor((first - offset) / DAY_MS) * DAY_MS + offset : 0
  const t = b.build(0)
  for (let i = 0; i < t.times.length; i++) t.times[i] = t.times[i]! - start
  return { ...t, startMs: start }
}

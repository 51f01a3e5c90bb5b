/**
 * Single byte ranges (RFC 9110 §14). Multi-range requests are answered with the whole body
 * (allowed: a server may ignore Range). A syntactically invalid header is ignored; a valid
 * one that selects nothing is unsatisfiable (416).
 */
export type RangeResult =
  { kind: 'none' } | { kind: 'ok'; start: number; end: number } | { kind: 'unsatisfiable' }

const RANGE_RE = /^bytes=(\d*)-(\d*)$/

export function parseRange(header: string | undefined, size: number): RangeResult {
  if (header === undefined) return { kind: 'none' }
  const h = header.trim()
  if (h.includes(',')) return { kind: 'none' }
  const m = RANGE_RE.exec(h)
  if (!m) return { kind: 'none' }
  const [, a, b] = m as unknown as [string, string, string]
  if (a === '' && b === '') return { kind: 'none' }
  if (a.length > 15 || b.length > 15) return { kind: 'none' }
  if (a === '') {
    const n = Number(b)
    if (n === 0 || size === 0) return { kind: 'unsatisfiable' }
    return { kind: 'ok', start: Math.max(0, size - n), end: size - 1 }
  }
  const start = Number(a)
  const end = b === '' ? size - 1 : Math.min(Number(b), size - 1)
  if (b !== '' && Number(b) < start) return { kind: 'none' }
  if (start >= size) return { kind: 'unsatisfiable' }
  return { kind: 'ok', start, end }
}

export function contentRange(start: number, end: number, size: number): string {
  return `bytes ${start}-${end}/${size}`
}

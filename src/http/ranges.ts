/**
 * Single byte ranges (RFC 9110 §14). Multi-range requests are answered with the whole body
 * (allowed: a server may ignore Range). A syntactically invalid header is ignored; a valid
 * one that selects nothing is unsatisfiable (416). The results without a range are shared
 * constants, so asking costs no allocation.
 */
export type RangeResult =
  | { readonly kind: 'none' }
  | { readonly kind: 'partial'; readonly start: number; readonly end: number }
  | { readonly kind: 'unsatisfiable' }

const RANGE_RE = /^bytes=(\d*)-(\d*)$/
const NONE: RangeResult = Object.freeze({ kind: 'none' })
const UNSATISFIABLE: RangeResult = Object.freeze({ kind: 'unsatisfiable' })

export function parseRange(header: string | undefined, size: number): RangeResult {
  if (header === undefined) return NONE
  const h = header.trim()
  if (h.includes(',')) return NONE
  const m = RANGE_RE.exec(h)
  if (!m) return NONE
  const [, a, b] = m as unknown as [string, string, string]
  if (a === '' && b === '') return NONE
  if (a.length > 15 || b.length > 15) return NONE
  if (a === '') {
    const n = Number(b)
    if (n === 0 || size === 0) return UNSATISFIABLE
    return { kind: 'partial', start: Math.max(0, size - n), end: size - 1 }
  }
  const start = Number(a)
  const end = b === '' ? size - 1 : Math.min(Number(b), size - 1)
  if (b !== '' && Number(b) < start) return NONE
  if (start >= size) return UNSATISFIABLE
  return { kind: 'partial', start, end }
}

export function contentRange(start: number, end: number, size: number): string {
  return `bytes ${start}-${end}/${size}`
}

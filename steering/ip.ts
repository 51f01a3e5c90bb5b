/**
 * IP addresses and CIDR blocks as numbers, for the coverage-zone table and the trusted-proxy
 * list. IPv4 is a uint32 `number` (fast Map keys); IPv6 is a 128-bit `bigint`. An
 * IPv4-mapped IPv6 address (::ffff:a.b.c.d, what a dual-stack socket reports) is treated as
 * the IPv4 address it carries, so one zone entry covers both spellings.
 */

export type Family = 4 | 6

export interface Address {
  readonly family: Family
  /** uint32 for IPv4, 128-bit for IPv6. */
  readonly value: number | bigint
}

export interface Cidr {
  readonly family: Family
  readonly bits: number
  /** The network address, host bits zero. */
  readonly value: number | bigint
}

const V4_RE = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/

function parseV4(s: string): number | undefined {
  const m = V4_RE.exec(s)
  if (!m) return undefined
  let v = 0
  for (let i = 1; i <= 4; i++) {
    const part = m[i]!
    if (part.length > 1 && part[0] === '0') return undefined // no octal ambiguity
    const n = Number(part)
    if (n > 255) return undefined
    v = v * 256 + n
  }
  return v
}

function parseV6(input: string): bigint | undefined {
  let s = input
  const pct = s.indexOf('%')
  if (pct !== -1) s = s.slice(0, pct) // zone id (fe80::1%eth0)
  if (s.length < 2 || s.length > 45) return undefined
  const halves = s.split('::')
  if (halves.length > 2) return undefined
  const groups = (h: string): number[] | undefined => {
    if (h === '') return []
    const out: number[] = []
    const parts = h.split(':')
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]!
      if (i === parts.length - 1 && p.includes('.')) {
        const v4 = parseV4(p)
        if (v4 === undefined) return undefined
        out.push(v4 >>> 16, v4 & 0xffff)
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(p)) return undefined
        out.push(Number.parseInt(p, 16))
      }
    }
    return out
  }
  const head = groups(halves[0]!)
  const tail = halves.length === 2 ? groups(halves[1]!) : []
  if (!head || !tail) return undefined
  let all: number[]
  if (halves.length === 2) {
    const fill = 8 - head.length - tail.length
    if (fill < 1) return undefined
    all = [...head, ...new Array<number>(fill).fill(0), ...tail]
  } else all = head
  if (all.length !== 8) return undefined
  let v = 0n
  for (const g of all) v = (v << 16n) | BigInt(g)
  return v
}

const MAPPED_PREFIX = 0xffffn << 32n
const LOW32 = 0xffffffffn

/** Parses an IPv4 or IPv6 address; IPv4-mapped IPv6 comes back as IPv4. */
export function parseAddress(s: string): Address | undefined {
  if (typeof s !== 'string') return undefined
  const v4 = parseV4(s)
  if (v4 !== undefined) return { family: 4, value: v4 }
  if (!s.includes(':')) return undefined
  const v6 = parseV6(s)
  if (v6 === undefined) return undefined
  if (v6 >> 32n === 0xffffn) return { family: 4, value: Number(v6 & LOW32) }
  return { family: 6, value: v6 }
}

export function maskV4(value: number, bits: number): number {
  if (bits === 0) return 0
  return (value & (0xffffffff << (32 - bits))) >>> 0
}

const V6_ALL = (1n << 128n) - 1n
const V6_MASKS: bigint[] = Array.from({ length: 129 }, (_, bits) =>
  bits === 0 ? 0n : (V6_ALL >> BigInt(128 - bits)) << BigInt(128 - bits),
)

export function maskV6(value: bigint, bits: number): bigint {
  return value & V6_MASKS[bits]!
}

/**
 * Parses "a.b.c.d/n" or "x::/n" (a bare address is a /32 or /128). Returns a reason string
 * for anything wrong, including host bits set (a typo that would silently widen a block).
 * An IPv4-mapped IPv6 block (::ffff:0:0/96 and longer) is stored as the IPv4 block.
 */
export function parseCidr(s: unknown): Cidr | string {
  if (typeof s !== 'string' || s === '') return 'expected a CIDR string such as 10.0.0.0/8 or 2001:db8::/32'
  const slash = s.indexOf('/')
  const addrText = slash === -1 ? s : s.slice(0, slash)
  const bitsText = slash === -1 ? undefined : s.slice(slash + 1)
  const isV6Text = addrText.includes(':')
  const raw = isV6Text ? parseV6(addrText) : parseV4(addrText)
  if (raw === undefined) return `"${s}" is not a valid ${isV6Text ? 'IPv6' : 'IPv4'} address`
  const max = isV6Text ? 128 : 32
  let bits = max
  if (bitsText !== undefined) {
    if (!/^\d{1,3}$/.test(bitsText) || Number(bitsText) > max)
      return `"${s}" has a bad prefix length (0..${max})`
    bits = Number(bitsText)
  }
  if (!isV6Text) {
    const v = raw as number
    if (maskV4(v, bits) !== v)
      return `"${s}" has host bits set (did you mean ${formatV4(maskV4(v, bits))}/${bits}?)`
    return { family: 4, bits, value: v }
  }
  const v = raw as bigint
  if (maskV6(v, bits) !== v) return `"${s}" has host bits set`
  if (bits >= 96 && v >> 32n === 0xffffn && (v & ~LOW32) === MAPPED_PREFIX)
    return { family: 4, bits: bits - 96, value: Number(v & LOW32) }
  return { family: 6, bits, value: v }
}

export function cidrContains(c: Cidr, a: Address): boolean {
  if (c.family !== a.family) return false
  return c.family === 4
    ? maskV4(a.value as number, c.bits) === c.value
    : maskV6(a.value as bigint, c.bits) === c.value
}

/** A small list of CIDRs (trusted proxies): linear scan is right for a handful. */
export function inAnyCidr(list: readonly Cidr[], a: Address): boolean {
  for (const c of list) if (cidrContains(c, a)) return true
  return false
}

export function formatV4(v: number): string {
  return [v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255].join('.')
}

/** Eight full groups (no `::`): plain, and what node's BlockList parses. */
export function formatV6(v: bigint): string {
  const groups: string[] = []
  for (let i = 7; i >= 0; i--) groups.push(((v >> BigInt(i * 16)) & 0xffffn).toString(16))
  return groups.join(':')
}

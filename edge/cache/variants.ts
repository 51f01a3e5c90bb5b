/**
 * Variants (RFC 9111 §4.1): an answer whose Vary names request fields is stored under a
 * secondary key made from the values of those fields in the request that fetched it, and served
 * only to requests with the same values. The fields that count are the Vary's fields whose
 * client value reaches the upstream (forward.ts): a field the edge never forwards (its managed
 * fields such as Accept-Encoding, the deny list, hop-by-hop fields) cannot have selected the
 * answer, so it splits nothing. Names are lower-cased, sorted and deduplicated; values are
 * normalised (list members trimmed and joined with `,`; Accept-Encoding reduced to the encodings
 * the edge knows, were it ever forwarded).
 *
 * A variant's key is the URL's key plus `#v=` and a hash of its secondary key: a canonical
 * target never holds `#`, so it is never a URL's key, and the title, version and path of the key
 * are those of the URL (purge by title, the title index, the disk files all work unchanged). The
 * fields are kept in the entry's meta (`varyKey`), so a restart (the disk tier) and a cluster
 * worker (its mirror of the primary's index) know them again from what is stored.
 *
 * Each tier keeps a VariantIndex (URL → fields and variant keys, oldest first): a URL holds
 * either one plain entry or its variants, at most `maxVariants` of them (the oldest goes first);
 * deleting a URL deletes its variants.
 */
import { createHash } from 'node:crypto'

/** Separates a URL's key from a variant's hash (`#` never appears in a canonical target). */
export const VARIANT_MARK = '#v='

export type RequestFields = Readonly<Record<string, string | string[] | undefined>>

/** The URL's key of a stored key (itself for a plain entry). */
export function primaryOf(key: string): string {
  const i = key.indexOf('#')
  return i === -1 ? key : key.slice(0, i)
}

export function isVariantKey(key: string): boolean {
  return key.includes(VARIANT_MARK)
}

/**
 * The fields a response with this Vary is keyed by: those a client's value of which reaches the
 * upstream, lower-case, sorted, unique; undefined when there is none (the answer serves every
 * client). `Vary: *` is never stored (freshness.ts refuses it first).
 */
export function keyedFields(
  vary: string | undefined,
  forwards: ((field: string) => boolean) | undefined,
): string[] | undefined {
  if (vary === undefined || forwards === undefined) return undefined
  const out = new Set<string>()
  for (const f of vary.split(',')) {
    const field = f.trim().toLowerCase()
    if (field !== '' && field !== '*' && forwards(field)) out.add(field)
  }
  return out.size === 0 ? undefined : [...out].sort()
}

/** Encodings the edge knows, in its order of preference (compress.ts serves them). */
export const KNOWN_ENCODINGS = ['br', 'gzip'] as const
export type KnownEncoding = (typeof KNOWN_ENCODINGS)[number]

/**
 * The known encodings an Accept-Encoding accepts (q > 0; `*` counts for those not named), in the
 * edge's order of preference. An absent field accepts none: the edge then sends identity.
 */
export function acceptedEncodings(value: string | string[] | undefined): KnownEncoding[] {
  if (value === undefined) return []
  const text = Array.isArray(value) ? value.join(',') : value
  const q = new Map<string, number>()
  for (const member of text.split(',')) {
    const [name = '', ...params] = member.split(';')
    const coding = name.trim().toLowerCase()
    if (coding === '') continue
    let weight = 1
    for (const p of params) {
      const m = /^\s*q\s*=\s*([0-9.]{1,5})\s*$/i.exec(p)
      if (m) weight = Number(m[1])
    }
    q.set(coding, Number.isFinite(weight) ? weight : 0)
  }
  const star = q.get('*')
  return KNOWN_ENCODINGS.filter((e) => (q.get(e) ?? star ?? 0) > 0)
}

/** A field's value as the secondary key holds it. */
function normalised(field: string, value: string | string[] | undefined): string {
  if (value === undefined) return ''
  if (field === 'accept-encoding') return acceptedEncodings(value).join(',')
  const text = Array.isArray(value) ? value.join(',') : value
  return text
    .split(',')
    .map((m) => m.trim())
    .join(',')
}

/** The secondary key of a request for `fields`: `name=value` lines, in the fields' order. */
export function secondaryKey(fields: readonly string[], headers: RequestFields): string {
  let out = ''
  for (const f of fields) out += `${f}=${normalised(f, headers[f])}\n`
  return out
}

/** The key a request's variant of `primary` is stored under. */
export function variantKey(primary: string, fields: readonly string[], headers: RequestFields): string {
  const hash = createHash('sha256').update(secondaryKey(fields, headers)).digest('hex').slice(0, 24)
  return `${primary}${VARIANT_MARK}${hash}`
}

interface Variants {
  fields: readonly string[]
  /** Oldest first. */
  keys: Set<string>
}

/** One tier's variants by URL. Bounded by what the tier holds: a URL is here while a variant of it is. */
export class VariantIndex {
  private readonly byPrimary = new Map<string, Variants>()

  constructor(public maxVariants = Number.POSITIVE_INFINITY) {}

  /** The fields the URL's variants are keyed by (the newest's), undefined when it has none. */
  fields(primary: string): readonly string[] | undefined {
    return this.byPrimary.get(primary)?.fields
  }

  /** The keys of the URL's variants, oldest first. */
  keys(primary: string): string[] {
    const v = this.byPrimary.get(primary)
    return v ? [...v.keys] : []
  }

  /**
   * Records a stored key. Returns the keys the tier must drop: for a variant, the URL's plain
   * entry and the oldest variants past the bound; for a plain entry, the URL's variants.
   */
  add(key: string, fields: readonly string[] | undefined): string[] {
    const primary = primaryOf(key)
    // A slice (slices.ts) is a piece of its URL's object, not a variant: it replaces nothing.
    if (primary !== key && !key.includes(VARIANT_MARK)) return []
    if (primary === key) {
      const old = this.keys(key)
      this.byPrimary.delete(key)
      return old
    }
    let v = this.byPrimary.get(primary)
    if (!v) {
      v = { fields: fields ?? [], keys: new Set() }
      this.byPrimary.set(primary, v)
    } else if (fields) v.fields = fields
    v.keys.delete(key)
    v.keys.add(key)
    const drop = [primary]
    for (const k of v.keys) {
      if (v.keys.size <= this.maxVariants) break
      v.keys.delete(k)
      drop.push(k)
    }
    return drop
  }

  remove(key: string): void {
    const primary = primaryOf(key)
    if (primary === key || !key.includes(VARIANT_MARK)) return
    const v = this.byPrimary.get(primary)
    if (!v?.keys.delete(key)) return
    if (v.keys.size === 0) this.byPrimary.delete(primary)
  }
}

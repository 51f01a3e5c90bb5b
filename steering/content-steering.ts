/**
 * HLS Content Steering (Apple's spec; hls.js's content-steering-controller): a master
 * playlist whose variants are repeated once per Pathway (one Pathway per candidate edge,
 * PATHWAY-ID = edge id, absolute URIs on that edge), with EXT-X-CONTENT-STEERING pointing
 * back at steering; the player then asks steering every TTL for a PATHWAY-PRIORITY and moves
 * between edges without a new page load.
 *
 * The edge's master is parsed through src/hls to check it really is a master playlist, and
 * re-emitted line by line from the original tags, so every attribute the origin wrote
 * (CHANNELS, HDCP-LEVEL, VIDEO-RANGE...) survives; only URI, GROUP-ID (one rendition group
 * per Pathway, as the spec's Pathway cloning does) and PATHWAY-ID change.
 *
 * The player reads this master from steering, so a relative URI would resolve against steering:
 * every URI attribute is made absolute. Those of variants and renditions are on each Pathway's
 * edge; those of the other tags, written once (EXT-X-SESSION-KEY, EXT-X-SESSION-DATA,
 * EXT-X-IMAGE-STREAM-INF, any other with a URI attribute), on the edge that served the master.
 * Variables (EXT-X-DEFINE) a URI uses are substituted first where the master defines them
 * (NAME/VALUE), so a variable holding a whole base URL still leads where it did; QUERYPARAM
 * ones are left for the player, which takes them from steering's URL.
 */
import { CdnError } from '../src/errors.js'
import { parseMasterPlaylist } from '../src/hls/playlist.js'
import { EDGE_ID_RE } from './registry.js'

export interface Pathway {
  readonly id: string
  /** The edge's base URL (no trailing slash). */
  readonly base: string
}

/** Splits an attribute list on commas outside quotes: `A=1,B="x,y"` → [['A','1'],['B','"x,y"']]. */
export function parseAttributes(list: string): [string, string][] {
  const out: [string, string][] = []
  const re = /([A-Z0-9-]+)=("[^"]*"|[^,]*)(?:,|$)/g
  for (const m of list.matchAll(re)) out.push([m[1]!, m[2]!])
  return out
}

function formatAttributes(attrs: readonly [string, string][]): string {
  return attrs.map(([k, v]) => `${k}=${v}`).join(',')
}

/** A tag line's name and attribute list (`#EXT-X-SESSION-KEY:METHOD=...`), when it has both. */
const ATTR_TAG_RE = /^(#EXT[A-Z0-9-]*:)(.*)$/

const unquote = (v: string) => (v.startsWith('"') ? v.slice(1, -1) : v)
const quote = (v: string) => `"${v.replace(/"/g, '')}"`
/**
 * A variant's attributes naming a rendition group, renamed with the groups. CLOSED-CAPTIONS
 * names one when quoted; its enumerated NONE (unquoted) names none and stays as it is.
 */
const GROUP_ATTRS = new Set(['AUDIO', 'VIDEO', 'SUBTITLES', 'CLOSED-CAPTIONS'])

/**
 * Rewrites `text` (the master as fetched from `sourceUrl`, the URL of the master on
 * `sourceBase`) into a content-steering master with one Pathway per entry of `pathways`.
 * `serverUri` is the steering manifest URI written into EXT-X-CONTENT-STEERING.
 */
export function steeringMaster(
  text: string,
  sourceUrl: string,
  sourceBase: string,
  pathways: readonly Pathway[],
  serverUri: string,
): string {
  if (!text.startsWith('#EXTM3U')) throw new CdnError('CDN_ERR_PLAYLIST', "the edge's master: no #EXTM3U")
  parseMasterPlaylist(text, "the edge's master")
  if (pathways.length === 0) throw new CdnError('CDN_ERR_NO_HEALTHY_EDGE', 'no pathway to offer')

  const lines = text.split(/\r?\n/)
  const resolve = uriResolver(lines, sourceUrl)
  // Each URI resolved against the source master, then expressed relative to the source
  // edge's base, so it can be re-based on every other edge (the signed prefix, if any, is
  // part of that path: a token covers title and expiry, not an edge).
  const rebase = (uri: string, base: string): string => {
    const abs = resolve(uri)
    return abs.startsWith(`${sourceBase}/`) ? base + abs.slice(sourceBase.length) : abs
  }

  const header: string[] = []
  const media: [string, string][][] = []
  const variants: { tag: string; attrs: [string, string][]; uri: string }[] = []
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim()
    if (line === '' || line === '#EXTM3U') continue
    if (line.startsWith('#EXT-X-CONTENT-STEERING:')) continue // ours replaces any upstream one
    if (line.startsWith('#EXT-X-MEDIA:')) media.push(parseAttributes(line.slice(13)))
    else if (line.startsWith('#EXT-X-STREAM-INF:')) {
      let j = i + 1
      while (j < lines.length && (lines[j]!.trim() === '' || lines[j]!.trim().startsWith('#'))) j++
      const uri = lines[j]?.trim()
      if (!uri) throw new CdnError('CDN_ERR_PLAYLIST', 'EXT-X-STREAM-INF without a URI')
      variants.push({ tag: '#EXT-X-STREAM-INF:', attrs: parseAttributes(line.slice(18)), uri })
      i = j
    } else if (line.startsWith('#EXT-X-I-FRAME-STREAM-INF:')) {
      variants.push({ tag: '#EXT-X-I-FRAME-STREAM-INF:', attrs: parseAttributes(line.slice(26)), uri: '' })
    } else if (line.startsWith('#')) header.push(absoluteUris(line, resolve))
  }

  const out = ['#EXTM3U', ...header]
  out.push(`#EXT-X-CONTENT-STEERING:SERVER-URI=${quote(serverUri)},PATHWAY-ID=${quote(pathways[0]!.id)}`)
  for (const p of pathways) {
    const group = (g: string) => quote(`${unquote(g)}.${p.id}`)
    out.push('')
    for (const attrs of media) {
      const a = attrs.map(([k, v]): [string, string] =>
        k === 'GROUP-ID' ? [k, group(v)] : k === 'URI' ? [k, quote(rebase(unquote(v), p.base))] : [k, v],
      )
      out.push(`#EXT-X-MEDIA:${formatAttributes(a)}`)
    }
    for (const v of variants) {
      const a = v.attrs
        .filter(([k]) => k !== 'PATHWAY-ID')
        .map(([k, val]): [string, string] => {
          if (GROUP_ATTRS.has(k) && val.startsWith('"')) return [k, group(val)]
          if (k === 'URI') return [k, quote(rebase(unquote(val), p.base))]
          return [k, val]
        })
      a.push(['PATHWAY-ID', quote(p.id)])
      out.push(`${v.tag}${formatAttributes(a)}`)
      if (v.uri) out.push(rebase(v.uri, p.base))
    }
  }
  return `${out.join('\n')}\n`
}

/**
 * `line` with the value of its URI attribute (if it is a tag with an attribute list that has
 * one) passed through `absolute`; every other byte as it was. A line that is not an attribute
 * list read back as it was written (a comment, EXTINF-like values) is left alone.
 */
function absoluteUris(line: string, absolute: (uri: string) => string): string {
  const m = ATTR_TAG_RE.exec(line)
  if (!m) return line
  const attrs = parseAttributes(m[2]!)
  if (formatAttributes(attrs) !== m[2] || !attrs.some(([k]) => k === 'URI')) return line
  const a = attrs.map(([k, v]): [string, string] => (k === 'URI' ? [k, quote(absolute(unquote(v)))] : [k, v]))
  return `${m[1]!}${formatAttributes(a)}`
}

/**
 * Resolves a URI of the master against `sourceUrl`, after substituting the variables the master
 * defines with NAME/VALUE (EXT-X-DEFINE): the URL parser would otherwise percent-encode their
 * braces. A reference the master does not define by value (QUERYPARAM) is kept as a reference,
 * for the player. Throws CDN_ERR_PLAYLIST for a URI that does not resolve.
 */
function uriResolver(lines: readonly string[], sourceUrl: string): (uri: string) => string {
  const values = new Map<string, string>()
  const refs = new Set<string>()
  for (const l of lines) {
    if (!l.trim().startsWith('#EXT-X-DEFINE:')) continue
    const a = new Map(parseAttributes(l.trim().slice(14)).map(([k, v]) => [k, unquote(v)]))
    const name = a.get('NAME') ?? a.get('QUERYPARAM')
    if (name === undefined) continue
    if (a.has('NAME') && a.has('VALUE')) values.set(name, a.get('VALUE')!)
    else refs.add(name)
  }
  const VAR_RE = /\{\$([A-Za-z0-9_-]+)\}/g
  const ENCODED_RE = /%7B\$([A-Za-z0-9_-]+)%7D/g
  return (uri) => {
    const substituted = values.size ? uri.replace(VAR_RE, (ref, n: string) => values.get(n) ?? ref) : uri
    let abs: string
    try {
      abs = new URL(substituted, sourceUrl).href
    } catch {
      throw new CdnError('CDN_ERR_PLAYLIST', `the edge's master: URI ${JSON.stringify(uri)} does not resolve`)
    }
    return refs.size ? abs.replace(ENCODED_RE, (enc, n: string) => (refs.has(n) ? `{$${n}}` : enc)) : abs
  }
}

/** Most Pathways a steering request may name (the --pathways bound). */
export const MAX_PATHWAYS = 16

/**
 * The Pathway ids a master defined, as its SERVER-URI carries them (`pathways=a,b,c`): each an
 * edge id, none twice, at most MAX_PATHWAYS. Throws CDN_ERR_BAD_REQUEST otherwise.
 */
export function parsePathwayIds(v: unknown, name = 'pathways'): string[] {
  const bad = (why: string) => new CdnError('CDN_ERR_BAD_REQUEST', `${name}: ${why}`)
  if (typeof v !== 'string' || v === '') throw bad('expected a comma-separated list of edge ids')
  const ids = v.split(',')
  if (ids.length > MAX_PATHWAYS) throw bad(`at most ${MAX_PATHWAYS}`)
  const seen = new Set<string>()
  for (const id of ids) {
    if (!EDGE_ID_RE.test(id)) throw bad(`${JSON.stringify(id)} is not an edge id`)
    if (seen.has(id)) throw bad(`"${id}" named twice`)
    seen.add(id)
  }
  return ids
}

/**
 * The PATHWAY-PRIORITY for a client whose master defined `pathways`: only those (a player
 * ignores an id its master did not define, so naming another edge would leave it on a dead
 * Pathway), best first: the ones in `ranked` (the current decision, usable edges best first) in
 * its order, then other usable ones, then the usable ones in `failed` (they failed to serve the
 * master when it was made), then the rest (down, overloaded, unchecked, gone) in the master's
 * order. Never empty: the last ones stay listed rather than dropped.
 */
export function pathwayPriority(
  pathways: readonly string[],
  ranked: readonly string[],
  usable: (id: string) => boolean,
  failed: ReadonlySet<string> = new Set(),
): string[] {
  const rank = new Map(ranked.map((id, i) => [id, i]))
  const group = (id: string) => {
    const inRank = rank.has(id)
    if (!inRank && !usable(id)) return 3
    return failed.has(id) ? 2 : inRank ? 0 : 1
  }
  return pathways
    .map((id, i) => ({ id, group: group(id), at: rank.get(id) ?? ranked.length + i }))
    .sort((a, b) => a.group - b.group || a.at - b.at)
    .map((p) => p.id)
}

/** The steering manifest hls.js expects (content-steering-controller: VERSION 1, TTL, priority). */
export interface SteeringManifest {
  readonly VERSION: 1
  readonly TTL: number
  readonly 'PATHWAY-PRIORITY': readonly string[]
}

export function steeringManifest(ttlSec: number, priority: readonly string[]): SteeringManifest {
  return { VERSION: 1, TTL: ttlSec, 'PATHWAY-PRIORITY': priority }
}

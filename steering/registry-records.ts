/**
 * The registry's records as steering holds them (registry-watch.ts feeds them from etcd): every
 * valid record, bounded by maxEdges; the ones steering takes (all but a tier-1 record at a URL
 * the fleet file or another record holds: url-claims.ts); and the keys refused, by reason (an
 * invalid value, past maxEdges: full-refusals.ts). Ids only for refused keys, never values.
 */
import type { IKeyValue } from 'etcd3'
import { type EdgeRecord, parseRecord } from '../src/fleet-registry.js'
import type { FullRefusals } from './full-refusals.js'
import type { EdgeConfig } from './registry.js'
import { UrlClaims } from './url-claims.js'

/** Why a registry key is left out of steering's fleet (cdn_steering_registry_left_out). */
export type LeftOutReason = 'bad-record' | 'full' | 'duplicate-url'

export interface RegistryRecordsOptions {
  readonly prefix: string
  readonly maxEdges: number
  /** The fleet file's edges: their ids are the file's to decide, their URLs never a record's. */
  readonly file?: readonly Pick<EdgeConfig, 'id' | 'url'>[]
  readonly log: {
    info(obj: Record<string, unknown>, msg: string): void
    warn(obj: Record<string, unknown>, msg: string): void
  }
}

export class RegistryRecords {
  /** Every valid record (bounded by maxEdges). */
  private readonly all = new Map<string, EdgeRecord>()
  /** The records steering takes: all but the ones at a URL another edge holds. */
  readonly taken = new Map<string, EdgeRecord>()
  private claims: UrlClaims
  private fileIds: ReadonlySet<string>
  /**
   * Ids whose key is refused, and why (the gauge's `bad-record`; `full` is full-refusals.ts): the
   * key's latest value is invalid. An id leaves them when its key is deleted or put again with a
   * value that is taken. At most maxEdges (past that the gauge reads maxEdges: at least that many).
   */
  private readonly bad = new Set<string>()
  /** An id's key was refused as a bad record past maxEdges: `bad` does not count it (until `clear`). */
  private badUntracked = false

  constructor(
    private readonly options: RegistryRecordsOptions,
    private readonly full: FullRefusals,
  ) {
    this.claims = new UrlClaims(options.file ?? [])
    this.fileIds = new Set((options.file ?? []).map((e) => e.id))
  }

  /** Records taken, by id order (the same set gives the same list on every instance). */
  get current(): EdgeRecord[] {
    return [...this.taken.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  }

  /** Keys refused as they stand, by reason. For the steering's metrics. */
  get leftOut(): Record<LeftOutReason, number> {
    return {
      'bad-record': this.bad.size,
      full: this.full.size,
      'duplicate-url': this.all.size - this.taken.size,
    }
  }

  /** Records there is room for. */
  room(): number {
    return this.options.maxEdges - this.all.size
  }

  /** How many keys these account for; undefined when some refused ones are not tracked. */
  held(): number | undefined {
    return !this.badUntracked && this.full.complete
      ? this.all.size + this.bad.size + this.full.size
      : undefined
  }

  /** A full read starts again from etcd's state. */
  clear(): void {
    this.all.clear()
    this.taken.clear()
    this.claims.clear()
    this.bad.clear()
    this.badUntracked = false
    this.full.clear()
  }

  /** The fleet file was read again: its ids and URLs hold from the next full read. */
  setFile(file: readonly Pick<EdgeConfig, 'id' | 'url'>[]): void {
    this.claims = new UrlClaims(file)
    this.fileIds = new Set(file.map((e) => e.id))
  }

  /** Applies one key's value; returns the ids it may have changed (none when refused). */
  put(kv: IKeyValue): string[] {
    const { prefix, log, maxEdges } = this.options
    const key = kv.key.toString()
    const record = parseRecord(key, kv.value.toString(), prefix)
    if (Array.isArray(record)) {
      log.warn({ event: 'registry-bad-record', key, problems: record }, `fleet registry: ${key} ignored`)
      const id = key.slice(prefix.length)
      this.full.forget(id)
      if (this.bad.has(id) || this.bad.size < maxEdges) this.bad.add(id)
      else this.badUntracked = true
      return this.drop(id)
    }
    const { id, url } = record
    this.bad.delete(id)
    if (!this.all.has(id) && this.all.size >= maxEdges) {
      log.warn(
        { event: 'registry-full', key, maxEdges },
        `fleet registry: ${key} ignored (over ${maxEdges} edges)`,
      )
      this.full.refuse(id, BigInt(kv.mod_revision))
      return []
    }
    this.full.forget(id)
    this.all.set(id, record)
    let promoted: string[]
    if (record.tier === 1 && !this.fileIds.has(id)) {
      const claim = this.claims.claim(id, url, BigInt(kv.mod_revision))
      promoted = claim.promoted
      const holder = claim.holder
      if (holder)
        log.warn(
          { event: 'registry-duplicate-url', id, holder: holder.id, url },
          `fleet registry: edge "${id}" left out: same URL as ${holder.file ? 'the fleet file' : 'the registry'}'s edge "${holder.id}"`,
        )
    } else promoted = this.claims.drop(id)
    return this.admit([id], promoted)
  }

  /** `id`'s key was deleted; returns the ids that changed. */
  deleted(id: string): string[] {
    this.bad.delete(id)
    this.full.forget(id)
    return this.drop(id)
  }

  /** Forgets `id`'s record; returns the ids that changed (none when it had none). */
  private drop(id: string): string[] {
    if (!this.all.delete(id)) return []
    return this.admit([id], this.claims.drop(id))
  }

  /** Brings `taken` up to date for `ids` and for `promoted` (which took a URL a record left). */
  private admit(ids: string[], promoted: readonly string[]): string[] {
    for (const p of promoted)
      this.options.log.info(
        { event: 'registry-url-free', id: p, url: this.all.get(p)?.url },
        `fleet registry: edge "${p}" taken in: its URL is free`,
      )
    const changed = [...ids, ...promoted]
    for (const id of changed) {
      const r = this.all.get(id)
      if (r && (r.tier !== 1 || this.fileIds.has(id) || this.claims.holds(id))) this.taken.set(id, r)
      else this.taken.delete(id)
    }
    return changed
  }
}

/**
 * The fleet steering ranks: the file's edges, then the registry's tier-1 edges (parents are
 * registered but never steered to). The file wins an id both name: an operator's pin.
 */
export function mergeFleet(
  file: readonly EdgeConfig[],
  records: readonly EdgeRecord[],
): { edges: EdgeConfig[]; shadowed: string[] } {
  const ids = new Set(file.map((e) => e.id))
  const edges = [...file]
  const shadowed: string[] = []
  for (const r of records) {
    if (r.tier !== 1) continue
    if (ids.has(r.id)) {
      shadowed.push(r.id)
      continue
    }
    edges.push(recordConfig(r))
  }
  return { edges, shadowed }
}

/** A registered edge as steering's fleet holds it. */
export function recordConfig(r: EdgeRecord): EdgeConfig {
  return Object.freeze({
    id: r.id,
    url: r.url,
    site: r.site,
    lat: r.lat,
    lon: r.lon,
    capacityBytesPerSec: r.capacityBytesPerSec,
    weight: r.weight ?? 1,
    ...(r.cluster ? { cluster: r.cluster } : {}),
  })
}

/**
 * The fleet as steering holds it between health rounds: each member's config, its slot in
 * the spatial index, its health, and the input decisions read. The health loop (health.ts)
 * owns the I/O; this file owns the bookkeeping, so that a change costs what it touches:
 *
 * - an edge joining, leaving or changing is one map operation, one index update and one
 *   slot of `bySlot`: no list over the fleet is rebuilt (the fleet-order lists that /edges,
 *   /regions and the metrics read are built when first read after a change);
 * - decisions read one `bySlot` array updated in place, and each flip of an edge's usability
 *   is `touch`ed in the index, so cached candidate lists near it are walked again and the
 *   others stay (candidate-cache.ts);
 * - fail-static writes the last known-good usability into the same array;
 * - a round costs the members it checked: only their slots are written when it settles (all
 *   of them when fail-static starts or ends), the counts it decides on are kept as health
 *   changes, and the known-good usability is updated for the members changed since the last
 *   good round. A round may check part of the fleet (the steering simulation checks only the
 *   edges whose answer can differ from their last one).
 */
import { FleetIndex } from './fleet-index.js'
import { type EdgeHealth, initialHealth, isUsable } from './health-state.js'
import type { EdgeConfig } from './registry.js'
import type { EdgeInput } from './select.js'

/** One fleet member: its config, its slot in the index, and what steering believes of it. */
export interface Member {
  config: EdgeConfig
  slot: number
  health: EdgeHealth
  /** What the live health says. */
  input: EdgeInput
}

export interface ViewFields {
  readonly failStatic: boolean
  readonly failStaticSince: number | null
  readonly usableCount: number
  readonly rounds: number
}

export function toInput(e: EdgeConfig, h: EdgeHealth, prev?: EdgeInput): EdgeInput {
  const titles = h.status?.titlesComplete ?? []
  const same =
    prev && prev.titlesComplete!.size === titles.length && titles.every((t) => prev.titlesComplete!.has(t))
  return {
    id: e.id,
    url: e.url,
    site: e.site,
    lat: e.lat,
    lon: e.lon,
    weight: e.weight,
    load: h.load,
    usable: isUsable(h),
    titlesComplete: same ? prev.titlesComplete! : new Set(titles),
  }
}

const sameConfig = (a: EdgeConfig, b: EdgeConfig) =>
  a === b ||
  (a.id === b.id &&
    a.url === b.url &&
    a.site === b.site &&
    a.lat === b.lat &&
    a.lon === b.lon &&
    a.capacityBytesPerSec === b.capacityBytesPerSec &&
    a.cluster === b.cluster &&
    a.weight === b.weight)

export type Upsert = 'joined' | 'changed' | 'same'

export class FleetState {
  readonly index = new FleetIndex()
  private readonly members = new Map<string, Member>()
  private readonly slots: (EdgeInput | undefined)[] = []
  private usable = 0
  /** Members in rotation, and members down, by their own health (fail-static aside). */
  private liveUsable = 0
  private liveDown = 0
  /** Members whose health changed since the last settle: their slots are written then. */
  private readonly changed = new Set<Member>()
  /** Members whose usability may differ from `good`: changed since the last good round. */
  private readonly sinceGood = new Set<Member>()
  /** Usability by id in the last round that had an edge in rotation; null before one. */
  private good: Map<string, boolean> | null = null
  private mode: { failStatic: boolean; since: number | null; rounds: number } = {
    failStatic: false,
    since: null,
    rounds: 0,
  }
  private version = 0
  private lists: {
    version: number
    edges: EdgeInput[]
    health: EdgeHealth[]
    configs: EdgeConfig[]
  } | null = null

  get size(): number {
    return this.members.size
  }

  get bySlot(): readonly (EdgeInput | undefined)[] {
    return this.slots
  }

  get fields(): ViewFields {
    const { failStatic, since, rounds } = this.mode
    return { failStatic, failStaticSince: since, usableCount: this.usable, rounds }
  }

  /** Members in rotation by their own health (fail-static aside). */
  get liveUsableCount(): number {
    return this.liveUsable
  }

  /** True when every member is down by its own health (and for an empty fleet). */
  get allDown(): boolean {
    return this.liveDown === this.members.size
  }

  get hasGood(): boolean {
    return this.good !== null
  }

  /** The members in fleet order (a copy: a round works through it while edges come and go). */
  list(): Member[] {
    return [...this.members.values()]
  }

  /** A member's live health by id (fail-static aside). */
  healthOf(id: string): EdgeHealth | undefined {
    return this.members.get(id)?.health
  }

  /** A member as decisions see it (fail-static's usability included), by id. */
  inputOf(id: string): EdgeInput | undefined {
    const m = this.members.get(id)
    return m && this.slots[m.slot]
  }

  has(m: Member): boolean {
    return this.members.get(m.config.id) === m
  }

  /**
   * Adds an edge, or updates it in place (moving it in the index only if its place changed);
   * an edge whose URL changed starts over, unchecked (`replace`).
   */
  upsert(e: EdgeConfig): Upsert {
    const m = this.members.get(e.id)
    if (!m) {
      this.join(e)
      return 'joined'
    }
    if (sameConfig(m.config, e)) return 'same'
    if (m.config.url !== e.url) return this.replace(m, e)
    if (m.config.site !== e.site || m.config.lat !== e.lat || m.config.lon !== e.lon) {
      this.vacate(m.slot)
      this.index.remove(m.slot)
      m.slot = this.index.add(e.site, e)
    }
    m.config = e
    m.input = toInput(e, m.health, m.input)
    this.sinceGood.add(m)
    this.publish(m)
    this.version++
    return 'changed'
  }

  /**
   * An edge at a new URL is a new edge: nothing checked at the old URL says anything about the
   * new one, so it starts unchecked, out of rotation until its first good check, and out of the
   * known-good usability fail-static would give it (as an edge that joins). A new member object,
   * so a check of the old URL still in flight is dropped when its round settles (`has`). It
   * keeps its place in the fleet order.
   */
  private replace(m: Member, e: EdgeConfig): Upsert {
    this.vacate(m.slot)
    this.index.remove(m.slot)
    this.count(m.health, -1)
    this.changed.delete(m)
    this.sinceGood.delete(m)
    this.good?.delete(e.id)
    this.join(e)
    return 'changed'
  }

  /** A new member, unchecked (a replaced one keeps its place in the fleet order). */
  private join(e: EdgeConfig): void {
    const health = initialHealth(e.id)
    const member = { config: e, slot: this.index.add(e.site, e), health, input: toInput(e, health) }
    this.members.set(e.id, member)
    this.count(health, 1)
    this.sinceGood.add(member)
    this.publish(member)
    this.version++
  }

  remove(id: string): boolean {
    const m = this.members.get(id)
    if (!m) return false
    this.vacate(m.slot)
    this.index.remove(m.slot)
    this.members.delete(id)
    this.count(m.health, -1)
    this.changed.delete(m)
    this.sinceGood.delete(m)
    this.good?.delete(id)
    this.version++
    return true
  }

  /** Makes the fleet this list (diffed by id): the file at start, a full registry read. */
  setAll(edges: readonly EdgeConfig[]): { joined: number; left: number; changed: number } {
    const wanted = new Set<string>()
    for (const e of edges) wanted.add(e.id)
    let left = 0
    for (const id of [...this.members.keys()]) if (!wanted.has(id) && this.remove(id)) left++
    let joined = 0
    let changed = 0
    for (const e of edges) {
      const r = this.upsert(e)
      if (r === 'joined') joined++
      else if (r === 'changed') changed++
    }
    return { joined, left, changed }
  }

  /** A member's new health from a check; published by the round's `settle`. */
  setHealth(m: Member, h: EdgeHealth): void {
    this.count(m.health, -1)
    this.count(h, 1)
    m.health = h
    m.input = toInput(m.config, h, m.input)
    this.changed.add(m)
    this.sinceGood.add(m)
  }

  private count(h: EdgeHealth, d: 1 | -1): void {
    if (isUsable(h)) this.liveUsable += d
    if (h.state === 'down') this.liveDown += d
  }

  /**
   * Ends a round: live usability, or (fail-static) the last known-good one, goes to the slots
   * of the members changed since the last settle (of every member when fail-static starts or
   * ends); with `good`, this round's usability becomes the known-good one.
   */
  settle(failStatic: boolean, since: number | null, rounds: number, good: boolean): void {
    const flip = failStatic !== this.mode.failStatic
    this.mode = { failStatic, since, rounds }
    for (const m of flip ? this.members.values() : this.changed) this.publish(m)
    this.changed.clear()
    if (good) {
      if (this.good === null)
        this.good = new Map([...this.members.values()].map((m) => [m.config.id, m.input.usable]))
      else for (const m of this.sinceGood) this.good.set(m.config.id, m.input.usable)
      this.sinceGood.clear()
    }
    this.version++
  }

  /** Writes a member's input (with fail-static's usability) to its slot; touches a flip. */
  private publish(m: Member): void {
    let eff = m.input
    if (this.mode.failStatic) {
      const usable = this.good?.get(m.config.id) ?? false
      if (usable !== eff.usable) eff = { ...eff, usable }
    }
    const old = this.slots[m.slot]
    if (old?.usable) this.usable--
    if (eff.usable) this.usable++
    if (old && old.usable !== eff.usable) this.index.touch(m.slot)
    this.slots[m.slot] = eff
  }

  private vacate(slot: number): void {
    if (this.slots[slot]?.usable) this.usable--
    this.slots[slot] = undefined
  }

  /** Fleet-order lists, built on first read after a change. */
  private built(): NonNullable<FleetState['lists']> {
    if (this.lists?.version === this.version) return this.lists
    const members = [...this.members.values()]
    this.lists = {
      version: this.version,
      edges: members.map((m) => this.slots[m.slot]!),
      health: members.map((m) => m.health),
      configs: members.map((m) => m.config),
    }
    return this.lists
  }

  edges(): readonly EdgeInput[] {
    return this.built().edges
  }

  health(): readonly EdgeHealth[] {
    return this.built().health
  }

  configs(): readonly EdgeConfig[] {
    return this.built().configs
  }
}

/**
 * A spatial index of the fleet, so a decision costs the same at 10 edges and at 10,000.
 *
 * Each edge has a slot: its position as a unit vector (ranking by distance is a dot product)
 * and a place in a k-d tree over those vectors (on the unit sphere the straight-line chord
 * orders points exactly as the great-circle distance does). A decision walks the tree
 * best-first, nearest first, and stops as soon as it holds every slot that can matter to
 * select()'s ranking: the nearest usable edge, every usable edge in its band, its site, and
 * the `maxResults` nearest others with their distance ties. That set goes to the very same
 * ranking code as a full scan (select.ts `rankCandidates`), so both give the same list; a
 * property test holds them equal on random fleets.
 *
 * Changes are incremental: an edge joining descends to a leaf (a leaf over LEAF_MAX splits at
 * its median), an edge leaving is taken out of its leaf, a health change is no change here at
 * all (usability is read from the view's edges at query time). Boxes only grow, which keeps
 * them true bounds. Nothing is rebuilt per change.
 */
import { type CacheEntry, CandidateCache, ChangeLog } from './candidate-cache.js'
import type { Location } from './geo.js'
import {
  bandMinDot,
  type EdgeInput,
  type Ranked,
  rankCandidates,
  type SelectOptions,
  unitVector,
} from './select.js'

const LEAF_MAX = 16
/** Slack on distance keys: ordering is by 2 − 2·dot, never trusted to the last bit. */
const EPS = 1e-9

class KdNode {
  minX = Infinity
  minY = Infinity
  minZ = Infinity
  maxX = -Infinity
  maxY = -Infinity
  maxZ = -Infinity
  /** Slots, for a leaf; null once split. */
  items: number[] | null = []
  axis = 0
  split = 0
  left: KdNode | null = null
  right: KdNode | null = null
}

/** A binary min-heap of (key, node or slot), reused across queries (decisions are synchronous). */
class Frontier {
  keys: number[] = []
  refs: (KdNode | number)[] = []

  get size(): number {
    return this.keys.length
  }

  clear(): void {
    this.keys.length = 0
    this.refs.length = 0
  }

  push(key: number, ref: KdNode | number): void {
    const { keys, refs } = this
    let i = keys.length
    keys.push(key)
    refs.push(ref)
    while (i > 0) {
      const p = (i - 1) >> 1
      if (keys[p]! <= key) break
      keys[i] = keys[p]!
      refs[i] = refs[p]!
      i = p
    }
    keys[i] = key
    refs[i] = ref
  }

  /** Removes the smallest; its key and ref are left in `topKey` / `topRef`. */
  topKey = 0
  topRef: KdNode | number = 0
  pop(): void {
    const { keys, refs } = this
    this.topKey = keys[0]!
    this.topRef = refs[0]!
    const lastKey = keys.pop()!
    const lastRef = refs.pop()!
    const n = keys.length
    if (n === 0) return
    let i = 0
    for (;;) {
      let c = 2 * i + 1
      if (c >= n) break
      if (c + 1 < n && keys[c + 1]! < keys[c]!) c++
      if (keys[c]! >= lastKey) break
      keys[i] = keys[c]!
      refs[i] = refs[c]!
      i = c
    }
    keys[i] = lastKey
    refs[i] = lastRef
  }
}

export class FleetIndex {
  x = new Float64Array(64)
  y = new Float64Array(64)
  z = new Float64Array(64)
  private readonly sites: (string | undefined)[] = []
  private readonly bySite = new Map<string, Set<number>>()
  private readonly free: number[] = []
  private root = new KdNode()
  private live = 0
  private readonly frontier = new Frontier()
  /** Per-slot stamp of the query that last took it (dedupes candidates without a Set). */
  private seen = new Uint32Array(64)
  private stamp = 0
  private readonly out: number[] = []
  /** Every change that can alter a candidate list, for the cache to replay (candidate-cache.ts). */
  private readonly log = new ChangeLog()
  private readonly cache = new CandidateCache()
  /** What the last walk saw: the squared chord it stopped at, and the sites it took whole. */
  private horizon = Infinity
  private nearSites: string[] = []

  /** Tree walks so far (a cached candidate list saves one). */
  walks = 0

  /** Places with a cached candidate list. */
  get cachedPlaces(): number {
    return this.cache.size
  }

  /** Edges indexed. */
  get size(): number {
    return this.live
  }

  /** One past the highest slot ever used: the length an edges-by-slot array needs. */
  get slots(): number {
    return this.sites.length
  }

  /** Indexes an edge; returns its slot (a freed slot is reused). */
  add(site: string, at: { lat: number; lon: number }): number {
    const slot = this.free.pop() ?? this.sites.length
    if (slot >= this.x.length) this.grow(slot + 1)
    const [x, y, z] = unitVector(at)
    this.x[slot] = x
    this.y[slot] = y
    this.z[slot] = z
    this.sites[slot] = site
    this.log.record(x, y, z, site)
    let members = this.bySite.get(site)
    if (!members) this.bySite.set(site, (members = new Set()))
    members.add(slot)
    this.insert(slot)
    this.live++
    return slot
  }

  /** Takes a slot out of the index; the slot may be handed to the next edge added. */
  remove(slot: number): void {
    const site = this.sites[slot]
    if (site === undefined) return
    let node = this.root
    while (!node.items) node = this.coord(slot, node.axis) < node.split ? node.left! : node.right!
    this.log.record(this.x[slot]!, this.y[slot]!, this.z[slot]!, site)
    const at = node.items.indexOf(slot)
    if (at >= 0) node.items.splice(at, 1)
    const members = this.bySite.get(site)!
    members.delete(slot)
    if (members.size === 0) this.bySite.delete(site)
    this.sites[slot] = undefined
    this.free.push(slot)
    this.live--
  }

  /**
   * Tells the index that the usability of the edge in `slot` changed (in whatever array of
   * edges by slot decisions pass): cached candidate lists near it are walked again.
   */
  touch(slot: number): void {
    const site = this.sites[slot]
    if (site !== undefined) this.log.record(this.x[slot]!, this.y[slot]!, this.z[slot]!, site)
  }

  /**
   * select() over the indexed edges: `edges[slot]` is each slot's edge as the health view
   * sees it (usable, load, titles); same answer as a full scan, from a handful of slots.
   * With `cached`, `client` is a fixed place (the same object each time, e.g. a zone's) and
   * its candidate list is kept for the next decision there until a change reaches it; the
   * caller must `touch` a slot whose usability it flips in `edges`. `clientKey`: the
   * client's failover order after the first edge (select.ts).
   */
  select(
    client: Location,
    edges: readonly (EdgeInput | undefined)[],
    title: string,
    options: SelectOptions,
    cached = false,
    clientKey?: number,
  ): Ranked[] {
    const cands =
      cached && options.asIfAllUp !== true
        ? this.cachedCandidates(client, edges, options)
        : this.candidates(client, edges, options)
    return rankCandidates(
      client,
      { edges, x: this.x, y: this.y, z: this.z },
      cands,
      title,
      options,
      clientKey,
    )
  }

  private cachedCandidates(
    client: Location,
    edges: readonly (EdgeInput | undefined)[],
    options: SelectOptions,
  ): number[] {
    let e = this.cache.find(client, options.maxResults, options.bandKm)
    if (e && e.edges === edges && (e.seq === this.log.seq || !this.log.reaches(e.seq, e))) {
      e.seq = this.log.seq
      return e.slots
    }
    const slots = this.candidates(client, edges, options).slice()
    if (!e) {
      const [cx, cy, cz] = unitVector(client)
      const entry: CacheEntry = {
        maxResults: options.maxResults,
        bandKm: options.bandKm,
        edges,
        seq: 0,
        cx,
        cy,
        cz,
        horizon: 0,
        sites: [],
        slots,
        next: null,
      }
      this.cache.add(client, entry)
      e = entry
    }
    e.edges = edges
    e.seq = this.log.seq
    e.horizon = this.horizon
    e.sites = this.nearSites
    e.slots = slots
    return slots
  }

  /** The slots select() can need, nearest first (ties and band included), without repeats. */
  candidates(client: Location, edges: readonly (EdgeInput | undefined)[], options: SelectOptions): number[] {
    this.walks++
    const [cx, cy, cz] = unitVector(client)
    const max = options.maxResults > 0 ? options.maxResults : Infinity
    const allUp = options.asIfAllUp === true
    const out = this.out
    out.length = 0
    if (++this.stamp === 0xffffffff) {
      this.seen.fill(0)
      this.stamp = 1
    }
    const heap = this.frontier
    heap.clear()
    heap.push(this.boxKey(this.root, cx, cy, cz), this.root)
    let firstKey = -1
    let minDot = -2
    let bandKey = Infinity
    const nearSites = new Set<string>()
    let rest = 0
    let restKey = Infinity
    while (heap.size) {
      if (firstKey >= 0 && rest >= max && heap.keys[0]! > Math.max(bandKey, restKey) + EPS) break
      heap.pop()
      const ref = heap.topRef
      if (typeof ref !== 'number') {
        if (ref.items) {
          for (const s of ref.items)
            if (edges[s] !== undefined && (allUp || edges[s].usable))
              heap.push(2 - 2 * (this.x[s]! * cx + this.y[s]! * cy + this.z[s]! * cz), s)
        } else {
          heap.push(this.boxKey(ref.left!, cx, cy, cz), ref.left!)
          heap.push(this.boxKey(ref.right!, cx, cy, cz), ref.right!)
        }
        continue
      }
      const key = heap.topKey
      this.take(ref, out)
      const site = this.sites[ref]!
      if (firstKey < 0) {
        firstKey = key
        minDot = bandMinDot(1 - key / 2, options.bandKm)
        bandKey = Math.min(4, 2 - 2 * minDot)
      }
      // Edges tied with the first for nearest: any of their sites may be the band's site.
      if (key <= firstKey + EPS) nearSites.add(site)
      else if (key > bandKey + EPS && !nearSites.has(site) && ++rest === max) restKey = key
    }
    for (const site of nearSites) for (const s of this.bySite.get(site)!) this.take(s, out)
    // Stopped early: nothing beyond this could have entered; ran dry: every slot was seen.
    this.horizon = heap.size ? Math.max(bandKey, restKey) + EPS : Infinity
    this.nearSites = [...nearSites]
    return out
  }

  private take(slot: number, out: number[]): void {
    if (this.seen[slot] === this.stamp) return
    this.seen[slot] = this.stamp
    out.push(slot)
  }

  /** Lower bound of 2 − 2·dot (the squared chord) from the client to anything in the box. */
  private boxKey(n: KdNode, cx: number, cy: number, cz: number): number {
    if (n.minX > n.maxX) return 4 // empty so far
    const dx = cx < n.minX ? n.minX - cx : cx > n.maxX ? cx - n.maxX : 0
    const dy = cy < n.minY ? n.minY - cy : cy > n.maxY ? cy - n.maxY : 0
    const dz = cz < n.minZ ? n.minZ - cz : cz > n.maxZ ? cz - n.maxZ : 0
    return dx * dx + dy * dy + dz * dz - EPS
  }

  private coord(slot: number, axis: number): number {
    return axis === 0 ? this.x[slot]! : axis === 1 ? this.y[slot]! : this.z[slot]!
  }

  private insert(slot: number): void {
    let node = this.root
    for (;;) {
      this.extend(node, slot)
      if (node.items) break
      node = this.coord(slot, node.axis) < node.split ? node.left! : node.right!
    }
    node.items!.push(slot)
    if (node.items!.length > LEAF_MAX) this.splitLeaf(node)
  }

  private extend(n: KdNode, slot: number): void {
    const x = this.x[slot]!
    const y = this.y[slot]!
    const z = this.z[slot]!
    if (x < n.minX) n.minX = x
    if (x > n.maxX) n.maxX = x
    if (y < n.minY) n.minY = y
    if (y > n.maxY) n.maxY = y
    if (z < n.minZ) n.minZ = z
    if (z > n.maxZ) n.maxZ = z
  }

  /** Splits a full leaf at the median of its widest axis; one place (co-sited edges) stays one leaf. */
  private splitLeaf(leaf: KdNode): void {
    const items = leaf.items!
    const extent = [leaf.maxX - leaf.minX, leaf.maxY - leaf.minY, leaf.maxZ - leaf.minZ]
    const axes = [0, 1, 2].sort((a, b) => extent[b]! - extent[a]!)
    for (const axis of axes) {
      const values = items.map((s) => this.coord(s, axis)).sort((a, b) => a - b)
      let split = values[values.length >> 1]!
      if (split === values[0]) split = values.find((v) => v > split) ?? split
      if (split === values[0]) continue
      const left = new KdNode()
      const right = new KdNode()
      for (const s of items) {
        const side = this.coord(s, axis) < split ? left : right
        side.items!.push(s)
        this.extend(side, s)
      }
      leaf.items = null
      leaf.axis = axis
      leaf.split = split
      leaf.left = left
      leaf.right = right
      return
    }
  }

  private grow(min: number): void {
    const size = Math.max(min, this.x.length * 2)
    for (const k of ['x', 'y', 'z'] as const) {
      const a = new Float64Array(size)
      a.set(this[k])
      this[k] = a
    }
    const seen = new Uint32Array(size)
    seen.set(this.seen)
    this.seen = seen
  }
}

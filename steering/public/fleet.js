/**
 * The fleet dashboard: polls steering's GET /edges every 1.5 s and shows the whole delivery
 * tree: the origin and the tier-2 parents (health, hit ratio, egress) above the tier-1 edges,
 * everything on a real map (fleet-map.js), then one card per edge, grouped by site: load, hit
 * ratio per tier, misses by cause (and prefetch), bytes served, titles held, and why it is out
 * when it is.
 *
 * A node that stopped answering keeps its last figures in steering's view; they are shown
 * greyed, as "stale", with how long ago they were true, never as if live. State is on
 * `window.fleet` for tests.
 */
import { drawMap, el, health, loadWorld } from './fleet-map.js'
import { loadEdges, loadRegions } from './sources.js'

const $ = (id) => document.getElementById(id)
const POLL_MS = 1500
const fleet = { doc: null, regions: [], updates: 0 }
window.fleet = fleet

const fmtBytes = (n) => {
  if (!n) return '0 B'
  const u = ['B', 'kB', 'MB', 'GB', 'TB']
  const i = Math.min(u.length - 1, Math.floor(Math.log10(n) / 3))
  return `${(n / 1000 ** i).toFixed(i && n / 1000 ** i < 10 ? 1 : 0)} ${u[i]}`
}
const pct = (x) => `${Math.round((x || 0) * 100)}%`

/** "12 s", "3 min 5 s", "2 h 4 min": how long ago. */
function ago(iso, now = Date.now()) {
  if (!iso) return 'never'
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000))
  if (s < 60) return `${s} s`
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`
}

/**
 * Figures are stale when the node is down, or its last good answer is older than three check
 * intervals (steering itself may be behind).
 */
function markStale(n, intervalMs) {
  const old = n.lastOk ? Date.now() - Date.parse(n.lastOk) > 3 * intervalMs : true
  n.stale = n.state === 'down' || (n.state !== 'unknown' && old)
  return n
}

function groupBySite(edges) {
  const m = new Map()
  for (const e of edges) m.set(e.site, [...(m.get(e.site) ?? []), e])
  return m
}

function bar(parts, label) {
  const b = el('div', { class: 'stack', role: 'img', 'aria-label': label, title: label })
  for (const [cls, frac] of parts) {
    const s = el('span', { class: cls })
    s.style.width = `${Math.max(0, Math.min(1, frac || 0)) * 100}%`
    b.append(s)
  }
  return b
}

const row = (label, barEl, num) =>
  el('div', { class: 'row' }, el('span', {}, label), barEl, el('span', { class: 'num' }, num))

/** The staleness line: how old the figures below are. */
function staleNote(n) {
  return el(
    'p',
    { class: 'stale-note' },
    n.lastOk
      ? `figures from ${ago(n.lastOk)} ago (its last good answer); not live`
      : 'never answered: no figures',
  )
}

function hitsRow(s) {
  const hits = s.hits ?? {}
  return row(
    'hits',
    bar(
      [
        ['mem', hits.memory],
        ['disk', hits.disk],
        ['miss', hits.miss],
      ],
      `memory ${pct(hits.memory)}, disk ${pct(hits.disk)}, upstream ${pct(hits.miss)}`,
    ),
    pct(s.hitRatio),
  )
}

/** Why requests went upstream (edge/miss): the split by cause, and what prefetch did. */
const CAUSES = ['content', 'capacity', 'freshness', 'health', 'variant', 'prefetch-late']

function missesRow(s) {
  const d = s.demand
  if (!d) return el('span', {})
  const total = CAUSES.reduce((n, c) => n + (d.misses[c] ?? 0), 0)
  const label = CAUSES.map((c) => `${c} ${d.misses[c] ?? 0}`).join(', ')
  const p = d.prefetch
  const wrap = el('div', { class: 'misses', 'data-misses': JSON.stringify(d.misses) })
  wrap.append(
    row(
      'misses',
      bar(
        CAUSES.map((c) => [`cause-${c}`, total ? (d.misses[c] ?? 0) / total : 0]),
        `misses by cause: ${label}`,
      ),
      String(total),
    ),
    el(
      'p',
      { class: 'muted causes' },
      total
        ? CAUSES.filter((c) => d.misses[c])
            .map((c) => `${c} ${pct(d.misses[c] / total)}`)
            .join(' · ')
        : 'no misses',
    ),
  )
  if (p.started)
    wrap.append(
      el(
        'p',
        { class: 'muted prefetch' },
        `prefetch: ${p.started} started, ${p.used} used, ${p.late} late, ${p.wasted} wasted, ${fmtBytes(p.upstreamBytes)} fetched`,
      ),
    )
  return wrap
}

function header(id, h, label) {
  return el('header', {}, el('b', {}, id), el('span', { class: `pill ${h}` }, label ?? h))
}

function card(e) {
  const s = e.status ?? {}
  const h = health(e)
  const tiers = s.tiers ?? {}
  const complete = new Set(s.titlesComplete ?? [])
  const c = el('article', {
    class: `card ${h}${e.stale ? ' stale' : ''}`,
    'data-edge-id': e.id,
    'data-stale': String(!!e.stale),
  })
  c.append(header(e.id, h, h === 'overloaded' && e.inRotation === false && !e.overloaded ? 'out' : h))
  if (h === 'down' || h === 'overloaded' || e.why)
    c.append(
      el(
        'p',
        { class: 'why' },
        e.why || e.lastError || (e.overloaded ? 'over its load threshold' : 'not in rotation'),
      ),
    )
  if (e.stale) c.append(staleNote(e))
  const figures = el('div', { class: 'figures' })
  figures.append(
    row('load', bar([['load', e.load]], `load ${pct(e.load)}`), pct(e.load)),
    hitsRow(s),
    missesRow(s),
  )
  for (const tier of ['memory', 'disk']) {
    const t = tiers[tier]
    if (t)
      figures.append(
        row(
          tier,
          bar(
            [[tier === 'memory' ? 'mem' : 'disk', t.capacityBytes ? t.bytes / t.capacityBytes : 0]],
            `${tier} ${fmtBytes(t.bytes)} of ${fmtBytes(t.capacityBytes)}`,
          ),
          fmtBytes(t.bytes),
        ),
      )
  }
  figures.append(
    el(
      'dl',
      {},
      el('dt', {}, 'served'),
      el('dd', {}, fmtBytes(s.bytesServed)),
      el('dt', {}, 'egress'),
      el('dd', {}, `${fmtBytes(s.egressBytesPerSec)}/s`),
      el('dt', {}, 'answered'),
      el('dd', {}, e.lastOk ? `${ago(e.lastOk)} ago` : 'never'),
    ),
  )
  const titles = el('div', { class: 'titles' })
  for (const t of s.titles ?? [])
    titles.append(
      el(
        'span',
        {
          class: complete.has(t) ? 'chip complete' : 'chip',
          title: complete.has(t) ? 'held complete' : 'partly cached',
        },
        t,
      ),
    )
  if (!(s.titles ?? []).length) titles.append(el('span', { class: 'muted' }, 'no titles cached'))
  figures.append(titles)
  c.append(figures)
  return c
}

/** A parent or the origin: the nodes every edge below depends on. */
function nodeCard(n) {
  const s = n.status ?? {}
  const h = health(n)
  const c = el('article', {
    class: `card node ${h}${n.stale ? ' stale' : ''}`,
    'data-node-id': n.id,
    'data-stale': String(!!n.stale),
  })
  const role = n.role === 'origin' ? 'origin' : 'tier-2 parent'
  c.append(header(n.id, h))
  c.append(
    el(
      'p',
      { class: 'muted role' },
      `${role}${n.site ? ` · ${n.site}` : ''}${n.serves.length ? ` · serves ${n.serves.join(', ')}` : ''}${n.upstream ? ` · fetches from ${n.upstream}` : ''}`,
    ),
  )
  if (h === 'down') c.append(el('p', { class: 'why' }, n.why || n.lastError || 'not answering'))
  if (n.stale) c.append(staleNote(n))
  const figures = el('div', { class: 'figures' })
  if (n.role === 'origin')
    figures.append(
      row('hits', el('span', { class: 'muted' }, 'no cache: serves every request from its store'), '–'),
    )
  else figures.append(hitsRow(s))
  figures.append(
    el(
      'dl',
      {},
      el('dt', {}, 'served'),
      el('dd', {}, fmtBytes(s.bytesServed)),
      el('dt', {}, 'egress'),
      el('dd', {}, `${fmtBytes(s.egressBytesPerSec)}/s`),
      el('dt', {}, 'titles'),
      el('dd', {}, String(s.titleCount ?? s.titles?.length ?? 0)),
    ),
  )
  c.append(figures)
  return c
}

function render(doc) {
  const interval = doc.checkIntervalMs ?? 2000
  for (const e of doc.edges) markStale(e, interval)
  for (const u of doc.upstreams ?? []) markStale(u, interval)
  drawMap($('map'), doc, fleet.regions, groupBySite)
  const tree = $('tree')
  tree.replaceChildren()
  const ups = doc.upstreams ?? []
  if (ups.length) {
    // Origin first, then parents: top of the tree first.
    const order = [...ups].sort((a, b) => (a.role === 'origin' ? -1 : 0) - (b.role === 'origin' ? -1 : 0))
    const grid = el('div', { class: 'cards' })
    for (const n of order) grid.append(nodeCard(n))
    tree.append(el('h2', {}, 'Upstream: what every edge fetches from'), grid)
  }
  const sites = $('sites')
  sites.replaceChildren()
  for (const [site, list] of groupBySite(doc.edges)) {
    const grid = el('div', { class: 'cards' })
    for (const e of list) grid.append(card(e))
    sites.append(
      el('section', { class: 'site-cards', 'data-site': site }, el('h2', {}, list[0].cluster || site), grid),
    )
  }
  const up = doc.edges.filter((e) => e.inRotation).length
  const stale = [...doc.edges, ...ups].filter((n) => n.stale).length
  $('summary').replaceChildren(
    el('b', {}, `${up} of ${doc.edges.length}`),
    ' edges in rotation',
    ups.length ? ` · ${ups.filter((u) => u.state === 'up').length} of ${ups.length} upstream nodes up` : '',
    stale ? el('span', { class: 'pill down' }, `${stale} with stale figures`) : '',
    doc.failStatic ? el('span', { class: 'pill down' }, 'fail-static: serving last known-good state') : '',
    el('span', { class: 'muted' }, ` · updated ${new Date().toLocaleTimeString([], { hour12: false })}`),
  )
}

async function poll() {
  const doc = await loadEdges()
  if (doc?.edges) {
    fleet.doc = doc
    fleet.updates++
    render(doc)
  } else $('summary').textContent = 'steering did not answer GET /edges; retrying…'
  setTimeout(poll, POLL_MS)
}

window.addEventListener('resize', () => {
  if (fleet.doc) drawMap($('map'), fleet.doc, fleet.regions, groupBySite)
})

Promise.all([loadRegions(), loadWorld()]).then(([r]) => {
  fleet.regions = r.regions
  poll()
})

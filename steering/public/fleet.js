/**
 * The fleet dashboard: polls steering's GET /edges every 1.5 s and draws every edge where it
 * is (an equirectangular map cropped to the fleet), coloured by health with its load as a
 * ring, then one card per edge, grouped by site: load, hit ratio per tier, bytes served,
 * titles held, and why it is out when it is. State is on `window.fleet` for tests.
 */
import { loadEdges, loadRegions } from './sources.js'

const $ = (id) => document.getElementById(id)
const SVG = 'http://www.w3.org/2000/svg'
const W = 1000
const H = 420
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

function el(tag, attrs = {}, ...kids) {
  const e = tag.startsWith('svg:') ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag)
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) e.setAttribute(k, String(v))
  for (const k of kids) e.append(k)
  return e
}

function health(e) {
  if (e.state === 'down') return 'down'
  if (e.state === 'unknown') return 'unknown'
  if (e.overloaded || !e.inRotation) return 'overloaded'
  return 'up'
}

/** A projection that fits every point (edges and regions) with a margin, keeping degrees square. */
function projection(points) {
  const lats = points.map((p) => p.lat)
  const lons = points.map((p) => p.lon)
  let [w0, w1, s0, s1] = [
    Math.min(...lons) - 15,
    Math.max(...lons) + 15,
    Math.min(...lats) - 12,
    Math.max(...lats) + 12,
  ]
  const scale = Math.min(W / (w1 - w0), H / (s1 - s0))
  const cx = (w0 + w1) / 2
  const cy = (s0 + s1) / 2
  w0 = cx - W / scale / 2
  w1 = cx + W / scale / 2
  s1 = cy + H / scale / 2
  return {
    x: (lon) => (lon - w0) * scale,
    y: (lat) => (s1 - lat) * scale,
    lonAt: (x) => w0 + x / scale,
    latAt: (y) => s1 - y / scale,
    w0,
    w1,
  }
}

function drawMap(doc) {
  const svg = $('map')
  svg.replaceChildren()
  const edges = doc.edges
  const p = projection([...edges, ...fleet.regions])
  const grid = el('svg:g', { class: 'grid' })
  for (let lon = -180; lon <= 180; lon += 10)
    if (lon >= p.w0 && lon <= p.w1) grid.append(el('svg:line', { x1: p.x(lon), x2: p.x(lon), y1: 0, y2: H }))
  for (let lat = -80; lat <= 80; lat += 10)
    grid.append(el('svg:line', { x1: 0, x2: W, y1: p.y(lat), y2: p.y(lat) }))
  svg.append(grid)

  const bySite = groupBySite(edges)
  const sitePoints = [...bySite.values()].map((l) => l[0])
  for (const r of fleet.regions) {
    // A region on top of a site is that site's own clients: the site's label says enough.
    if (sitePoints.some((s) => Math.abs(s.lat - r.lat) < 2 && Math.abs(s.lon - r.lon) < 2)) continue
    const x = p.x(r.lon)
    const y = p.y(r.lat)
    svg.append(
      el(
        'svg:g',
        { class: 'region' },
        el('svg:path', { d: `M${x},${y - 6} l6,10 h-12 z` }),
        el('svg:text', { x: x + 9, y: y + 4 }, r.name),
      ),
    )
  }
  for (const [site, list] of bySite) {
    const cx = p.x(list[0].lon)
    const cy = p.y(list[0].lat)
    const g = el('svg:g', { class: 'site' })
    const half = ((list.length - 1) * 48) / 2
    g.append(
      el('svg:rect', {
        x: cx - half - 30,
        y: cy - 46,
        width: 2 * half + 60,
        height: 92,
        rx: 14,
        class: 'site-area',
      }),
    )
    g.append(el('svg:text', { x: cx, y: cy - 54, class: 'site-name' }, list[0].cluster || site))
    list.forEach((e, i) => {
      const x = cx - half + 48 * i
      const y = cy - 6
      const ring = 2 * Math.PI * 13
      const load = Math.min(1, e.load || 0)
      const node = el(
        'svg:g',
        { class: `edge ${health(e)}`, 'data-edge-id': e.id },
        el('svg:circle', { cx: x, cy: y, r: 13, class: 'ring-bg' }),
        el('svg:circle', {
          cx: x,
          cy: y,
          r: 13,
          class: 'ring',
          'stroke-dasharray': `${ring * load} ${ring}`,
          transform: `rotate(-90 ${x} ${y})`,
        }),
        el('svg:circle', { cx: x, cy: y, r: 9, class: 'core' }),
        el('svg:text', { x, y: y + 28, class: 'edge-name' }, e.id),
        el('svg:title', {}, `${e.id}: ${e.state}${e.why ? ` (${e.why})` : ''}, load ${pct(e.load)}`),
      )
      g.append(node)
    })
    svg.append(g)
  }
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

function card(e) {
  const s = e.status ?? {}
  const h = health(e)
  const hits = s.hits ?? {}
  const tiers = s.tiers ?? {}
  const complete = new Set(s.titlesComplete ?? [])
  const c = el('article', { class: `card ${h}`, 'data-edge-id': e.id })
  c.append(
    el(
      'header',
      {},
      el('b', {}, e.id),
      el(
        'span',
        { class: `pill ${h}` },
        h === 'overloaded' && e.inRotation === false && !e.overloaded ? 'out' : h,
      ),
    ),
  )
  if (h === 'down' || h === 'overloaded' || e.why)
    c.append(
      el(
        'p',
        { class: 'why' },
        e.why || e.lastError || (e.overloaded ? 'over its load threshold' : 'not in rotation'),
      ),
    )
  c.append(
    el(
      'div',
      { class: 'row' },
      el('span', {}, 'load'),
      bar([['load', e.load]], `load ${pct(e.load)}`),
      el('span', { class: 'num' }, pct(e.load)),
    ),
  )
  c.append(
    el(
      'div',
      { class: 'row' },
      el('span', {}, 'hits'),
      bar(
        [
          ['mem', hits.memory],
          ['disk', hits.disk],
          ['miss', hits.miss],
        ],
        `memory ${pct(hits.memory)}, disk ${pct(hits.disk)}, upstream ${pct(hits.miss)}`,
      ),
      el('span', { class: 'num' }, pct(s.hitRatio)),
    ),
  )
  for (const tier of ['memory', 'disk']) {
    const t = tiers[tier]
    if (t)
      c.append(
        el(
          'div',
          { class: 'row' },
          el('span', {}, tier),
          bar(
            [[tier === 'memory' ? 'mem' : 'disk', t.capacityBytes ? t.bytes / t.capacityBytes : 0]],
            `${tier} ${fmtBytes(t.bytes)} of ${fmtBytes(t.capacityBytes)}`,
          ),
          el('span', { class: 'num' }, fmtBytes(t.bytes)),
        ),
      )
  }
  c.append(
    el(
      'dl',
      {},
      el('dt', {}, 'served'),
      el('dd', {}, fmtBytes(s.bytesServed)),
      el('dt', {}, 'egress'),
      el('dd', {}, `${fmtBytes(s.egressBytesPerSec)}/s`),
      el('dt', {}, 'checked'),
      el(
        'dd',
        {},
        e.lastCheck
          ? `${Math.max(0, Math.round((Date.now() - Date.parse(e.lastCheck)) / 1000))} s ago`
          : 'never',
      ),
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
  c.append(titles)
  return c
}

function render(doc) {
  drawMap(doc)
  const sites = $('sites')
  sites.replaceChildren()
  for (const [site, list] of groupBySite(doc.edges)) {
    const sec = el(
      'section',
      { class: 'site-cards', 'data-site': site },
      el('h2', {}, list[0].cluster || site),
    )
    const grid = el('div', { class: 'cards' })
    for (const e of list) grid.append(card(e))
    sec.append(grid)
    sites.append(sec)
  }
  const up = doc.edges.filter((e) => e.inRotation).length
  $('summary').replaceChildren(
    el('b', {}, `${up} of ${doc.edges.length}`),
    ' edges in rotation',
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

loadRegions().then((r) => {
  fleet.regions = r.regions
  poll()
})

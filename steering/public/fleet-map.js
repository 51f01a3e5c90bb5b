/**
 * The fleet on a real map: Natural Earth countries (world-atlas, served by steering from its
 * own node_modules, like d3-geo and topojson-client: no network) in a Natural Earth projection
 * fitted to the fleet with a margin, drawn at the page's width so labels stay readable on a
 * phone. Each site is a cluster of edge dots (colour = health, ring = load); client regions are
 * triangles at their own coordinates; the tier-2 parents and the origin (when placed) are
 * squares, with a line from each site to the node it fetches from.
 */
const SVG = 'http://www.w3.org/2000/svg'
const d3 = window.d3
const topojson = window.topojson
let countries = null

export function el(tag, attrs = {}, ...kids) {
  const e = tag.startsWith('svg:') ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag)
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) e.setAttribute(k, String(v))
  for (const k of kids) e.append(k)
  return e
}

/** Loads the countries once (55-110 kB, cached by the browser). */
export async function loadWorld() {
  if (countries || !topojson) return
  try {
    const res = await fetch('/assets/countries-110m.json')
    const topo = await res.json()
    countries = topojson.feature(topo, topo.objects.countries)
  } catch {
    countries = null // the map still shows sites, without coastlines
  }
}

export function health(e) {
  if (e.state === 'down') return 'down'
  if (e.state === 'unknown') return 'unknown'
  if (e.overloaded || e.inRotation === false) return 'overloaded'
  return 'up'
}

function projectionFor(points, width, height) {
  const lons = points.map((p) => p.lon)
  const lats = points.map((p) => p.lat)
  const [w, e] = [Math.max(-180, Math.min(...lons) - 12), Math.min(180, Math.max(...lons) + 12)]
  const [s, n] = [Math.max(-85, Math.min(...lats) - 9), Math.min(85, Math.max(...lats) + 9)]
  const box = {
    type: 'MultiPoint',
    coordinates: [
      [w, s],
      [w, n],
      [e, s],
      [e, n],
      [(w + e) / 2, n],
    ],
  }
  return d3.geoNaturalEarth1().fitExtent(
    [
      [16, 34],
      [width - 16, height - 16],
    ],
    box,
  )
}

/**
 * Labels that would overlap one already placed are left out (the shape keeps its tooltip):
 * on a phone, nearby sites and regions would otherwise print over each other.
 */
function labeller() {
  const boxes = []
  const fits = (x, y, text, anchor = 'start') => {
    const w = text.length * 6.6
    const x0 = anchor === 'middle' ? x - w / 2 : x
    const box = [x0 - 2, y - 12, x0 + w + 2, y + 3]
    if (boxes.some((b) => box[0] < b[2] && box[2] > b[0] && box[1] < b[3] && box[3] > b[1])) return false
    boxes.push(box)
    return true
  }
  /** Space a shape takes: no label goes over it. */
  fits.block = (x0, y0, x1, y1) => boxes.push([x0, y0, x1, y1])
  return fits
}

export function drawMap(svg, doc, regions, groupBySite) {
  const width = Math.max(320, Math.round(svg.parentElement.clientWidth - 16))
  const height = Math.round(Math.max(260, Math.min(520, width * 0.5)))
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`)
  svg.replaceChildren()
  const placed = (doc.upstreams ?? []).filter((u) => u.lat !== null && u.lon !== null)
  const points = [...doc.edges, ...regions, ...placed]
  if (!points.length || !d3) return
  const proj = projectionFor(points, width, height)
  const xy = (p) => proj([p.lon, p.lat])
  const path = d3.geoPath(proj)
  svg.append(el('svg:path', { class: 'sphere', d: path({ type: 'Sphere' }) }))
  svg.append(el('svg:path', { class: 'graticule', d: path(d3.geoGraticule10()) }))
  if (countries) svg.append(el('svg:path', { class: 'land', d: path(countries) }))

  // Links: each site to the node its edges fetch from, parents to theirs.
  const byId = new Map(placed.map((u) => [u.id, u]))
  const links = el('svg:g', { class: 'links' })
  const sites = groupBySite(doc.edges)
  for (const u of placed) {
    const [x1, y1] = xy(u)
    for (const list of sites.values())
      if (list.some((e) => u.serves.includes(e.id))) {
        const [x2, y2] = xy(list[0])
        links.append(el('svg:line', { x1, y1, x2, y2, class: `link ${health(u)}` }))
      }
    const up = byId.get(u.upstream)
    if (up) {
      const [x2, y2] = xy(up)
      links.append(el('svg:line', { x1, y1, x2, y2, class: `link ${health(up)}` }))
    }
  }
  svg.append(links)

  const fits = labeller()
  const labels = el('svg:g', { class: 'labels' })
  for (const list of sites.values()) {
    const [cx, cy] = xy(list[0])
    const half = ((list.length - 1) * 30) / 2
    fits.block(cx - half - 12, cy - 12, cx + half + 12, cy + 12)
  }
  for (const u of placed) {
    const [x, y] = xy(u)
    fits.block(x - 10, y - 10, x + 10, y + 10)
  }
  // Site names first (they matter most), then parents, then client regions.
  for (const list of sites.values()) {
    const [cx, cy] = xy(list[0])
    const name = list[0].cluster || list[0].site
    if (fits(cx, cy - 20, name, 'middle'))
      labels.append(el('svg:text', { x: cx, y: cy - 20, class: 'site-name' }, name))
  }
  for (const u of placed) {
    const [x, y] = xy(u)
    if (fits(x, y + 24, u.id, 'middle'))
      labels.append(el('svg:text', { x, y: y + 24, class: 'edge-name' }, u.id))
  }
  const sitePoints = [...sites.values()].map((l) => xy(l[0]))
  for (const r of regions) {
    const [x, y] = xy(r)
    // A region on a site is that site's own clients: the triangle sits just below it.
    const onSite = sitePoints.some(([sx, sy]) => Math.hypot(sx - x, sy - y) < 14)
    const ty = onSite ? y + 34 : y
    svg.append(
      el(
        'svg:g',
        { class: 'region', 'data-region': r.name },
        el('svg:path', { d: `M${x},${ty - 6} l6,10 h-12 z` }),
        fits(x + 9, ty + 4, r.name) ? el('svg:text', { x: x + 9, y: ty + 4 }, r.name) : '',
        el('svg:title', {}, `clients in ${r.name} (${r.lat.toFixed(1)}, ${r.lon.toFixed(1)})`),
      ),
    )
  }
  for (const u of placed) {
    const [x, y] = xy(u)
    svg.append(
      el(
        'svg:g',
        { class: `node ${health(u)}${u.stale ? ' stale' : ''}`, 'data-node-id': u.id },
        el('svg:rect', { x: x - 9, y: y - 9, width: 18, height: 18, rx: 3, class: 'core' }),
        el('svg:title', {}, `${u.id} (${u.role === 'origin' ? 'origin' : 'tier-2 parent'}): ${u.state}`),
      ),
    )
  }
  for (const list of sites.values()) {
    const [cx, cy] = xy(list[0])
    const g = el('svg:g', { class: 'site' })
    const step = 30
    const half = ((list.length - 1) * step) / 2
    list.forEach((e, i) => {
      const x = cx - half + step * i
      const ring = 2 * Math.PI * 10
      const load = Math.min(1, e.load || 0)
      g.append(
        el(
          'svg:g',
          { class: `edge ${health(e)}${e.stale ? ' stale' : ''}`, 'data-edge-id': e.id },
          el('svg:circle', { cx: x, cy, r: 10, class: 'ring-bg' }),
          el('svg:circle', {
            cx: x,
            cy,
            r: 10,
            class: 'ring',
            'stroke-dasharray': `${ring * load} ${ring}`,
            transform: `rotate(-90 ${x} ${cy})`,
          }),
          el('svg:circle', { cx: x, cy, r: 7, class: 'core' }),
          el(
            'svg:title',
            {},
            `${e.id}: ${e.state}${e.why ? ` (${e.why})` : ''}, load ${Math.round(load * 100)}%`,
          ),
        ),
      )
    })
    svg.append(g)
  }
  svg.append(labels)
}

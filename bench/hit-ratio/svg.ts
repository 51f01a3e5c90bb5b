/** The chart of a comparison: byte hit ratio per policy against cache size, as a small SVG. */
import type { PolicyName, SizeResult } from './compare.js'

const COLOURS: Record<PolicyName, string> = {
  lru: '#888888',
  edge: '#08306b',
  // The colour the rows named `edge` had while the default was LRU (they are these).
  'edge(lru)': '#1f77b4',
  'edge(all)': '#aec7e8',
  'edge(frequency)': '#17becf',
  'edge(ladder)': '#bcbd22',
  'edge(frequency+ladder)': '#8c564b',
  'edge(tinylfu)': '#e377c2',
  'edge(tinylfu+ladder)': '#7f7f7f',
  'edge(demand)': '#9edae5',
  'edge(demand-eviction)': '#c5b0d5',
  'edge(tinylfu+demand)': '#dbdb8d',
  'edge+prefill(popularity)': '#ff7f0e',
  'edge+prefill(forecast)': '#2ca02c',
  'edge(demand)+prefill(forecast)': '#98df8a',
  belady: '#d62728',
  clairvoyant: '#9467bd',
  'clairvoyant(demand)': '#c49c94',
  'edge(demand-oracle)': '#393b79',
}

export function chartSvg(sizes: readonly SizeResult[], title: string): string {
  const W = 720
  const H = 420
  const m = { l: 60, r: 200, t: 40, b: 50 }
  const pw = W - m.l - m.r
  const ph = H - m.t - m.b
  const xs = sizes.map((s) => s.share)
  const x = (i: number) => m.l + (xs.length === 1 ? pw / 2 : (i / (xs.length - 1)) * pw)
  const y = (v: number) => m.t + ph - v * ph
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${m.l}" y="22" font-size="14">${escape(title)}</text>`,
  ]
  for (let v = 0; v <= 1.0001; v += 0.2) {
    out.push(`<line x1="${m.l}" x2="${m.l + pw}" y1="${y(v)}" y2="${y(v)}" stroke="#eee"/>`)
    out.push(`<text x="${m.l - 8}" y="${y(v) + 4}" text-anchor="end">${v.toFixed(1)}</text>`)
  }
  xs.forEach((s, i) =>
    out.push(`<text x="${x(i)}" y="${m.t + ph + 18}" text-anchor="middle">${Math.round(s * 100)}%</text>`),
  )
  out.push(
    `<text x="${m.l + pw / 2}" y="${H - 10}" text-anchor="middle">disk tier, share of the catalogue's bytes</text>`,
  )
  out.push(
    `<text transform="translate(16 ${m.t + ph / 2}) rotate(-90)" text-anchor="middle">byte hit ratio</text>`,
  )
  out.push(`<line x1="${m.l}" x2="${m.l}" y1="${m.t}" y2="${m.t + ph}" stroke="#333"/>`)
  out.push(`<line x1="${m.l}" x2="${m.l + pw}" y1="${m.t + ph}" y2="${m.t + ph}" stroke="#333"/>`)
  let legend = 0
  for (const name of Object.keys(COLOURS) as PolicyName[]) {
    const pts = sizes
      .map((s, i) => [i, s.results[name]?.byteHitRatio] as const)
      .filter((p): p is readonly [number, number] => p[1] !== undefined)
    if (!pts.length) continue
    const colour = COLOURS[name]
    const dash =
      name === 'belady' || name.startsWith('clairvoyant') || name.endsWith('oracle)')
        ? ' stroke-dasharray="6 4"'
        : ''
    out.push(
      `<polyline fill="none" stroke="${colour}" stroke-width="2"${dash} points="${pts.map(([i, v]) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ')}"/>`,
    )
    for (const [i, v] of pts)
      out.push(`<circle cx="${x(i).toFixed(1)}" cy="${y(v).toFixed(1)}" r="3" fill="${colour}"/>`)
    const ly = m.t + 10 + legend++ * 20
    out.push(
      `<line x1="${m.l + pw + 15}" x2="${m.l + pw + 40}" y1="${ly}" y2="${ly}" stroke="${colour}" stroke-width="2"${dash}/>`,
    )
    out.push(`<text x="${m.l + pw + 46}" y="${ly + 4}">${escape(name)}</text>`)
  }
  out.push('</svg>', '')
  return out.join('\n')
}

function escape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}

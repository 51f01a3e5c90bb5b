/**
 * Small SVG line charts for benchmark results: one or more panels stacked, each with its own
 * y axis and series over a shared x axis, plus optional shaded x ranges (an outage, say).
 * Plain SVG text, no dependency: the charts live beside the result tables in bench/results.
 */

export interface Series {
  readonly name: string
  readonly colour: string
  readonly points: readonly (readonly [number, number])[]
  readonly dashed?: boolean
}

export interface Panel {
  readonly yLabel: string
  readonly series: readonly Series[]
  /** y range; default 0 to the largest value (rounded up). */
  readonly yMax?: number
  /** Format of y tick labels. */
  readonly yFormat?: (v: number) => string
}

export interface Chart {
  readonly title: string
  readonly xLabel: string
  readonly xMin: number
  readonly xMax: number
  readonly xTicks: readonly number[]
  readonly panels: readonly Panel[]
  /** Shaded x ranges with a label. */
  readonly marks?: readonly { readonly from: number; readonly to: number; readonly label: string }[]
}

const W = 760
const PANEL_H = 200
const M = { l: 60, r: 190, t: 40, b: 50, gap: 30 }

export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
}

/** A round axis top at or above `v`: 1, 2 or 5 times a power of ten. */
export function niceMax(v: number): number {
  if (!(v > 0) || !Number.isFinite(v)) return 1
  const p = 10 ** Math.floor(Math.log10(v))
  for (const k of [1, 2, 5, 10]) if (k * p >= v) return k * p
  return 10 * p
}

export function lineChartSvg(c: Chart): string {
  const pw = W - M.l - M.r
  const H = M.t + c.panels.length * (PANEL_H + M.gap) - M.gap + M.b
  const x = (v: number) => M.l + ((v - c.xMin) / (c.xMax - c.xMin || 1)) * pw
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${M.l}" y="22" font-size="14">${escapeXml(c.title)}</text>`,
  ]
  c.panels.forEach((panel, k) => {
    const top = M.t + k * (PANEL_H + M.gap)
    const all = panel.series.flatMap((s) => s.points.map((p) => p[1])).filter(Number.isFinite)
    const yMax = panel.yMax ?? niceMax(Math.max(0, ...all))
    const y = (v: number) => top + PANEL_H - (Math.min(v, yMax) / yMax) * PANEL_H
    const fmt = panel.yFormat ?? ((v: number) => String(Number(v.toPrecision(3))))
    for (const m of c.marks ?? [])
      out.push(
        `<rect x="${x(m.from).toFixed(1)}" y="${top}" width="${Math.max(1, x(m.to) - x(m.from)).toFixed(1)}" height="${PANEL_H}" fill="#fde0dd"/>`,
      )
    for (let i = 0; i <= 4; i++) {
      const v = (yMax * i) / 4
      out.push(`<line x1="${M.l}" x2="${M.l + pw}" y1="${y(v)}" y2="${y(v)}" stroke="#eee"/>`)
      out.push(`<text x="${M.l - 8}" y="${y(v) + 4}" text-anchor="end">${escapeXml(fmt(v))}</text>`)
    }
    out.push(
      `<text transform="translate(16 ${top + PANEL_H / 2}) rotate(-90)" text-anchor="middle">${escapeXml(panel.yLabel)}</text>`,
      `<line x1="${M.l}" x2="${M.l}" y1="${top}" y2="${top + PANEL_H}" stroke="#333"/>`,
      `<line x1="${M.l}" x2="${M.l + pw}" y1="${top + PANEL_H}" y2="${top + PANEL_H}" stroke="#333"/>`,
    )
    panel.series.forEach((s, i) => {
      const pts = s.points.filter((p) => Number.isFinite(p[1]))
      const dash = s.dashed ? ' stroke-dasharray="6 4"' : ''
      if (pts.length)
        out.push(
          `<polyline fill="none" stroke="${s.colour}" stroke-width="2"${dash} points="${pts.map(([a, b]) => `${x(a).toFixed(1)},${y(b).toFixed(1)}`).join(' ')}"/>`,
        )
      const ly = top + 10 + i * 20
      out.push(
        `<line x1="${M.l + pw + 15}" x2="${M.l + pw + 40}" y1="${ly}" y2="${ly}" stroke="${s.colour}" stroke-width="2"${dash}/>`,
        `<text x="${M.l + pw + 46}" y="${ly + 4}">${escapeXml(s.name)}</text>`,
      )
    })
  })
  const bottom = M.t + c.panels.length * (PANEL_H + M.gap) - M.gap
  for (const t of c.xTicks)
    out.push(`<text x="${x(t).toFixed(1)}" y="${bottom + 18}" text-anchor="middle">${t}</text>`)
  for (const m of c.marks ?? [])
    out.push(
      `<text x="${x(m.from).toFixed(1)}" y="${M.t - 4}" font-size="10" fill="#c0392b">${escapeXml(m.label)}</text>`,
    )
  out.push(
    `<text x="${M.l + pw / 2}" y="${H - 10}" text-anchor="middle">${escapeXml(c.xLabel)}</text>`,
    '</svg>',
    '',
  )
  return out.join('\n')
}

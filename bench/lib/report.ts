/** Result files: a JSON document for machines and a markdown table for the README and docs. */
import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'

export interface Column<R> {
  readonly header: string
  readonly cell: (row: R) => string
  /** Numbers align right. */
  readonly right?: boolean
}

export function markdownTable<R>(rows: readonly R[], columns: readonly Column<R>[]): string {
  const head = `| ${columns.map((c) => c.header).join(' | ')} |`
  const rule = `|${columns.map((c) => (c.right ? '---:' : ':---')).join('|')}|`
  const body = rows.map((r) => `| ${columns.map((c) => c.cell(r).replace(/\|/g, '\\|')).join(' | ')} |`)
  return [head, rule, ...body].join('\n')
}

/** A number for a table: significant digits that suit its size; "n/a" for NaN or missing. */
export function fmt(n: number | undefined, digits = 3): string {
  if (n === undefined || !Number.isFinite(n)) return 'n/a'
  if (Math.abs(n) >= 10 ** digits) return Math.round(n).toLocaleString('en-US')
  return Number(n.toPrecision(digits)).toString()
}

export function ratio(ours: number | undefined, theirs: number | undefined): number {
  if (ours === undefined || theirs === undefined || !theirs) return Number.NaN
  return ours / theirs
}

export function writeResults(jsonPath: string, mdPath: string, doc: unknown, markdown: string): void {
  mkdirSync(dirname(jsonPath), { recursive: true })
  writeFileSync(jsonPath, `${JSON.stringify(doc, null, 2)}\n`)
  mkdirSync(dirname(mdPath), { recursive: true })
  writeFileSync(mdPath, markdown.endsWith('\n') ? markdown : `${markdown}\n`)
}

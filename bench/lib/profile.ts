/**
 * Reads a V8 .cpuprofile (from `node --cpu-prof`) and ranks where the time went: self time per
 * function and per file, and inclusive time for functions whose name matches a pattern. A
 * text summary for docs when a flame graph viewer is not at hand.
 *
 *   node dist/bench/lib/profile.js FILE.cpuprofile [--top 30]
 */
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  children?: number[]
}

interface CpuProfile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
  startTime: number
  endTime: number
}

export interface Ranked {
  readonly name: string
  readonly ms: number
  readonly share: number
}

function label(n: ProfileNode, root: string): string {
  const f = n.callFrame
  const url = f.url.replace(/^file:\/\//, '').replace(root, '')
  const fn = f.functionName || '(anonymous)'
  return url ? `${fn} ${url}:${f.lineNumber + 1}` : fn
}

export function analyse(profile: CpuProfile, root = '') {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const parent = new Map<number, number>()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const selfUs = new Map<number, number>()
  profile.samples.forEach((id, i) => {
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0))
  })
  const total = [...selfUs.values()].reduce((a, b) => a + b, 0)
  const fnSelf = new Map<string, number>()
  const fileSelf = new Map<string, number>()
  const fnTotal = new Map<string, number>()
  for (const [id, us] of selfUs) {
    const n = byId.get(id)!
    const name = label(n, root)
    fnSelf.set(name, (fnSelf.get(name) ?? 0) + us)
    const file = n.callFrame.url
      ? n.callFrame.url.replace(/^file:\/\//, '').replace(root, '')
      : `(${n.callFrame.functionName || 'native'})`
    fileSelf.set(file, (fileSelf.get(file) ?? 0) + us)
    // Inclusive: credit every distinct frame on the stack once. Depth is bounded by the tree.
    const seen = new Set<string>()
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const l = label(byId.get(cur)!, root)
      if (seen.has(l)) continue
      seen.add(l)
      fnTotal.set(l, (fnTotal.get(l) ?? 0) + us)
    }
  }
  // Shares are of the busy time: a server profile is mostly (idle) between and around runs.
  const busy = total - (fnSelf.get('(idle)') ?? 0)
  const rank = (m: Map<string, number>): Ranked[] =>
    [...m]
      .filter(([name]) => name !== '(idle)' && name !== '((idle))' && name !== '(root)')
      .map(([name, us]) => ({ name, ms: us / 1000, share: busy ? us / busy : 0 }))
      .sort((a, b) => b.ms - a.ms)
  return {
    totalMs: total / 1000,
    busyMs: busy / 1000,
    self: rank(fnSelf),
    files: rank(fileSelf),
    inclusive: rank(fnTotal),
  }
}

function main() {
  const { values, positionals } = parseArgs({
    options: { top: { type: 'string', default: '30' }, root: { type: 'string', default: '' } },
    allowPositionals: true,
  })
  const file = positionals[0]
  if (!file) throw new Error('usage: profile.js FILE.cpuprofile [--top N] [--root PREFIX]')
  const a = analyse(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile, values.root)
  const top = Number(values.top)
  const show = (title: string, rows: Ranked[]) => {
    process.stdout.write(`\n${title}\n`)
    for (const r of rows.slice(0, top))
      process.stdout.write(
        `${(r.share * 100).toFixed(1).padStart(6)}%  ${r.ms.toFixed(0).padStart(7)} ms  ${r.name}\n`,
      )
  }
  process.stdout.write(
    `sampled ${a.totalMs.toFixed(0)} ms, busy ${a.busyMs.toFixed(0)} ms (shares below are of busy)\n`,
  )
  show('self time by function', a.self)
  show('self time by file', a.files)
  show('inclusive time by function', a.inclusive)
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/^.*\//, ''))) main()

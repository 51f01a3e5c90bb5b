/**
 * The import rules of CONTRIBUTING.md, checked so they hold without anyone remembering, with
 * no special cases: every role (edge/, origin/, steering/) imports only src/ and itself; src/
 * (but src/cli/) imports only src/; only src/cli/ imports roles; nothing shipped imports
 * test/, bench/ or fixtures/; only src/config reads process.env; only metrics.ts files import
 * prom-client; only origin/transcode runs ffmpeg; only src/hls reads playlists (m3u8-parser).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import t from 'tap'
import { root } from './helpers/repo.js'

function walk(dir: string): string[] {
  let out: string[] = []
  let names: string[]
  try {
    names = readdirSync(dir)
  } catch {
    return out
  }
  for (const name of names) {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) out = out.concat(walk(p))
    else if (/\.ts$/.test(name) && !name.endsWith('.d.ts')) out.push(p)
  }
  return out
}

const IMPORT_RE = /(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g

function importsOf(file: string): string[] {
  const src = readFileSync(file, 'utf8')
  const out: string[] = []
  for (const m of src.matchAll(IMPORT_RE)) out.push((m[1] ?? m[2])!)
  return out
}

/** Top-level area of a repo-relative path: core (src/), cli (src/cli/), or a role's folder. */
function area(rel: string): string {
  const parts = rel.split('/')
  if (parts[0] === 'src') return parts[1] === 'cli' ? 'cli' : 'core'
  return parts[0]!
}

const ALLOWED: Record<string, readonly string[]> = {
  core: ['core'],
  edge: ['core', 'edge'],
  origin: ['core', 'origin'],
  steering: ['core', 'steering'],
  cli: ['core', 'cli', 'edge', 'origin', 'steering'],
}

const shipped = ['src', 'edge', 'origin', 'steering'].flatMap((d) => walk(join(root, d)))

t.test('imports go one way', async (t) => {
  const problems: string[] = []
  for (const file of shipped) {
    const rel = relative(root, file)
    const from = area(rel)
    for (const spec of importsOf(file)) {
      if (!spec.startsWith('.')) continue
      const target = relative(root, resolve(dirname(file), spec))
      const to = area(target)
      if (!ALLOWED[from]?.includes(to)) problems.push(`${rel} imports ${target} (${from} → ${to})`)
    }
  }
  t.same(problems, [], 'no import crosses a boundary')
  t.ok(shipped.length > 10, 'the walk found the code')
})

t.test('process.env, prom-client, ffmpeg and m3u8-parser stay where they belong', async (t) => {
  const problems: string[] = []
  for (const file of shipped) {
    const rel = relative(root, file)
    const src = readFileSync(file, 'utf8')
    if (/process\.env/.test(src) && !rel.startsWith('src/config/')) problems.push(`${rel} reads process.env`)
    if (importsOf(file).includes('prom-client') && !rel.endsWith('metrics.ts'))
      problems.push(`${rel} imports prom-client`)
    if (importsOf(file).includes('fluent-ffmpeg') && !rel.startsWith('origin/transcode/'))
      problems.push(`${rel} imports fluent-ffmpeg`)
    if (importsOf(file).includes('m3u8-parser') && !rel.startsWith('src/hls/'))
      problems.push(`${rel} imports m3u8-parser (read playlists through src/hls)`)
  }
  t.same(problems, [])
})

/**
 * The metric names of the three roles, each started as its command starts it (the edge's and
 * steering's main, runOrigin): every name starts `cdn_` and the role (the edge's prefill
 * `cdn_prefill_`), and each role exports the Node process defaults under its own prefix once
 * (`cdn_edge_process_resident_memory_bytes`, never `cdn_edge_process_process_...`).
 */
import { join } from 'node:path'
import t from 'tap'
import { fixtureFfmpeg } from '../../fixtures/media.js'
import { ORIGIN_SPEC, type OriginOptions } from '../../origin/config.js'
import { runOrigin } from '../../origin/main.js'
import { parseCommand } from '../../src/config/options.js'
import { STEERING_SPEC, type SteeringOptions } from '../../steering/config-spec.js'
import { startSteering } from '../../steering/main.js'
import { startEdge, tempDir } from '../helpers/edge.js'
import { writeOneEdgeFleet } from '../helpers/steering.js'

/** The metric names of a /metrics page (its # TYPE lines). */
async function names(url: string): Promise<string[]> {
  const text = await (await fetch(`${url}/metrics`)).text()
  return [...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!)
}

t.test('each role names its metrics cdn_<role>_*, the process defaults among them', async (t) => {
  const dir = tempDir(t, 'cdn-metric-names-')
  const ff = fixtureFfmpeg()
  const originOptions = parseCommand<OriginOptions>(
    ORIGIN_SPEC,
    ['--store', join(dir, 'store'), '--port', '0', '--log-level', 'silent'],
    {},
  ).config
  const origin = await runOrigin(
    { ...originOptions, ffmpegPath: ff.ffmpegPath, ffprobePath: ff.ffprobePath },
    undefined,
  )
  t.teardown(() => origin.close())
  const edge = await startEdge(t, { upstream: origin.url })
  const fleet = writeOneEdgeFleet(dir, edge.url)
  const steeringOptions = parseCommand<SteeringOptions>(
    STEERING_SPEC,
    ['--fleet', fleet, '--port', '0', '--log-level', 'silent'],
    {},
  ).config
  const steering = await startSteering(steeringOptions)
  t.teardown(() => steering.close())

  for (const [role, url, own] of [
    ['origin', origin.url, /^cdn_origin_/],
    ['edge', edge.url, /^cdn_(edge|prefill)_/],
    ['steering', steering.url, /^cdn_steering_/],
  ] as const) {
    const all = await names(url)
    t.same(
      all.filter((n) => !own.test(n)),
      [],
      `${role}: every name is its own`,
    )
    t.ok(all.includes(`cdn_${role}_process_resident_memory_bytes`), `${role}: the process defaults`)
    t.ok(all.includes(`cdn_${role}_nodejs_heap_size_used_bytes`), `${role}: the nodejs defaults`)
    t.same(
      all.filter((n) => /process_process_|process_nodejs_/.test(n)),
      [],
      `${role}: the process prefix once`,
    )
  }
})

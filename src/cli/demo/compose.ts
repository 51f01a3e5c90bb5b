/**
 * compose.yaml from the topology: one service per node, built from the Dockerfile, with the
 * same flags `cdn demo` passes (both come from buildPlan). The services use the host's
 * network, so the URLs steering hands to browsers (http://127.0.0.1:PORT) are the same inside
 * and outside the containers, exactly as in the local demo. Each node keeps its state in its
 * own named volume mounted at /data; steering reads fleet.json/zones.json from
 * deploy/compose/, written next to compose.yaml. YAML is written as JSON-quoted flow values,
 * which every YAML parser reads, so no YAML library is needed.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { buildPlan, type DemoPlan, type NodePlan } from './plan.js'
import type { Topology } from './topology.js'

const IMAGE = 'open-cdn:local'
const q = (s: string) => JSON.stringify(s)
/** A block sequence at `indent`: one item a line, so no formatter rewraps it. */
const block = (xs: readonly string[], indent: string) => xs.map((x) => `\n${indent}- ${q(x)}`).join('')

/** A health probe that needs nothing but node (the image has no curl); no double quotes inside. */
function probe(url: string, needTitles?: readonly string[]): string[] {
  const u = `'${url}'`
  const js = needTitles
    ? `fetch(${u}).then(r=>r.json()).then(b=>process.exit([${needTitles.map((t) => `'${t}'`).join(',')}]` +
      '.every(t=>(b.titles||[]).some(x=>x.id===t))?0:1),()=>process.exit(1))'
    : `fetch(${u}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))`
  return ['CMD', 'node', '-e', js]
}

export function composeYaml(topo: Topology, plan: DemoPlan, source = 'deploy/topology.json'): string {
  const out: string[] = [
    `# Generated from ${source} by \`cdn demo --emit-compose .\` (see docs/demo.md). Do not edit by hand:`,
    '# change the topology and regenerate. Every service runs the one image with its role as command.',
    'name: open-cdn',
    '',
    'x-node: &node',
    `  image: ${IMAGE}`,
    '  build: { context: . }',
    '  network_mode: host',
    '  restart: unless-stopped',
    '  init: true',
    '  stop_grace_period: 10s',
    '',
    'services:',
  ]
  const upstreamOf = (n: NodePlan): string | undefined => {
    const i = n.args.indexOf('--upstream')
    const url = i >= 0 ? n.args[i + 1] : undefined
    return plan.nodes.find((m) => m.url === url)?.id
  }
  for (const n of plan.nodes) {
    const deps =
      n.role === 'origin'
        ? []
        : n.role === 'edge'
          ? [upstreamOf(n)!]
          : plan.nodes.filter((m) => m.role === 'edge' && m.tier === 1).map((m) => m.id)
    out.push(`  ${n.id}:`, '    <<: *node', `    command:${block([n.role, ...n.args], '      ')}`)
    out.push(
      n.role === 'steering'
        ? '    volumes: ["./deploy/compose:/config:ro"]'
        : `    volumes: [${q(`${n.id}-data:/data`)}]`,
    )
    const test = n.role === 'origin' ? probe(`${n.url}/titles`, plan.sampleTitles) : probe(`${n.url}/healthz`)
    out.push(
      '    healthcheck:',
      `      test:${block(test, '        ')}`,
      '      interval: 5s',
      '      timeout: 3s',
      '      retries: 3',
      `      start_period: ${n.role === 'origin' ? '15m' : '30s'}`,
    )
    if (deps.length) {
      out.push('    depends_on:')
      for (const d of deps) out.push(`      ${d}: { condition: service_healthy }`)
    }
  }
  if (plan.prefill) {
    const { title, edges } = plan.prefill
    out.push(
      '  # One-shot: fill the prefill site with the most popular sample once its edges are up.',
      '  prefill:',
      `    image: ${IMAGE}`,
      '    network_mode: host',
      '    restart: "no"',
      `    entrypoint: ["sh", "-c"]`,
      `    command:${block([edges.map((e) => `node /app/dist/src/cli/main.js prefill --edge ${e.url} --token ${topo.adminToken} ${title}`).join(' && ')], '      ')}`,
      '    depends_on:',
      ...edges.map((e) => `      ${e.id}: { condition: service_healthy }`),
    )
  }
  out.push('', 'volumes:')
  for (const n of plan.nodes) if (n.role !== 'steering') out.push(`  ${n.id}-data: {}`)
  return `${out.join('\n')}\n`
}

/** The plan as the containers see it: every node's state under /data, steering's files under /config. */
export function composePlan(topo: Topology): DemoPlan {
  return buildPlan(topo, { paths: { nodeDir: () => '/data', configDir: '/config' } })
}

/** Writes DIR/compose.yaml and DIR/deploy/compose/{fleet,zones}.json; returns the paths written. */
export function writeCompose(topo: Topology, dir: string): string[] {
  const plan = composePlan(topo)
  const cfgDir = join(dir, 'deploy', 'compose')
  mkdirSync(cfgDir, { recursive: true })
  const files = {
    [join(dir, 'compose.yaml')]: composeYaml(topo, plan),
    [join(cfgDir, 'fleet.json')]: `${JSON.stringify(plan.fleet, null, 2)}\n`,
    [join(cfgDir, 'zones.json')]: `${JSON.stringify(plan.zones, null, 2)}\n`,
  }
  for (const [path, text] of Object.entries(files)) writeFileSync(path, text)
  return Object.keys(files)
}

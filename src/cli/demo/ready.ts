/**
 * What `cdn demo` prints once every node answers: where to look (player, dashboard, metrics),
 * the local CA and how to trust it, the operator commands to try against this demo (with the
 * demo's admin token and, over HTTPS, `--ca` naming its CA), and how to stop. Pure: the paths
 * are shown relative to `cwd` when below it, as the user would type them.
 */
import { join, relative } from 'node:path'
import { type DemoTlsFiles, trustHelp } from './demo-tls.js'
import { type DemoPlan, TLS_PORT_OFFSET } from './plan.js'

export interface ReadyFacts {
  readonly plan: DemoPlan
  readonly dataDir: string
  readonly tls: (DemoTlsFiles & { caSpki: string }) | undefined
  readonly adminToken: string
  readonly cwd: string
  readonly pid: number
}

/** `path` as typed from `cwd`: relative when below it, absolute otherwise. */
export function shownPath(path: string, cwd: string): string {
  const rel = relative(cwd, path)
  return rel === '' ? '.' : rel.startsWith('..') ? path : rel
}

/** A word for a POSIX shell: as is when safe, single-quoted otherwise. */
function sh(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`
}

/** `cdn status`, `cdn prefill` and `cdn purge` against this demo, ready to paste. */
export function tryCommands(f: Pick<ReadyFacts, 'plan' | 'tls' | 'adminToken' | 'cwd'>): string[] {
  const { plan } = f
  const ca = f.tls ? ` --ca ${sh(shownPath(f.tls.caCert, f.cwd))}` : ''
  const token = ` --token ${sh(f.adminToken)}`
  const edge = plan.nodes.find((n) => n.role === 'edge' && n.tier !== 2) ?? plan.nodes[0]!
  // A title the demo did not prefill already, so the prefill has work to show.
  const title = plan.sampleTitles.find((t) => t !== plan.prefill?.title) ?? plan.sampleTitles[0] ?? 'TITLE'
  return [
    `npx cdn status --steering ${plan.steering.url}${ca}`,
    `npx cdn prefill --all-edges ${plan.steering.url}${ca}${token} ${title}`,
    `npx cdn purge --edge ${edge.url}${ca}${token} ${title}`,
  ]
}

export function readyBlock(f: ReadyFacts): string {
  const { plan, tls } = f
  const dataDir = shownPath(f.dataDir, f.cwd)
  const width = Math.max(...plan.nodes.map((n) => n.id.length))
  const metrics = plan.nodes.map((n) => `${n.id.padEnd(width)}  ${n.url}/metrics`)
  // The player offers the sample titles at once; steering has no catalogue of its own.
  const titles = `/?titles=${plan.sampleTitles.join(',')}`
  const lines = [
    '',
    `Open CDN is running: ${plan.nodes.length} nodes, data in ${dataDir}, logs in ${join(dataDir, 'logs')}`,
    '',
    `  Player      ${plan.steering.url}${titles}`,
    `  Fleet       ${plan.steering.url}/fleet`,
    `  Metrics     ${metrics.join('\n              ')}`,
    '',
  ]
  if (tls) {
    const ca = shownPath(tls.caCert, f.cwd)
    lines.push(
      `  HTTPS       every node speaks HTTP/2 (and HTTP/1.1) on its port + ${TLS_PORT_OFFSET}, with a certificate from`,
      `              a local CA made for this demo: ${ca}`,
      `              Trust that CA once to play over HTTPS (it signs nothing else; delete ${shownPath(tls.dir, f.cwd)} to start over):`,
      ...trustHelp(ca, tls.caSpki).map((l) => `                ${l}`),
      '',
      `  Plain HTTP  every node still answers on its own port: ${plan.steering.httpUrl}/fleet, ${plan.steering.httpUrl}${titles}`,
      `              (${plan.nodes.map((n) => `${n.id} :${n.port}`).join(', ')}), for curl and Prometheus.`,
      '              The player there still plays from the edges over HTTPS; without the CA, run the whole demo',
      '              over plain HTTP: npm start -- --tls false',
      '',
    )
  }
  const [first, ...more] = tryCommands(f)
  lines.push(
    `  Try         ${first}`,
    ...more.map((c) => `              ${c}`),
    `              (the admin token is the topology's adminToken${tls ? '; steering lists the edges by their https URLs, hence --ca' : ''};`,
    `              or export CDN_ADMIN_TOKEN${tls ? ' and CDN_CA' : ''} instead of the flags)`,
    '',
    `  Stop        Ctrl-C (or kill -TERM ${f.pid})`,
    '',
  )
  return lines.join('\n')
}

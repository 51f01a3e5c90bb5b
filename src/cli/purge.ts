/**
 * `cdn purge`: purge titles from edges' both tiers.
 *
 *   cdn purge --edge URL --token T TITLE...                one edge
 *   cdn purge --edge PARENT --edge CHILD --token T ...     several, in the order given
 *   cdn purge --edge PARENT --all-edges STEERING_URL ...   and every edge steering lists, after
 *
 * A child edge refills from its parent, so a takedown names the parents first: steering lists
 * only the edges players are sent to, never their parents. Every edge is tried even when one does
 * not answer; the command exits 1 when any purge failed.
 */

import type { CommandSpec } from '../config/options.js'
import { checkBaseUrl, parseCommand } from '../config/options.js'
import { CdnError, isCdnError } from '../errors.js'
import { assertTitle } from '../http/paths.js'
import { type CliCommand, type CliIo, failureLine } from './command.js'
import { CA_OPTIONS, CliHttp, steeringEdges } from './http-client.js'

const SPEC: CommandSpec = {
  name: 'cdn purge',
  summary: 'Purge titles from edges (memory and disk tiers).',
  usage: 'cdn purge (--edge URL... | --all-edges STEERING_URL) --token TOKEN [--ca FILE] TITLE...',
  positionals: 'TITLE...',
  envPrefix: 'CDN_PURGE',
  options: {
    edge: {
      type: 'list',
      default: [],
      help: 'edge base URL; repeat (or comma-separate) for several, purged in this order: a parent before its children',
      env: 'CDN_PURGE_EDGE',
      envAliases: ['CDN_EDGE_URL'],
      arg: 'URL',
    },
    allEdges: {
      type: 'url',
      arg: 'STEERING_URL',
      help: 'also purge every edge steering lists (its GET /edges), after the --edge ones',
    },
    token: {
      type: 'string',
      help: "the edges' admin bearer token",
      required: true,
      env: 'CDN_ADMIN_TOKEN',
      envAliases: ['CDN_EDGE_ADMIN_TOKEN'],
      arg: 'TOKEN',
    },
    ...CA_OPTIONS,
    timeout: { type: 'duration', default: 30_000, min: 100, help: 'timeout of each HTTP request' },
  },
}

interface PurgeOptions {
  edge: string[]
  allEdges: string | undefined
  token: string
  ca: string[]
  timeout: number
}

/** The --edge URLs, checked as every base URL option is. */
function givenEdges(urls: readonly string[]): string[] {
  return urls.map((raw) => {
    const why = checkBaseUrl(raw)
    if (why) throw new CdnError('CDN_ERR_CONFIG', `--edge ${raw}: ${why}`)
    return raw.replace(/\/+$/, '')
  })
}

export const command: CliCommand = {
  spec: SPEC,
  async run(io) {
    const { config, positionals } = parseCommand<PurgeOptions>(SPEC, io.argv, io.env)
    const given = givenEdges(config.edge)
    if (!given.length && !config.allEdges)
      throw new CdnError('CDN_ERR_CONFIG', '--edge URL or --all-edges STEERING_URL is required')
    if (!positionals.length) throw new CdnError('CDN_ERR_CONFIG', 'name at least one TITLE')
    const titles = positionals.map((p) => assertTitle(p))
    const http = new CliHttp(config)
    try {
      const edges = [...given]
      for (const e of config.allEdges ? await steeringEdges(http, config.allEdges) : [])
        if (!edges.includes(e)) edges.push(e)
      let failed = 0
      for (const edge of edges) failed += await purgeEdge(io, http, edge, titles, edges.length > 1)
      return failed ? 1 : 0
    } finally {
      await http.close()
    }
  },
}

/** Purges the titles from one edge; how many failed. Lines name the edge when there are several. */
async function purgeEdge(
  io: CliIo,
  http: CliHttp,
  edge: string,
  titles: readonly string[],
  named: boolean,
): Promise<number> {
  const prefix = named ? `${edge} ` : ''
  let failed = 0
  for (const [i, title] of titles.entries()) {
    try {
      const { json } = await http.call('DELETE', `${edge}/admin/cache/vod/${title}`)
      io.stdout.write(`${prefix}${title}: purged ${(json as { purged?: number })?.purged ?? 0} objects\n`)
    } catch (err) {
      if (!isCdnError(err)) throw err
      io.stderr.write(`${failureLine(SPEC.name, err)}\n`)
      // The edge's answer for this title (a purge some workers did not confirm): its next title
      // may go through. No answer at all: the rest of this edge's would not either.
      if (err.details?.status === undefined) return failed + titles.length - i
      failed++
    }
  }
  return failed
}

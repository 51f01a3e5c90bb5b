/** `cdn purge --edge URL --token T TITLE...`: purge titles from an edge's both tiers. */

import type { CommandSpec } from '../config/options.js'
import { parseCommand } from '../config/options.js'
import { CdnError, isCdnError } from '../errors.js'
import { assertTitle } from '../http/paths.js'
import { type CliCommand, failureLine } from './command.js'
import { CA_OPTIONS, CliHttp } from './http-client.js'

const SPEC: CommandSpec = {
  name: 'cdn purge',
  summary: 'Purge titles from an edge (memory and disk tiers).',
  usage: 'cdn purge --edge URL --token TOKEN [--ca FILE] TITLE...',
  positionals: 'TITLE...',
  envPrefix: 'CDN_PURGE',
  options: {
    edge: {
      type: 'url',
      help: 'edge base URL',
      required: true,
      env: 'CDN_PURGE_EDGE',
      envAliases: ['CDN_EDGE_URL'],
      arg: 'URL',
    },
    token: {
      type: 'string',
      help: "the edge's admin bearer token",
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
  edge: string
  token: string
  ca: string[]
  timeout: number
}

export const command: CliCommand = {
  spec: SPEC,
  async run(io) {
    const { config, positionals } = parseCommand<PurgeOptions>(SPEC, io.argv, io.env)
    if (!positionals.length) throw new CdnError('CDN_ERR_CONFIG', 'name at least one TITLE')
    const titles = positionals.map((p) => assertTitle(p))
    const http = new CliHttp(config)
    let failed = 0
    try {
      for (const title of titles) {
        try {
          const { json } = await http.call('DELETE', `${config.edge}/admin/cache/vod/${title}`)
          io.stdout.write(`${title}: purged ${(json as { purged?: number })?.purged ?? 0} objects\n`)
        } catch (err) {
          // The edge's answer for this title (a purge some workers did not confirm): the next
          // title may go through. No answer at all: the rest would not either.
          if (!isCdnError(err) || err.details?.status === undefined) throw err
          failed++
          io.stderr.write(`${failureLine(SPEC.name, err)}\n`)
        }
      }
    } finally {
      await http.close()
    }
    return failed ? 1 : 0
  },
}

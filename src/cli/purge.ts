/** `cdn purge --edge URL --token T TITLE...`: purge titles from an edge's both tiers. */

import type { CommandSpec } from '../config/options.js'
import { parseCommand } from '../config/options.js'
import { CdnError } from '../errors.js'
import { assertTitle } from '../http/paths.js'
import type { CliCommand } from './command.js'

const SPEC: CommandSpec = {
  name: 'cdn purge',
  summary: 'Purge titles from an edge (memory and disk tiers).',
  usage: 'cdn purge --edge URL --token TOKEN TITLE...',
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
  },
}

export const command: CliCommand = {
  spec: SPEC,
  async run(io) {
    const { config, positionals } = parseCommand<{ edge: string; token: string }>(SPEC, io.argv, io.env)
    if (!positionals.length) throw new CdnError('CDN_ERR_CONFIG', 'cdn purge: name at least one TITLE')
    let failed = 0
    for (const p of positionals) {
      const title = assertTitle(p)
      const res = await fetch(`${config.edge}/admin/cache/vod/${title}`, {
        method: 'DELETE',
        headers: { authorization: `Bearer ${config.token}` },
      })
      const body = (await res.json().catch(() => ({}))) as { purged?: number; error?: { message?: string } }
      if (res.ok) io.stdout.write(`${title}: purged ${body.purged ?? 0} objects\n`)
      else {
        failed++
        io.stderr.write(`${title}: ${res.status} ${body.error?.message ?? res.statusText}\n`)
      }
    }
    return failed ? 1 : 0
  },
}

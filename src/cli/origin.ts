/** `cdn origin`: serve a content store and accept ingest jobs until SIGINT/SIGTERM. */
import { ORIGIN_SPEC, type OriginOptions } from '../../origin/config.js'
import { runOrigin, storeRule } from '../../origin/main.js'
import { openStore } from '../../origin/store/open-store.js'
import { retireVersions } from '../../origin/store/retire.js'
import { CdnError } from '../errors.js'
import { parseCommand } from '../config/options.js'
import { type CliCommand, type CliIo, failureLine } from './command.js'

export const command: CliCommand = {
  spec: ORIGIN_SPEC,
  async run(io) {
    const { config, positionals } = parseCommand<OriginOptions>(ORIGIN_SPEC, io.argv, io.env)
    if (positionals[0] === 'retire') return retire(io, config, positionals.slice(1))
    if (positionals.length)
      throw new CdnError(
        'CDN_ERR_CONFIG',
        `unexpected argument ${JSON.stringify(positionals[0])} (the only one is retire TITLE)`,
      )
    const running = await runOrigin(config, io.env.PATH)
    const plain = running.httpUrl ? ` and ${running.httpUrl}` : ''
    io.stdout.write(`origin ${config.id} listening on ${running.url}${plain} (store ${config.store})\n`)
    io.onHangup?.(() => running.reloadTls())
    const sig = await io.stopSignal
    io.stdout.write(`origin: ${sig}, closing\n`)
    await running.close()
    return 0
  },
}

/** `cdn origin retire TITLE --store ... --keep N --grace D`: see origin/store/retire.ts. */
async function retire(io: CliIo, o: OriginOptions, args: string[]): Promise<number> {
  if (args.length !== 1) throw new CdnError('CDN_ERR_CONFIG', 'retire: expected exactly one TITLE')
  const store = await openStore(o)
  try {
    if (store.casMode === 'single-writer')
      io.stderr.write(
        `cdn origin retire: ${storeRule(store.casMode, true)}; retire while the writer is not publishing this title\n`,
      )
    const r = await retireVersions(store, args[0]!, { keep: o.keep, graceMs: o.grace, now: new Date() })
    io.stdout.write(
      `retire ${args[0]}: retired ${r.retired.join(' ') || 'none'}; deleted ${r.deleted.join(' ') || 'none'}; waiting for the grace period ${r.waiting.join(' ') || 'none'}\n`,
    )
    return 0
  } catch (err) {
    io.stderr.write(`${failureLine('cdn origin retire', err)}\n`)
    return 1
  } finally {
    await store.close()
  }
}

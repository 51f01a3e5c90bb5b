/** `cdn origin`: serve a content store and accept ingest jobs until SIGINT/SIGTERM. */
import { ORIGIN_SPEC, type OriginOptions } from '../../origin/config.js'
import { runOrigin } from '../../origin/main.js'
import { parseCommand } from '../config/options.js'
import type { CliCommand } from './command.js'

export const command: CliCommand = {
  spec: ORIGIN_SPEC,
  async run(io) {
    const { config, positionals } = parseCommand<OriginOptions>(ORIGIN_SPEC, io.argv, io.env)
    if (positionals.length) {
      io.stderr.write(`cdn origin: unexpected argument ${positionals[0]}\n`)
      return 2
    }
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

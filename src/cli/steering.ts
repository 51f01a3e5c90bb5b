/** `cdn steering`: run the steering service until SIGINT/SIGTERM. */
import { parseCommand } from '../config/options.js'
import { STEERING_SPEC, type SteeringOptions } from '../../steering/config-spec.js'
import { startSteering } from '../../steering/main.js'
import type { CliCommand } from './command.js'

export const command: CliCommand = {
  spec: STEERING_SPEC,
  async run(io) {
    const { config } = parseCommand<SteeringOptions>(STEERING_SPEC, io.argv, io.env)
    const running = await startSteering(config)
    const v = running.app.steering.health.view
    const plain = running.httpUrl ? ` and ${running.httpUrl}` : ''
    io.stdout.write(
      `steering listening on ${running.url}${plain} (${v.usableCount}/${v.edges.length} edges in rotation)\n`,
    )
    io.onHangup?.(() => {
      running.reloadTls()
      running.reloadFleet()
    })
    const sig = await io.stopSignal
    io.stdout.write(`steering: ${sig}, closing\n`)
    await running.close()
    return 0
  },
}

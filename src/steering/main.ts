/**
 * Starts steering from parsed options: reads and validates the fleet and zones files
 * (every problem listed), builds the app, listens, and closes cleanly when `stop` resolves.
 */
import type { FastifyInstance } from 'fastify'
import { systemClock } from '../clock.js'
import { loggerOptions } from '../log.js'
import { buildSteeringApp } from './app.js'
import { type SteeringOptions, steeringConfig } from './config.js'
import { parseZones } from './geo.js'
import { loadFleet, readJsonFile } from './registry.js'

export interface RunningSteering {
  readonly app: FastifyInstance
  readonly url: string
  close(): Promise<void>
}

export async function startSteering(options: SteeringOptions): Promise<RunningSteering> {
  const config = steeringConfig(options)
  const registry = loadFleet(options.fleet)
  const zones = options.zones
    ? parseZones(readJsonFile(options.zones, 'zones file'), `zones file ${options.zones}`)
    : undefined
  const app = await buildSteeringApp({
    config,
    registry,
    ...(zones ? { zones } : {}),
    clock: systemClock,
    logger: loggerOptions(config.logLevel, 'steering'),
  })
  await app.listen({ port: config.port, host: config.host })
  const addr = app.server.address()
  const port = typeof addr === 'object' && addr ? addr.port : config.port
  const host = config.host.includes(':') ? `[${config.host}]` : config.host
  return { app, url: `http://${host}:${port}`, close: () => app.close() }
}

/**
 * Starts steering from parsed options: reads and validates the fleet and zones files
 * (every problem listed), builds the app, listens, and closes cleanly when `stop` resolves.
 */
import type { FastifyInstance } from 'fastify'
import { systemClock } from '../src/clock.js'
import { CdnError, isCdnError } from '../src/errors.js'
import { loggerOptions } from '../src/log.js'
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
  // Options, fleet and zones are each validated; their problems are reported together.
  const errors: string[] = []
  const attempt = <T>(fn: () => T): T | undefined => {
    try {
      return fn()
    } catch (err) {
      if (!isCdnError(err)) throw err
      errors.push(err.message)
      return undefined
    }
  }
  const config = attempt(() => steeringConfig(options))
  const registry = attempt(() => loadFleet(options.fleet))
  const zonesPath = options.zones
  const zones = zonesPath
    ? attempt(() => parseZones(readJsonFile(zonesPath, 'zones file'), `zones file ${zonesPath}`))
    : undefined
  if (!config || !registry || errors.length) throw new CdnError('CDN_ERR_CONFIG', errors.join('\n'))
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

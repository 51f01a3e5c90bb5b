/**
 * Starts steering from parsed options: reads and validates the fleet and zones files
 * (every problem listed), builds the app, listens, and closes cleanly when `stop` resolves.
 */
import type { FastifyInstance } from 'fastify'
import { systemClock } from '../src/clock.js'
import { CdnError, isCdnError } from '../src/errors.js'
import { refuseConnect } from '../src/http/one-answer.js'
import { roleTls } from '../src/http/role-tls.js'
import { closeServer, listenServer } from '../src/http/tls-server.js'
import { loggerOptions } from '../src/log.js'
import { buildSteeringApp } from './app.js'
import { steeringConfig } from './config.js'
import { type SteeringOptions } from './config-spec.js'
import { parseZones } from './geo.js'
import { loadFleet, readJsonFile } from './registry.js'

export interface RunningSteering {
  readonly app: FastifyInstance
  readonly url: string
  /** With --http-port: the plain-HTTP listener's URL. */
  readonly httpUrl?: string
  /** Reads the certificate files again (SIGHUP); false: kept the ones in use. */
  reloadTls(): boolean
  /**
   * Reads the fleet file again (SIGHUP) and applies its edges; false: it did not read or
   * validate, so the fleet in use is kept and the problems are logged.
   */
  reloadFleet(): boolean
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
  const registry = attempt(() =>
    loadFleet(options.fleet, { registry: (options.registryEtcd?.length ?? 0) > 0 }),
  )
  const zonesPath = options.zones
  const zones = zonesPath
    ? attempt(() => parseZones(readJsonFile(zonesPath, 'zones file'), `zones file ${zonesPath}`))
    : undefined
  if (!config || !registry || errors.length) throw new CdnError('CDN_ERR_CONFIG', errors.join('\n'))
  // The app's logger, once it exists, hears certificate reloads.
  const logger: { log?: FastifyInstance['log'] } = {}
  const tls = roleTls(config.tls, () => logger.log)
  const app = await buildSteeringApp({
    config,
    registry,
    ...(zones ? { zones } : {}),
    clock: systemClock,
    logger: loggerOptions(config.logLevel, 'steering'),
    ...(tls ? { tls } : {}),
    processMetrics: true,
  })
  logger.log = app.log
  // CONNECT gets its 400 on the plain server too (the HTTPS one refuses it itself).
  if (!tls) refuseConnect(app.server)
  const plain = tls?.plain
  app.addHook('onClose', async () => {
    tls?.certs.close()
    if (plain) await closeServer(plain)
  })
  await app.listen({ port: config.port, host: config.host })
  const addr = app.server.address()
  const port = typeof addr === 'object' && addr ? addr.port : config.port
  const host = config.host.includes(':') ? `[${config.host}]` : config.host
  const httpPort = plain ? await listenServer(plain, config.tls.httpPort ?? 0, config.host) : undefined
  return {
    app,
    url: `${tls ? 'https' : 'http'}://${host}:${port}`,
    ...(httpPort !== undefined ? { httpUrl: `http://${host}:${httpPort}` } : {}),
    reloadTls: () => tls?.certs.reload() ?? false,
    reloadFleet: () => {
      try {
        app.steering.reloadFleet(loadFleet(options.fleet, { registry: config.registry.endpoints.length > 0 }))
        return true
      } catch (err) {
        if (!isCdnError(err)) throw err
        app.log.error(
          { event: 'fleet-reload-refused', err: err.message },
          'fleet file not applied: the fleet in use is kept',
        )
        return false
      }
    },
    close: () => app.close(),
  }
}

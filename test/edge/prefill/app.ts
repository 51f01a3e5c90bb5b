/** A small fastify app with prefill's routes over a DirTarget: the plugin tested before the edge has it. */
import Fastify from 'fastify'
import type { Test } from 'tap'
import type { PrefillJobs } from '../../../edge/prefill/jobs.js'
import { Popularity } from '../../../edge/prefill/popularity.js'
import { prefillRoutes } from '../../../edge/prefill/routes.js'
import { errorBody } from '../../../src/errors.js'

export const TOKEN = 'sekrit'

export async function routesApp(
  t: Test,
  jobs: PrefillJobs,
  popularity = new Popularity({ clock: { now: Date.now, monotonic: () => performance.now() } }),
) {
  const app = Fastify()
  app.setErrorHandler((err, _req, reply) => {
    const { status, body } = errorBody(err)
    return reply.code(status).send(body)
  })
  await app.register(prefillRoutes, {
    jobs,
    popularity,
    adminToken: TOKEN,
    limits: {
      defaultConcurrency: 4,
      maxConcurrency: 16,
      trickleBytesPerSecond: 0,
      maxTitles: 100,
      timeZone: 'UTC',
    },
  })
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  const addr = app.server.address()
  if (!addr || typeof addr === 'string') throw new Error('no port')
  return { app, url: `http://127.0.0.1:${addr.port}`, popularity }
}

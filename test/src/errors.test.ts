/**
 * The one error handler every role installs (src/http/errors.ts jsonErrorHandler), on a real
 * fastify app: what fastify refuses is answered with a code of the catalogue and a message of
 * ours, and no other client error's library code reaches the body (it was its `cause`).
 */
import Fastify from 'fastify'
import t from 'tap'
import { jsonErrorHandler, jsonNotFoundHandler } from '../../src/http/errors.js'

t.test("fastify's refusals and other client errors carry our code, never the library's", async (t) => {
  const app = Fastify()
  app.setErrorHandler(jsonErrorHandler)
  app.setNotFoundHandler(jsonNotFoundHandler)
  app.get(
    '/q',
    { schema: { querystring: { type: 'object', properties: { n: { type: 'integer' } } } } },
    async () => ({ ok: true }),
  )
  app.get('/conflict', async () => {
    throw Object.assign(new Error('already there'), { statusCode: 409, code: 'SOME_LIB_CONFLICT' })
  })
  t.teardown(() => app.close())
  const query = await app.inject('/q?n=abc')
  t.equal(query.statusCode, 400)
  t.same(query.json(), {
    error: { code: 'CDN_ERR_BAD_REQUEST', message: 'querystring/n must be integer' },
  })
  const conflict = await app.inject('/conflict')
  t.equal(conflict.statusCode, 409)
  t.same(conflict.json(), { error: { code: 'CDN_ERR_BAD_REQUEST', message: 'already there' } })
})

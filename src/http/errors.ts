/**
 * The one JSON error writer for raw node responses (fastify routes use the app's error handler,
 * which renders the same body through errorBody). The body is the error's code and message,
 * never an internal address or path; `extra` headers go beside the standard ones. Returns the
 * status sent.
 */
import type { ServerResponse } from 'node:http'
import { errorBody } from '../errors.js'

export function sendJsonError(
  res: ServerResponse,
  err: unknown,
  extra: Record<string, string> = {},
  head = false,
): number {
  const { status, body } = errorBody(err)
  const json = JSON.stringify(body)
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(json)),
    'cache-control': 'no-store',
    ...extra,
  })
  res.end(head ? undefined : json)
  return status
}

/**
 * A real upstream on loopback that records every request target it receives (raw, as sent):
 * what the boundary tests check is what reached the upstream, byte for byte (and, through
 * test/helpers/edge.ts loggedEdge, what the edge wrote down).
 */
import { createServer } from 'node:http'
import type { Test } from 'tap'
import { listenLoopback } from '../../helpers/loopback.js'

export interface Recording {
  url: string
  /** Every request target the upstream received (raw, as sent), in order. */
  seen: string[]
}

/** Answers 200 with a short body naming the target, for any path the edge asks for. */
export async function recordingUpstream(t: Test): Promise<Recording> {
  const seen: string[] = []
  const server = createServer((req, res) => {
    seen.push(req.url ?? '')
    const body = `body of ${req.url}`
    res.writeHead(200, {
      'cache-control': 'public, max-age=60',
      'content-type': 'text/plain',
      'content-length': Buffer.byteLength(body),
    })
    res.end(body)
  })
  return { url: await listenLoopback(t, server), seen }
}

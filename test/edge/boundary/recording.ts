/**
 * A real upstream on loopback that records every request target it receives (raw, as sent),
 * and an edge in front of it with a log the test can read: what the boundary tests check is
 * what reached the upstream, byte for byte, and what the edge wrote down.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Writable } from 'node:stream'
import type { Test } from 'tap'
import { type EdgeConfig, edgeConfig } from '../../../edge/config.js'
import { startEdge as start } from '../../../edge/main.js'
import { tempDir } from '../../helpers/edge.js'

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
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => {
    server.closeAllConnections()
    server.close()
  })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen }
}

export interface LoggedEdge {
  url: string
  /** Log records written so far (pino JSON lines, parsed). */
  logs: Record<string, unknown>[]
}

export async function loggedEdge(
  t: Test,
  over: Partial<EdgeConfig> & { upstream: string[] },
): Promise<LoggedEdge> {
  const logs: Record<string, unknown>[] = []
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n'))
        if (line) logs.push(JSON.parse(line) as Record<string, unknown>)
      done()
    },
  })
  const config = edgeConfig({
    memorySize: 16e6,
    diskSize: 64e6,
    cacheDir: tempDir(t),
    port: 0,
    host: '127.0.0.1',
    ...over,
  })
  const { app, url } = await start(config, { logger: { level: 'info', stream } })
  t.teardown(() => app.close())
  return { url, logs }
}

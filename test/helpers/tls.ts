/**
 * TLS for tests: a private CA and server certificates made with the openssl command in a temp
 * dir (src/cli/demo/certs.ts, as the demo makes its own), and undici agents for each client
 * transport the edge serves: HTTP/1.1 in the clear, HTTP/1.1 over TLS, HTTP/2 (ALPN h2).
 */
import { readFileSync } from 'node:fs'
import type { ClientHttp2Session } from 'node:http2'
import type { Test } from 'tap'
import { Agent } from 'undici'
import { type LocalCa, localCa, type ServerCert, serverCert } from '../../src/cli/demo/certs.js'
import { tempDir } from './edge.js'

export interface TestCerts {
  ca: LocalCa
  /** The CA certificate's PEM text. */
  caPem: string
  cert: ServerCert
}

/** A CA and one server certificate for localhost/127.0.0.1 (+ `names`), removed on teardown. */
export async function testCerts(t: Test, names: string[] = []): Promise<TestCerts> {
  const ca = await localCa(tempDir(t, 'cdn-tls-'), 'cdn test CA')
  const cert = await serverCert(ca, 'server', names)
  return { ca, caPem: readFileSync(ca.caCert, 'utf8'), cert }
}

export type Transport = 'h1' | 'https1' | 'h2'
export const TRANSPORTS: readonly Transport[] = ['h1', 'https1', 'h2']

/** An undici agent speaking `transport` (trusting `caPem` for TLS), closed on teardown. */
export function agentFor(t: Test, transport: Transport, caPem: string): Agent {
  const agent =
    transport === 'h1'
      ? new Agent()
      : new Agent({
          allowH2: transport === 'h2',
          connect: { ca: caPem, ...(transport === 'h2' ? {} : { ALPNProtocols: ['http/1.1'] }) },
        })
  t.teardown(() => agent.close())
  return agent
}

/** One HTTP/2 request on `session` (with `body`, sent after the head): its status, head and body. */
export function h2Exchange(
  session: ClientHttp2Session,
  headers: Record<string, string>,
  body?: string,
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const r = session.request(headers, { endStream: body === undefined })
    let status = 0
    let head: Record<string, unknown> = {}
    let text = ''
    r.setEncoding('utf8')
    r.on('response', (h) => {
      status = Number(h[':status'])
      head = h
    })
    r.on('data', (d: string) => (text += d))
    r.on('end', () => resolve({ status, headers: head, body: text }))
    r.on('error', reject)
    if (body !== undefined) r.end(body)
  })
}

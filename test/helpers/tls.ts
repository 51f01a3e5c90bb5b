/**
 * TLS for tests: a private CA and server certificates made with the openssl command in a temp
 * dir (src/cli/demo/certs.ts, as the demo makes its own), and undici agents for each client
 * transport the edge serves: HTTP/1.1 in the clear, HTTP/1.1 over TLS, HTTP/2 (ALPN h2).
 */
import { readFileSync } from 'node:fs'
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

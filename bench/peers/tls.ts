/**
 * The TLS part of the peer benchmark: one certificate for both servers (a local CA and an ECDSA
 * P-256 certificate for 127.0.0.1, made by the demo's maker with openssl), what each server
 * negotiates with a client that offers the usual choices, and the edge's own counts of
 * handshakes and protocols over the TLS rows (the evidence that HTTP/2 rows went over h2 and
 * that the handshake row's handshakes were all full).
 */
import { connect } from 'node:tls'
import { localCa, serverCert } from '../../src/cli/demo/certs.js'
import { oneRequest } from '../lib/handshakes.js'
import type { Negotiated } from '../lib/load.js'
import type { Server, TlsFiles } from './servers.js'

export async function benchCertificates(dir: string): Promise<TlsFiles> {
  const ca = await localCa(dir, 'bench:peers CA')
  const s = await serverCert(ca, 'bench')
  return { cert: s.cert, key: s.key, ca: ca.caCert }
}

/** Per server: TLS version, cipher, key exchange and ALPN of one HTTP/1.1 request and of h2. */
export async function probeTls(
  servers: readonly Server[],
): Promise<Record<string, { https1: Negotiated; h2alpn: string }>> {
  const out: Record<string, { https1: Negotiated; h2alpn: string }> = {}
  for (const s of servers) {
    const url = new URL(`${s.base}/healthz`)
    const h1 = await oneRequest(url)
    out[s.name] = { https1: h1.negotiated, h2alpn: await alpnOf(url, ['h2', 'http/1.1']) }
  }
  return out
}

function alpnOf(url: URL, protocols: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: url.hostname,
      port: Number(url.port),
      servername: 'localhost',
      rejectUnauthorized: false,
      ALPNProtocols: protocols,
    })
    socket.once('secureConnect', () => {
      resolve(socket.alpnProtocol || '')
      socket.destroy()
    })
    socket.once('error', reject)
  })
}

export interface EdgeTlsCounts {
  readonly fullHandshakes: number
  readonly resumedHandshakes: number
  readonly https1: number
  readonly h2: number
}

/** The edge's TLS handshake and per-protocol request counters, from its /metrics. */
export async function edgeTlsCounts(edge: Server): Promise<EdgeTlsCounts> {
  const res = await (edge.fetch ?? fetch)(`${edge.base}/metrics`)
  const text = await res.text()
  const n = (re: RegExp) => Number(re.exec(text)?.[1] ?? 0)
  return {
    fullHandshakes: n(/^cdn_edge_tls_handshakes_total\{resumed="false"\} (\d+)/m),
    resumedHandshakes: n(/^cdn_edge_tls_handshakes_total\{resumed="true"\} (\d+)/m),
    https1: n(/^cdn_edge_requests_by_protocol_total\{protocol="https1"\} (\d+)/m),
    h2: n(/^cdn_edge_requests_by_protocol_total\{protocol="h2"\} (\d+)/m),
  }
}

export function diffCounts(after: EdgeTlsCounts, before: EdgeTlsCounts): EdgeTlsCounts {
  return {
    fullHandshakes: after.fullHandshakes - before.fullHandshakes,
    resumedHandshakes: after.resumedHandshakes - before.resumedHandshakes,
    https1: after.https1 - before.https1,
    h2: after.h2 - before.h2,
  }
}

/** What the results document keeps of the TLS part besides its rows. */
export interface TlsPart {
  readonly negotiated: Record<string, { https1: Negotiated; h2alpn: string }>
  /** Our edge's counters over the TLS rows (warm-ups included). */
  readonly edgeCounts: EdgeTlsCounts | undefined
}

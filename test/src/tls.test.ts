/**
 * src/http/tls-certificates.ts and tls-server.ts with real certificates (openssl, test/helpers/tls.ts) and real TLS servers:
 * SNI picks the certificate naming the host; a changed file is picked up without a restart, a
 * broken one is refused while the certificates in use stay; session tickets resume, across
 * servers sharing the keys, and not after the keys rotate; TLS 1.1 and weak suites are refused;
 * option problems are named.
 */
import { X509Certificate } from 'node:crypto'
import { copyFileSync, readFileSync, renameSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { connect, type TLSSocket } from 'node:tls'
import t, { type Test } from 'tap'
import { serverCert } from '../../src/cli/demo/certs.js'
import { hstsMaxAge, tlsProblems } from '../../src/config/tls-options.js'
import {
  certFilesOf,
  certificateNames,
  nameMatches,
  newTicketKeys,
  TlsCertificates,
} from '../../src/http/tls-certificates.js'
import { countHandshakes, createHttpsServer } from '../../src/http/tls-server.js'
import { tempDir } from '../helpers/edge.js'
import { testCerts } from '../helpers/tls.js'
import { until } from '../helpers/wait.js'

interface Shake {
  serial: string
  reused: boolean
  session: Buffer | undefined
  protocol: string | false | null
}

function handshake(
  port: number,
  ca: string,
  opts: {
    alpn?: string[]
    servername?: string
    session?: Buffer
    maxVersion?: 'TLSv1.1' | 'TLSv1.2'
    ciphers?: string
  } = {},
): Promise<Shake> {
  return new Promise((resolve, reject) => {
    const s: TLSSocket = connect({
      port,
      host: '127.0.0.1',
      ca,
      servername: opts.servername ?? 'localhost',
      ALPNProtocols: opts.alpn ?? ['http/1.1'],
      ...(opts.session ? { session: opts.session } : {}),
      ...(opts.maxVersion ? { maxVersion: opts.maxVersion, minVersion: 'TLSv1' } : {}),
      ...(opts.ciphers ? { ciphers: opts.ciphers } : {}),
    })
    let ticket: Buffer | undefined
    s.on('session', (b: Buffer) => (ticket = b))
    s.once('error', reject)
    s.once('secureConnect', () => {
      const serial = s.getPeerCertificate().serialNumber
      const reused = s.isSessionReused()
      const protocol = s.alpnProtocol
      // Over HTTP/1.1 a request is answered, so the server has finished its side (and counted
      // it) and any ticket has arrived; an h2 connection is only asked for its protocol.
      if (protocol === 'h2') {
        s.destroy()
        return resolve({ serial, reused, session: ticket, protocol })
      }
      s.resume()
      s.once('end', () => resolve({ serial, reused, session: ticket, protocol }))
      s.end('GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')
    })
  })
}

async function serve(
  t: Test,
  certs: TlsCertificates,
): Promise<{ port: number; counts: { tlsHandshakes: { full: number; resumed: number } } }> {
  const server = createHttpsServer(certs, (_req, res) => res.end('ok'))
  const counts = { tlsHandshakes: { full: 0, resumed: 0 } }
  countHandshakes(server, counts)
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => new Promise<void>((r) => server.close(() => r())))
  return { port: (server.address() as AddressInfo).port, counts }
}

const serialOf = (path: string) => new X509Certificate(readFileSync(path)).serialNumber

t.test('names and SNI: the certificate naming the host, else the first', async (t) => {
  const base = await testCerts(t)
  const other = await serverCert(base.ca, 'other', ['video.example.test', '*.cdn.example.test'])
  t.same(certificateNames(readFileSync(other.cert, 'utf8')).slice(-2), [
    'video.example.test',
    '*.cdn.example.test',
  ])
  t.ok(nameMatches('*.cdn.example.test', 'e1.cdn.example.test'))
  t.notOk(nameMatches('*.cdn.example.test', 'a.b.cdn.example.test'), 'a wildcard covers one label')
  t.notOk(nameMatches('*.cdn.example.test', 'cdn.example.test'))
  const certs = new TlsCertificates([base.cert, other])
  t.teardown(() => certs.close())
  const { port } = await serve(t, certs)
  t.equal((await handshake(port, base.caPem)).serial, serialOf(base.cert.cert), 'localhost: the first')
  t.equal(
    (await handshake(port, base.caPem, { servername: 'video.example.test' })).serial,
    serialOf(other.cert),
  )
  t.equal(
    (await handshake(port, base.caPem, { servername: 'E7.cdn.example.test' })).serial,
    serialOf(other.cert),
  )
  const unknown = await handshake(port, base.caPem, { servername: 'nobody.test' }).catch((e: Error) => e)
  t.type(unknown, Error, 'a name no certificate covers gets the default one, which the client refuses')
  t.equal((await handshake(port, base.caPem, { alpn: ['http/1.1', 'h2'] })).protocol, 'h2', 'ALPN prefers h2')
  t.equal((await handshake(port, base.caPem)).protocol, 'http/1.1', 'and takes HTTP/1.1')
})

t.test('a changed certificate file is served without a restart; a broken one is refused', async (t) => {
  const base = await testCerts(t)
  const dir = tempDir(t, 'cdn-tls-live-')
  const live = { cert: join(dir, 'live.pem'), key: join(dir, 'live-key.pem') }
  copyFileSync(base.cert.cert, live.cert)
  copyFileSync(base.cert.key, live.key)
  const events: { ok: boolean; code?: string }[] = []
  let heard: (() => void) | undefined
  const certs = new TlsCertificates([live], {
    onReload: (r) => {
      events.push(r.ok ? { ok: true } : { ok: false, code: r.code })
      heard?.()
    },
  })
  t.teardown(() => certs.close())
  certs.watch(20)
  const next = () => new Promise<void>((r) => (heard = r))
  const { port } = await serve(t, certs)
  t.equal((await handshake(port, base.caPem)).serial, serialOf(base.cert.cert))

  const renewed = await serverCert(base.ca, 'renewed')
  let reloaded = next()
  copyFileSync(renewed.key, `${live.key}.tmp`)
  copyFileSync(renewed.cert, `${live.cert}.tmp`)
  renameSync(`${live.key}.tmp`, live.key)
  renameSync(`${live.cert}.tmp`, live.cert)
  await reloaded
  // The key and the certificate may be seen one poll apart: wait for the pair to be whole.
  while (events.at(-1)?.ok !== true) await next()
  t.equal(
    (await handshake(port, base.caPem)).serial,
    serialOf(renewed.cert),
    'the new certificate, no restart',
  )

  const stranger = await serverCert(base.ca, 'stranger')
  reloaded = next()
  copyFileSync(stranger.key, `${live.key}.tmp`)
  renameSync(`${live.key}.tmp`, live.key)
  await reloaded
  t.same(events.at(-1), { ok: false, code: 'CDN_WARN_TLS_RELOAD' }, 'a key of another certificate is refused')
  t.equal((await handshake(port, base.caPem)).serial, serialOf(renewed.cert), 'the certificate in use stays')
  t.notOk(certs.reload(), 'reload() (SIGHUP) says it kept the old one')
})

t.test(
  'session tickets: resumed, shared between servers with the same keys, not after rotation',
  async (t) => {
    const base = await testCerts(t)
    const keys = newTicketKeys()
    const a = new TlsCertificates([base.cert], {}, keys)
    const b = new TlsCertificates([base.cert], {}, keys)
    t.teardown(() => (a.close(), b.close()))
    const sa = await serve(t, a)
    const sb = await serve(t, b)
    const first = await handshake(sa.port, base.caPem)
    t.notOk(first.reused)
    t.ok(
      (await handshake(sa.port, base.caPem, { session: first.session! })).reused,
      'resumed on the same server',
    )
    t.ok(
      (await handshake(sb.port, base.caPem, { session: first.session! })).reused,
      'resumed on a server sharing the keys',
    )
    // The server counts a handshake when it has finished it, which may be after the client has.
    await until(() => sa.counts.tlsHandshakes.full + sa.counts.tlsHandshakes.resumed === 2)
    t.same(sa.counts.tlsHandshakes, { full: 1, resumed: 1 })
    b.setTicketKeys(newTicketKeys())
    t.notOk(
      (await handshake(sb.port, base.caPem, { session: first.session! })).reused,
      'rotated keys: a full handshake',
    )
    t.throws(() => b.setTicketKeys(Buffer.alloc(10)), { code: 'CDN_ERR_CONFIG' })
    let rotated: Buffer | undefined
    a.rotateTickets(1000, (k) => (rotated = k))
    a.rotateTickets(0)
    t.equal(rotated, undefined, 'rotation stopped before its first turn')
  },
)

t.test('TLS 1.2 at least, and no weak suites', async (t) => {
  const base = await testCerts(t)
  const certs = new TlsCertificates([base.cert])
  t.teardown(() => certs.close())
  const { port } = await serve(t, certs)
  await t.rejects(handshake(port, base.caPem, { maxVersion: 'TLSv1.1' }), 'TLS 1.1 refused')
  await t.rejects(
    handshake(port, base.caPem, { maxVersion: 'TLSv1.2', ciphers: 'AES128-SHA' }),
    'a suite without forward secrecy refused',
  )
  t.ok(await handshake(port, base.caPem, { maxVersion: 'TLSv1.2' }), 'TLS 1.2 with ECDHE and AES-GCM')
})

t.test('option problems are named', async (t) => {
  t.throws(() => certFilesOf({ tlsCert: ['a'], tlsKey: [] }), { code: 'CDN_ERR_CONFIG' })
  t.throws(() => new TlsCertificates([]), { code: 'CDN_ERR_CONFIG' })
  t.throws(
    () => new TlsCertificates([{ cert: '/nonexistent.pem', key: '/nonexistent-key.pem' }]),
    /cannot read/,
  )
  t.match(tlsProblems({ tlsCert: ['a'], tlsKey: [] }), [/--tls-key/])
  t.match(tlsProblems({ tlsCert: [], tlsKey: [], httpPort: 80 }), [/--http-port: needs --tls-cert/])
  t.match(tlsProblems({ tlsCert: ['a'], tlsKey: ['b'], httpRedirect: true }), [
    /--http-redirect: needs --http-port/,
  ])
  t.match(tlsProblems({ tlsCert: [], tlsKey: [], hsts: 1000 }), [/--hsts: needs --tls-cert/])
})

t.test('HSTS: one year with --http-redirect, none without, --hsts either way', async (t) => {
  t.equal(hstsMaxAge({ httpRedirect: true }), 31_536_000)
  t.equal(hstsMaxAge({ httpRedirect: false }), 0)
  t.equal(hstsMaxAge({ httpRedirect: true, hsts: 0 }), 0)
  t.equal(hstsMaxAge({ httpRedirect: false, hsts: 120_000 }), 120)
})

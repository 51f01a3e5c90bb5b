/**
 * `cdn edge --workers 2` over TLS, the built CLI end to end (run `npm run build` first): the
 * workers serve HTTPS (HTTP/2 and HTTP/1.1) and the plain --http-port beside it; a session
 * ticket made by one worker resumes on the other (the primary gives every worker the same
 * ticket keys); SIGHUP has every worker take the certificate files anew.
 */
import { spawn } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { copyFileSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect, type PeerCertificate, type TLSSocket } from 'node:tls'
import t from 'tap'
import { request } from 'undici'
import { serverCert } from '../../src/cli/demo/certs.js'
import { agentFor, testCerts } from '../helpers/tls.js'
import { until } from '../helpers/wait.js'
import { IMMUTABLE, pattern, startUpstream } from './upstream-server.js'
import { cli } from '../helpers/repo.js'

const PATH = '/vod/c/v1/720p/seg-00001.m4s'
const BODY = pattern(20_000, 3)

/** One TLS connection: its certificate's serial and whether it resumed `session`. */
function handshake(
  port: number,
  ca: string,
  session?: Buffer,
): Promise<{ serial: string; reused: boolean; session: Buffer | undefined }> {
  return new Promise((resolve, reject) => {
    const s: TLSSocket = connect({
      port,
      host: '127.0.0.1',
      servername: 'localhost',
      ca,
      ...(session ? { session } : {}),
    })
    let ticket: Buffer | undefined
    s.on('session', (b: Buffer) => (ticket = b))
    s.once('error', reject)
    s.once('secureConnect', () => {
      const cert: PeerCertificate = s.getPeerCertificate()
      const reused = s.isSessionReused()
      // TLS 1.3 sends its ticket after the handshake: wait for it before closing.
      const done = () => {
        s.end()
        resolve({ serial: cert.serialNumber, reused, session: ticket })
      }
      if (ticket || reused) done()
      else s.once('session', done)
    })
  })
}

t.test('TLS cluster: both workers serve HTTPS and HTTP, share ticket keys, reload on SIGHUP', async (t) => {
  const certs = await testCerts(t)
  const dir = mkdtempSync(join(tmpdir(), 'cdn-cluster-tls-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const cert = join(dir, 'edge.pem')
  const key = join(dir, 'edge-key.pem')
  copyFileSync(certs.cert.cert, cert)
  copyFileSync(certs.cert.key, key)
  const up = await startUpstream(t, {
    [PATH]: ((_r: unknown, reply: { header(k: string, v: string): typeof reply; send(b: Buffer): unknown }) =>
      reply.header('cache-control', IMMUTABLE).send(BODY)) as never,
  })
  const args = ['edge', '--workers', '2', '--port', '0', '--host', '127.0.0.1', '--upstream', up.url]
  args.push('--cache-dir', join(dir, 'cache'), '--log-level', 'warn', '--tls-cert', cert, '--tls-key', key)
  args.push('--http-port', '0', '--tls-reload-interval', '0')
  const proc = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
  const orphan = () => proc.kill('SIGKILL')
  process.once('exit', orphan)
  const exited = new Promise((r) => proc.once('exit', r))
  t.teardown(async () => {
    process.off('exit', orphan)
    if (proc.exitCode === null) proc.kill('SIGTERM')
    await exited
  })
  let err = ''
  proc.stderr!.setEncoding('utf8')
  proc.stderr!.on('data', (d: string) => (err += d))
  await until(() => /listening on/.test(err))
  const m = /listening on (https:\/\/\S+) and (http:\/\/\S+) /.exec(err)
  t.ok(m, `the CLI names both listeners: ${err}`)
  const [, httpsUrl, httpUrl] = m!
  const port = Number(new URL(httpsUrl!).port)

  for (const tr of ['h2', 'https1', 'h2', 'https1'] as const) {
    // A fresh agent per request: a new connection, dealt to the next worker.
    const r = await request(httpsUrl + PATH, { dispatcher: agentFor(t, tr, certs.caPem) })
    t.equal(r.statusCode, 200, `${tr} over TLS`)
    t.ok(Buffer.from(await r.body.arrayBuffer()).equals(BODY))
  }
  const plain = await request(httpUrl + PATH, { dispatcher: agentFor(t, 'h1', certs.caPem) })
  t.equal(plain.statusCode, 200, 'plain HTTP beside')
  await plain.body.arrayBuffer()

  const first = await handshake(port, certs.caPem)
  t.notOk(first.reused)
  // Connections go to the workers in turn: of two resumptions, one is on the other worker.
  for (let i = 0; i < 2; i++) {
    const again = await handshake(port, certs.caPem, first.session)
    t.ok(again.reused, `resumed on connection ${i + 1} (either worker)`)
  }

  const before = first.serial
  const fresh = await serverCert(certs.ca, 'renewed')
  copyFileSync(fresh.key, `${key}.tmp`)
  copyFileSync(fresh.cert, `${cert}.tmp`)
  // The pair changes at once (rename), as a certificate manager would do it.
  renameSync(`${key}.tmp`, key)
  renameSync(`${cert}.tmp`, cert)
  const renewed = new X509Certificate(readFileSync(fresh.cert)).serialNumber
  t.not(renewed, before)
  proc.kill('SIGHUP')
  // Both workers: two consecutive connections show the new certificate.
  await until(async () => {
    const a = await handshake(port, certs.caPem)
    const b = await handshake(port, certs.caPem)
    return a.serial === renewed && b.serial === renewed
  })
  t.pass('every worker serves the new certificate after SIGHUP')
})

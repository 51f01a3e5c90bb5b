/**
 * A local certificate authority and server certificates for the demo (and the tests and
 * benches), made with the `openssl` command from the system (Debian's openssl package: always
 * there where node's own OpenSSL is, and what an operator would use by hand; no npm library
 * needed). ECDSA P-256 keys; each server certificate names `localhost` and 127.0.0.1 (and any
 * extra names), with the serverAuth usage browsers require.
 *
 * Files are made once per directory: a second run finds them and reuses them, so a browser
 * told to trust the CA keeps trusting it. Each file is written under a temporary name and
 * renamed into place.
 */
import { execFile } from 'node:child_process'
import { createHash, randomBytes, X509Certificate } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { CdnError } from '../../errors.js'

const run = promisify(execFile)

export interface LocalCa {
  dir: string
  /** The CA certificate (PEM file): what a browser or `--upstream-ca` is told to trust. */
  caCert: string
  caKey: string
}

export interface ServerCert {
  cert: string
  key: string
}

/** Runs openssl; its absence is a clear error naming the package that has it. */
async function openssl(args: string[], cwd: string): Promise<void> {
  try {
    await run('openssl', args, { cwd })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      throw new CdnError(
        'CDN_ERR_CONFIG',
        'TLS certificates: the openssl command is missing (apt-get install openssl)',
        {
          cause: err,
        },
      )
    throw new CdnError('CDN_ERR_CONFIG', `TLS certificates: openssl ${args[0]} failed`, { cause: err })
  }
}

/** Moves `tmp` files into their final names, the key of each pair last. */
async function publish(pairs: [string, string][]): Promise<void> {
  for (const [tmp, dest] of pairs) await rename(tmp, dest)
}

/** The CA in `dir`, made on first use. */
export async function localCa(dir: string, name = 'cdn local demo CA'): Promise<LocalCa> {
  await mkdir(dir, { recursive: true })
  const ca: LocalCa = { dir, caCert: join(dir, 'ca.pem'), caKey: join(dir, 'ca-key.pem') }
  if (existsSync(ca.caCert) && existsSync(ca.caKey)) return ca
  const tag = randomBytes(4).toString('hex')
  const key = `ca-key.pem.${tag}.tmp`
  const cert = `ca.pem.${tag}.tmp`
  await openssl(
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '3650',
      '-subj',
      `/CN=${name}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE,pathlen:0',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ],
    dir,
  )
  await publish([
    [join(dir, key), ca.caKey],
    [join(dir, cert), ca.caCert],
  ])
  return ca
}

/**
 * A server certificate `name`.pem (+ `name`-key.pem) signed by `ca`, for localhost, 127.0.0.1,
 * ::1 and `extraNames` (DNS names or IP addresses); made on first use.
 */
export async function serverCert(
  ca: LocalCa,
  name: string,
  extraNames: readonly string[] = [],
): Promise<ServerCert> {
  const out: ServerCert = { cert: join(ca.dir, `${name}.pem`), key: join(ca.dir, `${name}-key.pem`) }
  if (existsSync(out.cert) && existsSync(out.key)) return out
  const tag = randomBytes(4).toString('hex')
  const key = `${name}-key.pem.${tag}.tmp`
  const csr = `${name}.csr.${tag}.tmp`
  const cert = `${name}.pem.${tag}.tmp`
  const ext = `${name}.ext.${tag}.tmp`
  const sans = ['DNS:localhost', 'IP:127.0.0.1', 'IP:::1', ...extraNames.map(sanOf)]
  await writeFile(
    join(ca.dir, ext),
    [
      `subjectAltName=${[...new Set(sans)].join(',')}`,
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature',
      'extendedKeyUsage=serverAuth',
      '',
    ].join('\n'),
  )
  try {
    const subject = `/CN=${extraNames.find((n) => !isIp(n)) ?? 'localhost'}`
    await openssl(
      ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'].concat([
        '-keyout',
        key,
        '-out',
        csr,
        '-subj',
        subject,
      ]),
      ca.dir,
    )
    await openssl(
      ['x509', '-req', '-in', csr, '-CA', ca.caCert, '-CAkey', ca.caKey, '-out', cert].concat([
        '-days',
        '825',
        '-sha256',
        '-set_serial',
        `0x${randomBytes(12).toString('hex')}`,
        '-extfile',
        ext,
      ]),
      ca.dir,
    )
    await publish([
      [join(ca.dir, key), out.key],
      [join(ca.dir, cert), out.cert],
    ])
  } finally {
    await rm(join(ca.dir, csr), { force: true })
    await rm(join(ca.dir, ext), { force: true })
  }
  return out
}

function isIp(n: string): boolean {
  return /^[\d.]+$/.test(n) || n.includes(':')
}

function sanOf(n: string): string {
  return isIp(n) ? `IP:${n}` : `DNS:${n}`
}

/**
 * The base64 SHA-256 of a certificate's public key (SPKI), as Chromium's
 * `--ignore-certificate-errors-spki-list` takes it.
 */
export async function spkiHash(certPath: string): Promise<string> {
  const x = new X509Certificate(await readFile(certPath))
  const der = x.publicKey.export({ type: 'spki', format: 'der' })
  return createHash('sha256').update(der).digest('base64')
}

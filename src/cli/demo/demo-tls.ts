/**
 * The demo's certificates: a local CA and one server certificate for every node, kept in
 * DATA/tls and reused by later starts (so a browser told to trust the CA keeps trusting it).
 * certs.ts makes them with openssl; this module says where they live, makes sure the server
 * certificate covers the address the nodes are reached at (remade when it does not, e.g. after
 * `--host` changed), and writes the chain each node serves: the server certificate followed by
 * the CA's. Sending the CA costs a few hundred bytes per full handshake and lets a client that
 * trusts the CA's key by hash (Chromium's --ignore-certificate-errors-spki-list, which only
 * looks at the certificates the server sends) recognise it.
 */
import { X509Certificate } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { isIP } from 'node:net'
import { join } from 'node:path'
import { writeFileAtomic } from '../../fs/atomic.js'
import { localCa, serverCert, spkiHash } from './certs.js'

/** Where the demo's TLS files live (known before they exist, so `--check` can print the plan). */
export interface DemoTlsFiles {
  readonly dir: string
  /** The CA certificate: what a browser (or curl --cacert) is told to trust. */
  readonly caCert: string
  /** The chain every node serves (server certificate, then the CA) and its key. */
  readonly chain: string
  readonly key: string
}

const SERVER = 'demo'

export function demoTlsFiles(dataDir: string): DemoTlsFiles {
  const dir = join(dataDir, 'tls')
  return {
    dir,
    caCert: join(dir, 'ca.pem'),
    chain: join(dir, `${SERVER}-chain.pem`),
    key: join(dir, `${SERVER}-key.pem`),
  }
}

/** Whether the server certificate is the CA's and names `host`. */
function fits(certPem: string, caPem: string, host: string): boolean {
  const x = new X509Certificate(certPem)
  if (!x.checkIssued(new X509Certificate(caPem))) return false
  return isIP(host) ? x.checkIP(host) !== undefined : x.checkHost(host) !== undefined
}

/**
 * Makes the CA and the server certificate on first use (for localhost, 127.0.0.1, ::1 and
 * `host`), or reuses them; returns the base64 SHA-256 of the CA's public key (SPKI).
 */
export async function ensureDemoTls(files: DemoTlsFiles, host: string): Promise<{ caSpki: string }> {
  const ca = await localCa(files.dir, 'Open CDN demo local CA')
  const leafPath = join(files.dir, `${SERVER}.pem`)
  if (existsSync(leafPath) && !fits(readFileSync(leafPath, 'utf8'), readFileSync(ca.caCert, 'utf8'), host)) {
    // Made for another address (or another CA): a new one, signed by the CA in use.
    await rm(leafPath, { force: true })
    await rm(files.key, { force: true })
  }
  const leaf = await serverCert(ca, SERVER, [host])
  const chain = `${readFileSync(leaf.cert, 'utf8').trimEnd()}\n${readFileSync(ca.caCert, 'utf8').trimEnd()}\n`
  if (!existsSync(files.chain) || readFileSync(files.chain, 'utf8') !== chain)
    await writeFileAtomic(files.chain, chain)
  return { caSpki: await spkiHash(ca.caCert) }
}

/** How to trust the CA on each system, for the demo's ready block (and docs/tls.md). */
export function trustHelp(caCert: string, caSpki: string): string[] {
  return [
    `Debian/Ubuntu  sudo cp ${caCert} /usr/local/share/ca-certificates/open-cdn-demo.crt && sudo update-ca-certificates`,
    `               (Chrome and Firefox keep their own store: see below)`,
    `macOS          sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain ${caCert}`,
    `Chrome/Linux   certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n open-cdn-demo -i ${caCert}`,
    `               (or Settings > Privacy and security > Security > Manage certificates > Authorities > Import)`,
    `Firefox        Settings > Privacy & Security > Certificates > View Certificates > Authorities > Import`,
    `Just this run  chromium --user-data-dir=$(mktemp -d) --ignore-certificate-errors-spki-list=${caSpki}`,
    `curl           curl --cacert ${caCert} https://...`,
  ]
}

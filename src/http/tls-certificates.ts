/**
 * The certificates of a TLS listener (every role's client-facing one): PEM files, several
 * selected by SNI, reloaded without a restart when their files change (polled mtime, so a
 * rename-into-place or a symlink swap is seen) or when `reload()` is called (SIGHUP); session
 * tickets whose keys rotate and can be shared between the processes of one edge; TLS 1.2 as the
 * minimum and only AEAD cipher suites with forward secrecy. OCSP stapling is not done. Also the
 * CA files a role's clients trust (`readCaFiles`).
 *
 * A reload that fails (a key that does not match its certificate, a file half-written) keeps the
 * certificates in use and says why (`onReload`); the next change is tried again.
 *
 * The servers that use them: tls-server.ts; a fastify role's wiring of both: role-tls.ts.
 */
import { randomBytes, X509Certificate, createPrivateKey } from 'node:crypto'
import { readFileSync, unwatchFile, watchFile, type Stats } from 'node:fs'
import { createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls'
import { CdnError } from '../errors.js'

/** One certificate (chain) and its key, as PEM file paths. */
export interface CertFiles {
  cert: string
  key: string
}

/** The TLS settings every role's options table has (src/config/tls-options.ts). */
export interface TlsSettings {
  /** Certificate and key files, paired by position; empty: no TLS. */
  tlsCert: readonly string[]
  tlsKey: readonly string[]
  /** How often the files' mtimes are checked (ms; 0: only on `reload()`/SIGHUP). */
  tlsReloadInterval: number
  /** How often session ticket keys are replaced (ms). */
  tlsTicketRotation: number
}

/** TLS 1.2 suites: ECDHE (forward secrecy) with AEAD only (TLS 1.3's suites are all such). */
export const TLS12_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':')

/** Length of one set of ticket keys (node's setTicketKeys: name, HMAC and AES keys). */
export const TICKET_KEYS_BYTES = 48

export function newTicketKeys(): Buffer {
  return randomBytes(TICKET_KEYS_BYTES)
}

/** Pairs the cert and key lists of a role's options; problems name the options. */
export function certFilesOf(s: Pick<TlsSettings, 'tlsCert' | 'tlsKey'>): CertFiles[] {
  if (s.tlsCert.length !== s.tlsKey.length)
    throw new CdnError(
      'CDN_ERR_CONFIG',
      `--tls-cert and --tls-key: one key per certificate, in the same order (got ${s.tlsCert.length} and ${s.tlsKey.length})`,
    )
  return s.tlsCert.map((cert, i) => ({ cert, key: s.tlsKey[i]! }))
}

interface Loaded {
  files: CertFiles
  cert: string
  key: string
  /** Lower-case DNS names (a leading `*.` for wildcards) and IP addresses the certificate is for. */
  names: string[]
  context: SecureContext
}

/** The names a certificate is for: its subjectAltName's DNS and IP entries, else its CN. */
export function certificateNames(pem: string): string[] {
  const x = new X509Certificate(pem)
  const names: string[] = []
  for (const part of (x.subjectAltName ?? '').split(/,\s*/)) {
    const m = /^(DNS|IP Address):(.+)$/.exec(part.trim())
    if (m) names.push(m[2]!.toLowerCase())
  }
  if (names.length === 0) {
    const cn = /(?:^|\n)CN=([^\n]+)/.exec(x.subject)
    if (cn) names.push(cn[1]!.toLowerCase())
  }
  return names
}

/** Whether certificate name `pattern` covers `host` (a wildcard covers exactly one label). */
export function nameMatches(pattern: string, host: string): boolean {
  if (pattern === host) return true
  if (!pattern.startsWith('*.')) return false
  const dot = host.indexOf('.')
  return dot > 0 && host.slice(dot + 1) === pattern.slice(2)
}

export interface TlsEvents {
  /** A reload happened (ok) or was refused (the certificates in use are kept). */
  onReload?: (result: { ok: true; names: string[] } | { ok: false; code: string; message: string }) => void
}

/**
 * The certificates of one listener: the first pair is the default (clients without SNI, or
 * naming a host no certificate covers); the others are chosen by SNI.
 */
export class TlsCertificates {
  private loaded: Loaded[]
  private ticketKeys: Buffer
  private readonly servers = new Set<{ setSecureContext(o: SecureContextOptions): void }>()
  private watching = false
  private rotation: NodeJS.Timeout | undefined
  reloads = 0

  constructor(
    private readonly files: readonly CertFiles[],
    private readonly events: TlsEvents = {},
    ticketKeys: Buffer = newTicketKeys(),
  ) {
    if (files.length === 0) throw new CdnError('CDN_ERR_CONFIG', '--tls-cert: at least one certificate')
    this.ticketKeys = ticketKeys
    this.loaded = this.load()
  }

  /** The names of every certificate, default first. */
  get names(): string[] {
    return this.loaded.flatMap((l) => l.names)
  }

  private load(): Loaded[] {
    return this.files.map((files) => {
      let cert: string
      let key: string
      try {
        cert = readFileSync(files.cert, 'utf8')
        key = readFileSync(files.key, 'utf8')
      } catch (err) {
        throw new CdnError('CDN_ERR_CONFIG', `TLS: cannot read ${files.cert} or ${files.key}`, { cause: err })
      }
      let names: string[]
      try {
        const x = new X509Certificate(cert)
        if (!x.checkPrivateKey(createPrivateKey(key)))
          throw new Error('the key does not belong to the certificate')
        names = certificateNames(cert)
      } catch (err) {
        throw new CdnError('CDN_ERR_CONFIG', `TLS: ${files.cert}: ${(err as Error).message}`, { cause: err })
      }
      return { files, cert, key, names, context: createSecureContext(this.contextOptions(cert, key)) }
    })
  }

  private contextOptions(cert: string, key: string): SecureContextOptions {
    return {
      cert,
      key,
      minVersion: 'TLSv1.2',
      ciphers: TLS12_CIPHERS,
      honorCipherOrder: true,
      ticketKeys: this.ticketKeys,
    }
  }

  /** Options for a server: the default certificate, SNI for the others, modern defaults. */
  serverOptions(): SecureContextOptions & {
    SNICallback: (name: string, cb: (err: Error | null, ctx?: SecureContext) => void) => void
  } {
    const first = this.loaded[0]!
    return {
      ...this.contextOptions(first.cert, first.key),
      SNICallback: (name, cb) => cb(null, this.contextFor(name)),
    }
  }

  /** The context for SNI name `servername`: the first certificate covering it, else the default. */
  contextFor(servername: string): SecureContext {
    const host = servername.toLowerCase()
    for (const l of this.loaded) if (l.names.some((n) => nameMatches(n, host))) return l.context
    return this.loaded[0]!.context
  }

  /** A server whose default context follows reloads and ticket rotations. */
  attach(server: { setSecureContext(o: SecureContextOptions): void }): void {
    this.servers.add(server)
  }

  detach(server: { setSecureContext(o: SecureContextOptions): void }): void {
    this.servers.delete(server)
  }

  /** Reads the files again; on any problem keeps what is in use and reports it. */
  reload(): boolean {
    let next: Loaded[]
    try {
      next = this.load()
    } catch (err) {
      const e = err as CdnError
      this.events.onReload?.({ ok: false, code: 'CDN_WARN_TLS_RELOAD', message: e.message })
      return false
    }
    this.loaded = next
    this.reloads++
    this.applyDefault()
    this.events.onReload?.({ ok: true, names: this.names })
    return true
  }

  private applyDefault(): void {
    const first = this.loaded[0]!
    for (const s of this.servers) s.setSecureContext(this.contextOptions(first.cert, first.key))
  }

  /** The ticket keys in use (a cluster primary sends them to its workers). */
  get currentTicketKeys(): Buffer {
    return this.ticketKeys
  }

  /**
   * Replaces the session ticket keys (node keeps one set: a ticket made under the previous keys
   * gets a full handshake once). Every context gets them, so resumption works whichever
   * certificate SNI chose.
   */
  setTicketKeys(keys: Buffer): void {
    if (keys.length !== TICKET_KEYS_BYTES)
      throw new CdnError('CDN_ERR_CONFIG', `TLS ticket keys are ${TICKET_KEYS_BYTES} bytes`)
    this.ticketKeys = keys
    for (const l of this.loaded) l.context.context.setTicketKeys(keys)
    this.applyDefault()
  }

  /** Rotates the ticket keys every `ms` (`onRotate` hears each new set, e.g. to share it). */
  rotateTickets(ms: number, onRotate?: (keys: Buffer) => void): void {
    clearInterval(this.rotation)
    if (ms <= 0) return
    this.rotation = setInterval(() => {
      this.setTicketKeys(newTicketKeys())
      onRotate?.(this.ticketKeys)
    }, ms).unref()
  }

  /** Polls the files' mtimes every `ms`; a change reloads every certificate. */
  watch(ms: number): void {
    if (ms <= 0 || this.watching) return
    this.watching = true
    for (const f of this.files)
      for (const path of [f.cert, f.key]) watchFile(path, { interval: ms, persistent: false }, this.onChange)
  }

  private readonly onChange = (cur: Stats, prev: Stats): void => {
    if (cur.mtimeMs !== prev.mtimeMs || cur.ino !== prev.ino || cur.size !== prev.size) this.reload()
  }

  close(): void {
    clearInterval(this.rotation)
    if (!this.watching) return
    this.watching = false
    for (const f of this.files) for (const path of [f.cert, f.key]) unwatchFile(path, this.onChange)
  }
}

/** CA certificate files (an option such as --upstream-ca), read once at start; none: the system's CAs. */
export function readCaFiles(paths: readonly string[], option: string): string[] | undefined {
  if (!paths.length) return undefined
  return paths.map((p) => {
    try {
      return readFileSync(p, 'utf8')
    } catch (err) {
      throw new CdnError('CDN_ERR_CONFIG', `${option}: cannot read ${p}`, { cause: err })
    }
  })
}

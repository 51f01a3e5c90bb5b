/** Renders bench/peers/nginx.conf.template into a temp prefix and runs nginx there, in the foreground. */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { availableParallelism, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { TLS12_CIPHERS } from '../../src/http/tls-certificates.js'
import { type Child, startProcess } from '../lib/proc.js'

export interface NginxOptions {
  readonly bin: string
  /** Path of nginx.conf.template. */
  readonly template: string
  readonly port: number
  readonly upstreamPort: number
  readonly workers?: number
  /** Port and directory of the static server block (the nginx-static baseline). */
  readonly staticPort: number
  readonly staticRoot: string
  /** An HTTPS server block (nginx-tls.conf.template beside the template) on this port. */
  readonly tls?: NginxTls
}

export interface NginxTls {
  readonly port: number
  /** PEM files of the certificate (chain) and its key. */
  readonly cert: string
  readonly key: string
}

/** The HTTPS server block, or nothing. */
export function tlsServer(template: string, tls: NginxTls | undefined): string {
  if (!tls) return ''
  return renderNginxConf(readFileSync(join(dirname(template), 'nginx-tls.conf.template'), 'utf8'), {
    TLS_PORT: tls.port,
    TLS_CERT: tls.cert,
    TLS_KEY: tls.key,
    TLS_CIPHERS: TLS12_CIPHERS,
  })
}

export function renderNginxConf(template: string, fields: Record<string, string | number>): string {
  return template.replace(/\{\{([A-Z_]+)\}\}/g, (_, k: string) => {
    const v = fields[k]
    if (v === undefined) throw new Error(`nginx.conf.template: no value for {{${k}}}`)
    return String(v)
  })
}

export async function startNginx(opts: NginxOptions): Promise<Child & { prefix: string }> {
  const prefix = mkdtempSync(join(tmpdir(), 'bench-nginx-'))
  for (const d of ['tmp/client', 'tmp/proxy', 'tmp/fastcgi', 'tmp/uwsgi', 'tmp/scgi', 'cache'])
    mkdirSync(join(prefix, d), { recursive: true })
  const conf = renderNginxConf(readFileSync(opts.template, 'utf8'), {
    USER_DIRECTIVE: process.getuid?.() === 0 ? 'user root root;' : '',
    WORKERS: opts.workers ?? availableParallelism(),
    PREFIX: prefix,
    PORT: opts.port,
    UPSTREAM_PORT: opts.upstreamPort,
    STATIC_PORT: opts.staticPort,
    STATIC_ROOT: opts.staticRoot,
    TLS_SERVER: tlsServer(opts.template, opts.tls),
  })
  writeFileSync(join(prefix, 'nginx.conf'), conf)
  const child = await startProcess({
    name: 'nginx',
    cmd: opts.bin,
    args: [
      '-p',
      prefix,
      '-c',
      join(prefix, 'nginx.conf'),
      '-e',
      join(prefix, 'error.log'),
      '-g',
      'daemon off;',
    ],
    readyUrl: `http://127.0.0.1:${opts.port}/__bench/stats`,
  })
  return Object.assign(child, { prefix })
}

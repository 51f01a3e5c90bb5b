/**
 * Generated HTTP/1.1 requests for the differential test: valid ones for the edge's objects, and
 * mutations of them (line endings, methods, versions, targets, header names and values,
 * framing headers, random bytes), pipelined and split, all from a seeded PRNG so a failing
 * case is the same case on every run.
 */

import { prng } from '../../../fixtures/prng.js'

export interface Case {
  /** What was done to the requests, for a failure message. */
  label: string
  /** The bytes, each part written on its own. */
  parts: Buffer[]
}

interface Req {
  method: string
  target: string
  version: string
  headers: [string, string][]
  body: string
  eol: string
}

const latin1 = (s: string) => Buffer.from(s, 'latin1')

function serialize(r: Req): Buffer {
  const lines = [`${r.method} ${r.target} ${r.version}`, ...r.headers.map(([n, v]) => `${n}:${v}`)]
  return latin1(lines.join(r.eol) + r.eol + r.eol + r.body)
}

export class Generator {
  private readonly rnd: () => number

  constructor(
    seed: number,
    /** Targets of valid requests: the edge's objects (hits), a miss, its own paths. */
    private readonly targets: readonly string[],
  ) {
    this.rnd = prng(seed)
  }

  private int(n: number): number {
    return Math.floor(this.rnd() * n)
  }

  private pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!
  }

  /** A valid request: GET or HEAD of a known target, with a few ordinary headers. */
  valid(): Req {
    const headers: [string, string][] = [['Host', ' edge.test']]
    if (this.rnd() < 0.3) headers.push(['User-Agent', ' fuzz/1.0'])
    if (this.rnd() < 0.3) headers.push(['Accept', ' */*'])
    if (this.rnd() < 0.3) headers.push(['Connection', ' keep-alive'])
    if (this.rnd() < 0.1) headers.push(['Range', ' bytes=0-9'])
    if (this.rnd() < 0.1) headers.push(['If-None-Match', ' "x"'])
    for (let i = headers.length - 1; i > 0; i--) {
      const j = this.int(i + 1)
      ;[headers[i], headers[j]] = [headers[j]!, headers[i]!]
    }
    return {
      method: this.rnd() < 0.8 ? 'GET' : 'HEAD',
      target: this.pick(this.targets),
      version: 'HTTP/1.1',
      headers,
      body: '',
      eol: '\r\n',
    }
  }

  /** One structured mutation of `r`; returns its label. */
  private mutate(r: Req): string {
    const hi = () => (r.headers.length ? this.int(r.headers.length) : -1)
    const insert = (s: string, c: string) => {
      const at = this.int(s.length + 1)
      return s.slice(0, at) + c + s.slice(at)
    }
    switch (this.int(9)) {
      case 0:
        r.method = this.pick(METHODS)
        return `method ${JSON.stringify(r.method)}`
      case 1:
        r.version = this.pick(VERSIONS)
        return `version ${JSON.stringify(r.version)}`
      case 2:
        r.target = this.pick(TARGETS)
        return `target ${JSON.stringify(r.target.slice(0, 40))}`
      case 3: {
        const i = hi()
        if (i < 0) return 'no header'
        const h = r.headers[i]!
        h[0] = this.rnd() < 0.2 ? '' : insert(h[0], this.pick(NAME_BYTES))
        return `header name ${JSON.stringify(h[0])}`
      }
      case 4: {
        const i = hi()
        if (i < 0) return 'no header'
        const h = r.headers[i]!
        h[1] = this.rnd() < 0.05 ? ' ' + 'v'.repeat(20_000) : insert(h[1], this.pick(VALUE_BYTES))
        return `header value ${JSON.stringify(h[1].slice(0, 40))}`
      }
      case 5: {
        const [name, value, body] = this.pick(FRAMING)
        r.headers.push([name, value])
        r.body += body
        return `framing ${name}:${value} ${JSON.stringify(body)}`
      }
      case 6: {
        const h = this.pick(EXTRA)
        r.headers.push([...h])
        return `header ${h[0]}:${h[1]}`
      }
      case 7:
        r.headers = r.headers.filter(([n]) => n.toLowerCase() !== 'host')
        return 'no Host'
      default:
        r.eol = this.pick(['\n', '\r', '\r\n\r', '\n\r'])
        return `line ends ${JSON.stringify(r.eol)}`
    }
  }

  /** Random byte edits (flip, insert, delete, swap a CRLF for LF or CR), one to four. */
  private bytes(b: Buffer): [Buffer, string] {
    let s = b.toString('latin1')
    const n = 1 + this.int(4)
    const done: string[] = []
    for (let k = 0; k < n; k++) {
      const at = this.int(s.length)
      const op = this.int(5)
      const c = String.fromCharCode(this.rnd() < 0.5 ? this.int(256) : this.pick(INTERESTING))
      if (op === 0) s = s.slice(0, at) + c + s.slice(at + 1)
      else if (op === 1) s = s.slice(0, at) + c + s.slice(at)
      else if (op === 2) s = s.slice(0, at) + s.slice(at + 1)
      else {
        const crlf = s.indexOf('\r\n', at)
        if (crlf !== -1) s = s.slice(0, crlf) + (op === 3 ? '\n' : '\r') + s.slice(crlf + 2)
      }
      done.push(`${op}@${at}:${c.charCodeAt(0)}`)
    }
    return [latin1(s), `bytes ${done.join(',')}`]
  }

  /** One request: valid (a quarter), else one to three mutations, sometimes random byte edits. */
  private request(): [Buffer, string] {
    const r = this.valid()
    const labels: string[] = []
    if (this.rnd() >= 0.25) {
      const n = 1 + this.int(3)
      for (let i = 0; i < n; i++) labels.push(this.mutate(r))
    }
    let bytes = serialize(r)
    if (this.rnd() < 0.3) {
      const [b, label] = this.bytes(bytes)
      bytes = b
      labels.push(label)
    }
    return [bytes, `${r.method} ${r.target.slice(0, 40)}${labels.length ? ` [${labels.join('; ')}]` : ''}`]
  }

  /** A case: one to four pipelined requests, written whole or split in up to three parts. */
  next(): Case {
    const k = this.rnd() < 0.6 ? 1 : this.rnd() < 0.6 ? 2 : 3 + this.int(2)
    const reqs = Array.from({ length: k }, () => this.request())
    const all = Buffer.concat(reqs.map(([b]) => b))
    const cuts = this.rnd() < 0.5 ? [] : Array.from({ length: 1 + this.int(2) }, () => this.int(all.length))
    cuts.sort((a, b) => a - b)
    const parts: Buffer[] = []
    let from = 0
    for (const c of [...cuts, all.length]) {
      if (c > from) parts.push(all.subarray(from, c))
      from = Math.max(from, c)
    }
    const label = reqs.map(([, l]) => l).join(' | ') + (cuts.length ? ` split@${cuts.join(',')}` : '')
    return { label, parts: parts.length ? parts : [all] }
  }
}

/** The same request split in two at every offset. */
export function everySplit(name: string, bytes: string): Case[] {
  const b = latin1(bytes)
  return Array.from({ length: b.length - 1 }, (_, i) => ({
    label: `${name} split@${i + 1}`,
    parts: [b.subarray(0, i + 1), b.subarray(i + 1)],
  }))
}

const METHODS = [
  'get',
  'POST',
  'PUT',
  'DELETE',
  'OPTIONS',
  'PATCH',
  'TRACE',
  'CONNECT',
  'PRI',
  'GETT',
  'GE',
  'G\tET',
  'HEAD\x00',
  '',
]
const VERSIONS = [
  'HTTP/1.0',
  'HTTP/1.2',
  'HTTP/2.0',
  'http/1.1',
  'HTTP/1.1 ',
  'HTTP/11',
  '',
  'HTTP/0.9',
  'HTTP/1.1\t',
]
const TARGETS = [
  '*',
  'http://edge.test/vod/show/v1/index.m3u8',
  'edge.test:80',
  '//vod/show/v1/index.m3u8',
  '/vod/show/v1/index.m3u8#frag',
  '/vod/show/v1/index.m3u8?x=1',
  '/vod/show/v1/index.m3u8?',
  '/vod/%2e%2e/show/v1/index.m3u8',
  '/vod/show/v1/index%2Em3u8',
  '/%76od/show/v1/index.m3u8',
  '/vod/show%2Fv1/index.m3u8',
  '/vod/show/v1/index.m3u8 x',
  '/vod/sh\x7fow',
  '/vod/sh\x80ow',
  '/vod/show/v1/"<>{}|\\^`',
  '',
  `/${'a'.repeat(17_000)}`,
  '/vod/show/v1/index.m3u8\t',
  '/admin/purge',
  '/status?x',
]
const NAME_BYTES = [' ', '\t', ':', '(', '\x00', '\x7f', '\xe9', '_', '\r', '\n', 'X']
const VALUE_BYTES = [
  '\x00',
  '\x01',
  '\x0b',
  '\x7f',
  '\x80',
  '\xa0',
  '\xff',
  ' ',
  '\t',
  '\r',
  '\n',
  '\r\n ',
  '"',
  ',',
]
const INTERESTING = [0, 9, 10, 13, 32, 0x3a, 0x7f, 0x80, 0xa0, 0xff]
/** Framing headers, each with the body bytes sent after the head. */
const FRAMING: [string, string, string][] = [
  ['Content-Length', ' 0', ''],
  ['Content-Length', ' 5', 'hello'],
  ['Content-Length', ' 5', 'hel'],
  ['Content-Length', ' -1', ''],
  ['Content-Length', ' 5, 5', 'hello'],
  ['Content-Length', ' 0x5', 'hello'],
  ['Transfer-Encoding', ' chunked', '5\r\nhello\r\n0\r\n\r\n'],
  ['Transfer-Encoding', ' chunked', 'zz\r\nab\r\n0\r\n\r\n'],
  ['Transfer-Encoding', ' chunked', '2\r\nab\n0\r\n\r\n'],
  ['Transfer-Encoding', ' chunked', '0\n\n'],
  ['Transfer-Encoding', ' chunked', '0\r\n\r\n'],
  ['Transfer-Encoding', ' xchunked', '0\r\n\r\n'],
  ['Transfer-Encoding', ' gzip, chunked', '0\r\n\r\n'],
  ['Transfer-Encoding', ' chunked, gzip', ''],
  ['Transfer-Encoding', ' identity', ''],
]
const EXTRA: [string, string][] = [
  ['Host', ' other.test'],
  ['Connection', ' close'],
  ['Connection', ' keep-alive, upgrade'],
  ['Upgrade', ' websocket'],
  ['Expect', ' 100-continue'],
  ['Expect', ' bogus'],
  ['If-Modified-Since', ' Thu, 01 Jan 2099 00:00:00 GMT'],
  ['Range', ' bytes=5-1'],
  ['X-Forwarded-For', ' 10.1.2.3'],
]

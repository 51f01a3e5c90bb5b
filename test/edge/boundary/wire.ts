/**
 * HTTP/1.1 on a raw socket, for tests that count the answers a server sends: the bytes a test
 * writes reach the server exactly as written (split where it says), and every response the
 * server sends before it closes is read back.
 */
import { connect, type Socket } from 'node:net'

export interface WireResponse {
  status: number
  headers: Record<string, string>
  body: Buffer
}

export interface Exchange {
  responses: WireResponse[]
  /** Bytes after the last whole response (a truncated answer; empty when all parsed). */
  rest: Buffer
}

export function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1' }, () => resolve(s))
    s.setNoDelay(true)
    s.once('error', reject)
  })
}

const STATUS_LINE = /^HTTP\/1\.[01] \d{3} /

/**
 * Splits what a server sent into responses. A response's body is its Content-Length (or its
 * chunks), except where the next bytes are another status line or the end: the answer to a
 * HEAD (whose Content-Length announces a body it does not carry).
 */
export function parseResponses(buf: Buffer): Exchange {
  const responses: WireResponse[] = []
  let off = 0
  while (off < buf.length) {
    const end = buf.indexOf('\r\n\r\n', off)
    if (end === -1 || !STATUS_LINE.test(buf.toString('latin1', off, off + 13))) break
    const lines = buf.toString('latin1', off, end).split('\r\n')
    const status = Number(lines[0]!.slice(9, 12))
    const headers: Record<string, string> = {}
    for (const l of lines.slice(1)) {
      const i = l.indexOf(':')
      headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim()
    }
    let at = end + 4
    const bodyless =
      status < 200 ||
      status === 204 ||
      status === 304 ||
      at === buf.length ||
      STATUS_LINE.test(buf.toString('latin1', at, at + 13))
    let body: Buffer = Buffer.alloc(0)
    if (!bodyless && headers['transfer-encoding'] === 'chunked') {
      const parts: Buffer[] = []
      for (;;) {
        const lineEnd = buf.indexOf('\r\n', at)
        if (lineEnd === -1) return { responses, rest: buf.subarray(off) }
        const size = parseInt(buf.toString('latin1', at, lineEnd), 16)
        if (buf.length < lineEnd + 2 + size + 2) return { responses, rest: buf.subarray(off) }
        parts.push(buf.subarray(lineEnd + 2, lineEnd + 2 + size))
        at = lineEnd + 2 + size + 2
        if (size === 0) break
      }
      body = Buffer.concat(parts)
    } else if (!bodyless) {
      const len = Number(headers['content-length'] ?? 0)
      if (buf.length < at + len) break
      body = buf.subarray(at, at + len)
      at += len
    }
    // A 1xx (100 Continue) is not an answer to the request: it announces one.
    if (status >= 200) responses.push({ status, headers, body })
    off = at
  }
  return { responses, rest: buf.subarray(off) }
}

/**
 * Everything `socket` receives until the connection closes. A reset (the server destroying a
 * connection the client still writes to) ends it too: what arrived before counts.
 */
export function untilClose(socket: Socket): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    socket.on('data', (c: Buffer) => chunks.push(c))
    socket.on('error', () => undefined)
    socket.once('close', () => resolve(Buffer.concat(chunks)))
  })
}

/**
 * Writes `parts` in order (each its own write, the event loop turned between them), then
 * half-closes (or not, with `end: false`) and reads until the server closes the connection.
 */
export async function exchange(
  port: number,
  parts: (string | Buffer)[],
  opts: { end?: boolean } = {},
): Promise<Exchange> {
  const s = await open(port)
  const got = untilClose(s)
  for (let i = 0; i < parts.length; i++) {
    if (i > 0) await new Promise((r) => setImmediate(r))
    const p = parts[i]!
    s.write(typeof p === 'string' ? Buffer.from(p, 'latin1') : p)
  }
  if (opts.end !== false) s.end()
  return parseResponses(await got)
}

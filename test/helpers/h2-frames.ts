/**
 * A raw HTTP/2 client for tests that send what node's http2 client will not: any header list
 * (HPACK literals, no Huffman, no indexing), pseudo-headers included, and frame floods. It
 * reads the server's frames back, undecoded but for their type, flags and stream (a GOAWAY, an
 * RST_STREAM, which stream was answered).
 */
import { once } from 'node:events'
import type { ClientHttp2Session, ClientHttp2Stream } from 'node:http2'
import { connect, type TLSSocket } from 'node:tls'

export const FRAME = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, GOAWAY: 7 } as const
const END_STREAM = 1
const END_HEADERS = 4

/** An HPACK integer with an `prefix`-bit prefix (RFC 7541 §5.1). */
function hpackInt(n: number, prefix: number): number[] {
  const max = (1 << prefix) - 1
  if (n < max) return [n]
  const out = [max]
  n -= max
  while (n >= 128) {
    out.push((n & 127) | 128)
    n >>= 7
  }
  out.push(n)
  return out
}

/** A header block of literal fields without indexing (RFC 7541 §6.2.2), names as given. */
export function headerBlock(fields: readonly (readonly [string, string])[]): Buffer {
  const bytes: number[] = []
  for (const [name, value] of fields) {
    const n = Buffer.from(name, 'latin1')
    const v = Buffer.from(value, 'latin1')
    bytes.push(0, ...hpackInt(n.length, 7), ...n, ...hpackInt(v.length, 7), ...v)
  }
  return Buffer.from(bytes)
}

export function frame(
  type: number,
  flags: number,
  stream: number,
  payload: Buffer = Buffer.alloc(0),
): Buffer {
  const head = Buffer.alloc(9)
  head.writeUIntBE(payload.length, 0, 3)
  head[3] = type
  head[4] = flags
  head.writeUInt32BE(stream, 5)
  return Buffer.concat([head, payload])
}

/** A request's HEADERS frame on stream `id`, ending the stream unless a body follows. */
export function requestFrame(
  id: number,
  fields: readonly (readonly [string, string])[],
  body = false,
): Buffer {
  return frame(FRAME.HEADERS, END_HEADERS | (body ? 0 : END_STREAM), id, headerBlock(fields))
}

export function rstFrame(id: number, code = 8): Buffer {
  const p = Buffer.alloc(4)
  p.writeUInt32BE(code)
  return frame(FRAME.RST_STREAM, 0, id, p)
}

export interface ReceivedFrame {
  type: number
  flags: number
  stream: number
  payload: Buffer
}

export interface RawH2 {
  socket: TLSSocket
  frames: ReceivedFrame[]
  /** Resolves when the connection has closed. */
  closed: Promise<void>
  /** Resolves with the first frame received that `match` accepts. */
  next(match: (f: ReceivedFrame) => boolean): Promise<ReceivedFrame>
  send(...frames: Buffer[]): void
}

/** An HTTP/2 connection (ALPN h2) with the preface and an empty SETTINGS sent, SETTINGS acked. */
export function rawH2(port: number, ca: string): Promise<RawH2> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1', servername: 'localhost', ca, ALPNProtocols: ['h2'] })
    const frames: ReceivedFrame[] = []
    const waiting: { match: (f: ReceivedFrame) => boolean; resolve: (f: ReceivedFrame) => void }[] = []
    let buf = Buffer.alloc(0)
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d])
      while (buf.length >= 9) {
        const len = buf.readUIntBE(0, 3)
        if (buf.length < 9 + len) break
        const f = {
          type: buf[3]!,
          flags: buf[4]!,
          stream: buf.readUInt32BE(5) & 0x7fffffff,
          payload: buf.subarray(9, 9 + len),
        }
        buf = buf.subarray(9 + len)
        // The server's SETTINGS is acknowledged, as a client must.
        if (f.type === FRAME.SETTINGS && !(f.flags & 1)) socket.write(frame(FRAME.SETTINGS, 1, 0))
        frames.push(f)
        for (const w of [...waiting])
          if (w.match(f)) {
            waiting.splice(waiting.indexOf(w), 1)
            w.resolve(f)
          }
      }
    })
    const closed = new Promise<void>((r) => socket.once('close', () => r()))
    socket.on('error', () => undefined)
    socket.once('secureConnect', () => {
      socket.off('error', reject)
      socket.write(
        Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), frame(FRAME.SETTINGS, 0, 0)]),
      )
      resolve({
        socket,
        frames,
        closed,
        next: (match) =>
          new Promise((r) => {
            const seen = frames.find(match)
            if (seen) return r(seen)
            waiting.push({ match, resolve: r })
          }),
        send: (...f) => void socket.write(Buffer.concat(f)),
      })
    })
    socket.once('error', reject)
  })
}

/**
 * A POST on `c` that declares 100,000 bytes and sends 10, then waits: resolves once the server
 * has closed the stream, with the status and body it answered (node's http2 client, not raw).
 */
export async function stalledPost(
  c: ClientHttp2Session,
  path: string,
): Promise<{ status: number; body: string; stream: ClientHttp2Stream }> {
  const stream = c.request(
    { ':method': 'POST', ':path': path, 'content-length': '100000' },
    { endStream: false },
  )
  stream.write('0123456789')
  let status = 0
  let body = ''
  stream.setEncoding('utf8')
  stream.on('response', (h) => (status = Number(h[':status'])))
  stream.on('data', (d: string) => (body += d))
  stream.on('error', () => undefined)
  await once(stream, 'close')
  return { status, body, stream }
}

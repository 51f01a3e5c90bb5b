/**
 * A door into a client namespace of the network-namespace mode (netns.ts). Addresses exist only
 * inside the namespaces, so a program outside (the demo's checks, a test, a person with curl)
 * cannot reach the nodes directly. This small HTTP forwarder runs inside one site's client
 * namespace and listens on a Unix socket (a file, which every namespace shares): each request
 * it gets goes to the address in its Host header, from inside the namespace, as a player in
 * that site would send it, with the answer streamed back. So
 *
 *     curl --unix-socket DATA/netns/rome.sock 'http://10.77.255.9:8080/steer?title=feature'
 *
 * asks steering from Rome. A request that cannot be forwarded is answered 502 with
 * `x-gateway-error` naming the error code (ECONNREFUSED, ETIMEDOUT...).
 */
import { Agent, request } from 'node:http'
import { createServer, type Server } from 'node:http'
import { rmSync } from 'node:fs'
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

export function createGateway(): Server {
  const agent = new Agent({ keepAlive: true, maxSockets: 64 })
  return createServer((req, res) => {
    const [host, port] = (req.headers.host ?? '').split(':')
    const up = request(
      { agent, host, port: Number(port) || 80, method: req.method, path: req.url, headers: req.headers },
      (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers)
        upRes.pipe(res)
        upRes.once('error', () => res.destroy())
      },
    )
    up.once('error', (err: NodeJS.ErrnoException) => {
      if (res.headersSent) res.destroy()
      else res.writeHead(502, { 'x-gateway-error': err.code ?? 'error' }).end()
    })
    req.pipe(up)
    // A client that goes away takes its upstream request with it.
    res.once('close', () => up.destroy())
  })
}

/** `node netns-gateway.js SOCKET`: what netns.ts runs in each client namespace. */
function main(path: string): void {
  rmSync(path, { force: true })
  const server = createGateway()
  server.listen(path, () => process.stdout.write('ready\n'))
  process.stdin.resume()
  process.stdin.once('end', () => {
    server.closeAllConnections()
    server.close(() => process.exit(0))
  })
}

if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) main(process.argv[2]!)

/**
 * A node:http server of a test on 127.0.0.1 (an ephemeral port), closed with its open connections
 * when the test ends: the recording and scripted upstreams the edge tests put behind an edge.
 */
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Test } from 'tap'

/** Listens, registers the teardown, and resolves to the server's base URL. */
export async function listenLoopback(t: Test, server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  )
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

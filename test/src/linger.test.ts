/**
 * The close after a client error (src/http/one-answer.ts lingeringClose): bounded even for a
 * client that never reads what is queued (steering and the origin have no write timeout).
 */
import { createServer, connect, type AddressInfo, type Socket } from 'node:net'
import t from 'tap'
import { lingeringClose } from '../../src/http/one-answer.js'

t.test('a connection whose client never reads is closed at the cap, its bytes still queued', async (t) => {
  let finished: boolean | undefined
  const closed = new Promise<void>((resolve) => {
    const server = createServer((sock: Socket) => {
      // More than the socket buffers hold: the answer never finishes while the client waits.
      sock.write(Buffer.alloc(32 * 1024 * 1024))
      sock.once('close', () => resolve())
      sock.on('error', () => undefined)
      lingeringClose(sock, 'bye', 50)
      sock.prependOnceListener('close', () => {
        finished = sock.writableFinished
      })
    })
    t.teardown(() => server.close())
    server.listen(0, '127.0.0.1', () => {
      const client = connect((server.address() as AddressInfo).port, '127.0.0.1')
      client.pause()
      client.on('error', () => undefined)
      t.teardown(() => client.destroy())
    })
  })
  await closed
  t.equal(finished, false, 'the answer never went out whole: closed by the cap, not after the last byte')
})

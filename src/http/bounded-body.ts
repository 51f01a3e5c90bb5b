/**
 * A response body read whole, up to a bound, with or without a Content-Length: what a node
 * reads of another's answers (steering's health check and master fetch, the cdn command's
 * operator calls) is bounded as it arrives, so a peer streaming without end costs at most
 * `max` bytes.
 */

/** The whole body, or `undefined` (the body destroyed, the rest unread) once it passes `max` bytes. */
export async function readBounded(
  body: AsyncIterable<Uint8Array> & { destroy(): unknown },
  max: number,
): Promise<Buffer | undefined> {
  const chunks: Uint8Array[] = []
  let size = 0
  for await (const chunk of body) {
    size += chunk.length
    if (size > max) {
      body.destroy()
      return undefined
    }
    chunks.push(chunk)
  }
  return Buffer.concat(chunks)
}

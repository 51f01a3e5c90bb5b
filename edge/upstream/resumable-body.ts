/**
 * An upstream body that survives its connection being cut: when the body fails after some of
 * its bytes arrived, `takeOver(received)` may supply the rest (flight-run.ts: a Range request for
 * `bytes=received-` with If-Range, answered 206 by the same or the next upstream), and the
 * bytes go on as one stream. The flight's clients, its cache writer and its crc32 never see
 * the seam; when there is no rest (no validator, the object changed, every upstream failed)
 * the body fails with the first error, as an unwrapped one would.
 *
 * Backpressure, pause/resume and destroy pass through to the source in use.
 */
import { Readable } from 'node:stream'

/** Supplies the rest of the body from byte `received`, or undefined when it cannot. */
export type ResumeBody = (received: number, cause: Error) => Promise<Readable | undefined>

/** A source chunk size's worth: the wrapper holds at most this before pausing its source. */
const HIGH_WATER_MARK = 64 * 1024
/** Most sources taken over for one body. */
const MAX_RESUMES = 3

export class ResumableBody extends Readable {
  private src: Readable
  private received = 0
  /** Sources taken over after a failure. */
  private resumes = 0

  constructor(
    first: Readable,
    private readonly takeOver: ResumeBody,
  ) {
    super({ highWaterMark: HIGH_WATER_MARK })
    this.src = first
    this.attach(first)
  }

  private attach(src: Readable): void {
    src.on('data', (chunk: Buffer) => {
      this.received += chunk.length
      if (!this.push(chunk)) src.pause()
    })
    src.once('end', () => this.push(null))
    src.once('error', (err: Error) => void this.failed(src, err))
  }

  private async failed(src: Readable, err: Error): Promise<void> {
    if (src !== this.src || this.destroyed) return
    src.removeAllListeners('data')
    let next: Readable | undefined
    try {
      next =
        this.received > 0 && this.resumes < MAX_RESUMES ? await this.takeOver(this.received, err) : undefined
    } catch {
      next = undefined
    }
    if (this.destroyed) {
      next?.destroy()
      return
    }
    if (!next) {
      this.destroy(err)
      return
    }
    this.resumes++
    this.src = next
    this.attach(next)
    // Paused only when the buffer is full: then no read is outstanding and _read resumes it. A
    // consumer's pause alone must not pause it (a read may be outstanding, and Node asks _read
    // again only after a push): the new source fills the buffer, and push() pauses it there.
    if (this.readableLength >= this.readableHighWaterMark) next.pause()
  }

  override _read(): void {
    if (this.src.isPaused()) this.src.resume()
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.src.destroy()
    cb(err)
  }
}

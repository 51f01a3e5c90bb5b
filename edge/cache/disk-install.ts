/**
 * What keeps the disk tier's files and its index in step when several operations touch one
 * object at once (disk-store.ts): every rename into place and every unlink of an object path
 * runs through that path's queue, one at a time in the order asked, and an unlink removes only
 * the inode it was asked to remove. So a writer's install, a metadata refresh's install and an
 * eviction's unlink of one path cannot interleave between their check and their act, and the
 * record the index holds always describes the file at its path.
 */
import { randomBytes } from 'node:crypto'
import type { promises as fsp } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { crc32 } from 'node:zlib'

/** Largest buffer a metadata refresh copies a body through. */
const COPY_CHUNK_BYTES = 1024 * 1024

export class PathQueue {
  /** The tail of each path's queue; an entry lives while operations on its path are queued. */
  private readonly tails = new Map<string, Promise<void>>()

  /** Runs `op` after every operation queued on `path` before it. */
  run<T>(path: string, op: () => Promise<T>): Promise<T> {
    const done = (this.tails.get(path) ?? Promise.resolve()).then(op)
    const tail = done.then(noop, noop)
    this.tails.set(path, tail)
    void tail.then(() => {
      if (this.tails.get(path) === tail) this.tails.delete(path)
    })
    return done
  }

  /** Paths with operations queued (for tests). */
  get size(): number {
    return this.tails.size
  }
}

/** A temp file's name beside `file` (the scan at start deletes what a crash leaves). */
export function tempBeside(file: string): string {
  return join(dirname(file), `.${basename(file)}.${randomBytes(4).toString('hex')}.tmp`)
}

/** Copies the first `length` bytes of `src` to `out` (at the same offsets); resolves with their crc32. */
export async function copyBody(src: fsp.FileHandle, out: fsp.FileHandle, length: number): Promise<number> {
  const buf = Buffer.allocUnsafe(Math.max(1, Math.min(COPY_CHUNK_BYTES, length)))
  let crc = 0
  for (let off = 0; off < length;) {
    const { bytesRead } = await src.read(buf, 0, Math.min(buf.length, length - off), off)
    if (bytesRead === 0) throw Object.assign(new Error('short read'), { code: 'ESHORT' })
    const chunk = buf.subarray(0, bytesRead)
    crc = crc32(chunk, crc)
    await out.write(chunk, 0, bytesRead, off)
    off += bytesRead
  }
  return crc
}

function noop(): void {}

/**
 * The sendfile addon (sendfile.c), built by `npm run build` (scripts/build-native.sh) into
 * dist/native/sendfile.node. `sendfile` is undefined where it was not built (no C compiler) or
 * does not load (another platform): large disk hits are then read into a buffer and written, as
 * before. `sendfileProblem` says why, for the edge's start-up log.
 */
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export interface SendFile {
  /**
   * On the threadpool: sendfile(2) from `inFd` at `offset` to `outFd` until `count` bytes are
   * sent, the socket is full or a failure; `done(errno, sent)`, errno 0, EAGAIN or the failure's.
   */
  send(
    outFd: number,
    inFd: number,
    offset: number,
    count: number,
    done: (errno: number, sent: number) => void,
  ): void
  /**
   * On this thread, only when every page of the range is in the page cache and up to date (mincore(2)), so
   * the send cannot wait on the disk: bytes sent (> 0, fewer than `count` when the socket
   * filled), or -EAGAIN (full before any byte), -ENODATA (a page not resident: nothing sent,
   * use `send`), -ENOSYS (the file cannot be mapped to check: use `send`), -errno of a failure.
   */
  sendNow(outFd: number, inFd: number, offset: number, count: number, map?: FileMap): number
  /**
   * A mapping of the whole file behind `fd` (`size` bytes), never touched, kept while the file is
   * open so that `sendNow` checks residency without a mmap and munmap per send; -errno when the
   * file cannot be mapped. Unmapped by `unmap` (or when collected).
   */
  map(fd: number, size: number): FileMap | number
  unmap(map: FileMap): void
  /** A new descriptor for the same socket (negative: -errno). */
  dup(fd: number): number
  close(fd: number): void
  readonly EAGAIN: number
  readonly ENODATA: number
  readonly ENOSYS: number
}

/** A kept mapping (SendFile.map): opaque to JavaScript. */
export type FileMap = object & { readonly __fileMap: unique symbol }

const ADDON = join('dist', 'native', 'sendfile.node')

/** The addon under the nearest directory holding dist/native/sendfile.node, from this module up. */
function find(): string | undefined {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    const file = join(dir, ADDON)
    if (existsSync(file)) return file
    if (dirname(dir) === dir) return undefined
  }
}

function load(): { addon?: SendFile; problem?: string } {
  if (process.platform !== 'linux') return { problem: `no sendfile addon on ${process.platform}` }
  const file = find()
  if (!file) return { problem: 'the sendfile addon was not built (npm run build needs a C compiler)' }
  try {
    return { addon: createRequire(import.meta.url)(file) as SendFile }
  } catch (err) {
    return { problem: `the sendfile addon did not load: ${(err as Error).message}` }
  }
}

const loaded = load()
export const sendfile: SendFile | undefined = loaded.addon
export const sendfileProblem: string | undefined = loaded.problem

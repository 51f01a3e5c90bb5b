/**
 * Is a body just read from a disk-tier file the one that was stored? (disk-reader.ts reads,
 * this decides.) A small body by its crc32 on every read; a larger one by its crc32 on the first
 * read through an fd, then by the file's ctime and identity (one fstat) while it is unchanged.
 */
import { fstatSync } from 'node:fs'
import { crc32 } from 'node:zlib'
import type { Clock } from '../../src/clock.js'
import type { Fd } from './disk-fds.js'
import type { DiskRecord } from './disk-index.js'
import type { DiskErrors } from './disk-tier.js'
import { fileIdOf, sameFile } from './file-id.js'

/** A file's ctime must be this much older than a verification for it to be trusted later. */
const CTIME_SETTLE_MS = 2_000
/**
 * A body of at most this many bytes is checked by its crc32 on every read, without an fstat:
 * the crc32 of 1.4 KB costs less than an fstat (which in Node 20 also builds four Dates), and
 * up to about 8 KiB no more (measured, docs/bench.md). See `intact`.
 */
export const CRC_ONLY_MAX = 4 * 1024

/**
 * Is `buf` (just read through `handle`) the body that was stored? A body of at most
 * CRC_ONLY_MAX bytes: its crc32 is checked on every read (no fstat, cheaper). A larger one:
 * the crc32 is checked the first time a body is read through an fd, and again whenever the
 * file's ctime or size differs from that verified read, or the file is not the record's
 * generation of its inode (size and mtime, file-id.ts). Why this is enough: the edge never
 * writes a file in place (every object, and every refreshed meta, is a new file renamed into
 * place), the fd was checked to be the record's inode when it was opened (withFd) and an fd
 * keeps its inode, and any write to that inode (ours or anyone's) moves its ctime, which user
 * space cannot set back. Timestamps are coarse (a jiffy), so a ctime is only trusted once it
 * is CTIME_SETTLE_MS old: a write in the same tick as the verification cannot hide. Fds leave
 * the LRU and are reopened (and re-verified) on eviction and restart.
 */
export function intact(handle: Fd, rec: DiskRecord, buf: Buffer, clock: Clock, errors: DiskErrors): boolean {
  // A small body: its crc32, every time. The fd is the record's inode (checked at open and
  // before each use; an open fd keeps its inode from being reused), and the crc32 is that of
  // the very bytes sent, so neither a file renamed over the path nor a write in place can put
  // other bytes under the record's headers.
  if (buf.length <= CRC_ONLY_MAX) return crc32(buf) === rec.entry.meta.crc32
  let ctimeMs = Number.NaN
  try {
    const st = fstatSync(handle.fd)
    if (sameFile(fileIdOf(st), rec.id)) ctimeMs = st.ctimeMs
  } catch (err) {
    errors.add(err, 'body')
  }
  if (ctimeMs === handle.verifiedCtimeMs) return true
  if (crc32(buf) !== rec.entry.meta.crc32) return false
  if (ctimeMs < clock.now() - CTIME_SETTLE_MS) handle.verifiedCtimeMs = ctimeMs
  return true
}

export function checksumMismatch(): Error {
  return Object.assign(new Error('checksum mismatch'), { code: 'ECHECKSUM' })
}

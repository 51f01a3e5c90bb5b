/**
 * A disk hit's body sent in chunks (BodyStream), for the disk reader (disk-reader.ts), which
 * finds the record, checks its cached fd and hands the fd over here once the file is shown
 * unchanged since its body was verified. Apart so that the reader holds the lookups and the
 * checks, and this the one fd a stream holds until it is closed and no read or send of it is in
 * flight. What it needs of the reader comes through `StreamHost`, the reader's counters among it.
 *
 * Chunks are read on the threadpool, unless they fit `syncReadMax` and the file was read within
 * HOT_MS (disk-reader.ts). A streamed body can also be sent by sendfile(2) (`sendTo`, with the
 * addon of edge/native/sendfile.ts): the kernel moves its page-cache pages to the socket, on the
 * threadpool, without copying them through the process. Counted as mode "sendfile". Or at once
 * on the event loop (`sendNow`), only when mincore(2) says every page of the range is in the
 * page cache and up to date, so the send has no disk read to wait for. Counted as mode
 * "sendfile_loop". A file that cannot be mapped for that check (-ENOSYS) turns loop sends off for
 * this reader alone.
 */
import type { Clock } from '../../src/clock.js'
import type { BufferPool } from './buffer-pool.js'
import { type Fd, readAsync, readFully, release } from './disk-fds.js'
import type { DiskRecord } from './disk-index.js'
import type { DiskErrors } from './disk-tier.js'
import type { BodyStream } from './store.js'
import type { FileMap, SendFile } from '../native/sendfile.js'

/** errno for a send on a closed stream. */
const EBADF = 9
/**
 * Most files kept mapped at once for sends on the loop (`mapOf`): a process may hold only
 * vm.max_map_count mappings (65,530 by default) and --disk-fds allows as many open files, so
 * past this the range is mapped per send instead and V8 and malloc keep their room.
 */
const MAX_KEPT_MAPS = 4096

/** What a stream needs of the disk reader that opened it: its counters, settings and state. */
export interface StreamHost {
  /** The reader's body reads by mode (DiskReader.reads), counted here for chunks and sends. */
  readonly reads: { sync: number; async: number; sendfile: number; sendfileLoop: number }
  /** Largest chunk read synchronously on the event loop, and only of a hot file. */
  readonly syncReadMax: number
  readonly clock: Clock
  /** Lends the chunk buffers. */
  readonly pool: BufferPool
  /** Without it a stream has no `sendTo` nor `sendNow`. */
  readonly sendfile: SendFile | undefined
  readonly errors: DiskErrors
  /** Most files kept mapped for residency checks (default MAX_KEPT_MAPS). */
  readonly maxMaps: number | undefined
  /** Most bytes of one send on the loop (BodyStream.loopChunk). */
  readonly loopChunk: number
  /** Sends on the event loop may be tried (the reader's flag: DiskReader.sendsOnLoop). */
  loopSends(): boolean
  /** The addon found no residency check here: loop sends are off for the reader. */
  noLoopSends(): void
  /** Files mapped for residency checks now (DiskReader.mapsKept). */
  mapsKept(): number
  /** One more file kept mapped (+1), or one unmapped (-1). */
  countMaps(delta: 1 | -1): void
  /** The record's body failed a read: out of the index, its fd forgotten, the owner told. */
  drop(rec: DiskRecord): void
}

/**
 * The body of `rec` to send in chunks through `handle`, its cached fd, shown unchanged since its
 * body was verified (the file `size` bytes). Takes a reference on the fd, released once the
 * stream is closed and no read or send holds it. `hot`: the fd was read within HOT_MS.
 */
export function openStream(
  host: StreamHost,
  rec: DiskRecord,
  handle: Fd,
  size: number,
  hot: boolean,
): BodyStream {
  const addon = host.sendfile
  handle.refs++
  let open = true
  /** A chunk read is on the threadpool: the fd is released only once it is back. */
  let reading = false
  const finish = (): void => {
    handle.lastReadMono = host.clock.monotonic()
    release(handle)
  }
  return {
    entry: rec.entry,
    length: rec.entry.meta.bodyLength,
    read: (buf, offset, done) => {
      if (!open) return done(new Error('stream closed'))
      if (hot && buf.length <= host.syncReadMax) {
        host.reads.sync++
        let err: unknown = null
        try {
          readFully(handle.fd, buf, buf.length, offset)
        } catch (failure) {
          err = failure
        }
        return done(err)
      }
      host.reads.async++
      reading = true
      readAsync(handle.fd, buf, offset, (err) => {
        reading = false
        if (!open) finish()
        done(err)
      })
    },
    lend: (length) => host.pool.lend(length),
    // As `read`: the fd stays held while the threadpool has it, released on the send's return
    // if the stream was closed meanwhile.
    ...(addon && {
      sendTo: (out: number, offset: number, count: number, done: (errno: number, sent: number) => void) => {
        if (!open) return done(EBADF, 0)
        host.reads.sendfile++
        reading = true
        try {
          addon.send(out, handle.fd, offset, count, (errno, sent) => {
            reading = false
            if (!open) finish()
            done(errno, sent)
          })
        } catch (err) {
          // Not queued (the addon could not allocate): nothing holds the fd for it.
          reading = false
          throw err
        }
      },
    }),
    ...(addon && {
      loopChunk: host.loopChunk,
      sendNow: (out: number, offset: number, count: number): number => {
        if (!open || reading) return -EBADF
        if (!host.loopSends()) return -addon.ENOSYS
        const r = addon.sendNow(out, handle.fd, offset, count, mapOf(host, handle, size, addon))
        if (r === -addon.ENOSYS) host.noLoopSends()
        // Counted as `sendTo` counts: every send made, whatever it sent (none when not resident).
        else if (r !== -addon.ENODATA) host.reads.sendfileLoop++
        return r
      },
    }),
    fail: (err) => {
      host.errors.add(err, 'body')
      host.drop(rec)
    },
    close: () => {
      if (!open) return
      open = false
      if (!reading) finish()
    },
  }
}

/**
 * The file's mapping for residency checks, made on its first send on the loop and kept until
 * the fd closes (disk-fds.ts): a mmap and munmap per send cost more than the send (bench:peers,
 * 4.2 MB disk hits). Undefined when it cannot be made, when MAX_KEPT_MAPS files are mapped
 * already, or for an fd not kept open (closed: nothing would unmap it until collected): sendNow
 * then maps the range per send.
 */
function mapOf(host: StreamHost, handle: Fd, size: number, addon: SendFile): FileMap | undefined {
  if (handle.map === undefined && !handle.closed && host.mapsKept() < (host.maxMaps ?? MAX_KEPT_MAPS)) {
    const map = addon.map(handle.fd, size)
    if (typeof map === 'number') handle.map = null
    else {
      handle.map = map
      host.countMaps(1)
      handle.unmap = () => {
        addon.unmap(map)
        host.countMaps(-1)
      }
    }
  }
  return (handle.map ?? undefined) as FileMap | undefined
}

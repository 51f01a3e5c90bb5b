/**
 * Files written so that a reader (or a restart after a crash) sees the old content or the new,
 * never half of either: the bytes go to a temp file in the same directory (so the rename never
 * crosses a filesystem), the file is fsynced, renamed over the target, and the directory is
 * fsynced so the rename itself survives a power cut. The one implementation every role uses:
 * the origin's catalogue, prefill's job records, the generated fixtures.
 */
import { randomBytes } from 'node:crypto'
import { mkdir, open, readdir, rename, rm } from 'node:fs/promises'
import { basename, dirname, extname, join } from 'node:path'

/** A temp name beside `file`, unique per process and call; keeps the extension (tools read it). */
export function tempPathFor(file: string): string {
  const ext = extname(file)
  return join(dirname(file), `.${basename(file)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}${ext}`)
}

/** True for the names `tempPathFor` makes, so a scan at start can delete leftovers. */
export function isTempPath(name: string): boolean {
  return /^\..+\.tmp-\d+-[0-9a-f]{8}(\.[^.]*)?$/.test(basename(name))
}

/** fsyncs a directory, so a rename or a new entry in it is durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r')
  try {
    await fh.sync()
  } catch (err) {
    // Some filesystems refuse fsync on a directory; the rename itself is still atomic.
    if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err
  } finally {
    await fh.close()
  }
}

/**
 * fsyncs every file and directory under `dir` (a staged tree about to be renamed into
 * place), so the tree a durable rename publishes is itself on disk.
 */
export async function fsyncTree(dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) await fsyncTree(path)
    else if (entry.isFile()) {
      const fh = await open(path, 'r')
      try {
        await fh.sync()
      } finally {
        await fh.close()
      }
    }
  }
  await fsyncDir(dir)
}

/** Renames `from` over `to` (a file or a directory) and makes the rename durable. */
export async function renameDurably(from: string, to: string): Promise<void> {
  await rename(from, to)
  await fsyncDir(dirname(to))
}

/** Writes `data` to `file` atomically (creating the directory if needed). */
export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  await writeFileAtomicIf(file, data, () => true)
}

/**
 * writeFileAtomic, but `commit` is asked once the temp file is durable, right before the rename:
 * false leaves `file` untouched (the temp file is removed) and the write returns false. A writer
 * under a lock passes "do I still hold it" (src/fs/file-lock.ts).
 */
export async function writeFileAtomicIf(
  file: string,
  data: string | Uint8Array,
  commit: () => boolean,
): Promise<boolean> {
  return produce(
    file,
    async (tmp) => {
      const fh = await open(tmp, 'wx')
      try {
        await fh.writeFile(data)
      } finally {
        await fh.close()
      }
    },
    commit,
  )
}

/**
 * Lets `make` write a temp path (e.g. ffmpeg's output), then puts it in place atomically. On
 * any failure the temp file is removed and `file` is untouched. Concurrent callers for one
 * target each write their own temp file; the last rename wins, whole.
 */
export async function produceFileAtomic(file: string, make: (tmp: string) => Promise<void>): Promise<void> {
  await produce(file, make, () => true)
}

async function produce(
  file: string,
  make: (tmp: string) => Promise<void>,
  commit: () => boolean,
): Promise<boolean> {
  await mkdir(dirname(file), { recursive: true })
  const tmp = tempPathFor(file)
  try {
    await make(tmp)
    const fh = await open(tmp, 'r+')
    try {
      await fh.sync()
    } finally {
      await fh.close()
    }
    if (!commit()) {
      await rm(tmp, { force: true })
      return false
    }
    await renameDurably(tmp, file)
    return true
  } catch (err) {
    await rm(tmp, { force: true })
    throw err
  }
}

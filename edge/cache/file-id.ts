/**
 * A disk object's identity: the inode it lives in (device and inode number) and a generation
 * of that inode (size and mtime, which a write moves). Every disk record holds the identity of
 * the file it describes, taken through the writer's own fd before the rename that installs it
 * (a rename keeps the inode, size and mtime); a read checks it on the fd it reads through, so a
 * path that now names another file (renamed over while an open was in flight, replaced by
 * anyone) is never read as the record's object, and a verification made through one fd is
 * never trusted for another file.
 */
import type { Stats } from 'node:fs'

export interface FileId {
  dev: number
  ino: number
  size: number
  mtimeMs: number
}

export function fileIdOf(st: Pick<Stats, 'dev' | 'ino' | 'size' | 'mtimeMs'>): FileId {
  return { dev: st.dev, ino: st.ino, size: st.size, mtimeMs: st.mtimeMs }
}

/** The same inode (whatever it holds now). */
export function sameInode(a: FileId, b: Pick<FileId, 'dev' | 'ino'>): boolean {
  return a.ino === b.ino && a.dev === b.dev
}

/** The same inode, and the same generation of it. */
export function sameFile(a: FileId, b: FileId): boolean {
  return sameInode(a, b) && a.size === b.size && a.mtimeMs === b.mtimeMs
}

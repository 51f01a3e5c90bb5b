/**
 * On-disk object format, one file per object:
 *
 *   [body bytes][meta JSON][u32 BE meta length][8-byte magic "CDNOBJ1\n"]
 *
 * The meta (key, status, headers, times, body length, crc32) is a trailer so a body of
 * unknown length can be written as it arrives; the body starts at offset 0, so a hit is one
 * positioned read. Files live at objects/{title or _}/{hh}/{sha256(key)}; temp files are
 * `.{name}.{rand}.tmp` in the same directory and are renamed into place once complete.
 */
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import type { EntryMeta } from './entry.js'

export const MAGIC = Buffer.from('CDNOBJ1\n', 'latin1')
export const TRAILER_FIXED = 4 + MAGIC.length
export const FORMAT_VERSION = 1

export function objectName(key: string): string {
  return createHash('sha256').update(key).digest('hex')
}

export function objectDir(root: string, title: string | undefined, name: string): string {
  return join(root, 'objects', title ?? '_', name.slice(0, 2))
}

export function encodeTrailer(meta: EntryMeta): Buffer {
  const json = Buffer.from(JSON.stringify({ v: FORMAT_VERSION, ...meta }), 'utf8')
  const out = Buffer.allocUnsafe(json.length + TRAILER_FIXED)
  json.copy(out, 0)
  out.writeUInt32BE(json.length, json.length)
  MAGIC.copy(out, json.length + 4)
  return out
}

/** Bytes an object's file takes: its body and its trailer (what the disk tier's byte bound counts). */
export function fileSize(meta: EntryMeta): number {
  return meta.bodyLength + encodeTrailer(meta).length
}

/** The meta length from the fixed tail, or undefined when the tail is not ours. */
export function metaLengthOf(tail: Buffer): number | undefined {
  if (tail.length !== TRAILER_FIXED) return undefined
  if (!tail.subarray(4).equals(MAGIC)) return undefined
  return tail.readUInt32BE(0)
}

/** Parses and checks the meta JSON against the file it came from. */
export function decodeMeta(json: Buffer, fileSize: number, name: string): EntryMeta | undefined {
  let m: EntryMeta & { v?: number }
  try {
    m = JSON.parse(json.toString('utf8')) as EntryMeta & { v?: number }
  } catch {
    return undefined
  }
  if (m.v !== FORMAT_VERSION || typeof m.key !== 'string' || typeof m.status !== 'number') return undefined
  if (typeof m.bodyLength !== 'number' || typeof m.crc32 !== 'number' || typeof m.headers !== 'object')
    return undefined
  if (m.bodyLength + json.length + TRAILER_FIXED !== fileSize) return undefined
  if (objectName(m.key) !== name) return undefined
  delete m.v
  return m
}

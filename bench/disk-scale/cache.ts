/**
 * The cache directories bench:disk-scale restarts from: `n` small objects (100-byte bodies, 5,000
 * per title) written straight in the on-disk format (disk-format.ts's trailer, no edge), and the
 * index snapshot of them written by the edge's own writer (disk-snapshot.ts), so no full scan is
 * needed to make one. A directory is built once and kept (`--dir`): at a million objects the
 * build takes minutes, and is no part of what is measured.
 */
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { crc32 } from 'node:zlib'
import { encodeTrailer, objectDir, objectName } from '../../edge/cache/disk-format.js'
import { DiskRecord } from '../../edge/cache/disk-record.js'
import { SETTLE_MS, writeSnapshot } from '../../edge/cache/disk-snapshot.js'
import type { EntryMeta } from '../../edge/cache/entry.js'
import { fileIdOf } from '../../edge/cache/file-id.js'

export const PER_TITLE = 5000
export const ENTRY_OPTS = { heuristicMaxMs: 86_400_000 }
const BUILT = 'bench-built'

export const keyOf = (i: number) => `/vod/t${Math.floor(i / PER_TITLE)}/v1/360p/seg-${i % PER_TITLE}.m4s`

export function metaOf(key: string, body: Buffer): EntryMeta {
  const t = Date.UTC(2026, 0, 1)
  return {
    key,
    status: 200,
    headers: {
      'content-type': 'video/iso.segment',
      'cache-control': 'public, max-age=31536000, immutable',
      date: new Date(t).toUTCString(),
      etag: `"${crc32(body).toString(16)}"`,
      'last-modified': new Date(t).toUTCString(),
    },
    requestTime: t,
    responseTime: t,
    bodyLength: body.length,
    crc32: crc32(body),
  }
}

const bodyOf = (i: number) => Buffer.alloc(100, i & 0xff)

function fileOf(dir: string, i: number): { key: string; file: string; d: string } {
  const key = keyOf(i)
  const name = objectName(key)
  const d = objectDir(dir, `t${Math.floor(i / PER_TITLE)}`, name)
  return { key, file: join(d, name), d }
}

/** Writes `n` object files in the on-disk format (unless `dir` already holds them). */
export function buildObjects(dir: string, n: number, log: (s: string) => void): boolean {
  const marker = join(dir, BUILT)
  if (existsSync(marker) && Number(readFileSync(marker, 'utf8')) === n) return false
  const made = new Set<string>()
  for (let i = 0; i < n; i++) {
    const { key, file, d } = fileOf(dir, i)
    if (!made.has(d)) {
      mkdirSync(d, { recursive: true })
      made.add(d)
    }
    const body = bodyOf(i)
    writeFileSync(file, Buffer.concat([body, encodeTrailer(metaOf(key, body))]))
    if (i % 100_000 === 99_999) log(`${i + 1} of ${n} objects written`)
  }
  writeFileSync(marker, String(n))
  return true
}

/**
 * Writes the index snapshot of the `n` objects, as a clean close would (records in key order),
 * once every bucket has settled (a bucket changed within SETTLE_MS of the snapshot is not taken).
 */
export async function writeBenchSnapshot(dir: string, n: number): Promise<void> {
  await new Promise((r) => setTimeout(r, SETTLE_MS + 500))
  const recs: DiskRecord[] = []
  for (let i = 0; i < n; i++) {
    const { key, file } = fileOf(dir, i)
    const st = statSync(file)
    const fields = { key, file, size: st.size, id: fileIdOf(st), protected: false }
    recs.push(new DiskRecord(fields, metaOf(key, bodyOf(i)), ENTRY_OPTS))
  }
  let failed: unknown
  await writeSnapshot(
    dir,
    () => recs,
    () => Date.now(),
    (err) => (failed = err),
  )
  if (failed) throw failed as Error
}

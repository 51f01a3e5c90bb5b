/**
 * One immutable version's objects in the object-store backend, written and removed in the order
 * that keeps a half-done one an unfinished one: uploaded with its manifest (version.json) last,
 * so a version without it was never finished, and deleted with its manifest first. Switching the
 * title's pointer to it (publish) or away from it (retire) is the caller's: s3-store.ts.
 */
import { readdir } from 'node:fs/promises'
import { join, relative, sep } from 'node:path'
import { mapBounded } from './map-bounded.js'
import type { S3Objects } from './s3-objects.js'

const MANIFEST = 'version.json'

/** Uploads the staged directory under `base` (a relative prefix ending in '/'), the manifest last. */
export async function uploadVersion(
  objects: S3Objects,
  staged: string,
  base: string,
  o: { partSize: number; concurrency: number },
): Promise<void> {
  const files = (await walk(staged)).filter((f) => f !== MANIFEST)
  await mapBounded(files, o.concurrency, (f) =>
    objects.upload(join(staged, f), objects.key(base + f), o.partSize),
  )
  await objects.upload(join(staged, MANIFEST), objects.key(base + MANIFEST), o.partSize)
}

/** Deletes every object under the full key `prefix`, the manifest first; resolves with their keys. */
export async function deleteVersionObjects(objects: S3Objects, prefix: string): Promise<string[]> {
  const keys: string[] = []
  for await (const page of objects.pages(prefix)) for (const o of page.Contents ?? []) keys.push(o.Key!)
  const isManifest = (k: string) => k.endsWith(`/${MANIFEST}`)
  for (const Key of keys.filter(isManifest)) await objects.delete(Key)
  await mapBounded(
    keys.filter((k) => !isManifest(k)),
    8,
    (Key) => objects.delete(Key),
  )
  return keys
}

/** Relative file paths under `dir`, '/'-separated. */
async function walk(dir: string): Promise<string[]> {
  const out: string[] = []
  const visit = async (d: string) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name)
      if (e.isDirectory()) await visit(p)
      else if (e.isFile()) out.push(relative(dir, p).split(sep).join('/'))
    }
  }
  await visit(dir)
  return out.sort()
}

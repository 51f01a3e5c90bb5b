/**
 * Opens the store an origin (or a local ingest) was given: `s3://BUCKET/PREFIX` is the object
 * store, anything else a local directory.
 */
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Clock } from '../../src/clock.js'
import { ContentStore } from './content-store.js'
import { createS3Client, parseS3Url } from './s3-client.js'
import { S3Store } from './s3-store.js'
import type { CasMode, OriginStore } from './store.js'

export interface StoreOptions {
  store: string
  s3Endpoint?: string | undefined
  s3Region?: string | undefined
  s3AccessKeyId?: string | undefined
  s3SecretAccessKey?: string | undefined
  /** Attempts per S3 request, the first included. */
  s3MaxAttempts?: number | undefined
  s3PartSize?: number | undefined
  /** 'auto' (detect), 'conditional' or 'single-writer'. */
  s3Cas?: string | undefined
  /** ms a title's pointer is reused by /vod reads. */
  s3PointerTtl?: number | undefined
  /** Local directory for staging and sources with an object store. */
  workDir?: string | undefined
  clock?: Clock
}

export async function openStore(o: StoreOptions): Promise<OriginStore> {
  const location = parseS3Url(o.store)
  if (!location) return new ContentStore(o.store).init()
  const client = createS3Client({
    endpoint: o.s3Endpoint,
    region: o.s3Region ?? 'us-east-1',
    accessKeyId: o.s3AccessKeyId,
    secretAccessKey: o.s3SecretAccessKey,
    maxAttempts: o.s3MaxAttempts ?? 5,
  })
  const store = new S3Store({
    client,
    location,
    workDir: o.workDir ?? join(tmpdir(), `cdn-origin-work-${process.pid}`),
    casMode: (o.s3Cas ?? 'auto') as 'auto' | CasMode,
    ...(o.s3PartSize === undefined ? {} : { partSize: o.s3PartSize }),
    ...(o.s3PointerTtl === undefined ? {} : { pointerTtlMs: o.s3PointerTtl }),
    ...(o.clock ? { clock: o.clock } : {}),
  })
  try {
    return await store.init()
  } catch (err) {
    await store.close()
    throw err
  }
}

/**
 * Opens the store an origin (or a local ingest) was given: `s3://BUCKET/PREFIX` is the object
 * store, anything else a local directory.
 */
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Clock } from '../../src/clock.js'
import { CdnError } from '../../src/errors.js'
import { ContentStore } from './content-store.js'
import { EtcdPointers } from './etcd-pointers.js'
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
  /** 'auto' (detect), 'conditional', 'etcd' or 'single-writer'. */
  s3Cas?: string | undefined
  /** etcd endpoints of the catalogue ('etcd' only). */
  s3Etcd?: readonly string[] | undefined
  /** Key prefix of the catalogue in etcd. */
  s3EtcdPrefix?: string | undefined
  /** ms a title's pointer is reused by /vod reads. */
  s3PointerTtl?: number | undefined
  /** ms one S3 request may take until its response head. */
  s3Timeout?: number | undefined
  /** Local directory for staging and sources with an object store. */
  workDir?: string | undefined
  clock?: Clock
}

export async function openStore(o: StoreOptions): Promise<OriginStore> {
  const location = parseS3Url(o.store)
  if (!location) return new ContentStore(o.store, o.clock ? { clock: o.clock } : {}).init()
  const etcdMode = o.s3Cas === 'etcd'
  if (etcdMode !== Boolean(o.s3Etcd?.length))
    throw new CdnError(
      'CDN_ERR_CONFIG',
      etcdMode
        ? '--s3-cas etcd: the catalogue needs its etcd endpoints (--s3-etcd URL)'
        : `--s3-etcd: the catalogue is in etcd only with --s3-cas etcd (got ${o.s3Cas ?? 'auto'})`,
    )
  const client = createS3Client({
    endpoint: o.s3Endpoint,
    region: o.s3Region ?? 'us-east-1',
    accessKeyId: o.s3AccessKeyId,
    secretAccessKey: o.s3SecretAccessKey,
    maxAttempts: o.s3MaxAttempts ?? 5,
    timeoutMs: o.s3Timeout ?? 30_000,
  })
  const store = new S3Store({
    client,
    location,
    workDir: o.workDir ?? join(tmpdir(), `cdn-origin-work-${process.pid}`),
    casMode: (o.s3Cas ?? 'auto') as 'auto' | CasMode,
    etcd: etcdMode
      ? new EtcdPointers({
          endpoints: o.s3Etcd!,
          ...(o.s3EtcdPrefix ? { prefix: o.s3EtcdPrefix } : {}),
          store: `${location.bucket}/${location.prefix}`,
        })
      : undefined,
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

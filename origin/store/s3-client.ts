/**
 * The S3 client of the object-store backend, and what the store itself can do. One
 * `@aws-sdk/client-s3` client per store: path-style addressing (S3-compatible servers rarely
 * have per-bucket DNS), checksums only when an operation requires them (recent SDKs send CRC
 * checksums that Swift, older Ceph and others refuse), and the SDK's standard retry mode
 * (exponential backoff with jitter on 5xx, throttling and dropped connections).
 */
import { randomBytes } from 'node:crypto'
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  HeadBucketCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3'
import { CdnError } from '../../src/errors.js'
import type { CasMode } from './store.js'

export interface S3Location {
  bucket: string
  /** '' or ending in '/'. */
  prefix: string
}

export interface S3ClientOptions {
  endpoint?: string | undefined
  region: string
  accessKeyId?: string | undefined
  secretAccessKey?: string | undefined
  /** Attempts per request, the first included (SDK standard retry mode). */
  maxAttempts: number
  /**
   * ms an attempt may take until its response head (the connection included): without a
   * limit, a store that accepts and never answers held every request and, past the agent's 50
   * sockets, the origin's every later read, even once the store answered again.
   */
  timeoutMs: number
}

const BUCKET_RE = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/

/** `s3://BUCKET/PREFIX` → bucket and prefix; undefined when `store` is not an s3:// URL. */
export function parseS3Url(store: string): S3Location | undefined {
  if (!store.startsWith('s3://')) return undefined
  const rest = store.slice('s3://'.length)
  const slash = rest.indexOf('/')
  const bucket = slash === -1 ? rest : rest.slice(0, slash)
  const prefix = slash === -1 ? '' : rest.slice(slash + 1).replace(/\/+$/, '')
  if (!BUCKET_RE.test(bucket))
    throw new CdnError('CDN_ERR_CONFIG', `--store: "${bucket}" is not an S3 bucket name (s3://BUCKET/PREFIX)`)
  if (prefix.split('/').some((p) => p === '..' || p === '.') || prefix.includes('//'))
    throw new CdnError('CDN_ERR_CONFIG', `--store: the prefix "${prefix}" has an empty, . or .. part`)
  return { bucket, prefix: prefix ? `${prefix}/` : '' }
}

export function createS3Client(o: S3ClientOptions): S3Client {
  return new S3Client({
    region: o.region,
    ...(o.endpoint ? { endpoint: o.endpoint } : {}),
    forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: o.maxAttempts,
    retryMode: 'standard',
    requestHandler: {
      connectionTimeout: o.timeoutMs,
      requestTimeout: o.timeoutMs,
      throwOnRequestTimeout: true,
    },
    ...(o.accessKeyId && o.secretAccessKey
      ? { credentials: { accessKeyId: o.accessKeyId, secretAccessKey: o.secretAccessKey } }
      : {}),
  })
}

/** The HTTP status of an S3 error (undefined for a network error). */
export function s3Status(err: unknown): number | undefined {
  return err instanceof S3ServiceException ? err.$metadata.httpStatusCode : undefined
}

/**
 * A missing object, not a missing bucket: NoSuchBucket is the store failing (a deleted or
 * misnamed bucket), and read as "no such title" it made /vod answer 404, which an edge passes
 * on where it would serve its stale copy on the 503 of a store error.
 */
export function isNotFound(err: unknown): boolean {
  const name = (err as { name?: string })?.name
  if (name === 'NoSuchBucket') return false
  return s3Status(err) === 404 || name === 'NoSuchKey'
}

/** A lost conditional write: 412, or 409 while another conditional write is in flight. */
export function isConditionFailed(err: unknown): boolean {
  const status = s3Status(err)
  return status === 412 || status === 409
}

/** Any other store failure, without the endpoint or key in the message (error bodies are public). */
export function storeError(what: string, err: unknown): CdnError {
  return new CdnError('CDN_ERR_STORE', `object store: ${what} failed`, { cause: err })
}

/** Creates the bucket when it does not exist (an operator's bucket usually does). */
export async function ensureBucket(client: S3Client, bucket: string): Promise<void> {
  try {
    await client.send(new HeadBucketCommand({ Bucket: bucket }))
  } catch (err) {
    if (!isNotFound(err)) throw storeError('checking the bucket', err)
    await client.send(new CreateBucketCommand({ Bucket: bucket })).catch((e: unknown) => {
      // Another origin created it between our HEAD and our PUT.
      if (s3Status(e) !== 409) throw storeError('creating the bucket', e)
    })
  }
}

/**
 * Detects whether the store honours conditional writes, by trying them on a probe key: a
 * create with If-None-Match: * must succeed, and a second one must fail with 412. Swift's S3
 * API answers 501 to any conditional PUT; a server that ignores the header lets the second
 * through. Either way: the single-writer rule.
 */
export async function detectCasMode(client: S3Client, loc: S3Location): Promise<CasMode> {
  const Key = `${loc.prefix}_cdn/probe-${randomBytes(6).toString('hex')}`
  const put = () =>
    client.send(new PutObjectCommand({ Bucket: loc.bucket, Key, Body: 'probe', IfNoneMatch: '*' }))
  try {
    try {
      await put()
    } catch (err) {
      const status = s3Status(err)
      if (status === 501 || status === 400 || status === 403) return 'single-writer'
      throw storeError('probing conditional writes', err)
    }
    try {
      await put()
      return 'single-writer'
    } catch (err) {
      if (isConditionFailed(err)) return 'conditional'
      return 'single-writer'
    }
  } finally {
    await client.send(new DeleteObjectCommand({ Bucket: loc.bucket, Key })).catch(() => undefined)
  }
}

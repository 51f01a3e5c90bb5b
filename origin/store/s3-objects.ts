/**
 * The object operations of the object-store backend, on one bucket under one prefix (the
 * `@aws-sdk/client-s3` client comes from s3-client.ts): small documents read and written whole,
 * listings page by page, files uploaded (lib-storage's Upload: multipart past `partSize`, so
 * memory per upload is bounded by partSize × queueSize), metadata, and byte ranges read as a
 * stream. What the store makes of them (pointers, versions, serving) is the callers': s3-store.ts,
 * s3-pointers.ts, s3-versions.ts.
 *
 * Failures are CDN_ERR_STORE without the endpoint or key (storeError), except where the caller
 * needs the SDK's own error to tell a lost conditional write or a missing object (`putJson`,
 * `pages`, `delete`).
 */
import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import type { Readable } from 'node:stream'
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  type ListObjectsV2CommandOutput,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3'
import { Upload } from '@aws-sdk/lib-storage'
import { CdnError } from '../../src/errors.js'
import { contentTypeFor } from '../../src/http/paths.js'
import { isNotFound, type S3Location, storeError } from './s3-client.js'

/** An object's metadata (immutable objects: cached by the reader). */
export interface Head {
  size: number
  etag: string
  lastModified: Date
}

/** The conditions of a PUT: none, If-Match an ETag, or If-None-Match: * (create only). */
export type PutCondition = { IfMatch?: string; IfNoneMatch?: string }

export class S3Objects {
  constructor(
    readonly client: S3Client,
    readonly loc: S3Location,
  ) {}

  /** Full key of a path relative to the store's root. */
  key(rel: string): string {
    return `${this.loc.prefix}${rel}`
  }

  /** An object's text and ETag, or undefined when there is none (`what` names a failure). */
  async getText(Key: string, what: string): Promise<{ text: string; etag: string | undefined } | undefined> {
    try {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.loc.bucket, Key }))
      return { text: await res.Body!.transformToString('utf8'), etag: res.ETag }
    } catch (err) {
      if (isNotFound(err)) return undefined
      throw storeError(what, err)
    }
  }

  /** Writes a small JSON document whole; the SDK's error as it is (a lost condition is the caller's). */
  async putJson(Key: string, Body: string, cond: PutCondition = {}): Promise<void> {
    await this.client.send(
      new PutObjectCommand({ Bucket: this.loc.bucket, Key, Body, ContentType: 'application/json', ...cond }),
    )
  }

  /**
   * The listing of `Prefix`, one page a step (stop early by leaving the loop); with `Delimiter`,
   * the pages' CommonPrefixes are the "directories". The SDK's error as it is.
   */
  async *pages(Prefix: string, Delimiter?: string): AsyncGenerator<ListObjectsV2CommandOutput> {
    let token: string | undefined
    do {
      const res = await this.client.send(
        new ListObjectsV2Command({
          Bucket: this.loc.bucket,
          Prefix,
          Delimiter,
          ContinuationToken: token,
        }),
      )
      yield res
      token = res.IsTruncated ? res.NextContinuationToken : undefined
    } while (token)
  }

  /** Deletes one object; the SDK's error as it is. */
  async delete(Key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.loc.bucket, Key }))
  }

  /** Uploads a local file as `Key`, multipart past `partSize` bytes. */
  async upload(file: string, Key: string, partSize: number): Promise<void> {
    const size = (await stat(file)).size
    const upload = new Upload({
      client: this.client,
      params: {
        Bucket: this.loc.bucket,
        Key,
        Body: createReadStream(file),
        ContentType: contentTypeFor(file),
        ContentLength: size,
      },
      partSize,
      queueSize: 2,
      leavePartsOnError: false,
    })
    await upload.done().catch((err: unknown) => {
      throw storeError('uploading an object', err)
    })
  }

  /** An object's metadata, or undefined when there is none. */
  async head(Key: string): Promise<Head | undefined> {
    try {
      const res = await this.client.send(new HeadObjectCommand({ Bucket: this.loc.bucket, Key }))
      return { size: res.ContentLength ?? 0, etag: res.ETag!, lastModified: res.LastModified ?? new Date(0) }
    } catch (err) {
      if (isNotFound(err)) return undefined
      throw storeError('reading object metadata', err)
    }
  }

  /** Bytes start..end inclusive of the object whose ETag is still `etag`. */
  async readRange(Key: string, etag: string, start: number, end: number): Promise<Readable> {
    try {
      const res = await this.client.send(
        new GetObjectCommand({ Bucket: this.loc.bucket, Key, Range: `bytes=${start}-${end}`, IfMatch: etag }),
      )
      return res.Body as Readable
    } catch (err) {
      // Deleted since its metadata was read (retire deletes before its pointer swap shows).
      if (isNotFound(err)) throw new CdnError('CDN_ERR_NOT_FOUND', 'no such object', { cause: err })
      throw storeError('reading an object', err)
    }
  }
}

/**
 * The real S3-compatible store for tests (scripts/object-store.sh: Swift with s3api), found
 * through CDN_TEST_S3_ENDPOINT and the AWS_* variables that script prints. Without them a test
 * needing the store fails in CI (CI=true: .ci/run always starts it) and is skipped, loudly,
 * elsewhere.
 */
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import type { Test } from 'tap'
import { openStore } from '../../origin/store/open-store.js'
import type { S3Store } from '../../origin/store/s3-store.js'
import { tempDir } from './origin.js'

export interface S3TestEnv {
  endpoint: string
  region: string
  accessKeyId: string
  secretAccessKey: string
}

export const TEST_BUCKET = 'cdn-test'

export function s3TestEnv(): S3TestEnv | undefined {
  const endpoint = process.env.CDN_TEST_S3_ENDPOINT
  if (!endpoint) return undefined
  return {
    endpoint,
    region: process.env.AWS_REGION ?? 'us-east-1',
    accessKeyId: process.env.AWS_ACCESS_KEY_ID ?? 'test:tester',
    secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY ?? 'testing',
  }
}

/**
 * The env, or undefined after failing (CI) or skipping (elsewhere) `t` with the reason.
 */
export function requireS3(t: Test): S3TestEnv | undefined {
  const env = s3TestEnv()
  if (env) return env
  const reason =
    'CDN_TEST_S3_ENDPOINT is not set: the S3 half of this test did NOT run. Start the store with: eval "$(scripts/object-store.sh start)"'
  if (process.env.CI) t.fail(reason)
  else {
    process.stderr.write(`\n*** ${reason}\n`)
    t.skip(reason, () => {})
  }
  return undefined
}

/** A fresh prefix of the test bucket, as `--store` says it. */
export function freshS3Url(): string {
  return `s3://${TEST_BUCKET}/t-${randomBytes(6).toString('hex')}`
}

/** The store options of an origin on the test store. */
export function s3StoreOptions(env: S3TestEnv, store: string) {
  return {
    store,
    s3Endpoint: env.endpoint,
    s3Region: env.region,
    s3AccessKeyId: env.accessKeyId,
    s3SecretAccessKey: env.secretAccessKey,
  }
}

/** An S3Store on a fresh prefix, closed on teardown. */
export async function openS3Store(
  t: Test,
  env: S3TestEnv,
  opts: { store?: string; pointerTtl?: number; partSize?: number; etcd?: readonly string[] } = {},
): Promise<S3Store> {
  const store = (await openStore({
    ...s3StoreOptions(env, opts.store ?? freshS3Url()),
    ...(opts.etcd ? { s3Cas: 'etcd', s3Etcd: opts.etcd } : {}),
    workDir: join(await tempDir(t), 'work'),
    s3PointerTtl: opts.pointerTtl ?? 0,
    s3PartSize: opts.partSize,
  })) as S3Store
  t.teardown(() => store.close())
  return store
}

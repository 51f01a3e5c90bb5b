/**
 * The one error catalogue. Every error the nodes raise on purpose is a CdnError with a
 * stable `code`; code branches on `code`, never on message text. HTTP handlers turn a
 * CdnError into `{ error: { code, message } }` with its `status`.
 */

export type ErrorSource = 'client' | 'upstream' | 'internal' | 'config' | 'media'

interface ErrorSpec {
  readonly status: number
  readonly source: ErrorSource
  readonly retryable: boolean
}

export const ERRORS = {
  CDN_ERR_BAD_REQUEST: { status: 400, source: 'client', retryable: false },
  CDN_ERR_BAD_PATH: { status: 400, source: 'client', retryable: false },
  CDN_ERR_BAD_TITLE: { status: 400, source: 'client', retryable: false },
  CDN_ERR_BAD_BODY: { status: 400, source: 'client', retryable: false },
  /** A request body larger than the route reads. */
  CDN_ERR_BODY_TOO_LARGE: { status: 413, source: 'client', retryable: false },
  /** A request body of a media type (Content-Type) the route does not read. */
  CDN_ERR_UNSUPPORTED_MEDIA_TYPE: { status: 415, source: 'client', retryable: false },
  /** Plain HTTP sent to an HTTPS port (answered in the clear, then the connection closes). */
  CDN_ERR_PLAIN_HTTP_ON_TLS: { status: 400, source: 'client', retryable: false },
  /** A request (head or body) that took longer than the server allows to arrive. */
  CDN_ERR_REQUEST_TIMEOUT: { status: 408, source: 'client', retryable: true },
  /** A request head larger than the server takes. */
  CDN_ERR_HEADERS_TOO_LARGE: { status: 431, source: 'client', retryable: false },
  CDN_ERR_UNAUTHORIZED: { status: 401, source: 'client', retryable: false },
  CDN_ERR_FORBIDDEN: { status: 403, source: 'client', retryable: false },
  CDN_ERR_NOT_FOUND: { status: 404, source: 'client', retryable: false },
  CDN_ERR_METHOD_NOT_ALLOWED: { status: 405, source: 'client', retryable: false },
  CDN_ERR_CONFLICT: { status: 409, source: 'client', retryable: false },
  /** If-Match or If-Unmodified-Since did not hold for the object. */
  CDN_ERR_PRECONDITION_FAILED: { status: 412, source: 'client', retryable: false },
  CDN_ERR_RANGE_NOT_SATISFIABLE: { status: 416, source: 'client', retryable: false },
  CDN_ERR_UPSTREAM: { status: 502, source: 'upstream', retryable: true },
  CDN_ERR_UPSTREAM_TRUNCATED: { status: 502, source: 'upstream', retryable: true },
  CDN_ERR_UPSTREAM_TIMEOUT: { status: 504, source: 'upstream', retryable: true },
  /** Every upstream is marked down after failures; a background probe is finding out when it is back. */
  CDN_ERR_UPSTREAM_UNAVAILABLE: { status: 503, source: 'upstream', retryable: true },
  /** A request with only-if-cached (RFC 9111 §5.2.1.7) for what the cache holds no usable copy of. */
  CDN_ERR_NOT_CACHED: { status: 504, source: 'client', retryable: false },
  CDN_ERR_NO_HEALTHY_EDGE: { status: 503, source: 'internal', retryable: true },
  CDN_ERR_OVERLOADED: { status: 503, source: 'internal', retryable: true },
  /** Steering has not read its fleet registry yet: /readyz answers it (the process serves, /healthz). */
  CDN_ERR_NOT_READY: { status: 503, source: 'internal', retryable: true },
  /** The node is draining (SIGTERM with a drain delay): /readyz answers it; content is still served. */
  CDN_ERR_DRAINING: { status: 503, source: 'internal', retryable: true },
  /**
   * With --workers: a purge done on disk that some workers did not confirm for their memory
   * (timed out, failed, exited); `workers` lists their slot numbers. Retrying is safe.
   */
  CDN_ERR_PURGE_INCOMPLETE: { status: 503, source: 'internal', retryable: true },
  CDN_ERR_INTERNAL: { status: 500, source: 'internal', retryable: false },
  CDN_ERR_DISK: { status: 500, source: 'internal', retryable: true },
  /** The object store failed or is unreachable (after the client's retries). */
  CDN_ERR_STORE: { status: 503, source: 'upstream', retryable: true },
  CDN_ERR_CONFIG: { status: 500, source: 'config', retryable: false },
  /** Another edge (its pid in the message) holds the --cache-dir lock. */
  CDN_ERR_CACHE_DIR_LOCKED: { status: 500, source: 'config', retryable: true },
  CDN_ERR_FFMPEG_MISSING: { status: 500, source: 'config', retryable: false },
  CDN_ERR_TRANSCODE: { status: 422, source: 'media', retryable: false },
  CDN_ERR_BAD_SOURCE: { status: 422, source: 'media', retryable: false },
  /**
   * ffprobe did not finish reading the source within --probe-timeout (a FIFO, a stalled mount):
   * the client's source, as CDN_ERR_BAD_SOURCE, but one that may read in time later.
   */
  CDN_ERR_PROBE_TIMEOUT: { status: 422, source: 'media', retryable: true },
  CDN_ERR_VALIDATION: { status: 500, source: 'media', retryable: false },
  CDN_ERR_PLAYLIST: { status: 502, source: 'upstream', retryable: false },
  CDN_ERR_CANCELLED: { status: 409, source: 'client', retryable: false },
  /** The upstream has no master playlist for the title (prefill, purge). */
  CDN_ERR_UNKNOWN_TITLE: { status: 404, source: 'client', retryable: false },
  /** The upstream answered 404/410 for an object a playlist names. */
  CDN_ERR_UPSTREAM_NOT_FOUND: { status: 502, source: 'upstream', retryable: false },
  /** The upstream stayed unreachable through every retry of a background job (prefill). */
  CDN_ERR_UPSTREAM_DOWN: { status: 503, source: 'upstream', retryable: false },
  /** The upstream answered another 4xx for an object (never retried). */
  CDN_ERR_UPSTREAM_REFUSED: { status: 502, source: 'upstream', retryable: false },
  /** The upstream's answer may not be stored (no-store, private, too large): it cannot be prefilled. */
  CDN_ERR_NOT_CACHEABLE: { status: 502, source: 'upstream', retryable: false },
} as const satisfies Record<string, ErrorSpec>

export type ErrorCode = keyof typeof ERRORS

export class CdnError extends Error {
  readonly code: ErrorCode
  readonly status: number
  readonly source: ErrorSource
  readonly retryable: boolean
  /** Extra machine-readable facts (e.g. the offending field) sent with the JSON body. */
  readonly details: Readonly<Record<string, unknown>> | undefined
  /** Facts for the log only (addresses, file paths): never in a response body. */
  readonly internal: Readonly<Record<string, unknown>> | undefined

  constructor(
    code: ErrorCode,
    message: string,
    options: {
      cause?: unknown
      details?: Record<string, unknown>
      internal?: Record<string, unknown>
      status?: number
    } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    const spec = ERRORS[code]
    this.name = 'CdnError'
    this.code = code
    this.status = options.status ?? spec.status
    this.source = spec.source
    this.retryable = spec.retryable
    this.details = options.details
    this.internal = options.internal
  }

  toJSON(): { error: { code: ErrorCode; message: string } & Record<string, unknown> } {
    return { error: { code: this.code, message: this.message, ...(this.details ?? {}) } }
  }
}

export function isCdnError(err: unknown): err is CdnError {
  return err instanceof CdnError
}

/** Whether `s` is a code of this catalogue (as another node's JSON error body may carry). */
export function isErrorCode(s: unknown): s is ErrorCode {
  return typeof s === 'string' && Object.hasOwn(ERRORS, s)
}

/**
 * The JSON body every node sends for an error, whatever raised it: a CdnError's code and message;
 * another client error (4xx: what fastify refuses that src/http/errors.ts did not map) as
 * CDN_ERR_BAD_REQUEST (CDN_ERR_NOT_FOUND for a 404) with its message, never the library's own
 * code; anything else a bare CDN_ERR_INTERNAL.
 */
export function errorBody(err: unknown): { status: number; body: ReturnType<CdnError['toJSON']> } {
  if (err instanceof CdnError) return { status: err.status, body: err.toJSON() }
  const e = err as { statusCode?: number; message?: string }
  if (typeof e?.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    const code: ErrorCode = e.statusCode === 404 ? 'CDN_ERR_NOT_FOUND' : 'CDN_ERR_BAD_REQUEST'
    return { status: e.statusCode, body: { error: { code, message: e.message || 'bad request' } } }
  }
  return { status: 500, body: { error: { code: 'CDN_ERR_INTERNAL', message: 'internal error' } } }
}

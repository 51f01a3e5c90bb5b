/** What one load-generator run measured, whichever generator ran it. */
export type Generator = 'wrk' | 'autocannon' | 'h2load' | 'handshakes'

/** What a TLS client and server agreed on, as the generator reports it. */
export interface Negotiated {
  readonly protocol: string
  readonly cipher: string
  /** Key exchange group, e.g. "X25519 253 bits" (h2load's "Server Temp Key"). */
  readonly keyExchange: string
  readonly alpn: string
}

export interface LoadResult {
  readonly generator: Generator
  readonly url: string
  readonly connections: number
  readonly durationS: number
  /** Completed responses. */
  readonly requests: number
  /** Bytes received, headers included (both generators count the wire). */
  readonly bytes: number
  readonly rps: number
  /** Megabytes (10^6) per second received. */
  readonly mbps: number
  readonly p50Ms: number
  readonly p99Ms: number
  /** Connection errors, timeouts and non-2xx responses: a run with any is suspect. */
  readonly errors: number
  readonly non2xx: number
  /** What the errors were, when the generator says (wrk: connect/read/write/timeout). */
  readonly errorKinds?: Readonly<Record<string, number>>
  /** Over TLS, when the generator says. */
  readonly negotiated?: Negotiated
  /** TLS sessions the server resumed (the handshake generator never offers one: 0). */
  readonly resumed?: number
}

export interface LoadOptions {
  readonly url: string
  readonly connections: number
  readonly durationS: number
  /** wrk threads (ignored by autocannon, which runs in this process). */
  readonly threads?: number
  /**
   * Offered load in requests per second over all connections (h2load only, as HTTP/1.1): a
   * fixed rate rather than as fast as the server answers, so two servers are compared at the
   * same throughput.
   */
  readonly rate?: number
}

export function finishResult(
  r: Omit<LoadResult, 'rps' | 'mbps'> & { readonly requests: number; readonly bytes: number },
): LoadResult {
  const d = r.durationS > 0 ? r.durationS : Number.NaN
  return { ...r, rps: r.requests / d, mbps: r.bytes / d / 1e6 }
}

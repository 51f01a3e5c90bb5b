/**
 * The flags every `cdn` server process is started with (the bin's shebang, the Dockerfile's
 * ENTRYPOINT, the demo's supervisor, the benchmarks; an edge's workers inherit them).
 *
 * `--initial-old-space-size=128` is a floor under V8's old-generation limit. An edge's heap is
 * small (about 22 MB live) while it allocates Buffers fast (every miss and prefill body, every
 * socket read), and V8 counts Buffer bytes allocated since the last full GC against the
 * old-generation limit. With the limit V8 derives from a 22 MB heap (about 34 MB), a capped
 * 20 MB/s prefill started a full mark-compact every 200-400 ms, each stopping the loop for 2-12
 * ms (its final pause) plus incremental steps of up to 15 ms: that, not the fill's own code, was
 * what the players' p99 queued behind (issue 19; docs/bench.md). With the floor, 4 full GCs
 * where there were 30, and the edge's CPU per capped run fell by a quarter. The cost is
 * memory: up to about 100 MB more garbage (heap and Buffers) awaits a GC.
 *
 * V8 reads it only at start (v8.setFlagsFromString later has no effect, and NODE_OPTIONS
 * refuses it), hence a launch flag.
 */
export const NODE_FLAGS: readonly string[] = ['--initial-old-space-size=128']

/** True when this process was started with every flag of NODE_FLAGS. */
export function startedWithNodeFlags(execArgv: readonly string[] = process.execArgv): boolean {
  return NODE_FLAGS.every((f) => execArgv.includes(f))
}

/**
 * Interleaved rounds: every variant runs once per round, and the order flips each round
 * (A B, B A, A B, ...), so slow drift of the machine (thermal, page cache, other tenants) lands
 * on every variant alike instead of on whichever ran last.
 */
export async function interleave<V extends string, R>(
  variants: readonly V[],
  rounds: number,
  run: (variant: V, round: number) => Promise<R>,
): Promise<Map<V, R[]>> {
  const out = new Map<V, R[]>(variants.map((v) => [v, []]))
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? variants : [...variants].reverse()
    for (const v of order) out.get(v)!.push(await run(v, round))
  }
  return out
}

/**
 * The Che approximation of an LRU cache bounded by bytes under independent requests: each
 * object i (rate λ_i, size s_i) is held with probability 1 - exp(-λ_i T), where the
 * characteristic time T solves Σ s_i (1 - exp(-λ_i T)) = C. Used to check the replay's LRU.
 */

export interface CheResult {
  readonly characteristicTime: number
  readonly objectHitRatio: number
  readonly byteHitRatio: number
}

/** `rates` in requests per unit time, `sizes` in bytes, `capacity` in bytes. */
export function cheApproximation(
  rates: ArrayLike<number>,
  sizes: ArrayLike<number>,
  capacity: number,
): CheResult {
  const n = rates.length
  let total = 0
  for (let i = 0; i < n; i++) total += sizes[i]!
  const held = (T: number) => {
    let s = 0
    for (let i = 0; i < n; i++) s += sizes[i]! * -Math.expm1(-rates[i]! * T)
    return s
  }
  let T = Number.POSITIVE_INFINITY
  if (capacity < total) {
    let lo = 0
    let hi = 1
    while (held(hi) < capacity) hi *= 2
    for (let k = 0; k < 100; k++) {
      const mid = (lo + hi) / 2
      if (held(mid) < capacity) lo = mid
      else hi = mid
    }
    T = (lo + hi) / 2
  }
  let req = 0
  let hits = 0
  let reqBytes = 0
  let hitBytes = 0
  for (let i = 0; i < n; i++) {
    const h = T === Number.POSITIVE_INFINITY ? 1 : -Math.expm1(-rates[i]! * T)
    req += rates[i]!
    hits += rates[i]! * h
    reqBytes += rates[i]! * sizes[i]!
    hitBytes += rates[i]! * sizes[i]! * h
  }
  return {
    characteristicTime: T,
    objectHitRatio: req ? hits / req : 0,
    byteHitRatio: reqBytes ? hitBytes / reqBytes : 0,
  }
}

/**
 * Seeded randomness for the trace generator: one 32-bit generator (mulberry32) and the few
 * distributions the workload model draws from. Sizes are a hash of the object's coordinates,
 * not a draw, so every policy and every run sees the same bytes for the same object.
 */

import { prng } from '../../fixtures/prng.js'

export type Rng = () => number

/** The one seeded generator of tests and benches (fixtures/prng.ts: mulberry32). */
export const seeded: (seed: number) => Rng = prng

/** Standard normal (Box-Muller). */
export function normal(rng: Rng): number {
  const u = 1 - rng()
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng())
}

/** Log-normal with the given median and sigma of the underlying normal. */
export function lognormal(rng: Rng, median: number, sigma: number): number {
  return median * Math.exp(sigma * normal(rng))
}

/** Exponential with the given mean. */
export function exponential(rng: Rng, mean: number): number {
  return -mean * Math.log(1 - rng())
}

/** A uniform [0, 1) value that is a pure function of the integers given (murmur3-style finaliser). */
export function hashUnit(...xs: number[]): number {
  let h = 0x9e3779b9
  for (const x of xs) {
    h = Math.imul(h ^ (x | 0), 0x85ebca6b)
    h ^= h >>> 13
    h = Math.imul(h, 0xc2b2ae35)
    h ^= h >>> 16
  }
  return (h >>> 0) / 4294967296
}

/** A standard normal value that is a pure function of the integers given. */
export function hashNormal(...xs: number[]): number {
  const u = 1 - hashUnit(...xs, 1)
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * hashUnit(...xs, 2))
}

/** Index of the first cumulative weight above `u × total` (binary search). */
export function pick(cumulative: Float64Array, u: number): number {
  const target = u * cumulative[cumulative.length - 1]!
  let lo = 0
  let hi = cumulative.length - 1
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (cumulative[mid]! > target) hi = mid
    else lo = mid + 1
  }
  return lo
}

/**
 * Seeded randomness for tests. Never Math.random(): the seed is the
 * reproducer. A test picks a default seed, SEED=<n> in the environment
 * overrides it, and the seed in use is logged so a failure can be replayed.
 */

/** mulberry32: a tiny 32-bit PRNG, good enough for choosing offsets and bytes. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export interface Rng {
  readonly seed: number
  /** Uniform float in [0, 1). */
  next(): number
  /** Uniform integer in [min, max] (both inclusive). */
  int(min: number, max: number): number
  bytes(count: number): Buffer
  pick<T>(items: readonly T[]): T
}

export function createRng(label: string, defaultSeed: number): Rng {
  const fromEnv = process.env.SEED
  const seed = fromEnv !== undefined && fromEnv !== '' ? Number(fromEnv) >>> 0 : defaultSeed >>> 0
  process.stderr.write(`[seed] ${label}: SEED=${seed}\n`)
  const next = mulberry32(seed)
  return {
    seed,
    next,
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    bytes: (count) => {
      const out = Buffer.allocUnsafe(count)
      for (let i = 0; i < count; i++) out[i] = Math.floor(next() * 256)
      return out
    },
    pick: (items) => items[Math.floor(next() * items.length)],
  }
}

/**
 * UniqueKeys (a restore's duplicate check without an index): keys that share
 * a hash are told apart by their bytes, a key noted twice is found wherever
 * it sits, and a crafted file whose keys all share one hash is checked in one
 * pass over them, not in pairs.
 */
import fc from 'fast-check'
import { expect, test } from 'vitest'
import { UniqueKeys } from '../../../src/rdb/unique_keys.js'

/** Notes `keys` (ref = position) with `hashOf`, then runs the check over them. */
function check(keys: string[], hashOf: (key: string, i: number) => number, expected = 0): { found: string | null, looked: number } {
  const u = new UniqueKeys(expected)
  keys.forEach((k, i) => u.add(hashOf(k, i), i))
  let looked = 0
  const found = u.findDuplicate((ref) => { looked++; return keys[ref] })
  return { found, looked }
}

test('distinct keys pass whatever their hashes share, a repeated key is found (any hashes, growth past the first size)', () => {
  fc.assert(fc.property(
    fc.uniqueArray(fc.string({ maxLength: 6 }), { minLength: 1, maxLength: 3000 }),
    fc.integer({ min: 1, max: 64 }),
    fc.nat(),
    fc.nat(),
    (keys, hashSpace, at, from) => {
      // Few distinct hashes: many keys share each one, and only their bytes tell them apart.
      const hashOf = (k: string): number => {
        let h = 0
        for (let i = 0; i < k.length; i++) h = (Math.imul(h, 31) + k.charCodeAt(i)) | 0
        return (h % hashSpace) - (hashSpace >> 1) | 0
      }
      expect(check(keys, hashOf).found).toBeNull()
      const repeated = keys[from % keys.length]
      const withTwice = [...keys]
      withTwice.splice(at % (keys.length + 1), 0, repeated)
      expect(check(withTwice, hashOf).found).toBe(repeated)
    },
  ), { seed: 0x0e1a, numRuns: 200 })
})

test('keys are read only where hashes collide, and all-colliding keys are each read once', () => {
  const keys = Array.from({ length: 50_000 }, (_, i) => `key:${i}`)
  expect(check(keys, (_k, i) => i * 2654435761 | 0).looked).toBe(0)
  const same = check(keys, () => -7)
  expect(same.found).toBeNull()
  expect(same.looked).toBe(keys.length)
  // Signed hashes on both sides of zero sort together by their bits.
  expect(check(['a', 'b', 'a'], (k) => k === 'a' ? -1 : 0x7fffffff).found).toBe('a')
})

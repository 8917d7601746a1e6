/**
 * The pure-JS XXH32 (key hashes) must agree with xxhash-wasm (block checksums
 * and the reference implementation) for every input: any slice of any byte
 * array, any seed. Lengths straddle the 16-byte stripe and 4-byte lane edges.
 */
import { beforeAll, expect } from 'vitest'
import { fc, test } from '@fast-check/vitest'
import { KEY_HASH_SEED, initHash, keyHash, xxh32, xxh32Reference } from '../../src/codec/hash.js'

beforeAll(async () => {
  await initHash()
})

/** A byte array and a slice [start, start + length) of it. */
const slice = fc.uint8Array({ minLength: 0, maxLength: 600 }).chain((bytes) =>
  fc.tuple(fc.constant(bytes), fc.nat({ max: bytes.length })).chain(([b, start]) =>
    fc.tuple(fc.constant(b), fc.constant(start), fc.nat({ max: b.length - start }))))

const seed = fc.oneof(
  fc.constantFrom(0, 1, 0x46524553, 0x7fffffff, 0x80000000, 0xffffffff),
  fc.nat({ max: 0xffffffff }),
)

test.prop([slice, seed], { seed: 0x5eed01, numRuns: 2000 })(
  'xxh32 over a slice equals xxhash-wasm h32Raw over a copy of that slice',
  ([bytes, start, length], s) => {
    const copy = bytes.slice(start, start + length)
    expect(xxh32(bytes, start, length, s) >>> 0).toBe(xxh32Reference(copy, s))
  },
)

test.prop([fc.uint8Array({ minLength: 0, maxLength: 64 }), seed], { seed: 0x5eed02, numRuns: 1000 })(
  'xxh32 equals the reference for every short length (all tail paths)',
  (bytes, s) => {
    for (let n = 0; n <= bytes.length; n++) {
      expect(xxh32(bytes, 0, n, s) >>> 0).toBe(xxh32Reference(bytes.subarray(0, n), s))
    }
  },
)

test.prop([fc.uint8Array({ minLength: 0, maxLength: 300 })], { seed: 0x5eed03, numRuns: 500 })(
  'keyHash is xxh32 with KEY_HASH_SEED as a signed 32-bit integer (a small integer in V8)',
  (bytes) => {
    const h = keyHash(bytes, 0, bytes.length)
    expect(h >>> 0).toBe(xxh32Reference(bytes, KEY_HASH_SEED))
    expect(h).toBe(h | 0)
  },
)

test('known XXH32 vectors (empty input with seeds 0 and 1, "abc")', () => {
  // Published XXH32 test vectors.
  expect(xxh32(new Uint8Array(0), 0, 0, 0) >>> 0).toBe(0x02cc5d05)
  expect(xxh32(new Uint8Array(0), 0, 0, 1) >>> 0).toBe(0x0b2cb792)
  const abc = new Uint8Array([0x61, 0x62, 0x63])
  expect(xxh32(abc, 0, 3, 0) >>> 0).toBe(0x32d153ff)
})

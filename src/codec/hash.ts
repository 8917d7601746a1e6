/**
 * Hashing. Block checksums use xxhash-wasm (XXH32 over a whole block, one call
 * per block). Key hashes use the same XXH32 algorithm computed in JS straight
 * over (bytes, start, length): xxhash-wasm's API needs a view object and a copy
 * into wasm memory per call (~110-190 ns for a 16-byte key, measured), which the
 * per-record hot path cannot afford. test/prop/hash.prop.test.ts checks that
 * both give identical results for every input.
 */
import xxhash from 'xxhash-wasm'
import { assert } from '../assert.js'

export const KEY_HASH_SEED = 0
export const CHECKSUM_SEED = 0x46524553 // 'FRES'

const PRIME32_1 = 0x9e3779b1
const PRIME32_2 = 0x85ebca77
const PRIME32_3 = 0xc2b2ae3d
const PRIME32_4 = 0x27d4eb2f
const PRIME32_5 = 0x165667b1

type Hasher = Awaited<ReturnType<typeof xxhash>>
let hasher: Hasher | null = null

/** Loads the wasm module once per thread; call before any checksum. */
export async function initHash(): Promise<void> {
  if (hasher === null) hasher = await xxhash()
}

/** XXH32 of bytes[start, end) via xxhash-wasm (one copy into wasm memory per call). */
export function checksum32(bytes: Uint8Array, start: number, end: number): number {
  assert(hasher !== null, 'initHash() must run before checksum32()')
  return hasher.h32Raw(bytes.subarray(start, end), CHECKSUM_SEED)
}

/** The reference XXH32 (xxhash-wasm), for tests. */
export function xxh32Reference(bytes: Uint8Array, seed: number): number {
  assert(hasher !== null, 'initHash() must run first')
  return hasher.h32Raw(bytes, seed)
}

function rotl(x: number, r: number): number {
  return (x << r) | (x >>> (32 - r))
}

function read32(b: Uint8Array, i: number): number {
  return b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24)
}

/** XXH32 of bytes[start, start + length) with `seed` as a signed 32-bit integer (`>>> 0` gives the unsigned XXH32), allocation-free. */
export function xxh32(b: Uint8Array, start: number, length: number, seed: number): number {
  const end = start + length
  let i = start
  let h: number
  if (length >= 16) {
    let v1 = (seed + PRIME32_1 + PRIME32_2) | 0
    let v2 = (seed + PRIME32_2) | 0
    let v3 = seed | 0
    let v4 = (seed - PRIME32_1) | 0
    const limit = end - 16
    while (i <= limit) {
      v1 = Math.imul(rotl((v1 + Math.imul(read32(b, i), PRIME32_2)) | 0, 13), PRIME32_1)
      v2 = Math.imul(rotl((v2 + Math.imul(read32(b, i + 4), PRIME32_2)) | 0, 13), PRIME32_1)
      v3 = Math.imul(rotl((v3 + Math.imul(read32(b, i + 8), PRIME32_2)) | 0, 13), PRIME32_1)
      v4 = Math.imul(rotl((v4 + Math.imul(read32(b, i + 12), PRIME32_2)) | 0, 13), PRIME32_1)
      i += 16
    }
    h = (rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18)) | 0
  } else {
    h = (seed + PRIME32_5) | 0
  }
  h = (h + length) | 0
  while (i + 4 <= end) {
    h = Math.imul(rotl((h + Math.imul(read32(b, i), PRIME32_3)) | 0, 17), PRIME32_4)
    i += 4
  }
  while (i < end) {
    h = Math.imul(rotl((h + Math.imul(b[i], PRIME32_5)) | 0, 11), PRIME32_1)
    i++
  }
  h ^= h >>> 15
  h = Math.imul(h, PRIME32_2)
  h ^= h >>> 13
  h = Math.imul(h, PRIME32_3)
  h ^= h >>> 16
  // Signed: the same 32 bits as XXH32, and always a small integer in V8 (an unsigned value past 2^31 is
  // a heap number wherever it crosses a call boundary: half of all hashes, one allocation each).
  return h
}

export function keyHash(b: Uint8Array, start: number, length: number): number {
  return xxh32(b, start, length, KEY_HASH_SEED)
}

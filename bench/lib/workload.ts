/**
 * The in-process write workload: redis-benchmark's keys (`key:000000123456`,
 * 16 bytes) laid out once in one buffer, and the exact write path a SET
 * command takes in server/commands.ts (beginWrite, probe, writeProbed,
 * endWrite; endTurn once per batch, as the server does once per event-loop
 * turn). Keys are addressed by (buffer, start, length) in a small batch
 * buffer, as the server addresses arguments in its query buffer, so the loop
 * allocates nothing and reads keys from cache (not from a 16 MB key table,
 * which would add a cache miss per op that no server pays).
 */
import { OP_TYPE_SET } from '../../src/constants.js'
import { opBytes } from '../../src/codec/record.js'
import { Primary } from '../../src/primary/primary.js'

/** redis-benchmark's `key:__rand_int__` expands to `key:` and 12 zero-padded digits. */
export const KEY_PREFIX = 'key:'
export const KEY_DIGITS = 12
export const KEY_BYTES = KEY_PREFIX.length + KEY_DIGITS

/** Writes key number `n` (`key:000000000123`) at buf[at, at + KEY_BYTES). */
export function writeKey(buf: Uint8Array, at: number, n: number): void {
  for (let j = 0; j < KEY_PREFIX.length; j++) buf[at + j] = KEY_PREFIX.charCodeAt(j)
  for (let j = KEY_BYTES - 1; j >= KEY_PREFIX.length; j--) {
    buf[at + j] = 48 + (n % 10)
    n = Math.floor(n / 10)
  }
}

/**
 * A batch of keys laid out back to back, as in a server's query buffer after
 * a pipelined read: small and hot in cache when the write path reads it.
 */
export class KeyBatch {
  readonly capacity: number
  readonly bytes: Uint8Array
  constructor(capacity: number) {
    this.capacity = capacity
    this.bytes = new Uint8Array(capacity * KEY_BYTES)
  }

  /** Fills slots [0, count) with keys seq[from, from + count). */
  fill(seq: Uint32Array, from: number, count: number): void {
    for (let i = 0; i < count; i++) writeKey(this.bytes, i * KEY_BYTES, seq[from + i])
  }
}

/** Opens a primary configured for benches (async commit: replies never wait on the disk). */
export function openPrimary(dir: string, segmentBytes: number, log: (line: string) => void): Promise<Primary> {
  return Primary.open({
    dir, segmentBytes, commit: 'async', maxMemoryBytes: Number.MAX_SAFE_INTEGER, valueBytesMax: 8 * 1024 * 1024, log,
  })
}

/** One SET through the command write path; returns the op's LSN. */
export function writeSet(
  primary: Primary, key: Uint8Array, keyStart: number, keyLength: number,
  value: Uint8Array, valueStart: number, valueLength: number,
): number {
  primary.beginWrite(opBytes(keyLength, valueLength))
  primary.probe(key, keyStart, keyLength)
  const lsn = primary.writeProbed(OP_TYPE_SET, key, keyStart, keyLength, value, valueStart, valueLength, null, 0, 0)
  primary.endWrite()
  return lsn
}

/** A value buffer of `bytes` with a fixed, non-zero pattern. */
export function patternValue(bytes: number): Uint8Array {
  const v = new Uint8Array(bytes)
  for (let i = 0; i < bytes; i++) v[i] = 97 + (i % 26)
  return v
}

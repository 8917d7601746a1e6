/**
 * A restore's bulk load (Primary.beginBulkLoad, appendUnindexed), in process:
 * the log it writes counts the same live bytes and keys as writing the same
 * keys through the ordinary write path, reopens as an ordinary primary with
 * every key, value and expiry time, and a bulk-loading primary refuses any
 * write or read that would need the index it does not keep.
 */
import { beforeAll, expect, test } from 'vitest'
import { initHash, keyHash } from '../../../src/codec/hash.js'
import { opBytes } from '../../../src/codec/record.js'
import { OP_TYPE_SET, REF_NONE } from '../../../src/constants.js'
import { AssertionError } from '../../../src/assert.js'
import type { Primary } from '../../../src/primary/primary.js'
import { openPrimary, tempDir } from '../../helpers/in_process.js'

const KEYS = 3000
/** An expiry time far enough ahead that nothing expires during the test. */
const LATER_MS = Date.now() + 3_600_000

beforeAll(async () => {
  await initHash()
})

function keyOf(i: number): Buffer {
  return Buffer.from(`bulk:${i}${'x'.repeat(i % 41)}`)
}
function valueOf(i: number): Buffer {
  return Buffer.from(`v${i}`.repeat(1 + (i % 13)))
}
function expiryOf(i: number): number {
  return i % 5 === 0 ? LATER_MS + i : 0
}

/** The same keys through the ordinary write path (probe, write, index). */
function writeOrdinary(p: Primary): void {
  for (let i = 0; i < KEYS; i++) {
    const k = keyOf(i)
    const v = valueOf(i)
    p.beginWrite(opBytes(k.length, v.length, expiryOf(i) > 0))
    try {
      p.probe(k, 0, k.length)
      p.writeProbed(OP_TYPE_SET, k, 0, k.length, v, 0, v.length, null, 0, 0, expiryOf(i))
    } finally {
      p.endWrite()
    }
    if (i % 500 === 0) p.endTurn()
  }
  p.endTurn()
}

test('a bulk-loaded log counts what the write path counts and reopens with every key', async () => {
  const bulkDir = tempDir('freshet-bulk-')
  const bulk = await openPrimary(bulkDir)
  bulk.primary.beginBulkLoad()
  for (let i = 0; i < KEYS; i++) {
    const k = keyOf(i)
    const v = valueOf(i)
    bulk.primary.appendUnindexed(keyHash(k, 0, k.length), k, 0, k.length, v, 0, v.length, expiryOf(i))
    if (i % 500 === 0) bulk.primary.endTurn()
  }
  bulk.primary.endTurn()
  // No index is kept: a probe (any indexed write or read-for-write) is refused.
  const k0 = keyOf(0)
  expect(() => bulk.primary.probe(k0, 0, k0.length)).toThrow(AssertionError)
  const bulkLive = bulk.primary.liveBytes
  await bulk.primary.close()

  const plain = await openPrimary(tempDir('freshet-plain-'))
  writeOrdinary(plain.primary)
  expect(bulkLive).toBe(plain.primary.liveBytes)
  await plain.primary.close()

  const reopened = await openPrimary(bulkDir)
  try {
    const p = reopened.primary
    expect(p.keyCount()).toBe(KEYS)
    expect(p.liveBytes).toBe(bulkLive)
    for (let i = 0; i < KEYS; i++) {
      const k = keyOf(i)
      const ref = p.view.lookup(k, 0, k.length)
      expect(ref, `key ${i}`).not.toBe(REF_NONE)
      const c = p.view.locate(ref)
      expect(Buffer.from(c.u8.subarray(c.valueStart, c.valueStart + c.valueLength)).equals(valueOf(i)), `value ${i}`).toBe(true)
      expect(p.view.expiryOf(ref)).toBe(expiryOf(i))
    }
    // An ordinary primary again: it writes and indexes.
    const k = keyOf(7)
    const v = Buffer.from('after')
    p.beginWrite(opBytes(k.length, v.length))
    try {
      expect(p.probe(k, 0, k.length)).not.toBe(REF_NONE)
      p.writeProbed(OP_TYPE_SET, k, 0, k.length, v, 0, v.length, null, 0, 0)
    } finally {
      p.endWrite()
    }
    p.endTurn()
    expect(p.keyCount()).toBe(KEYS)
  } finally {
    await reopened.primary.close()
  }
})

test('appendUnindexed is refused outside a bulk load', async () => {
  const p = await openPrimary(tempDir('freshet-bulk-'))
  try {
    const k = keyOf(1)
    expect(() => p.primary.appendUnindexed(keyHash(k, 0, k.length), k, 0, k.length, k, 0, k.length, 0)).toThrow(AssertionError)
  } finally {
    await p.primary.close()
  }
})

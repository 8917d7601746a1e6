/**
 * Checksum-valid nonsense: blocks whose checksum is right but whose fields are
 * not (a buggy or hostile primary seals what it likes). validateBlockFault
 * must name the field, validateBlock must refuse it, and every block a real
 * primary writes (fields in bounds) must still pass.
 */
import { beforeAll, expect } from 'vitest'
import { fc, test } from '@fast-check/vitest'
import { initHash, keyHash } from '../../src/codec/hash.js'
import {
  BLOCK_BAD_COMMIT_TIME, BLOCK_BAD_KEY_COUNT, BLOCK_BAD_KEY_HASH, BLOCK_BAD_OP_FRAMING, BLOCK_BAD_PREV_REF, BLOCK_OK,
  COMMIT_TIME_MS_MAX, opBytes, sealBlock, validateBlock, validateBlockFault, writeOp,
} from '../../src/codec/record.js'
import { BLOCK_HEADER_BYTES, BLOCK_OP_COUNT_OFFSET, LSN_ALIGN_BYTES, OP_TYPE_DELETE, OP_TYPE_SET, REF_NONE } from '../../src/constants.js'

beforeAll(async () => {
  await initHash()
})

interface Op { set: boolean, key: Uint8Array, value: Uint8Array }

interface Fields {
  /** Per op: the prevRef to write (null: a valid one, below the op's own ref). */
  prevRef?: (ownRef: number, i: number) => number
  /** Per op: the key hash to write (default: the real one). */
  hash?: (real: number, i: number) => number
  keyCount?: number
  commitTimeMs?: number
  opCount?: number
}

const opArb = fc.record({ set: fc.boolean(), key: fc.uint8Array({ maxLength: 40 }), value: fc.uint8Array({ maxLength: 60 }) })
const blockArb = fc.record({
  ops: fc.array(opArb, { minLength: 1, maxLength: 6 }),
  startLsn: fc.nat({ max: 2 ** 24 }).map((n) => n * LSN_ALIGN_BYTES),
  prevFrac: fc.array(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), { minLength: 6, maxLength: 6 }),
})

/** Seals one block of `ops` at `startLsn` (checksum always valid). */
function seal(ops: Op[], startLsn: number, f: Fields): { u8: Uint8Array, dv: DataView, length: number } {
  let length = BLOCK_HEADER_BYTES
  for (const op of ops) length += opBytes(op.key.length, op.set ? op.value.length : 0)
  const u8 = new Uint8Array(new SharedArrayBuffer(length))
  const dv = new DataView(u8.buffer)
  let at = BLOCK_HEADER_BYTES
  ops.forEach((op, i) => {
    const ownRef = (startLsn + at) / LSN_ALIGN_BYTES
    const real = keyHash(op.key, 0, op.key.length)
    const hash = f.hash === undefined ? real : f.hash(real, i) | 0
    const prevRef = f.prevRef === undefined ? REF_NONE : f.prevRef(ownRef, i)
    const valueLength = op.set ? op.value.length : 0
    at += writeOp(u8, dv, at, op.set ? OP_TYPE_SET : OP_TYPE_DELETE, hash, prevRef, op.key, 0, op.key.length, op.value, 0, valueLength)
  })
  sealBlock(u8, dv, 0, {
    epoch: 1, startLsn, length, opCount: f.opCount ?? ops.length, txnCount: 1,
    keyCount: f.keyCount ?? 0, commitTimeMs: f.commitTimeMs ?? 1_700_000_000_000,
  })
  return { u8, dv, length }
}

function fault(b: { u8: Uint8Array, dv: DataView, length: number }, startLsn: number, prevKeyCount = -1): number {
  const code = validateBlockFault(b.u8, b.dv, 0, b.length, startLsn, prevKeyCount)
  // The two entry points agree.
  expect(validateBlock(b.u8, b.dv, 0, b.length, startLsn, prevKeyCount)).toBe(code === BLOCK_OK ? b.length : -1)
  return code
}

test.prop([blockArb], { seed: 0xf1e1d01, numRuns: 200 })(
  'prevRef: REF_NONE or any ref below the op\'s own passes; its own ref or above is refused',
  ({ ops, startLsn, prevFrac }) => {
    const below = (own: number, i: number): number => Math.floor(prevFrac[i] * own)
    expect(fault(seal(ops, startLsn, { prevRef: below }), startLsn)).toBe(BLOCK_OK)
    const victim = Math.floor(prevFrac[0] * ops.length)
    for (const bad of [(own: number) => own, (own: number) => own + 1, (own: number) => Math.min(0xffffffff, own + 1 + Math.floor(prevFrac[1] * 2 ** 31))]) {
      const b = seal(ops, startLsn, { prevRef: (own, i) => i === victim ? bad(own) : below(own, i) })
      expect(fault(b, startLsn)).toBe(BLOCK_BAD_PREV_REF)
    }
  },
)

test.prop([blockArb, fc.integer({ min: 1, max: 0xffffffff })], { seed: 0xf1e1d02, numRuns: 200 })(
  'a key hash that is not the hash of the key is refused',
  ({ ops, startLsn, prevFrac }, xor) => {
    const victim = Math.floor(prevFrac[0] * ops.length)
    const b = seal(ops, startLsn, { hash: (real, i) => i === victim ? real ^ xor : real })
    expect(fault(b, startLsn)).toBe(BLOCK_BAD_KEY_HASH)
  },
)

test.prop([blockArb, fc.oneof(
  fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -1, -Number.MIN_VALUE, COMMIT_TIME_MS_MAX * 2),
  fc.double({ max: -Number.MIN_VALUE, noNaN: true }),
  fc.double({ min: COMMIT_TIME_MS_MAX + 1, noNaN: true }),
)], { seed: 0xf1e1d03, numRuns: 200 })(
  'a commit time that is NaN, infinite, negative or absurdly far ahead is refused; [0, max] passes',
  ({ ops, startLsn, prevFrac }, bad) => {
    expect(fault(seal(ops, startLsn, { commitTimeMs: bad }), startLsn)).toBe(BLOCK_BAD_COMMIT_TIME)
    expect(fault(seal(ops, startLsn, { commitTimeMs: prevFrac[0] * COMMIT_TIME_MS_MAX }), startLsn)).toBe(BLOCK_OK)
    expect(fault(seal(ops, startLsn, { commitTimeMs: 0 }), startLsn)).toBe(BLOCK_OK)
  },
)

test.prop([blockArb, fc.nat({ max: 1_000_000 }), fc.nat({ max: 2 ** 31 })], { seed: 0xf1e1d04, numRuns: 300 })(
  'the live-key count moves by at most one per set (up) and one per delete (down) from the block before',
  ({ ops, startLsn }, prevKeyCount, far) => {
    const sets = ops.filter((o) => o.set).length
    const deletes = ops.length - sets
    const lo = Math.max(0, prevKeyCount - deletes)
    const hi = prevKeyCount + sets
    for (let k = lo; k <= hi; k++) expect(fault(seal(ops, startLsn, { keyCount: k }), startLsn, prevKeyCount), `count ${k}`).toBe(BLOCK_OK)
    const bad = [hi + 1, hi + 1 + far]
    if (lo > 0) bad.push(lo - 1, Math.max(0, lo - 1 - far))
    for (const k of bad) {
      if (k > 0xffffffff) continue
      expect(fault(seal(ops, startLsn, { keyCount: k }), startLsn, prevKeyCount), `count ${k}`).toBe(BLOCK_BAD_KEY_COUNT)
      // Without a previous count (recovery of a first block, say) the check is skipped.
      expect(fault(seal(ops, startLsn, { keyCount: k }), startLsn, -1)).toBe(BLOCK_OK)
    }
  },
)

test.prop([blockArb, fc.integer({ min: 1, max: 2 ** 32 - 1 })], { seed: 0xf1e1d05, numRuns: 100 })(
  'an op count other than the ops that fill the block is refused (and a huge one costs no loop)',
  ({ ops, startLsn }, delta) => {
    const opCount = (ops.length + delta) % 2 ** 32
    const b = seal(ops, startLsn, { opCount })
    expect(fault(b, startLsn)).toBe(BLOCK_BAD_OP_FRAMING)
    expect(b.dv.getUint32(BLOCK_OP_COUNT_OFFSET, true)).toBe(opCount)
  },
)

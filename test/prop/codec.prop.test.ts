/**
 * Record codec properties: blocks built from arbitrary ops decode to exactly
 * what was written, and validateBlock rejects every single-bit flip, every
 * truncation and every wrong expected LSN. (Checksum-valid but wrong fields:
 * record_fields.prop.test.ts.)
 */
import { REF_NONE, refOfLsn } from '../../src/index/ref.js'
import { beforeAll, expect } from 'vitest'
import { fc, test } from '@fast-check/vitest'
import { initHash, keyHash } from '../../src/codec/hash.js'
import {
  COMMIT_TIME_MS_MAX, blockCommitTimeMs, blockEpoch, blockKeyCount, blockLength, blockOpCount, blockStartLsn, blockTxnCount,
  opBytes, opKeyHash, opKeyLength, opPrevRef, opType, opValueLength, sealBlock, validateBlock, writeOp,
} from '../../src/codec/record.js'
import {
  BLOCK_HEADER_BYTES, LSN_ALIGN_BYTES, OP_HEADER_BYTES, OP_TYPE_DELETE, OP_TYPE_SET,
} from '../../src/constants.js'

beforeAll(async () => {
  await initHash()
})

interface GenOp {
  type: number
  /** Key bytes live at src[keyStart, keyStart + key length). */
  keySrc: Uint8Array
  keyStart: number
  keyLength: number
  value: Uint8Array | null
  valueStart: number
  valueLength: number
  hash: number
  prevRef: number
}

interface GenBlock {
  ops: GenOp[]
  epoch: number
  startLsn: number
  txnCount: number
  keyCount: number
  commitTimeMs: number
  /** Where the block sits in its buffer (aligned). */
  offset: number
  /** Byte the rest of the buffer is filled with, to catch stray reads and missing padding. */
  fill: number
}

const u32 = fc.nat({ max: 0xffffffff })

/** Bytes embedded in a larger source array at `start`, so writeOp's start arguments are exercised. */
function embedded(maxLength: number) {
  return fc.record({
    prefix: fc.nat({ max: 9 }),
    bytes: fc.uint8Array({ maxLength }),
  }).map(({ prefix, bytes }) => {
    const src = new Uint8Array(prefix + bytes.length + 3).fill(0xee)
    src.set(bytes, prefix)
    return { src, start: prefix, length: bytes.length }
  })
}

function opArb(keyMax: number, valueMax: number): fc.Arbitrary<GenOp> {
  return fc.record({
    isSet: fc.boolean(),
    key: embedded(keyMax),
    value: embedded(valueMax),
    hash: u32,
    prevRef: u32,
  }).map(({ isSet, key, value, hash, prevRef }) => ({
    type: isSet ? OP_TYPE_SET : OP_TYPE_DELETE,
    keySrc: key.src,
    keyStart: key.start,
    keyLength: key.length,
    value: isSet ? value.src : null,
    valueStart: isSet ? value.start : 0,
    valueLength: isSet ? value.length : 0,
    hash,
    prevRef,
  }))
}

function blockArb(keyMax: number, valueMax: number, opsMax: number): fc.Arbitrary<GenBlock> {
  return fc.record({
    ops: fc.array(opArb(keyMax, valueMax), { maxLength: opsMax }),
    epoch: u32,
    // Any aligned start LSN a safe integer can hold, with the 32-bit boundary well covered.
    startLsn: fc.oneof(
      fc.nat({ max: 2 ** 20 }).map((n) => n * LSN_ALIGN_BYTES),
      fc.integer({ min: 2 ** 29 - 4, max: 2 ** 29 + 4 }).map((n) => n * LSN_ALIGN_BYTES),
      fc.nat({ max: 2 ** 50 - 1 }).map((n) => n * LSN_ALIGN_BYTES),
    ),
    txnCount: u32,
    keyCount: u32,
    // Any commit time a block may carry (validateBlock refuses NaN, infinities, negatives).
    commitTimeMs: fc.double({ min: 0, max: COMMIT_TIME_MS_MAX, noNaN: true }),
    offset: fc.nat({ max: 16 }).map((n) => n * LSN_ALIGN_BYTES),
    fill: fc.integer({ min: 0, max: 255 }),
  })
}

interface Built {
  u8: Uint8Array
  dv: DataView
  length: number
  opOffsets: number[]
}

function build(b: GenBlock): Built {
  let length = BLOCK_HEADER_BYTES
  for (const op of b.ops) length += opBytes(op.keyLength, op.valueLength)
  const sab = new SharedArrayBuffer(b.offset + length + 64)
  const u8 = new Uint8Array(sab)
  const dv = new DataView(sab)
  u8.fill(b.fill)
  const opOffsets: number[] = []
  let at = b.offset + BLOCK_HEADER_BYTES
  for (const op of b.ops) {
    opOffsets.push(at)
    // Fields validateBlock checks: the key's real hash, a prevRef below the op's own ref.
    op.hash = keyHash(op.keySrc, op.keyStart, op.keyLength)
    // Refs live on a ring (index/ref.ts): a previous version lies at most half the ring back.
    const ownRef = refOfLsn(b.startLsn + at - b.offset)
    if (op.prevRef !== REF_NONE) op.prevRef = (ownRef - 1 - (op.prevRef % 2 ** 31) + 2 ** 32) % 2 ** 32
    if (op.prevRef === REF_NONE && ownRef === 1) op.prevRef = 0
    const size = writeOp(u8, dv, at, op.type, op.hash, op.prevRef,
      op.keySrc, op.keyStart, op.keyLength, op.value, op.valueStart, op.valueLength)
    expect(size).toBe(opBytes(op.keyLength, op.valueLength))
    expect(size % LSN_ALIGN_BYTES).toBe(0)
    at += size
  }
  expect(at - b.offset).toBe(length)
  sealBlock(u8, dv, b.offset, {
    epoch: b.epoch, startLsn: b.startLsn, length, opCount: b.ops.length,
    txnCount: b.txnCount, keyCount: b.keyCount, commitTimeMs: b.commitTimeMs,
  })
  return { u8, dv, length, opOffsets }
}

function expectDecodes(b: GenBlock, built: Built): void {
  const { u8, dv, length, opOffsets } = built
  const o = b.offset
  expect(validateBlock(u8, dv, o, length, b.startLsn)).toBe(length)
  // Extra readable bytes after the block do not change the answer.
  expect(validateBlock(u8, dv, o, u8.length - o, b.startLsn)).toBe(length)
  expect(blockLength(dv, o)).toBe(length)
  expect(blockStartLsn(dv, o)).toBe(b.startLsn)
  expect(blockEpoch(dv, o)).toBe(b.epoch)
  expect(blockOpCount(dv, o)).toBe(b.ops.length)
  expect(blockTxnCount(dv, o)).toBe(b.txnCount)
  expect(blockKeyCount(dv, o)).toBe(b.keyCount)
  expect(Object.is(blockCommitTimeMs(dv, o), b.commitTimeMs)).toBe(true)
  for (let i = 0; i < b.ops.length; i++) {
    const op = b.ops[i]
    const at = opOffsets[i]
    expect(opType(dv, at)).toBe(op.type)
    expect(u8[at + 1]).toBe(0) // reserved flags
    expect(opKeyLength(dv, at)).toBe(op.keyLength)
    expect(opKeyHash(dv, at)).toBe(op.hash)
    expect(opValueLength(dv, at)).toBe(op.valueLength)
    expect(opPrevRef(dv, at)).toBe(op.prevRef)
    const k = at + OP_HEADER_BYTES
    expect(Buffer.from(u8.subarray(k, k + op.keyLength)))
      .toEqual(Buffer.from(op.keySrc.subarray(op.keyStart, op.keyStart + op.keyLength)))
    const v = k + op.keyLength
    if (op.value !== null) {
      expect(Buffer.from(u8.subarray(v, v + op.valueLength)))
        .toEqual(Buffer.from(op.value.subarray(op.valueStart, op.valueStart + op.valueLength)))
    }
    const end = at + opBytes(op.keyLength, op.valueLength)
    for (let p = v + op.valueLength; p < end; p++) expect(u8[p]).toBe(0) // padding is zeroed
  }
  // Nothing outside [offset, offset + length) was touched.
  for (let p = 0; p < o; p++) expect(u8[p]).toBe(b.fill)
  for (let p = o + length; p < u8.length; p++) expect(u8[p]).toBe(b.fill)
}

/** Flips bit `bit` of the block, checks validateBlock rejects it, flips it back. */
function expectFlipDetected(b: GenBlock, built: Built, bit: number): void {
  const { u8, dv, length } = built
  const at = b.offset + (bit >>> 3)
  const mask = 1 << (bit & 7)
  u8[at] ^= mask
  const got = validateBlock(u8, dv, b.offset, length, b.startLsn)
  const gotWithSlack = validateBlock(u8, dv, b.offset, u8.length - b.offset, b.startLsn)
  u8[at] ^= mask
  if (got !== -1 || gotWithSlack !== -1) {
    expect.fail(`bit ${bit} (byte ${bit >>> 3}) flipped in a ${length}-byte block was accepted: ${got}/${gotWithSlack}`)
  }
}

test.prop([blockArb(300, 2000, 8)], { seed: 0xc0dec01, numRuns: 100 })(
  'round trip: validateBlock returns the length and every field decodes to what was written',
  (b) => {
    expectDecodes(b, build(b))
  },
)

test.prop([blockArb(12, 24, 4)], { seed: 0xc0dec02, numRuns: 40 })(
  'small blocks: every single-bit flip anywhere in [0, length) is rejected',
  (b) => {
    const built = build(b)
    expect(validateBlock(built.u8, built.dv, b.offset, built.length, b.startLsn)).toBe(built.length)
    for (let bit = 0; bit < built.length * 8; bit++) expectFlipDetected(b, built, bit)
    // Every flip was undone: the block is intact again.
    expectDecodes(b, built)
  },
)

test.prop(
  [blockArb(300, 2000, 8), fc.array(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), { minLength: 200, maxLength: 200 })],
  { seed: 0xc0dec03, numRuns: 40 },
)(
  'large blocks: header bits, edge bits and sampled bits flipped are all rejected',
  (b, samples) => {
    const built = build(b)
    const bits = built.length * 8
    for (let bit = 0; bit < BLOCK_HEADER_BYTES * 8; bit++) expectFlipDetected(b, built, bit)
    for (let bit = Math.max(BLOCK_HEADER_BYTES * 8, bits - 64); bit < bits; bit++) expectFlipDetected(b, built, bit)
    for (const s of samples) expectFlipDetected(b, built, Math.floor(s * bits))
    expectDecodes(b, built)
  },
)

test.prop([blockArb(300, 2000, 6), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true })], { seed: 0xc0dec04, numRuns: 150 })(
  'truncation: any available < length is rejected',
  (b, frac) => {
    const built = build(b)
    const available = Math.floor(frac * built.length)
    expect(validateBlock(built.u8, built.dv, b.offset, available, b.startLsn)).toBe(-1)
    expect(validateBlock(built.u8, built.dv, b.offset, built.length - 1, b.startLsn)).toBe(-1)
    expect(validateBlock(built.u8, built.dv, b.offset, 0, b.startLsn)).toBe(-1)
  },
)

test.prop([blockArb(40, 100, 4), fc.oneof(fc.integer({ min: -64, max: 64 }), fc.nat({ max: 2 ** 40 }))], { seed: 0xc0dec05, numRuns: 200 })(
  'a block checked at any other LSN is rejected',
  (b, delta) => {
    const built = build(b)
    const wrong = delta === 0 ? b.startLsn + LSN_ALIGN_BYTES : b.startLsn + delta
    expect(validateBlock(built.u8, built.dv, b.offset, built.length, wrong)).toBe(-1)
    // The 32-bit halves of the LSN are both checked.
    expect(validateBlock(built.u8, built.dv, b.offset, built.length, b.startLsn + 2 ** 32)).toBe(-1)
    if (b.startLsn >= 2 ** 32) {
      expect(validateBlock(built.u8, built.dv, b.offset, built.length, b.startLsn - 2 ** 32)).toBe(-1)
    }
  },
)

test.prop([fc.nat({ max: 4096 }), fc.integer({ min: 0, max: 255 })], { seed: 0xc0dec06, numRuns: 200 })(
  'bytes that were never sealed (zeroed or filled) are not a block',
  (words, fill) => {
    const u8 = new Uint8Array(new SharedArrayBuffer(BLOCK_HEADER_BYTES + words * 8)).fill(fill)
    const dv = new DataView(u8.buffer)
    expect(validateBlock(u8, dv, 0, u8.length, 0)).toBe(-1)
  },
)

/**
 * Test-only log builder shared by the property tests: writes real blocks
 * (writeOp + sealBlock) into a SegmentStore the way the appender does, so the
 * index and replay code read real keys from a real log. Not a test file
 * (vitest only collects *.test.ts).
 */
import { BLOCK_HEADER_BYTES, LSN_ALIGN_BYTES } from '../../src/constants.js'
import { opBytes, sealBlock, writeOp } from '../../src/codec/record.js'
import type { SegmentStore } from '../../src/log/segment_store.js'

export interface OpSpec {
  type: number
  key: Uint8Array
  /** null for a delete (value length 0). */
  value: Uint8Array | null
  hash: number
}

export interface AppendedBlock {
  startLsn: number
  length: number
  /** LSN of each op, in order. */
  opLsns: number[]
}

export function blockBytesOf(ops: readonly OpSpec[]): number {
  let n = BLOCK_HEADER_BYTES
  for (const op of ops) n += opBytes(op.key.length, op.value === null ? 0 : op.value.length)
  return n
}

/**
 * Appends one block holding `ops` at the store's tail (moving to the next
 * segment when it would straddle), seals and publishes it. `prevRefFor` is
 * called once per op, in order, with the op's ref (lsn / 8) before the op is
 * written, and returns the prev-ref to record.
 */
export function appendBlock(
  store: SegmentStore, ops: readonly OpSpec[], prevRefFor: (opIndex: number, ref: number) => number,
  epoch = 1,
): AppendedBlock {
  const length = blockBytesOf(ops)
  const startLsn = store.placeBlock(store.endLsn, length)
  const segment = store.segmentFor(startLsn)
  const base = startLsn - segment.baseLsn
  let at = base + BLOCK_HEADER_BYTES
  const opLsns: number[] = []
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]
    const lsn = segment.baseLsn + at
    opLsns.push(lsn)
    const prevRef = prevRefFor(i, lsn / LSN_ALIGN_BYTES)
    const valueLength = op.value === null ? 0 : op.value.length
    at += writeOp(segment.u8, segment.dv, at, op.type, op.hash, prevRef,
      op.key, 0, op.key.length, op.value, 0, valueLength)
  }
  sealBlock(segment.u8, segment.dv, base, {
    epoch, startLsn, length, opCount: ops.length, txnCount: ops.length, keyCount: 0, commitTimeMs: 0,
  })
  segment.publish(base + length)
  store.endLsn = startLsn + length
  return { startLsn, length, opLsns }
}

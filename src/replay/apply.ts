/**
 * The replay data plane, shared by a restarting node (recovery) and by backup
 * replay workers: walk whole, validated blocks and install each op's version
 * into the index (install-if-newer). Pure functions over primitive arguments;
 * no `this`, no closures, no allocation per op. Values are never copied: the
 * index points into the log.
 *
 * Lanes: with `laneCount` lanes, lane `lane` owns the partitions p with
 * p % laneCount === lane, so each partition table has exactly one writer.
 * Any split of a log range into chunks, and any lane count, yields the same
 * index as serial replay, because each partition sees its ops in LSN order
 * and installing is idempotent.
 */
import { opKeyAt, opSizeAt } from '../codec/record.js'
import {
  BLOCK_HEADER_BYTES, BLOCK_LENGTH_OFFSET, BLOCK_OP_COUNT_OFFSET,
  OP_KEY_HASH_OFFSET, OP_KEY_LENGTH_OFFSET, OP_PREV_REF_OFFSET, OP_TYPE_OFFSET, OP_TYPE_SET, OP_VALUE_LENGTH_OFFSET,
  PARTITION_BITS,
} from '../constants.js'
import { REF_NONE, lsnOfRef, refAtOffset, segmentBaseRef, slotOfSegment } from '../index/ref.js'
import { findSlotForOp, installOp, removeAt, slotRef, type HeadBytes, type LogSegments } from '../index/indirection.js'
import { assert } from '../assert.js'

const PARTITION_SHIFT = 32 - PARTITION_BITS

/**
 * Applies the ops of the whole blocks in segment `segmentId`, offsets
 * [start, end), to the partitions of `lane`. `tables` is updated in place when a
 * table grows; `heads` gains the head bytes installed less those replaced.
 * Returns the number of ops installed.
 */
export function applyRange(
  log: LogSegments, segmentId: number, start: number, end: number,
  tables: Int32Array[], lane: number, laneCount: number, heads: HeadBytes,
): number {
  const slot = slotOfSegment(segmentId, log.segmentBytes)
  const u8 = log.u8[slot]
  const dv = log.dv[slot]
  const baseRef = segmentBaseRef(segmentId, log.segmentBytes)
  let installed = 0
  let block = start
  while (block < end) {
    const length = dv.getUint32(block + BLOCK_LENGTH_OFFSET, true)
    // Ranges hold only validated blocks; anything else is a caller bug, never a reason to spin.
    assert(length >= BLOCK_HEADER_BYTES && block + length <= end, 'replay range holds whole blocks')
    const opCount = dv.getUint32(block + BLOCK_OP_COUNT_OFFSET, true)
    let at = block + BLOCK_HEADER_BYTES
    for (let i = 0; i < opCount; i++) {
      const keyLength = dv.getUint16(at + OP_KEY_LENGTH_OFFSET, true)
      const valueLength = dv.getUint32(at + OP_VALUE_LENGTH_OFFSET, true)
      const hash = dv.getInt32(at + OP_KEY_HASH_OFFSET, true)
      const p = hash >>> PARTITION_SHIFT
      const size = opSizeAt(dv, at)
      if (p % laneCount === lane) {
        const prevRef = dv.getUint32(at + OP_PREV_REF_OFFSET, true)
        tables[p] = installOp(tables[p], log, hash, refAtOffset(baseRef, at), prevRef, u8, opKeyAt(dv, at), keyLength, size, heads)
        installed++
      }
      at += size
    }
    block += length
  }
  return installed
}

/**
 * Before segment `segmentId` is released: every op in it that is still its
 * key's head (for the partitions of `lane`) leaves the index (its slot becomes
 * gone). The cleaner relocated every live set first, and every tombstone
 * still needed, so such a head is a tombstone whose previous version lies
 * below `horizonLsn` (the horizon once this release is done): every older
 * version of its key is released with it or before, and the key is simply
 * absent. A tombstone whose previous version is at or past `horizonLsn`
 * could let an older version come back on recovery: it stays. Returns the
 * bytes of the heads dropped, or -1 if a set, or a tombstone that must stay,
 * is still a head (the release must not go on; a backup retries later).
 * With `checkSets` false only tombstones are probed (a backup trusts the
 * primary's relocations: replay installed them; the primary checks).
 * `heads` loses the bytes of every head dropped, blocked or not.
 */
export function sweepRange(
  log: LogSegments, segmentId: number, end: number, tables: Int32Array[], lane: number, laneCount: number,
  horizonLsn: number, heads: HeadBytes, checkSets = true,
): number {
  const slot = slotOfSegment(segmentId, log.segmentBytes)
  const u8 = log.u8[slot]
  const dv = log.dv[slot]
  const baseLsn = segmentId * log.segmentBytes
  const baseRef = segmentBaseRef(segmentId, log.segmentBytes)
  let dropped = 0
  let blocked = false
  let block = 0
  while (block < end) {
    const length = dv.getUint32(block + BLOCK_LENGTH_OFFSET, true)
    assert(length >= BLOCK_HEADER_BYTES && block + length <= end, 'a released segment holds whole blocks')
    const opCount = dv.getUint32(block + BLOCK_OP_COUNT_OFFSET, true)
    let at = block + BLOCK_HEADER_BYTES
    for (let i = 0; i < opCount; i++) {
      const keyLength = dv.getUint16(at + OP_KEY_LENGTH_OFFSET, true)
      const valueLength = dv.getUint32(at + OP_VALUE_LENGTH_OFFSET, true)
      const hash = dv.getInt32(at + OP_KEY_HASH_OFFSET, true)
      const p = hash >>> PARTITION_SHIFT
      if (p % laneCount === lane && (checkSets || u8[at + OP_TYPE_OFFSET] !== OP_TYPE_SET)) {
        const ref = refAtOffset(baseRef, at)
        const table = tables[p]
        const found = findSlotForOp(table, log, hash, ref, u8, opKeyAt(dv, at), keyLength)
        if (found >= 0 && slotRef(table, found) === ref) {
          if (u8[at + OP_TYPE_OFFSET] === OP_TYPE_SET || !tombstoneDroppable(dv, at, baseLsn + at, horizonLsn)) {
            blocked = true
          } else {
            removeAt(table, found)
            dropped += opSizeAt(dv, at)
            heads.bytes -= opSizeAt(dv, at)
          }
        }
      }
      at += opSizeAt(dv, at)
    }
    block += length
  }
  return blocked ? -1 : dropped
}

/**
 * May the tombstone at offset `at` (log position `lsn`) leave the log once
 * everything below `horizonLsn` is released? Only if the version it deleted
 * (its prevRef; none: nothing older was known) lies below it: then so does
 * every older version of its key.
 */
export function tombstoneDroppable(dv: DataView, at: number, lsn: number, horizonLsn: number): boolean {
  const prevRef = dv.getUint32(at + OP_PREV_REF_OFFSET, true)
  return prevRef === REF_NONE || lsnOfRef(prevRef, lsn) < horizonLsn
}

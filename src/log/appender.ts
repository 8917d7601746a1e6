/**
 * The primary's appender: encodes ops straight into the open block at the log
 * tail and seals blocks. One block per event-loop turn (group commit), sealed
 * early when it reaches BLOCK_BYTES_TARGET or its segment is full.
 *
 * Protocol for a write command (single-threaded, main thread):
 *   1. reserve(boundBytes): guarantees room for all of the command's ops in
 *      the open block (sealing the current block first if needed), so a
 *      multi-op command or a transaction never spans two blocks;
 *   2. opLsn()/opSegment() then writeOp there, then commitOp(size);
 *   3. at the end of the turn, seal() writes the header and checksum and
 *      publishes the block; onSeal(start, end) hands it to durability/shipping.
 * Nothing below `store.endLsn` is ever modified again.
 */
import { nowMs } from '../io/clock.js'
import { assert } from '../assert.js'
import { BLOCK_BYTES_TARGET, BLOCK_FLAG_PADDING, BLOCK_HEADER_BYTES, LSN_ALIGN_BYTES } from '../constants.js'
import { dbError } from '../errors.js'
import { sealBlock } from '../codec/record.js'
import type { Segment } from './segment.js'
import type { SegmentStore } from './segment_store.js'

export type SealListener = (startLsn: number, endLsn: number) => void

export class Appender {
  readonly store: SegmentStore
  epoch: number
  /** Start of the open block, or -1 when none is open. */
  openStart: number
  /** Where the next op goes. */
  cursor: number
  opCount: number
  txnCount: number
  /** Live keys after the last op (recorded in each block header: DBSIZE at that LSN). */
  keyCount: number
  onSeal: SealListener | null
  /** End of the room reserved by the current command (ops up to here never seal the block). */
  private reservedEnd: number
  private openSegment: Segment | null

  constructor(store: SegmentStore, epoch: number, keyCount: number) {
    this.store = store
    this.epoch = epoch
    this.openStart = -1
    this.cursor = store.endLsn
    this.opCount = 0
    this.txnCount = 0
    this.keyCount = keyCount
    this.onSeal = null
    this.reservedEnd = -1
    this.openSegment = null
  }

  /** Largest op-bytes a single block can hold. */
  capacityBytes(): number {
    return this.store.segmentBytes - BLOCK_HEADER_BYTES
  }

  /**
   * Reserves room for a whole command (or MULTI) in one block: its ops then
   * never seal the block midway, whatever BLOCK_BYTES_TARGET says.
   */
  reserveCommand(bytes: number): void {
    this.reserve(bytes)
    this.reservedEnd = this.cursor + bytes
  }

  /** Ends the current command's reservation. */
  endCommand(): void {
    this.reservedEnd = -1
    this.txnCount++
  }

  /** Room for one op: inside a command's reservation, always there; otherwise reserve(). */
  ensureRoom(bytes: number): void {
    if (this.openStart >= 0 && this.cursor + bytes <= this.reservedEnd) return
    assert(this.reservedEnd < 0, 'a command writes no more than it reserved')
    this.reserve(bytes)
  }

  /** Ensures the open block has room for `bytes` more op bytes. */
  reserve(bytes: number): void {
    assert(bytes % LSN_ALIGN_BYTES === 0, 'reservations are aligned')
    if (bytes > this.capacityBytes()) throw dbError('TXN_TOO_LARGE', `a write of ${bytes} bytes does not fit in one log block`)
    if (this.openStart >= 0) {
      const segmentEnd = this.openSegment!.baseLsn + this.store.segmentBytes
      const fits = this.cursor + bytes <= segmentEnd
      const underTarget = this.cursor + bytes - this.openStart <= BLOCK_BYTES_TARGET || this.opCount === 0
      if (fits && underTarget) return
      this.seal()
    }
    const start = this.store.placeBlock(this.store.endLsn, BLOCK_HEADER_BYTES + bytes)
    if (start - this.store.endLsn >= BLOCK_HEADER_BYTES) this.padTo(start)
    this.openSegment = this.store.segmentFor(start)
    this.openStart = start
    this.cursor = start + BLOCK_HEADER_BYTES
    this.opCount = 0
    this.txnCount = 0
  }

  /** Segment and offset for the next op (after reserve()). */
  opSegment(): Segment {
    assert(this.openSegment !== null, 'a block is open')
    return this.openSegment
  }

  opOffset(): number {
    return this.cursor - this.openSegment!.baseLsn
  }

  commitOp(sizeBytes: number): void {
    this.cursor += sizeBytes
    this.opCount++
  }

  /**
   * Fills the rest of the log's current segment, up to `end` (the next
   * segment's start), with a padding block: no ops, sealed and published like
   * any block (made durable and shipped), so the log has no gap a backup could
   * not check. A gap smaller than a block header is left as it is.
   */
  private padTo(end: number): void {
    const start = this.store.endLsn
    const segment = this.store.segmentFor(start)
    sealBlock(segment.u8, segment.dv, start - segment.baseLsn, {
      epoch: this.epoch, startLsn: start, length: end - start, opCount: 0,
      txnCount: 0, keyCount: this.keyCount, commitTimeMs: nowMs(), flags: BLOCK_FLAG_PADDING,
    })
    segment.publish(end - segment.baseLsn)
    this.store.endLsn = end
    if (this.onSeal !== null) this.onSeal(start, end)
  }

  /** Seals the open block (if it holds ops) and publishes it. */
  seal(): void {
    if (this.openStart < 0) return
    const segment = this.openSegment!
    if (this.opCount === 0) {
      this.openStart = -1
      this.openSegment = null
      return
    }
    const start = this.openStart
    const end = this.cursor
    const offset = start - segment.baseLsn
    sealBlock(segment.u8, segment.dv, offset, {
      epoch: this.epoch, startLsn: start, length: end - start, opCount: this.opCount,
      txnCount: this.txnCount, keyCount: this.keyCount, commitTimeMs: nowMs(),
    })
    segment.publish(end - segment.baseLsn)
    this.store.endLsn = end
    this.openStart = -1
    this.openSegment = null
    this.opCount = 0
    this.txnCount = 0
    if (this.onSeal !== null) this.onSeal(start, end)
  }
}

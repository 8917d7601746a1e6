/**
 * Segment store: the ordered, append-only list of segments of one node's log.
 * An LSN maps to (segment id, offset) by division: lsn = id * sizeBytes + offset.
 * The store owns the log tail (`endLsn`: just past the last whole block) and
 * allocates segments lazily as the tail reaches them. It knows nothing about
 * block contents or disks.
 */
import { assert } from '../assert.js'
import { BLOCK_HEADER_BYTES, LSN_MAX } from '../constants.js'
import { blockLength } from '../codec/record.js'
import { dbError } from '../errors.js'
import { Segment } from './segment.js'
import type { LogSegments } from '../index/indirection.js'

let nextStoreId = 1

export class SegmentStore implements LogSegments {
  /** Unique per store in this process: replay workers key their cached segment views by it. */
  readonly id: number
  readonly segmentBytes: number
  readonly segments: Segment[]
  /** Views by segment id, for the apply and lookup code (LogSegments). */
  readonly u8: Uint8Array[]
  readonly dv: DataView[]
  /** Just past the last whole block appended (or received). */
  endLsn: number
  /** Called when a segment is created (backups forward new segments to the replay pool). */
  onSegmentCreated: ((segment: Segment) => void) | null

  constructor(segmentBytes: number) {
    this.id = nextStoreId++
    this.segmentBytes = segmentBytes
    this.segments = []
    this.u8 = []
    this.dv = []
    this.endLsn = 0
    this.onSegmentCreated = null
  }

  segmentId(lsn: number): number {
    return Math.floor(lsn / this.segmentBytes)
  }

  offsetOf(lsn: number): number {
    return lsn - this.segmentId(lsn) * this.segmentBytes
  }

  /** The segment holding `lsn`, created (zeroed) if it does not exist yet. */
  segmentFor(lsn: number): Segment {
    const id = this.segmentId(lsn)
    const existing = this.segments[id]
    if (existing !== undefined) return existing
    if (lsn > LSN_MAX) throw dbError('LOG_FULL', `log position ${lsn} is past the largest addressable LSN ${LSN_MAX}`)
    for (let i = this.segments.length; i <= id; i++) {
      if (this.segments[i] !== undefined) continue
      const segment = Segment.create(i, this.segmentBytes)
      this.segments[i] = segment
      this.u8[i] = segment.u8
      this.dv[i] = segment.dv
      if (this.onSegmentCreated !== null) this.onSegmentCreated(segment)
    }
    return this.segments[id]
  }

  /** The segment for `lsn` if it exists. */
  peek(lsn: number): Segment | undefined {
    return this.segments[this.segmentId(lsn)]
  }

  /** Where a block of `bytes` starting at or after `lsn` goes: `lsn`, or the next segment's start. */
  placeBlock(lsn: number, bytes: number): number {
    assert(bytes <= this.segmentBytes, 'a block fits in one segment')
    const offset = this.offsetOf(lsn)
    if (offset + bytes <= this.segmentBytes) return lsn
    return (this.segmentId(lsn) + 1) * this.segmentBytes
  }

  /**
   * Where the next block at or after `lsn` starts: `lsn` itself if its
   * segment holds a published block there, else the next segment's start
   * (past a segment's last block lies only the unused tail a block skipped).
   */
  skipGap(lsn: number): number {
    const segment = this.segments[this.segmentId(lsn)]
    if (segment !== undefined && lsn - segment.baseLsn < segment.committedBytes()) return lsn
    return (this.segmentId(lsn) + 1) * this.segmentBytes
  }

  /**
   * Backup only: cuts the log back to `lsn` (a block end), forgetting every
   * block after it (the received-but-unconfirmed tail the primary does not
   * have). Segments stay allocated; the receiver refills them.
   */
  cutTail(lsn: number): void {
    assert(lsn >= 0 && lsn <= this.endLsn, 'cut within the log')
    const keepId = this.segmentId(lsn)
    for (let i = this.segments.length - 1; i >= keepId; i--) {
      const segment = this.segments[i]
      if (segment === undefined) continue
      segment.cut(i === keepId ? lsn - segment.baseLsn : 0)
    }
    this.endLsn = lsn
  }

  /** Bytes of memory held by segments. */
  memoryBytes(): number {
    let n = 0
    for (const s of this.segments) if (s !== undefined) n += s.sizeBytes
    return n
  }
}

/** Start LSN of the block ending exactly at `lsn` in `store`, or -1 if `lsn` is not a block end. */
export function blockStartEndingAt(store: SegmentStore, lsn: number): number {
  if (!Number.isSafeInteger(lsn) || lsn <= 0 || lsn > store.endLsn) return -1
  let id = store.segmentId(lsn)
  let offset = lsn - id * store.segmentBytes
  // A block that fills its segment exactly ends at the next segment's base LSN.
  if (offset === 0) { id -= 1; offset = store.segmentBytes }
  const segment = store.segments[id]
  if (segment === undefined || offset > segment.committedBytes()) return -1
  let at = 0
  // Bounded: every step moves forward by at least a block header.
  while (at < offset) {
    const length = blockLength(segment.dv, at)
    if (length < BLOCK_HEADER_BYTES) return -1
    if (at + length === offset) return segment.baseLsn + at
    at += length
  }
  return -1
}

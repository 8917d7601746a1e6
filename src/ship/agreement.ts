/**
 * Log agreement between a primary and a backup: "do our logs hold the same
 * block ending at LSN x?". Both sides answer it from their own segments with
 * the checksum of the block that ends at x (the XXH32 in its header, which
 * covers every other header field, the epoch and start LSN included, and
 * every op). Two logs that hold a block with the same checksum ending at the
 * same LSN agree there; a backup resumes only from such a position.
 *
 * Reads only published bytes (below a segment's committed offset); a position
 * that is not a block end in this log answers -1. O(blocks in one segment):
 * used at handshakes and recovery, never per record.
 */
import { BLOCK_CHECKSUM_OFFSET, BLOCK_HEADER_BYTES } from '../constants.js'
import { blockLength } from '../codec/record.js'
import type { SegmentStore } from '../log/segment_store.js'

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

/** Checksum (u32) of the block ending at `lsn`; 0 for LSN 0 (the empty log); -1 if `lsn` is not a block end. */
export function checksumEndingAt(store: SegmentStore, lsn: number): number {
  if (lsn === 0) return 0
  const start = blockStartEndingAt(store, lsn)
  if (start < 0) return -1
  const segment = store.segments[store.segmentId(start)]
  return segment.dv.getUint32(start - segment.baseLsn + BLOCK_CHECKSUM_OFFSET, true)
}

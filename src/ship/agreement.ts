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
import { BLOCK_CHECKSUM_OFFSET } from '../constants.js'
import { blockStartEndingAt, type SegmentStore } from '../log/segment_store.js'

/** Checksum (u32) of the block ending at `lsn`; 0 for LSN 0 (the empty log); -1 if `lsn` is not a block end. */
export function checksumEndingAt(store: SegmentStore, lsn: number): number {
  if (lsn === 0) return 0
  const start = blockStartEndingAt(store, lsn)
  if (start < 0) return -1
  const segment = store.segmentAt(start)!
  return segment.dv.getUint32(start - segment.baseLsn + BLOCK_CHECKSUM_OFFSET, true)
}

/**
 * Refs: how the index and the version chains name a version. A ref is a u32
 * holding the op's position in a ring of REF_SPAN_BYTES (32 GiB):
 *
 *   ref = (lsn mod REF_SPAN_BYTES) / LSN_ALIGN_BYTES
 *
 * The ring is divided into segment slots: the segment with id i lives in slot
 * i mod (REF_SPAN_BYTES / segmentBytes), so a ref is physical (slot, offset)
 * and finds its bytes with one division, while LSNs stay logical, monotonic
 * 64-bit positions (block headers carry them whole). A slot is recycled once
 * the segment that used it is released (the horizon passed it).
 *
 * Comparisons are serial-number arithmetic on the ring: they are exact while
 * every retained version lies within REF_WINDOW_BYTES (16 GiB) of the log's
 * tail, which the cleaner enforces (it always cleans the oldest segment, and
 * is forced to once the retained log spans REF_WINDOW_FORCE_BYTES).
 *
 * Every conversion between refs and LSNs, and every comparison of refs, goes
 * through this module. Tiny functions: the JIT inlines them on hot paths.
 */
import { LSN_ALIGN_BYTES, REF_NONE } from '../constants.js'

export { REF_NONE }

/** LSN positions wrap here. A power of two that every segment size divides. */
export const REF_SPAN_BYTES = 2 ** 35
/** Comparisons are exact within this distance (half the ring). */
export const REF_WINDOW_BYTES = 2 ** 34
/** The retained log never spans more than this: the cleaner releases the oldest segment first. */
export const REF_WINDOW_FORCE_BYTES = 2 ** 33
/** An index slot whose key is gone (a dropped tombstone): probes pass it, inserts may reuse it. No op sits there. */
export const REF_GONE = 0xffffffff

/** The ref of the op at log position `lsn` (aligned). */
export function refOfLsn(lsn: number): number {
  return (lsn % REF_SPAN_BYTES) / LSN_ALIGN_BYTES
}

/** The byte position of `ref` in the ring: slot = floor(position / segmentBytes), offset = the rest. */
export function refPosition(ref: number): number {
  return ref * LSN_ALIGN_BYTES
}

/** The slot that holds segment `segmentId`. */
export function slotOfSegment(segmentId: number, segmentBytes: number): number {
  return segmentId % (REF_SPAN_BYTES / segmentBytes)
}

/**
 * The LSN of `ref`, given an LSN `anchor` within REF_WINDOW_BYTES of it (the
 * log's tail, say): the position congruent to the ref nearest the anchor.
 */
export function lsnOfRef(ref: number, anchor: number): number {
  return anchor + ringDelta(ref * LSN_ALIGN_BYTES, anchor)
}

/** The slot of the segment holding `ref`. */
export function slotOfRef(ref: number, segmentBytes: number): number {
  return Math.floor(ref * LSN_ALIGN_BYTES / segmentBytes)
}

/** The ref of the first op position of segment `segmentId` (refs of its ops are this + offset / align). */
export function segmentBaseRef(segmentId: number, segmentBytes: number): number {
  return refOfLsn(segmentId * segmentBytes)
}

/** The ref of the op at byte `offset` of a segment whose base ref is `baseRef`. */
export function refAtOffset(baseRef: number, offset: number): number {
  return baseRef + offset / LSN_ALIGN_BYTES
}

/** Is the version `ref` newer in the log than the version `other`? (Install-if-newer.) */
export function isNewer(ref: number, other: number): boolean {
  // ToInt32 of the difference: the signed distance on the ring of 2^32 refs.
  return other === REF_NONE || ((ref - other) | 0) > 0
}

/**
 * Does a version chain go back from `ref` to `prev`? A chain link must: prev
 * is none, or an older version. (Anything else is refused on receipt and ends
 * a reader's walk.)
 */
export function goesBack(ref: number, prev: number): boolean {
  return prev === REF_NONE || (prev !== REF_GONE && ((ref - prev) | 0) > 0)
}

/** Is the version `ref` at or past log position `lsn` (so not visible in a view that ends at `lsn`)? */
export function refAtOrPast(ref: number, lsn: number): boolean {
  return ringDelta(ref * LSN_ALIGN_BYTES, lsn) >= 0
}

/** position - lsn on the ring, in [-REF_WINDOW_BYTES, REF_WINDOW_BYTES). */
function ringDelta(position: number, lsn: number): number {
  let d = position - (lsn % REF_SPAN_BYTES)
  if (d >= REF_WINDOW_BYTES) d -= REF_SPAN_BYTES
  else if (d < -REF_WINDOW_BYTES) d += REF_SPAN_BYTES
  return d
}

/**
 * Refs: how the index and the version chains name a version. Today a ref is
 * the op's LSN divided by LSN_ALIGN_BYTES (a u32, so 32 GiB of log: LSN_MAX),
 * and refs order like LSNs. Every conversion between refs and LSNs, and every
 * comparison of refs, goes through this module, so the encoding (physical
 * refs: segment slot + offset, with LSNs staying logical) can change in one
 * place. Tiny functions: the JIT inlines them on the hot paths.
 */
import { LSN_ALIGN_BYTES, REF_NONE } from '../constants.js'

export { REF_NONE }

/** The ref of the op at log position `lsn` (aligned). */
export function refOfLsn(lsn: number): number {
  return lsn / LSN_ALIGN_BYTES
}

/** The log position of the op `ref` names. */
export function lsnOfRef(ref: number): number {
  return ref * LSN_ALIGN_BYTES
}

/** The ref of the first op position of segment `segmentId` (refs of its ops are this + offset / align). */
export function segmentBaseRef(segmentId: number, segmentBytes: number): number {
  return (segmentId * segmentBytes) / LSN_ALIGN_BYTES
}

/** The ref of the op at byte `offset` of a segment whose base ref is `baseRef`. */
export function refAtOffset(baseRef: number, offset: number): number {
  return baseRef + offset / LSN_ALIGN_BYTES
}

/** Is the version `ref` newer in the log than the version `other`? (Install-if-newer.) */
export function isNewer(ref: number, other: number): boolean {
  return ref > other
}

/**
 * Does a version chain go back from `ref` to `prev`? A chain link must: prev
 * is none, or an older version. (Anything else is refused on receipt and ends
 * a reader's walk.)
 */
export function goesBack(ref: number, prev: number): boolean {
  return prev === REF_NONE || prev < ref
}

/** Is the version `ref` at or past log position `lsn` (so not visible in a view that ends at `lsn`)? */
export function refAtOrPast(ref: number, lsn: number): boolean {
  return ref * LSN_ALIGN_BYTES >= lsn
}

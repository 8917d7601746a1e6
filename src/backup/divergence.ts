/**
 * The search a backup runs after the primary answered -DIVERGED: for the last
 * block end both logs hold (same LSN, same block checksum), over the backup's
 * block ends from its confirmed LSN (everything it may have made visible) to
 * its log end. One FRESHET.CHECK round trip per step:
 *
 *   1. check the confirmed LSN itself: if the primary disagrees there, the
 *      backup refuses (it may have shown clients a history the primary does
 *      not have; it never continues past that silently);
 *   2. binary search over the unconfirmed block ends (the last one is known
 *      to disagree: the primary just refused it) for the last that agrees.
 *
 * Monotone because both logs are prefixes of one primary's history up to the
 * point where the restarted primary's log stops matching; a wrong guess is
 * caught anyway, since the resume handshake checks the cut point again.
 */
import { assert } from '../assert.js'
import { blockLength, blockOpCount } from '../codec/record.js'
import type { LogFiles } from '../log/log_file.js'
import type { SegmentStore } from '../log/segment_store.js'

export type ProbeOutcome =
  | { type: 'cut', lsn: number }
  | { type: 'refuse', lsn: number }

export class DivergenceProbe {
  /** ends[0] is the confirmed LSN (agreement required), ends[1..] the unconfirmed block ends. */
  private readonly ends: number[]
  private readonly checksums: number[]
  /** Index known to agree (-1: nothing checked yet) and index known to disagree. */
  private lo: number
  private hi: number
  private asked: number
  roundTrips: number

  constructor(ends: number[], checksums: number[]) {
    assert(ends.length >= 1 && ends.length === checksums.length, 'a probe has the confirmed position')
    this.ends = ends
    this.checksums = checksums
    this.lo = -1
    // The log end (the last entry) was just refused by the primary's SYNC answer.
    this.hi = ends.length > 1 ? ends.length - 1 : 1
    this.asked = 0
    this.roundTrips = 0
  }

  /** The next position to ask about, or null when done. */
  next(): { lsn: number, checksum: number } | null {
    if (this.lo < 0) this.asked = 0
    else if (this.hi - this.lo <= 1) return null
    else this.asked = (this.lo + this.hi) >>> 1
    return { lsn: this.ends[this.asked], checksum: this.checksums[this.asked] }
  }

  /**
   * The primary's answer to the last next(); returns the outcome once known.
   * `released`: the primary no longer holds the log there (its cleaner
   * released it): only a full resync can follow, so the unconfirmed tail is
   * cut back to the confirmed LSN (never visible: always safe) and the next
   * FRESHET.SYNC, from there, is answered +FULLRESYNC.
   */
  answer(agree: boolean, released = false): ProbeOutcome | null {
    this.roundTrips++
    if (released) return { type: 'cut', lsn: this.ends[0] }
    if (this.lo < 0 && this.asked === 0 && !agree) return { type: 'refuse', lsn: this.ends[0] }
    if (agree) this.lo = this.asked
    else this.hi = this.asked
    if (this.hi - this.lo <= 1) return { type: 'cut', lsn: this.ends[this.lo] }
    return null
  }
}

/**
 * Cuts the log after `lsn` (a block end at or above the confirmed LSN, so
 * nothing after it is installed or visible) in memory and in the files.
 * The caller has drained its group commit. Returns what was cut.
 */
export function cutLogTail(store: SegmentStore, files: LogFiles, lsn: number): { blocks: number, ops: number, bytes: number } {
  let ops = 0
  let blocks = 0
  // Bounded: every step moves forward by at least a block header (validated on receipt or recovery).
  for (let at = lsn; at < store.endLsn; blocks++) {
    at = store.skipGap(at)
    const segment = store.segmentAt(at)!
    ops += blockOpCount(segment.dv, at - segment.baseLsn)
    at += blockLength(segment.dv, at - segment.baseLsn)
  }
  store.cutTail(lsn)
  const bytes = files.cutTail(lsn)
  return { blocks, ops, bytes }
}

/**
 * The blocks a backup received but has not made visible yet, in LSN order,
 * in a bounded ring of typed arrays (no object per block): each block's end
 * LSN, the primary's commit time (for lag) and the live key count after it
 * (DBSIZE once visible). Entries leave from the head as blocks become
 * visible; a cut of the unconfirmed tail drops them from the tail.
 */
import { assert } from '../assert.js'

/** Blocks received but not yet visible, at most (the link pauses before the ring is full). */
export const PENDING_BLOCKS_MAX = 1 << 20
/** The ring's first capacity; it doubles when full, up to PENDING_BLOCKS_MAX (24 MiB), and never shrinks. */
export const PENDING_BLOCKS_INITIAL = 1 << 12

export class PendingBlocks {
  end: Float64Array
  commitMs: Float64Array
  keys: Float64Array
  head: number
  count: number

  constructor() {
    this.end = new Float64Array(PENDING_BLOCKS_INITIAL)
    this.commitMs = new Float64Array(PENDING_BLOCKS_INITIAL)
    this.keys = new Float64Array(PENDING_BLOCKS_INITIAL)
    this.head = 0
    this.count = 0
  }

  /** Slots in the ring now. */
  capacity(): number {
    return this.end.length
  }

  /** Slot of the i-th pending block (0: oldest). */
  at(i: number): number {
    return (this.head + i) % this.end.length
  }

  push(endLsn: number, commitTimeMs: number, keyCount: number): void {
    assert(this.count < PENDING_BLOCKS_MAX, 'pending ring has room (the link pauses before it fills)')
    if (this.count === this.end.length) this.grow()
    const i = this.at(this.count)
    this.end[i] = endLsn
    this.commitMs[i] = commitTimeMs
    this.keys[i] = keyCount
    this.count++
  }

  /** Doubles the ring, oldest block first at slot 0 (a backup far behind; rare, not per block). */
  private grow(): void {
    const n = Math.min(PENDING_BLOCKS_MAX, this.end.length * 2)
    const end = new Float64Array(n)
    const commitMs = new Float64Array(n)
    const keys = new Float64Array(n)
    for (let i = 0; i < this.count; i++) {
      const j = this.at(i)
      end[i] = this.end[j]
      commitMs[i] = this.commitMs[j]
      keys[i] = this.keys[j]
    }
    this.end = end
    this.commitMs = commitMs
    this.keys = keys
    this.head = 0
  }

  /** Removes the blocks ending at or below `lsn` (now visible); returns the slot of the newest removed, or -1. */
  popThrough(lsn: number): number {
    let newest = -1
    while (this.count > 0 && this.end[this.head] <= lsn) {
      newest = this.head
      this.head = (this.head + 1) % this.end.length
      this.count--
    }
    return newest
  }

  /** The largest pending block end <= lsn, or -1 (binary search: ends ascend). */
  endAtOrBelow(lsn: number): number {
    let lo = 0
    let hi = this.count
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (this.end[this.at(mid)] <= lsn) lo = mid + 1
      else hi = mid
    }
    return lo === 0 ? -1 : this.end[this.at(lo - 1)]
  }

  /** Drops the blocks ending after `lsn` (a cut of the unconfirmed tail). */
  dropAbove(lsn: number): void {
    while (this.count > 0 && this.end[this.at(this.count - 1)] > lsn) this.count--
  }
}

/**
 * Read views: how commands read keys on either role. A view reads the index
 * and follows a key's version chain back to the newest version below the
 * view's visible LSN, then reads the value straight out of the log.
 *
 * The primary reads at the log tail (every executed write is visible to the
 * commands after it; replies wait for commit, see server/connection.ts). A
 * backup reads at its visible LSN, which moves only between event-loop
 * turns, so one command (MGET, SCAN, EXEC) sees one snapshot for all its keys.
 */
import { opExpiryMs, opKeyAt } from '../codec/record.js'
import { nowMs } from '../io/clock.js'
import {
  OP_FLAG_RELOCATED, OP_FLAGS_OFFSET, OP_KEY_LENGTH_OFFSET, OP_PREV_REF_OFFSET, OP_TYPE_OFFSET, OP_TYPE_SET,
  OP_VALUE_LENGTH_OFFSET, PARTITION_COUNT, REF_NONE,
} from '../constants.js'
import { REF_GONE, lsnOfRef, refPosition } from '../index/ref.js'
import { keyHash } from '../codec/hash.js'
import { Index, TABLE_HEADER_WORDS, findSlot, partitionOf, resolveVisible, slotRef, tableSlotCount, type LogSegments } from '../index/indirection.js'

export const VISIBLE_ALL = Number.MAX_SAFE_INTEGER
/** Keys forEachLive() asks scanStep for at a time. */
const FOR_EACH_STEP_KEYS = 4096

/** A located version: the segment bytes and offsets of its key and value. */
export class VersionCursor {
  u8: Uint8Array
  keyStart: number
  keyLength: number
  valueStart: number
  valueLength: number
  constructor() {
    this.u8 = new Uint8Array(0)
    this.keyStart = 0
    this.keyLength = 0
    this.valueStart = 0
    this.valueLength = 0
  }
}

/** What a view reads: the log's views by slot, and its tail (the anchor for ref -> LSN). */
export interface ViewedLog extends LogSegments {
  endLsn: number
}

export class ReadView {
  readonly log: ViewedLog
  readonly index: Index
  /** Versions at LSNs below this are visible. */
  visibleLsn: number
  /** Filled by locate(); reused, never reallocated. */
  readonly cursor: VersionCursor
  /**
   * The newest log position the current command observed (a version it read,
   * an op it wrote, or everything for DBSIZE/SCAN); -1 for none. On the
   * primary a reply waits until this position is committed.
   */
  observedLsn: number
  /**
   * The time (ms since the Unix epoch) at which this view decides expiry: a
   * version expiring at or before it is not there. -1: now (a primary's view,
   * read at each question). A backup's view reads at its newest visible
   * block's commit time (the log's clock), so a view is one consistent state.
   */
  timeMs: number
  /**
   * Told of a key whose newest version is a set that has expired, when a
   * lookup or a SCAN step meets it (the primary's view: lazy expiry; null
   * elsewhere). Called in the middle of a command: it may only take note.
   */
  onExpiredSeen: ((ref: number) => void) | null

  constructor(log: ViewedLog, index: Index, visibleLsn: number, timeMs = -1) {
    this.log = log
    this.index = index
    this.visibleLsn = visibleLsn
    this.cursor = new VersionCursor()
    this.observedLsn = -1
    this.timeMs = timeMs
    this.onExpiredSeen = null
  }

  /** The time expiry is decided at (see timeMs). */
  nowMs(): number {
    return this.timeMs >= 0 ? this.timeMs : nowMs()
  }

  observe(lsn: number): void {
    if (lsn > this.observedLsn) this.observedLsn = lsn
  }

  /** Ref of the key's newest visible version (set or delete), REF_NONE if none. */
  versionOf(key: Uint8Array, keyStart: number, keyLength: number): number {
    const hash = keyHash(key, keyStart, keyLength)
    const table = this.index.tables[partitionOf(hash)]
    const slot = findSlot(table, this.log, hash, key, keyStart, keyLength)
    if (slot < 0) return REF_NONE
    const head = slotRef(table, slot)
    const ref = this.visibleLsn === VISIBLE_ALL ? head : resolveVisible(this.log, head, this.visibleLsn)
    // Anchor past the tail: on the primary, ops of the open block lie past endLsn (within a segment).
    if (ref !== REF_NONE) this.observe(lsnOfRef(ref, this.log.endLsn + this.log.segmentBytes))
    return ref
  }

  /**
   * Is `ref` (a key's version now) the version `watched` (WATCH), or the
   * cleaner's relocation of it (same key and value at a new position)? One
   * hop: a version relocated twice between WATCH and EXEC reads as changed.
   */
  sameVersion(ref: number, watched: number): boolean {
    if (ref === watched) return true
    if (ref === REF_NONE || watched === REF_NONE) return false
    const position = refPosition(ref)
    const id = Math.floor(position / this.log.segmentBytes)
    const at = position - id * this.log.segmentBytes
    const dv = this.log.dv[id]
    return (dv.getUint8(at + OP_FLAGS_OFFSET) & OP_FLAG_RELOCATED) !== 0 && dv.getUint32(at + OP_PREV_REF_OFFSET, true) === watched
  }

  /** Ref of the key's live value (a visible set version), or REF_NONE. */
  lookup(key: Uint8Array, keyStart: number, keyLength: number): number {
    const ref = this.versionOf(key, keyStart, keyLength)
    if (ref === REF_NONE) return REF_NONE
    if (this.isSet(ref)) return ref
    if (this.onExpiredSeen !== null && this.isSetOp(ref)) this.onExpiredSeen(ref)
    return REF_NONE
  }

  /** A copy of the version's key (for a caller that keeps it past this turn). */
  copyKey(ref: number): Buffer {
    const position = refPosition(ref)
    const id = Math.floor(position / this.log.segmentBytes)
    const at = position - id * this.log.segmentBytes
    const dv = this.log.dv[id]
    const start = opKeyAt(dv, at)
    return Buffer.from(this.log.u8[id].subarray(start, start + dv.getUint16(at + OP_KEY_LENGTH_OFFSET, true)))
  }

  /** Is `ref` a set that has not expired at this view's time (a live value)? */
  isSet(ref: number): boolean {
    const position = refPosition(ref)
    const id = Math.floor(position / this.log.segmentBytes)
    const at = position - id * this.log.segmentBytes
    if (this.log.u8[id][at + OP_TYPE_OFFSET] !== OP_TYPE_SET) return false
    const expiry = opExpiryMs(this.log.dv[id], at)
    return expiry === 0 || expiry > this.nowMs()
  }

  /** Is `ref` a set, expired or not (what a block's live-key count counts)? */
  isSetOp(ref: number): boolean {
    const position = refPosition(ref)
    const id = Math.floor(position / this.log.segmentBytes)
    return this.log.u8[id][position - id * this.log.segmentBytes + OP_TYPE_OFFSET] === OP_TYPE_SET
  }

  /** The version's expiry time (ms since the Unix epoch), 0 if it never expires. */
  expiryOf(ref: number): number {
    const position = refPosition(ref)
    const id = Math.floor(position / this.log.segmentBytes)
    return opExpiryMs(this.log.dv[id], position - id * this.log.segmentBytes)
  }

  /** Points `cursor` at the version's key and value bytes. */
  locate(ref: number): VersionCursor {
    const position = refPosition(ref)
    const id = Math.floor(position / this.log.segmentBytes)
    const at = position - id * this.log.segmentBytes
    const dv = this.log.dv[id]
    const c = this.cursor
    c.u8 = this.log.u8[id]
    c.keyStart = opKeyAt(dv, at)
    c.keyLength = dv.getUint16(at + OP_KEY_LENGTH_OFFSET, true)
    c.valueStart = c.keyStart + c.keyLength
    c.valueLength = dv.getUint32(at + OP_VALUE_LENGTH_OFFSET, true)
    return c
  }

  /**
   * Visits the ref of every live key at this view, in hash order (KEYS,
   * FLUSHALL, DEBUG DIGEST); stops after the step in which `visit` returns
   * false.
   */
  forEachLive(visit: (ref: number) => boolean | void): void {
    let stopped = false
    const emit = (ref: number): void => {
      if (!stopped && visit(ref) === false) stopped = true
    }
    let cursor = 0
    do cursor = this.scanStep(cursor, FOR_EACH_STEP_KEYS, emit)
    while (cursor !== 0 && !stopped)
  }

  /**
   * The refs of live keys at this view in slots [from, to) of `table`, in
   * slot order. For a reader that walks tables it captured at or after this
   * view's LSN (the RDB writer): an insert never moves an entry, a table
   * that grows or is rebuilt is replaced rather than changed, and a slot
   * becomes gone only at a release, which waits for the snapshot pinning
   * this view; so each key visible here is met exactly once.
   */
  liveInSlots(table: Int32Array, from: number, to: number, emit: (ref: number) => void): void {
    for (let s = from; s < to; s++) {
      // Acquire: a non-zero ref publishes the slot (its hash is not needed here).
      const head = Atomics.load(table, TABLE_HEADER_WORDS + 2 * s + 1) >>> 0
      if (head === REF_NONE || head === REF_GONE) continue
      const ref = this.visibleLsn === VISIBLE_ALL ? head : resolveVisible(this.log, head, this.visibleLsn)
      if (ref !== REF_NONE && this.isSet(ref)) emit(ref)
    }
  }

  /**
   * SCAN in key-hash order: visits the hashes in [cursor, cursor + span) of the
   * partition holding `cursor`, calling `emit` for each live key's ref. Returns
   * the next cursor (0 when the scan is complete). Because the order is by
   * hash, not by slot, table growth between calls cannot skip or repeat a key.
   */
  scanStep(cursor: number, count: number, emit: (ref: number) => void): number {
    const partition = partitionOf(cursor)
    const partitionEnd = (partition + 1) * 2 ** (32 - Math.log2(PARTITION_COUNT))
    const table = this.index.tables[partition]
    const live = Math.max(1, this.index.slotsUsed())
    // Span of hash space expected to hold about `count` keys; at least 1.
    let span = Math.max(1, Math.floor((2 ** 32 / live) * count))
    if (cursor + span > partitionEnd) span = partitionEnd - cursor
    const hi = cursor + span
    const slots = tableSlotCount(table)
    const found: number[] = []
    for (let s = 0; s < slots; s++) {
      const w = TABLE_HEADER_WORDS + 2 * s
      // Acquire: a non-zero ref publishes the slot's hash.
      const head = Atomics.load(table, w + 1) >>> 0
      if (head === REF_NONE || head === REF_GONE) continue
      const h = table[w] >>> 0
      if (h < cursor || h >= hi) continue
      const ref = this.visibleLsn === VISIBLE_ALL ? head : resolveVisible(this.log, head, this.visibleLsn)
      if (ref === REF_NONE) continue
      if (this.isSet(ref)) found.push(h, ref)
      else if (this.onExpiredSeen !== null && this.isSetOp(ref)) this.onExpiredSeen(ref)
    }
    for (let i = 0; i < found.length; i += 2) emit(found[i + 1])
    return hi >= 2 ** 32 ? 0 : hi
  }
}

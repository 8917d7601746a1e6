/**
 * The cleaner: keeps a primary's log, in memory and on disk, bounded by its
 * live data. The log stays the database: a live version is never copied out
 * of the log into another store; the cleaner copies it to the log's tail (a
 * relocation: the same key and value, flagged OP_FLAG_RELOCATED, whose
 * prevRef is the original) and then releases the oldest segment.
 *
 * Victims are taken oldest first (the segment at the horizon), as FASTER's
 * HybridLog compacts from its begin address: the retained log stays one
 * contiguous range [horizon, tail), so recovery, shipping, resume and a full
 * resync of a backup are all "read or send a contiguous range", and a
 * tombstone at the head of its key in the oldest segment can always go (every
 * older version of its key is in that segment or already released). See the
 * README's decisions for what this costs against cost-benefit selection.
 *
 * One cleaning, on the main thread between event-loop turns:
 *   1. scan the victim in slices: each set that is still its key's head is
 *      relocated; everything else is dead, or a tombstone at its key's head;
 *   2. seal the open block; wait until the log is durable up to its end
 *      (releaseAfter): the relocations must survive a crash before the only
 *      other copy goes; and until no snapshot older than that is open
 *      (view/snapshot.ts);
 *   3. release: tombstones still at their key's head leave the index (their
 *      slots become gone: sweepRange, which backups run too); the manifest moves the horizon (durably), then the
 *      victim's file is deleted (LogFiles.releaseBelow) and its memory freed.
 * A crash anywhere before 3 leaves the victim in the log with both copies of
 * each relocated value (the newer wins on replay; same value); a crash in 3
 * after the manifest leaves a file that recovery deletes.
 *
 * Backups replay relocations like any block and release the same segments
 * when the primary's heartbeat says the horizon moved and they hold the log
 * up to releaseAfter (backup.ts).
 *
 * Trigger: the retained log exceeds live bytes / UTILISATION_TARGET plus
 * slack, or memory nears --max-memory, or the retained log nears the ref
 * window; never within the newest --retain-bytes of log (kept for backups
 * that reconnect), nor what a connected backup has yet to be sent unless
 * memory runs short. Pace: a slice of SLICE_BYTES of victim per turn, the whole
 * victim per turn under memory pressure. It cannot deadlock: a relocation
 * needs at most the victim's live bytes at the tail, and the write path keeps
 * room for it (Primary.outOfMemory refuses writes first).
 */
import {
  BLOCK_HEADER_BYTES, OP_FLAG_RELOCATED, OP_FLAGS_OFFSET, OP_HEADER_BYTES, OP_PREV_REF_OFFSET, OP_TYPE_SET, PARTITION_BITS,
} from '../constants.js'
import { blockLength, blockOpCount, copyBytes, opBytes, opKeyHash, opKeyLength, opType, opValueLength, padOp } from '../codec/record.js'
import { findSlotForOp, setSlotRef, slotRef } from '../index/indirection.js'
import { sweepRange } from '../replay/apply.js'
import { assert } from '../assert.js'
import { REF_WINDOW_FORCE_BYTES, refAtOffset, refOfLsn, segmentBaseRef } from '../index/ref.js'
import type { Segment } from '../log/segment.js'
import type { Primary } from './primary.js'

/** The cleaner keeps the retained log at or above this share of live bytes (plus slack). */
export const UTILISATION_TARGET = 3 / 4
/** Segments the retained log may hold beyond live / UTILISATION_TARGET before cleaning starts. */
export const CLEAN_SLACK_SEGMENTS = 1
/** Victim bytes scanned per turn when there is no memory pressure (well under a millisecond of work). */
export const SLICE_BYTES = 128 * 1024
/** Memory pressure: used memory within this many segments of --max-memory. */
export const PRESSURE_SEGMENTS = 4
/**
 * Under memory pressure (or forced for several), a cleaning takes up to this
 * many of the oldest segments at once: one durability wait then releases
 * them all, so a writer near disk speed does not outrun one fsync per segment.
 */
export const BATCH_SEGMENTS_MAX = 4

const PARTITION_SHIFT = 32 - PARTITION_BITS

export interface CleanerStats {
  segmentsCleaned: number
  bytesScanned: number
  bytesRelocated: number
  opsRelocated: number
  tombstoneBytesDropped: number
  timeMs: number
}

type State = 'idle' | 'scanning' | 'syncing'

export class Cleaner {
  readonly stats: CleanerStats
  /** The horizon was last moved once the log held this LSN (backups release below it once they do). */
  horizonAfterLsn: number
  /** Tests: while set, the cleaner runs only when forced (force). */
  paused: boolean
  /** The primary is closing: no step runs any more. */
  private stopped: boolean
  private state: State
  /** The segment being scanned, and the last one of this cleaning (victims are oldestId .. lastVictimId). */
  private victimId: number
  private lastVictimId: number
  private offset: number
  private releaseAfter: number
  private scheduled: boolean
  private forced: number
  private readonly primary: Primary
  private readonly onHorizon: () => void

  constructor(primary: Primary, onHorizon: () => void) {
    this.primary = primary
    this.onHorizon = onHorizon
    this.stats = { segmentsCleaned: 0, bytesScanned: 0, bytesRelocated: 0, opsRelocated: 0, tombstoneBytesDropped: 0, timeMs: 0 }
    // After a restart the relocations behind the recovered horizon lie somewhere in the recovered log
    // (they were durable before their victims went): a backup releases below it once it holds all of it.
    this.horizonAfterLsn = primary.store.endLsn
    this.paused = false
    this.stopped = false
    this.state = 'idle'
    this.victimId = -1
    this.lastVictimId = -1
    this.offset = 0
    this.releaseAfter = 0
    this.scheduled = false
    this.forced = 0
  }

  /** Is a cleaning under way (scanning or waiting for durability)? */
  busy(): boolean {
    return this.state !== 'idle'
  }

  /** Bytes of segments whose release waits for an open snapshot (view/snapshot.ts). */
  pinnedBytes(): number {
    const store = this.primary.store
    if (this.state !== 'syncing' || store.oldestPin() >= this.releaseAfter) return 0
    return (this.lastVictimId + 1 - store.oldestId) * store.segmentBytes
  }

  /** Forced cleanings not started yet. */
  queued(): number {
    return this.forced
  }

  /**
   * Cleans the `n` oldest segments, whatever the trigger says (tests,
   * FRESHET.CLEAN), as far as they can be cleaned (a segment between the
   * victim and the tail, retain-bytes kept). Returns how many were queued.
   */
  force(n: number): number {
    const queued = Math.min(n, this.cleanableSegments())
    this.forced = Math.max(this.forced, queued)
    this.kick()
    return queued
  }

  /** The primary closes: nothing more is scanned, relocated or released (a scan under way is abandoned; its copies are harmless). */
  stop(): void {
    this.stopped = true
  }

  /** Something changed (a seal, durability): schedule a step if there is work. */
  kick(): void {
    if (this.scheduled || this.stopped) return
    if (this.state === 'idle' && !(this.forced > 0 || (!this.paused && this.wanted()))) return
    if (this.state === 'syncing' && (this.primary.groupCommit.durableLsn < this.releaseAfter || this.primary.store.oldestPin() < this.releaseAfter)) return
    this.scheduled = true
    setImmediate(() => this.step())
  }

  /** Bytes of memory in use past which the cleaner works without pacing. */
  private underPressure(): boolean {
    const p = this.primary
    return p.usedMemoryBytes() > p.options.maxMemoryBytes - PRESSURE_SEGMENTS * p.store.segmentBytes
  }

  /**
   * Can the oldest segment be cleaned at all: a segment between it and the
   * tail, the newest --retain-bytes kept (for backups that reconnect), and
   * nothing a connected backup has yet to be sent, unless memory runs short
   * (then that backup falls behind the horizon and resyncs).
   */
  private cleanable(): boolean {
    return this.cleanableSegments() > 0
  }

  /** How many of the oldest segments can be cleaned now (see cleanable). */
  private cleanableSegments(): number {
    const store = this.primary.store
    const limit = Math.min(store.endLsn - this.primary.retainBytes(), this.underPressure() ? Number.MAX_SAFE_INTEGER : this.primary.retainFloor())
    // A victim ends at or below `limit`, and one segment stays between the last victim and the tail.
    return Math.max(0, Math.min(store.newestId - store.oldestId - 1, Math.floor(limit / store.segmentBytes) - store.oldestId))
  }

  private wanted(): boolean {
    if (!this.cleanable()) return false
    const p = this.primary
    const store = p.store
    const held = store.retainedBytes()
    if (held > REF_WINDOW_FORCE_BYTES) return true
    if (held > p.liveBytes / UTILISATION_TARGET + CLEAN_SLACK_SEGMENTS * store.segmentBytes) return true
    return this.underPressure()
  }

  private step(): void {
    this.scheduled = false
    if (this.stopped) return
    const t0 = performance.now()
    try {
      if (this.state === 'idle') this.begin()
      if (this.state === 'scanning') this.scan(this.underPressure() ? Number.MAX_SAFE_INTEGER : SLICE_BYTES)
      // A snapshot older than the relocations could still follow a chain into the victims: wait for it.
      if (this.state === 'syncing' && this.primary.groupCommit.durableLsn >= this.releaseAfter &&
        this.primary.store.oldestPin() >= this.releaseAfter) this.release()
    } catch (err) {
      // A failed cleaning is retried from scratch later (relocations already written are harmless copies).
      this.primary.options.log(`cleaner: cleaning segments up to ${this.lastVictimId} failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}`)
      this.state = 'idle'
      this.stats.timeMs += performance.now() - t0
      return
    }
    this.stats.timeMs += performance.now() - t0
    this.kick()
  }

  private begin(): void {
    const cleanable = this.cleanableSegments()
    if (cleanable === 0) { this.forced = 0; return }
    const batch = Math.min(cleanable, BATCH_SEGMENTS_MAX, Math.max(this.forced, this.underPressure() ? BATCH_SEGMENTS_MAX : 1))
    this.forced = Math.max(0, this.forced - batch)
    this.victimId = this.primary.store.oldestId
    this.lastVictimId = this.victimId + batch - 1
    this.offset = 0
    this.state = 'scanning'
  }

  /** Scans up to `budget` bytes of the victims: relocates the sets that are their key's head. */
  private scan(budget: number): void {
    let scanned = 0
    while (scanned < budget) {
      scanned += this.scanVictim(budget - scanned)
      if (this.state !== 'scanning') return
    }
  }

  /** Scans up to `budget` bytes of the current victim; moves to the next, or to syncing after the last. Returns bytes scanned. */
  private scanVictim(budget: number): number {
    const p = this.primary
    const store = p.store
    const victim = store.segment(this.victimId)!
    const committed = victim.committedBytes()
    const baseRef = segmentBaseRef(victim.id, store.segmentBytes)
    const dv = victim.dv
    let scanned = 0
    while (this.offset < committed && scanned < budget) {
      const block = this.offset
      const length = blockLength(dv, block)
      const opCount = blockOpCount(dv, block)
      let at = block + BLOCK_HEADER_BYTES
      for (let i = 0; i < opCount; i++) {
        const keyLength = opKeyLength(dv, at)
        const valueLength = opValueLength(dv, at)
        const size = opBytes(keyLength, valueLength)
        if (opType(dv, at) === OP_TYPE_SET) {
          const ref = refAtOffset(baseRef, at)
          const hash = opKeyHash(dv, at)
          const partition = hash >>> PARTITION_SHIFT
          const table = p.index.tables[partition]
          // The op's own ref as the hint: a slot holding it is this key without comparing bytes.
          const slot = findSlotForOp(table, store, hash, ref, victim.u8, at + OP_HEADER_BYTES, keyLength)
          if (slot >= 0 && slotRef(table, slot) === ref) this.relocate(victim, at, size, ref, partition, slot)
        }
        at += size
      }
      this.offset = block + length
      scanned += length
    }
    this.stats.bytesScanned += scanned
    if (this.offset >= committed) {
      if (this.victimId < this.lastVictimId) {
        this.victimId++
        this.offset = 0
      } else {
        p.appender.seal()
        this.releaseAfter = store.endLsn
        this.state = 'syncing'
      }
    }
    return Math.max(scanned, 1)
  }

  /** Copies the live set at `at` of the victim to the tail and points its key's slot there. */
  private relocate(victim: Segment, at: number, size: number, ref: number, partition: number, slot: number): void {
    const p = this.primary
    const appender = p.appender
    appender.ensureRoom(size)
    const dst = appender.opSegment()
    const to = appender.opOffset()
    const keyLength = opKeyLength(victim.dv, at)
    const valueLength = opValueLength(victim.dv, at)
    copyBytes(dst.u8, to, victim.u8, at, OP_HEADER_BYTES + keyLength + valueLength)
    dst.u8[to + OP_FLAGS_OFFSET] = OP_FLAG_RELOCATED
    dst.dv.setUint32(to + OP_PREV_REF_OFFSET, ref, true)
    padOp(dst.u8, to, keyLength, valueLength)
    // ensureRoom may have grown nothing in the index: the table and slot found by the scan stand.
    setSlotRef(p.index.tables[partition], slot, refOfLsn(appender.cursor))
    appender.commitOp(size)
    this.stats.bytesRelocated += size
    this.stats.opsRelocated++
  }

  /** The relocations are durable: drop live tombstones, move the horizon, free the victim. */
  private release(): void {
    const p = this.primary
    const store = p.store
    const first = store.oldestId
    for (let id = first; id <= this.lastVictimId; id++) {
      const victim = store.segment(id)!
      const dropped = sweepRange(store, victim.id, victim.committedBytes(), p.index.tables, 0, 1)
      assert(dropped >= 0, 'every live set of the victim was relocated before its release')
      p.liveBytes -= dropped
      this.stats.tombstoneBytesDropped += dropped
    }
    p.files.releaseBelow(this.lastVictimId + 1)
    store.releaseBelow(this.lastVictimId + 1)
    this.horizonAfterLsn = this.releaseAfter
    this.stats.segmentsCleaned += this.lastVictimId + 1 - first
    this.state = 'idle'
    this.onHorizon()
  }
}

/**
 * The cleaner: keeps a primary's log, in memory and on disk, bounded by its
 * live data. The log stays the database: a live version is never copied out
 * of the log into another store; the cleaner copies it to the log's tail (a
 * relocation: the same key and value, flagged OP_FLAG_RELOCATED, whose
 * prevRef is the original) and then releases the segment it came from.
 *
 * Victims are chosen by cost-benefit, as in LFS and RAMCloud: each segment's
 * live bytes are counted as writes change its keys' heads (Primary.segmentLive),
 * and a segment scores (1 - u) * age / (1 + u), u its utilisation and age the
 * bytes written since it filled: cold, sparse segments first, hot ones left
 * to die on their own. Releasing the oldest moves the horizon; releasing one
 * above it leaves a hole (segment_store.ts) that recovery, replay and
 * shipping skip. Once the retained log spans REF_WINDOW_FORCE_BYTES the
 * oldest is cleaned whatever it scores (refs are exact within a window).
 *
 * Tombstones: one at its key's head may go only when no older version of its
 * key survives anywhere recovery or a resync reads: when the version it
 * deleted (its prevRef) lies below the horizon this release leaves (then so
 * does every older one). Otherwise it is relocated like a live set, and goes
 * later (replay/apply.ts tombstoneDroppable).
 *
 * One cleaning, on the main thread between event-loop turns:
 *   1. scan the victims in slices: each set that is still its key's head is
 *      relocated, and each tombstone at its key's head that must stay;
 *      everything else is dead, or a tombstone that goes;
 *   2. seal the open block; wait until the log is durable up to its end
 *      (releaseAfter): the relocations must survive a crash before the only
 *      other copy goes; and until no snapshot older than that is open
 *      (view/snapshot.ts);
 *   3. release: tombstones still at their key's head leave the index (their
 *      slots become gone: sweepRange, which backups run too); the manifest
 *      records the holes and moves the horizon (durably), then the victims'
 *      files are deleted and their memory freed.
 * A crash anywhere before 3 leaves the victims in the log with both copies of
 * each relocated version (the newer wins on replay; same value); a crash in 3
 * after the manifest leaves files that recovery deletes.
 *
 * Backups replay relocations like any block and release the same segments:
 * below the horizon when the primary's heartbeat says it moved, holes when a
 * RELEASE frame names them (ship/protocol.ts), once they hold the log up to
 * releaseAfter (backup.ts).
 *
 * Trigger: the retained log exceeds live bytes / UTILISATION_TARGET plus
 * slack, or memory nears --max-memory, or the retained log nears the ref
 * window; never within the newest --retain-bytes of log (kept for backups
 * that reconnect), nor what a connected backup has yet to be sent unless
 * memory runs short; never for a victim fuller than VICTIM_UTILISATION_MAX
 * (copying it would free nothing) unless forced. Pace: a slice of SLICE_BYTES
 * of victim per turn, the whole victims per turn under memory pressure. It
 * cannot deadlock: a relocation needs at most the victims' live bytes at the
 * tail, and the write path keeps room for it (Primary.outOfMemory refuses
 * writes first).
 */
import {
  BLOCK_HEADER_BYTES, OP_FLAG_EXPIRES, OP_FLAG_RELOCATED, OP_FLAGS_OFFSET, OP_PREV_REF_OFFSET, OP_TYPE_SET, PARTITION_BITS,
} from '../constants.js'
import { blockLength, blockOpCount, copyBytes, opBytes, opExpires, opExpiryMs, opKeyAt, opKeyHash, opKeyLength, opSizeAt, opType, opUsedBytes, opValueLength, padOp } from '../codec/record.js'
import { UNCOUNTED, findSlotForOp, setSlotRef, slotRef } from '../index/indirection.js'
import { sweepRange, tombstoneDroppable } from '../replay/apply.js'
import { assert } from '../assert.js'
import { REF_WINDOW_FORCE_BYTES, refAtOffset, refOfLsn, segmentBaseRef, slotOfRef } from '../index/ref.js'
import type { Segment } from '../log/segment.js'
import type { SegmentStore } from '../log/segment_store.js'
import type { LogFiles } from '../log/log_file.js'
import type { GroupCommit } from '../log/group_commit.js'
import type { Appender } from '../log/appender.js'
import type { Index } from '../index/indirection.js'
import { nowMs } from '../io/clock.js'
import { EXPIRED, type Expiry } from './expiry.js'

/** What the cleaner works on: the primary's log, index and live-byte counts (Primary implements it). */
export interface CleanedLog {
  readonly store: SegmentStore
  readonly index: Index
  readonly files: LogFiles
  readonly appender: Appender
  readonly groupCommit: GroupCommit
  readonly options: { maxMemoryBytes: number, windowForceBytes?: number, log: (line: string) => void }
  readonly segmentLive: Float64Array
  liveBytes: number
  /** Keys with a time to live: an expired head is deleted rather than relocated (expiry.ts). */
  readonly expiry: Pick<Expiry, 'expire'>
  usedMemoryBytes(): number
  retainFloor(): number
  retainBytes(): number
}

/** The cleaner keeps the retained log at or above this share of live bytes (plus slack). */
export const UTILISATION_TARGET = 0.8
/** Segments the retained log may hold beyond live / UTILISATION_TARGET before cleaning starts. */
export const CLEAN_SLACK_SEGMENTS = 1
/** Victim bytes scanned per turn when there is no memory pressure (well under a millisecond of work). */
export const SLICE_BYTES = 128 * 1024
/** Memory pressure: used memory within this many segments of --max-memory. */
export const PRESSURE_SEGMENTS = 4
/** A victim fuller than this is not worth copying (unless forced): it would free almost nothing. */
export const VICTIM_UTILISATION_MAX = 0.9
/**
 * Under memory pressure (or forced for several), a cleaning takes up to this
 * many segments at once: one durability wait then releases
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
  /** Tombstones copied to the tail because an older version of their key is still retained. */
  tombstonesRelocated: number
  /** Expired heads of victims deleted instead of relocated. */
  expiredDropped: number
  /** Segments released above the horizon (holes), of segmentsCleaned. */
  holesCreated: number
  timeMs: number
}

type State = 'idle' | 'scanning' | 'syncing'

export class Cleaner {
  readonly stats: CleanerStats
  /** The horizon was last moved once the log held this LSN (backups release below it once they do). */
  horizonAfterLsn: number
  /** The newest holes were made once the log held this LSN (backups release them once they do). */
  holesAfterLsn: number
  /** Tests: while set, the cleaner runs only when forced (force). */
  paused: boolean
  /** The primary is closing: no step runs any more. */
  private stopped: boolean
  private state: State
  /** This cleaning's victims (ascending ids), the one being scanned, and the horizon once they are released. */
  private victims: number[]
  private victimAt: number
  private newHorizonLsn: number
  private offset: number
  private releaseAfter: number
  private scheduled: boolean
  private forced: number
  private readonly primary: CleanedLog
  private readonly onReleased: (holes: readonly number[]) => void

  /** `onReleased` is told after each release (the holes it made, maybe none): shipping tells the backups. */
  constructor(primary: CleanedLog, onReleased: (holes: readonly number[]) => void) {
    this.primary = primary
    this.onReleased = onReleased
    this.stats = {
      segmentsCleaned: 0, bytesScanned: 0, bytesRelocated: 0, opsRelocated: 0, tombstoneBytesDropped: 0,
      tombstonesRelocated: 0, expiredDropped: 0, holesCreated: 0, timeMs: 0,
    }
    // After a restart the relocations behind the recovered horizon and holes lie somewhere in the recovered
    // log (they were durable before their victims went): a backup releases them once it holds all of it.
    this.horizonAfterLsn = primary.store.endLsn
    this.holesAfterLsn = primary.store.endLsn
    this.paused = false
    this.stopped = false
    this.state = 'idle'
    this.victims = []
    this.victimAt = 0
    this.newHorizonLsn = 0
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
    return this.victims.length * store.segmentBytes
  }

  /** Forced cleanings not started yet. */
  queued(): number {
    return this.forced
  }

  /**
   * Cleans `n` segments (the best by cost-benefit), whatever the trigger says
   * (tests, FRESHET.CLEAN), as far as segments can be cleaned (a segment
   * between a victim and the tail, retain-bytes kept). Returns how many were queued.
   */
  force(n: number): number {
    const queued = Math.min(n, this.candidates().length)
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
   * The segments that may be cleaned now: below the newest segment (one stays
   * between a victim and the tail), outside the newest --retain-bytes (for
   * backups that reconnect), and nothing a connected backup has yet to be
   * sent, unless memory runs short (then that backup falls behind and resyncs).
   */
  private candidates(): number[] {
    const store = this.primary.store
    const limit = Math.min(store.endLsn - this.primary.retainBytes(), this.underPressure() ? Number.MAX_SAFE_INTEGER : this.primary.retainFloor())
    // A victim ends at or below `limit`.
    const last = Math.min(store.newestId - 1, Math.floor(limit / store.segmentBytes) - 1)
    const ids: number[] = []
    for (let id = store.oldestId; id <= last; id++) if (!store.holes.has(id)) ids.push(id)
    return ids
  }

  /** Utilisation of retained segment `id`: its live bytes over its size. */
  utilisation(id: number): number {
    const store = this.primary.store
    return this.primary.segmentLive[store.slotOf(id)] / store.segmentBytes
  }

  /** Cost-benefit of cleaning segment `id` ((1 - u) * age / (1 + u)); age: bytes written since it filled. */
  private score(id: number): number {
    const store = this.primary.store
    const u = this.utilisation(id)
    const age = Math.max(1, store.endLsn - (id + 1) * store.segmentBytes)
    return (1 - u) * age / (1 + u)
  }

  /** Must the oldest segment go (the retained log nears the ref window)? */
  private windowForced(): boolean {
    return this.primary.store.spanBytes() > (this.primary.options.windowForceBytes ?? REF_WINDOW_FORCE_BYTES)
  }

  /** Up to `n` victims, best first by cost-benefit (the oldest first when the window forces it), ascending by id. */
  private choose(candidates: number[], n: number, anyUtilisation: boolean): number[] {
    const store = this.primary.store
    const picked: number[] = []
    const rest = candidates.slice()
    if (this.windowForced() && rest.length > 0 && rest[0] === store.oldestId) picked.push(rest.shift()!)
    rest.sort((a, b) => this.score(b) - this.score(a))
    for (const id of rest) {
      if (picked.length >= n) break
      if (!anyUtilisation && this.utilisation(id) > VICTIM_UTILISATION_MAX) break
      picked.push(id)
    }
    return picked.sort((a, b) => a - b)
  }

  private wanted(): boolean {
    const p = this.primary
    const store = p.store
    if (this.windowForced()) return this.candidates().length > 0
    const held = store.retainedBytes()
    if (!(held > p.liveBytes / UTILISATION_TARGET + CLEAN_SLACK_SEGMENTS * store.segmentBytes) && !this.underPressure()) return false
    // Called at every seal while idle: one pass, no sort.
    for (const id of this.candidates()) if (this.utilisation(id) <= VICTIM_UTILISATION_MAX) return true
    return false
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
      this.primary.options.log(`cleaner: cleaning segments ${this.victims.join(',')} failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}`)
      this.state = 'idle'
      this.stats.timeMs += performance.now() - t0
      return
    }
    this.stats.timeMs += performance.now() - t0
    this.kick()
  }

  private begin(): void {
    const candidates = this.candidates()
    if (candidates.length === 0) { this.forced = 0; return }
    const batch = Math.min(candidates.length, BATCH_SEGMENTS_MAX, Math.max(this.forced, this.underPressure() ? BATCH_SEGMENTS_MAX : 1))
    const victims = this.choose(candidates, batch, this.forced > 0 || this.windowForced())
    if (victims.length === 0) { this.forced = 0; return }
    this.forced = Math.max(0, this.forced - victims.length)
    const store = this.primary.store
    // The horizon once these are released: the first segment that is neither a victim nor a hole.
    let h = store.oldestId
    while (store.holes.has(h) || victims.includes(h)) h++
    this.victims = victims
    this.victimAt = 0
    this.newHorizonLsn = h * store.segmentBytes
    this.offset = 0
    this.state = 'scanning'
  }

  /** Scans up to `budget` bytes of the victims: relocates the heads that must stay. */
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
    const victim = store.segment(this.victims[this.victimAt])!
    const committed = victim.committedBytes()
    const baseRef = segmentBaseRef(victim.id, store.segmentBytes)
    const dv = victim.dv
    const now = nowMs()
    let scanned = 0
    let expired = 0
    while (this.offset < committed && scanned < budget) {
      const block = this.offset
      const length = blockLength(dv, block)
      const opCount = blockOpCount(dv, block)
      let at = block + BLOCK_HEADER_BYTES
      for (let i = 0; i < opCount; i++) {
        const keyLength = opKeyLength(dv, at)
        const valueLength = opValueLength(dv, at)
        const size = opSizeAt(dv, at)
        const isSet = opType(dv, at) === OP_TYPE_SET
        if (isSet || !tombstoneDroppable(dv, at, victim.baseLsn + at, this.newHorizonLsn)) {
          const ref = refAtOffset(baseRef, at)
          const hash = opKeyHash(dv, at)
          const partition = hash >>> PARTITION_SHIFT
          const table = p.index.tables[partition]
          // The op's own ref as the hint: a slot holding it is this key without comparing bytes.
          const slot = findSlotForOp(table, store, hash, ref, victim.u8, opKeyAt(dv, at), keyLength)
          if (slot >= 0 && slotRef(table, slot) === ref) {
            // An expired head is dead: its delete (a tombstone in the tail, as the active cycle would
            // log) supersedes it, so its value is never copied. Relocated if the node takes no writes now.
            if (isSet && opExpires(dv, at) && opExpiryMs(dv, at) <= now &&
              p.expiry.expire(victim.u8, opKeyAt(dv, at), keyLength, now) === EXPIRED) {
              expired++
            } else {
              this.relocate(victim, at, size, ref, partition, slot)
              if (!isSet) this.stats.tombstonesRelocated++
            }
          }
        }
        at += size
      }
      this.offset = block + length
      scanned += length
    }
    this.stats.bytesScanned += scanned
    this.stats.expiredDropped += expired
    if (this.offset >= committed) {
      if (this.victimAt < this.victims.length - 1) {
        this.victimAt++
        this.offset = 0
      } else {
        p.appender.seal()
        this.releaseAfter = store.endLsn
        this.state = 'syncing'
      }
    }
    return Math.max(scanned, 1)
  }

  /** Copies the head op (a set, or a tombstone that must stay) at `at` of the victim to the tail and points its key's slot there. */
  private relocate(victim: Segment, at: number, size: number, ref: number, partition: number, slot: number): void {
    const p = this.primary
    const store = p.store
    const appender = p.appender
    appender.ensureRoom(size)
    const dst = appender.opSegment()
    const to = appender.opOffset()
    const keyLength = opKeyLength(victim.dv, at)
    const valueLength = opValueLength(victim.dv, at)
    const expires = opExpires(victim.dv, at)
    // The same op (its expiry too), flagged as a relocation of `ref`.
    copyBytes(dst.u8, to, victim.u8, at, opUsedBytes(keyLength, valueLength, expires))
    dst.u8[to + OP_FLAGS_OFFSET] = OP_FLAG_RELOCATED | (expires ? OP_FLAG_EXPIRES : 0)
    dst.dv.setUint32(to + OP_PREV_REF_OFFSET, ref, true)
    padOp(dst.u8, to, keyLength, valueLength, expires)
    // ensureRoom may have grown nothing in the index: the table and slot found by the scan stand.
    const copyRef = refOfLsn(appender.cursor)
    setSlotRef(p.index.tables[partition], slot, copyRef)
    p.segmentLive[slotOfRef(ref, store.segmentBytes)] -= size
    p.segmentLive[slotOfRef(copyRef, store.segmentBytes)] += size
    appender.commitOp(size)
    this.stats.bytesRelocated += size
    this.stats.opsRelocated++
  }

  /** The relocations are durable: drop the tombstones that may go, record the holes, move the horizon, free the victims. */
  private release(): void {
    const p = this.primary
    const store = p.store
    for (const id of this.victims) {
      const victim = store.segment(id)!
      const dropped = sweepRange(store, id, victim.committedBytes(), p.index.tables, 0, 1, this.newHorizonLsn, UNCOUNTED)
      assert(dropped >= 0, 'every head of a victim that must stay was relocated before its release')
      p.liveBytes -= dropped
      const slot = store.slotOf(id)
      p.segmentLive[slot] -= dropped
      assert(p.segmentLive[slot] === 0, 'a released segment holds no live bytes')
      this.stats.tombstoneBytesDropped += dropped
    }
    const horizonId = this.newHorizonLsn / store.segmentBytes
    const holes = this.victims.filter((id) => id > horizonId)
    // Holes first, then the horizon: each manifest write alone is a state recovery accepts.
    if (holes.length > 0) {
      p.files.releaseHoles(holes)
      store.releaseHoles(holes)
      this.holesAfterLsn = this.releaseAfter
    }
    if (horizonId > store.oldestId) {
      p.files.releaseBelow(horizonId)
      store.releaseBelow(horizonId)
      this.horizonAfterLsn = this.releaseAfter
    }
    this.stats.segmentsCleaned += this.victims.length
    this.stats.holesCreated += holes.length
    this.state = 'idle'
    this.onReleased(holes)
  }
}

/**
 * The primary: owns the log (segment store + appender + durable segment
 * files), the index, and the commit positions. Commands call probe() then
 * writeProbed() to write a version: the op is encoded straight into the open
 * block, the index is pointed at it, and the reply waits (server/connection.ts)
 * until the commit policy releases the block:
 *
 *   async        sealed into the in-memory log (end of the event-loop turn)
 *   local        written and fdatasynced to the segment files
 *
 * On open, the log is recovered (torn tail cut) and the index rebuilt with the
 * same applyRange() that backup replay workers use.
 */
import os from 'node:os'
import { assert } from '../assert.js'
import { OP_TYPE_SET, PARTITION_BITS, REF_NONE, RETAIN_BYTES_DEFAULT } from '../constants.js'
import { REF_GONE, lsnOfRef, refOfLsn, refPosition, slotOfRef } from '../index/ref.js'
import { dbError, OOM_MESSAGE } from '../errors.js'
import { blockLength, copyBytes, opBytes, opExpires, opExpiryMs, opKeyAt, opKeyLength, padOp, writeOpHeader } from '../codec/record.js'
import { Expiry } from './expiry.js'
import { nowMs } from '../io/clock.js'
import { initHash, keyHash } from '../codec/hash.js'
import { Index, findSlot, growTable, insertAt, opBytesAt, setSlotRef, slotRef, tableNeedsGrowth, tableSlotCount } from '../index/indirection.js'
import { Cleaner } from './cleaner.js'
import { Snapshot } from '../view/snapshot.js'
import { FSYNCS, LOG_DISK_BYTES, memoryInfo } from '../metrics/figures.js'
import { counter } from '../metrics/metric.js'
import { Appender } from '../log/appender.js'
import { GroupCommit } from '../log/group_commit.js'
import { LogFiles, type CrashStep } from '../log/log_file.js'
import { recoverInto, type RecoveryReport } from '../replay/recover.js'
import { SegmentStore } from '../log/segment_store.js'
import { ReadView, VISIBLE_ALL } from '../view/read_view.js'
import type { ExpiryStats, InfoSections, KeyWriteObserver, NodeWriter, ServedNode } from '../node.js'
import { F_ADMIN, type CommandSpec } from '../server/commands.js'
import { argInt } from '../server/args.js'
import { currentEpoch, openEpochs, readEpochs, writeEpochs, type EpochHistory } from '../log/epochs.js'

export type CommitMode = 'async' | 'local' | 'remote-flush' | 'remote-apply'
export const COMMIT_MODES: readonly CommitMode[] = ['async', 'local', 'remote-flush', 'remote-apply']

/** Modes whose replies also wait for backups (flushed or applied). */
export function isRemoteMode(mode: CommitMode): boolean {
  return mode === 'remote-flush' || mode === 'remote-apply'
}

export interface PrimaryOptions {
  dir: string
  segmentBytes: number
  commit: CommitMode
  maxMemoryBytes: number
  valueBytesMax: number
  /** Threads for parallel recovery of a large log (1: inline; default min(4, cores)). */
  recoveryWorkers?: number
  /** Cut the log at the first damage (logged) instead of refusing to start (--accept-log-damage). */
  acceptLogDamage?: boolean
  /** The cleaner never releases the newest this-many bytes of log (kept for backups that are behind). Default RETAIN_BYTES_DEFAULT. */
  retainBytes?: number
  /** A new log directory starts at this LSN (tests of high LSNs). */
  initialLsn?: number
  /** Tests only: the span past which the cleaner must take the oldest segment (default REF_WINDOW_FORCE_BYTES, 8 GiB). */
  windowForceBytes?: number
  /** Tests only: LogFiles crash points (throwing there simulates a crash at that step). */
  crashPoint?: (step: CrashStep) => void
  /**
   * remote-* modes: a reply held this long for missing sync backups gets
   * -NOREPLICAS instead, and while fewer sync backups than required have been
   * connected for this long new writes are refused with -NOREPLICAS at once
   * (--sync-timeout; default SYNC_TIMEOUT_MS_DEFAULT).
   */
  syncTimeoutMs?: number
  log: (line: string) => void
}

export const SYNC_TIMEOUT_MS_DEFAULT = 5000

/** What a node that stops being a backup hands over to the primary it becomes (Backup.promote). */
export interface PromotedLog {
  store: SegmentStore
  index: Index
  files: LogFiles
  recovery: RecoveryReport
  /** Live keys at the log end (the newest block's count). */
  keyCount: number
  /** The history with the new epoch appended (already durable). */
  history: EpochHistory
}


/**
 * What the primary tells the rest of the node, passed to Primary.open() and
 * wired at the composition root (cli/run_primary.ts).
 */
export interface PrimaryHooks {
  /** The released position advanced: held replies may go (the server). */
  released(): void
  /** A block was sealed (shipping sends it). */
  sealed(startLsn: number, endLsn: number): void
  /** The durable LSN advanced in a mode that waits for it (shipping tells the backups their safe LSN). */
  safe(): void
  /** remote-* commit modes: the LSN the required backups have flushed/applied (never decreasing); null otherwise. */
  remoteReleased: (() => number) | null
  /** The cleaner released segments: below a new horizon, and `holes` above it (shipping tells the backups). */
  cleaned?: (holes: readonly number[]) => void
  /** The oldest LSN a connected backup still needs sent (the cleaner keeps it unless memory runs short). */
  retainFloor?: () => number
  /** The oldest LSN whose shipped frames may still be queued on a socket (a released buffer is reused only past it). */
  shippedFloor?: () => number
  /** remote-* modes: why writes are refused now (sync backups missing for longer than --sync-timeout), or null. */
  syncShortage?: () => string | null
}


/** A primary whose positions nobody follows (benchmarks, in-process tests). */
export const NO_HOOKS: PrimaryHooks = { released: () => {}, sealed: () => {}, safe: () => {}, remoteReleased: null }

const PARTITION_SHIFT = 32 - PARTITION_BITS
/** Writes are refused once live data and index would take more than this share of --max-memory. */
export const LIVE_SHARE_MAX = 0.8
/** Used memory may pass --max-memory by this many segments while the cleaner catches up. */
export const CLEANER_ROOM_SEGMENTS = 2

/**
 * Bytes of every op the index points at (live sets and tombstones), in all
 * and per segment slot (added to `perSlot`); heads that expire go to `expiry`.
 */
function headBytes(store: SegmentStore, index: Index, perSlot: Float64Array, expiry: Expiry): number {
  let n = 0
  for (const table of index.tables) {
    const slots = tableSlotCount(table)
    for (let s = 0; s < slots; s++) {
      const ref = slotRef(table, s)
      if (ref === REF_NONE || ref === REF_GONE) continue
      const bytes = opBytesAt(store, ref)
      n += bytes
      perSlot[slotOfRef(ref, store.segmentBytes)] += bytes
      const position = refPosition(ref)
      const id = Math.floor(position / store.segmentBytes)
      const at = position - id * store.segmentBytes
      const dv = store.dv[id]
      if (opExpires(dv, at)) expiry.track(store.u8[id], opKeyAt(dv, at), opKeyLength(dv, at), opExpiryMs(dv, at))
    }
  }
  return n
}

/** Expired keys one command may delete lazily (more are left to the active cycle): a bound on its memory. */
const LAZY_EXPIRE_MAX = 1024

/** The cleaner's counters /metrics shows (metrics/metric.ts). */
const CLEANER = {
  segments: counter('freshet_cleaner_segments_cleaned_total', 'Segments the cleaner released'),
  scanned: counter('freshet_cleaner_scanned_bytes_total', 'Bytes the cleaner scanned', 'bytes'),
  relocated: counter('freshet_cleaner_relocated_bytes_total', 'Bytes the cleaner copied to the tail', 'bytes'),
  tombstones: counter('freshet_cleaner_tombstone_dropped_bytes_total', 'Tombstone bytes the cleaner dropped', 'bytes'),
  expired: counter('freshet_cleaner_expired_dropped_total', 'Expired heads the cleaner deleted instead of copying'),
  holes: counter('freshet_cleaner_holes_created_total', 'Segments released above the horizon'),
  time: counter('freshet_cleaner_seconds_total', 'Time the cleaner ran', 'ms'),
}

export class Primary implements ServedNode, NodeWriter {
  readonly role = 'primary' as const
  readonly options: PrimaryOptions
  readonly store: SegmentStore
  readonly index: Index
  readonly files: LogFiles
  readonly appender: Appender
  readonly groupCommit: GroupCommit
  readonly view: ReadView
  readonly recovery: RecoveryReport
  epoch: number
  /** Every epoch this log has seen (log/epochs.ts); the last is `epoch`. */
  history: EpochHistory
  /**
   * Set once this node learns of a higher epoch (another node was promoted):
   * it acknowledges nothing more (released positions freeze, writes get
   * -READONLY), so two primaries never both acknowledge a write.
   */
  fenced: string | null
  private fencedReleasedLsn: number
  /** LSN of the newest op written; a reply produced now waits until released > this. */
  lastOpLsn: number
  writesTotal: number
  /** A restore's bulk load (beginBulkLoad): no index is kept. */
  private bulkLoading: boolean
  /** Bytes of the ops that are their key's head (sets and tombstones): what the log must hold. */
  liveBytes: number
  /** liveBytes per segment slot (index/ref.ts): the cleaner's utilisation of each segment. */
  readonly segmentLive: Float64Array
  /** Bytes of ops written by commands (the cleaner's relocations not included). */
  writtenBytesTotal: number
  readonly cleaner: Cleaner
  /** Told of each command's write to a key (the server's WATCH registry); null: nobody. */
  keyWrites: KeyWriteObserver | null
  /** Keys with a time to live and the active expiry cycle (expiry.ts). */
  readonly expiry: Expiry
  /** Keys of expired sets the current command met (lazy expiry; at most LAZY_EXPIRE_MAX). */
  private readonly expiredSeen: Buffer[]
  private readonly hooks: PrimaryHooks
  private pHash: number
  private pPartition: number
  private pSlot: number
  private pHead: number

  private constructor(options: PrimaryOptions, store: SegmentStore, index: Index, files: LogFiles, recovery: RecoveryReport, hooks: PrimaryHooks, history: EpochHistory, keyCount: number) {
    this.options = options
    this.store = store
    this.index = index
    this.files = files
    this.recovery = recovery
    this.history = history
    this.epoch = currentEpoch(history)
    this.fenced = null
    this.fencedReleasedLsn = 0
    this.appender = new Appender(store, this.epoch, keyCount)
    this.groupCommit = new GroupCommit(files, store, store.endLsn, (err) => this.fatal(err))
    this.view = new ReadView(store, index, VISIBLE_ALL)
    this.lastOpLsn = -1
    this.writesTotal = 0
    this.bulkLoading = false
    this.segmentLive = new Float64Array(store.slotCount)
    this.expiry = new Expiry(this)
    this.expiredSeen = []
    // Lazy expiry (as Redis deletes an expired key a command touches): noted during the command, deleted after it.
    this.view.onExpiredSeen = (ref) => this.noteExpired(ref)
    this.liveBytes = headBytes(store, index, this.segmentLive, this.expiry)
    this.expiry.start()
    this.writtenBytesTotal = 0
    this.keyWrites = null
    this.hooks = hooks
    this.cleaner = new Cleaner(this, (holes) => { if (hooks.cleaned !== undefined) hooks.cleaned(holes) })
    store.onUnpinned = () => this.cleaner.kick()
    const shippedFloor = hooks.shippedFloor
    if (shippedFloor !== undefined) store.reusable = (releasedAt) => shippedFloor() >= releasedAt
    // Pooled buffers never take the node past --max-memory.
    store.poolRoomBytes = () => this.options.maxMemoryBytes - this.usedMemoryBytes()
    this.pHash = 0
    this.pPartition = 0
    this.pSlot = 0
    this.pHead = REF_NONE
    this.appender.onSeal = (start, end) => this.sealed(start, end)
    this.groupCommit.onDurable = () => {
      this.cleaner.kick()
      if (this.options.commit === 'async') return
      this.hooks.safe()
      this.hooks.released()
    }
  }

  static async open(options: PrimaryOptions, hooks: PrimaryHooks = NO_HOOKS): Promise<Primary> {
    await initHash()
    if (options.retainBytes === undefined) options.retainBytes = RETAIN_BYTES_DEFAULT
    const store = new SegmentStore(options.segmentBytes)
    const files = LogFiles.open(options.dir, options.segmentBytes, { acceptLogDamage: options.acceptLogDamage === true, initialLsn: options.initialLsn, crashPoint: options.crashPoint })
    const { index, report, scheduler } = await recoverInto(files, store, options.recoveryWorkers ?? Math.min(4, os.cpus().length))
    if (scheduler !== null) await scheduler.close()
    if (report.cutReason !== null) options.log(`log recovery: ${report.cutReason}; ${report.truncatedBytes} bytes cut at LSN ${report.endLsn}`)
    const history = openEpochs(options.dir, report.lastEpoch)
    // A log from before epoch histories gets one now (the directory's format moves forward on open).
    if (readEpochs(options.dir) === null) writeEpochs(options.dir, history)
    return new Primary(options, store, index, files, report, hooks, history, report.keyCount)
  }

  /**
   * The primary a promoted backup becomes: its log, index and files, at the
   * new epoch its history already names (Backup.promote made that durable and
   * everything it held visible).
   */
  static adopt(options: PrimaryOptions, log: PromotedLog, hooks: PrimaryHooks): Primary {
    if (options.retainBytes === undefined) options.retainBytes = RETAIN_BYTES_DEFAULT
    return new Primary(options, log.store, log.index, log.files, log.recovery, hooks, log.history, log.keyCount)
  }

  /**
   * Stops acknowledging anything (a higher epoch exists): what was released
   * stays released, nothing new is; writes get -READONLY. Never undone in
   * this process: the node rejoins as a backup (REPLICAOF) or restarts.
   */
  fence(reason: string): void {
    if (this.fenced !== null) return
    this.fencedReleasedLsn = this.releasedLsn()
    this.fenced = reason
    this.options.log(`FENCED: ${reason}; acknowledging nothing more past LSN ${this.fencedReleasedLsn} (writes get -READONLY)`)
  }

  /** How long a reply may wait for its commit before it gets heldReplyError() instead (0: no bound). */
  heldReplyBoundMs(): number {
    if (this.fenced !== null || isRemoteMode(this.options.commit)) return this.options.syncTimeoutMs ?? SYNC_TIMEOUT_MS_DEFAULT
    return 0
  }

  /** Every read on a primary is fresh. */
  readonly freshness = null

  heldReplyError(): string {
    if (this.fenced !== null) return `READONLY this node was a primary and is fenced (${this.fenced}): the write's outcome is unknown`
    return `NOREPLICAS Not enough good replicas to write: no ${this.options.commit === 'remote-flush' ? 'flush' : 'apply'} by the required sync backups within --sync-timeout ${this.options.syncTimeoutMs ?? SYNC_TIMEOUT_MS_DEFAULT} ms (the write's outcome is unknown)`
  }

  /** Replies for ops at positions below this may leave. */
  releasedLsn(): number {
    if (this.fenced !== null) return this.fencedReleasedLsn
    if (this.options.commit === 'async') return this.store.endLsn
    const durable = this.groupCommit.durableLsn
    const remote = this.hooks.remoteReleased
    return remote === null ? durable : Math.min(durable, remote())
  }

  get writer(): Primary {
    return this
  }

  waitLsn(): number {
    return this.lastOpLsn
  }

  loading(): string | null {
    return null
  }

  /** The primary's INFO sections (replication comes from shipping). */
  infoSections(): InfoSections {
    return {
      persistence: () => [
        ['loading', 0], ['commit_mode', this.options.commit], ['dir', this.options.dir],
        ['commit_lsn', this.commitLsn()], ['durable_lsn', this.durableLsn()],
        ['segment_bytes', this.store.segmentBytes], ['segments', this.store.segments.length],
        ['horizon_lsn', this.store.horizonLsn()], ['log_holes', this.store.holes.size], ['log_disk_bytes', this.files.bytesOnDisk(), LOG_DISK_BYTES],
        ['fsyncs_total', this.groupCommit.flushCount, FSYNCS],
        ['recovery_blocks', this.recovery.blockCount], ['recovery_bytes', this.recovery.endLsn],
        ['recovery_truncated_bytes', this.recovery.truncatedBytes],
        ['recovery_ms', Math.round(this.recovery.readMs + this.recovery.replayMs)],
      ],
      memory: () => {
        const c = this.cleaner.stats
        return [
          ...memoryInfo(this.store, this.index, {
            usedBytes: this.usedMemoryBytes(), maxMemoryBytes: this.options.maxMemoryBytes,
            liveBytes: this.liveBytes, pinnedBytes: this.cleaner.pinnedBytes(),
          }),
          ['retain_bytes', this.retainBytes()],
          ['cleaner_segments_cleaned', c.segmentsCleaned, CLEANER.segments], ['cleaner_bytes_scanned', c.bytesScanned, CLEANER.scanned],
          ['cleaner_bytes_relocated', c.bytesRelocated, CLEANER.relocated], ['cleaner_ops_relocated', c.opsRelocated],
          ['cleaner_tombstone_bytes_dropped', c.tombstoneBytesDropped, CLEANER.tombstones], ['cleaner_tombstones_relocated', c.tombstonesRelocated],
          ['cleaner_expired_dropped', c.expiredDropped, CLEANER.expired],
          ['cleaner_holes_created', c.holesCreated, CLEANER.holes], ['cleaner_ms', Math.round(c.timeMs), CLEANER.time],
          ['write_amplification', this.writtenBytesTotal > 0 ? ((this.writtenBytesTotal + c.bytesRelocated) / this.writtenBytesTotal).toFixed(3) : '1.000'],
        ]
      },
      stats: () => [['writes_total', this.writesTotal]],
    }
  }

  /** The primary's own commands: FRESHET.CLEAN [n] cleans n segments now, the best by cost-benefit (tests, operators). */
  commands(): CommandSpec[] {
    return [{
      name: 'freshet.clean', arity: -1, flags: F_ADMIN,
      run: (s, a) => {
        const n = a.argc > 1 ? argInt(a, 1) : 1
        if (!(n >= 0 && n <= 1_000_000)) { s.conn.out.error('ERR FRESHET.CLEAN [count]: count from 0 to 1000000'); return }
        const queued = this.cleaner.force(n)
        s.conn.out.integer(queued)
      },
    }]
  }

  resetStats(): void {
    this.writesTotal = 0
  }

  expiryStats(): ExpiryStats { return { expiring: this.expiry.size, expired: this.expiry.expiredTotal, cycleMs: this.expiry.cycleMsTotal } }
  setActiveExpiry(on: boolean): void { if (on) this.expiry.start(); else this.expiry.stop() }

  /** Writes made by commands since start (RDB saves: rdb_changes_since_last_save). */
  changesTotal(): number {
    return this.writesTotal
  }

  commitLsn(): number {
    return this.store.endLsn
  }

  durableLsn(): number {
    return this.groupCommit.durableLsn
  }

  /**
   * The position below which this primary never loses what it shipped: a
   * backup makes nothing visible past it. Durable in every mode but async
   * (blocks are shipped before their fsync); in async, what is committed.
   */
  safeLsn(): number {
    return this.options.commit === 'async' ? this.store.endLsn : this.groupCommit.durableLsn
  }

  private sealed(start: number, end: number): void {
    this.groupCommit.submit(end)
    this.hooks.sealed(start, end)
    if (this.options.commit === 'async') this.hooks.released()
    this.cleaner.kick()
  }

  /**
   * After each command (NodeWriter): deletes the expired keys its reads met,
   * each logged as a delete (Expiry.expire re-checks the newest version, so
   * a key written since is left alone). Refused when the node takes no
   * writes now (fenced, sync backups missing): the active cycle gets them later.
   */
  afterCommand(): void {
    const seen = this.expiredSeen
    if (seen.length === 0) return
    const now = this.view.nowMs()
    for (const key of seen) this.expiry.expire(key, 0, key.length, now)
    seen.length = 0
  }

  /** End of an event-loop turn: seal what this turn wrote (group commit). */
  endTurn(): void {
    this.appender.seal()
  }

  retainBytes(): number {
    return this.options.retainBytes ?? RETAIN_BYTES_DEFAULT
  }

  /**
   * A snapshot of everything committed so far (the open block is sealed
   * first): a view that stays consistent across cleanings until closed.
   */
  snapshot(): Snapshot {
    this.appender.seal()
    return Snapshot.open(this.store, this.index, this.store.endLsn, nowMs())
  }

  /** What connected backups still need sent (Number.MAX_SAFE_INTEGER: nothing). */
  retainFloor(): number {
    return this.hooks.retainFloor === undefined ? Number.MAX_SAFE_INTEGER : this.hooks.retainFloor()
  }

  /** Segments held (the retained log, whole segments) plus the index. */
  usedMemoryBytes(): number {
    return this.store.retainedBytes() + this.index.memoryBytes()
  }

  /**
   * Would a write of `boundBytes` not fit? Only when the live data does not:
   * it would take the retained log past LIVE_SHARE_MAX of --max-memory (the
   * cleaner cannot compact a log fuller than that without thrashing), or
   * memory is already past --max-memory by more than the cleaner's room
   * (it is behind; used memory stays bounded either way).
   */
  outOfMemory(boundBytes: number): boolean {
    const max = this.options.maxMemoryBytes
    if (this.liveBytes + this.index.memoryBytes() + boundBytes > max * LIVE_SHARE_MAX) return true
    return this.usedMemoryBytes() + boundBytes > max + CLEANER_ROOM_SEGMENTS * this.store.segmentBytes
  }

  keyCount(): number {
    return this.appender.keyCount
  }

  /**
   * Before a write command: checks memory (unless the command only removes
   * data, which Redis allows past maxmemory) and reserves room for all of its
   * ops in one block. Throws DbError OOM / TXN_TOO_LARGE / LOG_FULL.
   */
  beginWrite(boundBytes: number, checkMemory = true): void {
    if (this.fenced !== null) throw dbError('READONLY', `You can't write against a fenced primary (${this.fenced}).`)
    const shortage = this.hooks.syncShortage?.() ?? null
    if (shortage !== null) throw dbError('NOREPLICAS', shortage)
    if (checkMemory && this.outOfMemory(boundBytes)) {
      throw dbError('OOM', OOM_MESSAGE)
    }
    this.appender.reserveCommand(boundBytes)
  }

  endWrite(): void {
    this.appender.endCommand()
  }

  /**
   * probeQuiet(), and a key whose newest version is an expired set is noted
   * for lazy expiry (afterCommand): a write command that meets one (DEL,
   * EXPIRE, GETDEL of an expired key) deletes it as Redis does; one that
   * writes the key anyway leaves nothing for afterCommand to do. Free while
   * no key has a time to live.
   */
  probe(key: Uint8Array, keyStart: number, keyLength: number): number {
    const head = this.probeQuiet(key, keyStart, keyLength)
    if (head !== REF_NONE && this.expiry.size > 0 && this.view.expiryOf(head) > 0 && this.view.isSetOp(head) && !this.view.isSet(head)) {
      this.noteExpired(head)
    }
    return head
  }

  private noteExpired(ref: number): void {
    if (this.expiredSeen.length < LAZY_EXPIRE_MAX) this.expiredSeen.push(this.view.copyKey(ref))
  }

  /** Finds the key's newest version (its head) for writeProbed(). */
  probeQuiet(key: Uint8Array, keyStart: number, keyLength: number): number {
    assert(!this.bulkLoading, 'a bulk load keeps no index to probe')
    const hash = keyHash(key, keyStart, keyLength)
    const partition = hash >>> PARTITION_SHIFT
    const table = this.index.tables[partition]
    const slot = findSlot(table, this.store, hash, key, keyStart, keyLength)
    this.pHash = hash
    this.pPartition = partition
    this.pSlot = slot
    this.pHead = slot >= 0 ? slotRef(table, slot) : REF_NONE
    // The write's reply depends on the version it replaces (SET NX/XX/GET, INCR, APPEND, DEL).
    if (this.pHead !== REF_NONE) this.view.observe(lsnOfRef(this.pHead, this.appender.cursor))
    return this.pHead
  }

  /**
   * Writes a version of the key last passed to probe(): a set whose value is
   * v1[v1Start, +v1Length) followed by v2[…] (APPEND), or a delete. Returns
   * the op's LSN.
   */
  writeProbed(
    type: number, key: Uint8Array, keyStart: number, keyLength: number,
    v1: Uint8Array | null, v1Start: number, v1Length: number,
    v2: Uint8Array | null, v2Start: number, v2Length: number,
    expireAtMs = 0,
  ): number {
    const expires = expireAtMs > 0 && type === OP_TYPE_SET
    const size = this.placeOp(type, this.pHash, this.pHead, key, keyStart, keyLength, v1, v1Start, v1Length, v2, v2Start, v2Length, expireAtMs)
    const lsn = this.appender.cursor
    const ref = refOfLsn(lsn)
    const tables = this.index.tables
    let table = tables[this.pPartition]
    if (this.pSlot >= 0) {
      setSlotRef(table, this.pSlot, ref)
    } else {
      if (tableNeedsGrowth(table)) {
        table = growTable(table)
        this.index.replaceTable(this.pPartition, table)
        this.pSlot = findSlot(table, this.store, this.pHash, key, keyStart, keyLength)
        assert(this.pSlot < 0, 'growth keeps an absent key absent')
      }
      insertAt(table, -this.pSlot - 1, this.pHash, ref)
      this.pSlot = -this.pSlot - 1
    }
    if (this.pHead !== REF_NONE) {
      const old = opBytesAt(this.store, this.pHead)
      this.liveBytes -= old
      this.segmentLive[slotOfRef(this.pHead, this.store.segmentBytes)] -= old
    }
    this.liveBytes += size
    this.segmentLive[slotOfRef(ref, this.store.segmentBytes)] += size
    this.writtenBytesTotal += size
    // Counted keys: an expired key is counted until its delete is logged (as Redis counts it in DBSIZE).
    const wasLive = this.pHead !== REF_NONE && this.view.isSetOp(this.pHead)
    const isLive = type === OP_TYPE_SET
    if (wasLive !== isLive) this.appender.keyCount += isLive ? 1 : -1
    // Keys with a time to live, for the active expiry cycle: a string is made only for those.
    if (expires) this.expiry.track(key, keyStart, keyLength, expireAtMs)
    else if (this.pHead !== REF_NONE && this.view.expiryOf(this.pHead) > 0) this.expiry.untrack(key, keyStart, keyLength)
    this.pHead = ref
    if (this.keyWrites !== null) this.keyWrites.written(this.pHash, key, keyStart, keyLength)
    this.appender.commitOp(size)
    this.lastOpLsn = lsn
    this.view.observe(lsn)
    this.writesTotal++
    return lsn
  }

  /**
   * Writes an op's bytes (header, key, value v1 then v2, padding) at the log's
   * cursor, making room first; returns its aligned size. The caller updates
   * the index and the counts, then commits it (appender.commitOp).
   */
  private placeOp(
    type: number, hash: number, prevRef: number, key: Uint8Array, keyStart: number, keyLength: number,
    v1: Uint8Array | null, v1Start: number, v1Length: number,
    v2: Uint8Array | null, v2Start: number, v2Length: number,
    expireAtMs: number,
  ): number {
    const valueLength = v1Length + v2Length
    if (valueLength > this.options.valueBytesMax) throw dbError('VALUE_TOO_LARGE', 'string exceeds maximum allowed size')
    const expires = expireAtMs > 0 && type === OP_TYPE_SET
    const size = opBytes(keyLength, valueLength, expires)
    this.appender.ensureRoom(size)
    const segment = this.appender.opSegment()
    const at = this.appender.opOffset()
    writeOpHeader(segment.dv, at, type, hash, prevRef, keyLength, valueLength, expires ? expireAtMs : 0)
    const keyAt = opKeyAt(segment.dv, at)
    copyBytes(segment.u8, keyAt, key, keyStart, keyLength)
    if (v1Length > 0) copyBytes(segment.u8, keyAt + keyLength, v1!, v1Start, v1Length)
    if (v2Length > 0) copyBytes(segment.u8, keyAt + keyLength + v1Length, v2!, v2Start, v2Length)
    padOp(segment.u8, at, keyLength, valueLength, expires)
    return size
  }

  /**
   * Makes this primary a bulk loader (a restore's): writes go through
   * appendUnindexed only, into the log and its counts but not the index, so
   * nothing may read or clean it. The cleaner and the active expiry cycle
   * stop for good; the loaded directory is served once reopened, which builds
   * the index from the log.
   */
  beginBulkLoad(): void {
    this.cleaner.stop()
    this.expiry.stop()
    this.bulkLoading = true
  }

  /**
   * SET key value [expiring at expireAtMs] of a key the caller knows is new
   * (a bulk load's: it checks uniqueness itself, rdb/unique_keys.ts), as one
   * write of its own: no probe, no index entry, no previous version. Key and
   * value are ranges of their sources; `hash` is keyHash() of the key.
   * Returns the op's ref.
   */
  appendUnindexed(
    hash: number, key: Uint8Array, keyStart: number, keyLength: number,
    value: Uint8Array, valueStart: number, valueLength: number, expireAtMs: number,
  ): number {
    assert(this.bulkLoading, 'appendUnindexed is for a bulk load')
    this.beginWrite(opBytes(keyLength, valueLength, expireAtMs > 0))
    try {
      const size = this.placeOp(OP_TYPE_SET, hash, REF_NONE, key, keyStart, keyLength, value, valueStart, valueLength, null, 0, 0, expireAtMs)
      const lsn = this.appender.cursor
      const ref = refOfLsn(lsn)
      this.liveBytes += size
      this.segmentLive[slotOfRef(ref, this.store.segmentBytes)] += size
      this.writtenBytesTotal += size
      this.appender.keyCount++
      this.appender.commitOp(size)
      this.lastOpLsn = lsn
      this.writesTotal++
      return ref
    } finally {
      this.endWrite()
    }
  }

  /** Start of the block holding the newest op (lastOpLsn). */
  lastOpBlockStart(): number {
    return this.appender.openStart >= 0 ? this.appender.openStart : -1
  }

  /** The end LSN of the block starting at `blockStart`, sealing it first if it is still open. */
  blockEndOf(blockStart: number): number {
    if (blockStart < 0) return 0
    if (this.appender.openStart === blockStart) this.appender.seal()
    const segment = this.store.segmentAt(blockStart)!
    return blockStart + blockLength(segment.dv, blockStart - segment.baseLsn)
  }

  private fatal(err: unknown): void {
    this.options.log(`FATAL: log write failed, stopping so that recovery decides what is durable: ${String(err)}`)
    process.exit(70)
  }

  async close(): Promise<void> {
    this.cleaner.stop()
    this.expiry.stop()
    this.appender.seal()
    await this.groupCommit.drain()
    this.files.close()
  }

  /** Ends the primary role in this process (REPLICAOF): the log is sealed and flushed, the files closed; nothing more is written. */
  async stepDown(reason: string): Promise<void> {
    this.fence(reason)
    await this.close()
  }
}

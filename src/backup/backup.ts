/**
 * A backup (hot standby): follows a primary over the replication link,
 * persists what it receives (group fsync), replays it on the worker pool, and
 * serves read-only queries at its visible LSN.
 *
 *   receive (Receiver: one copy into our segments, validated)
 *     -> persist (GroupCommit: flushed LSN)       } both start as soon as a
 *     -> replay (ReplayScheduler: applied LSN)    } frame is published
 *     -> ack received/flushed/applied + lag to the primary
 *
 * Lag follows PostgreSQL's replay_lag: for the newest block made visible, the
 * time from its commit on the primary (block header) to its visibility here.
 * When applied has reached the primary's commit LSN (heartbeats carry it even
 * when the primary is idle) lag reads 0. The link resumes from what this
 * backup has (received in memory, or flushed after a restart).
 *
 * Confirmation: the primary ships blocks before they are durable there, so a
 * backup replays (makes visible) only up to min(received, the primary's safe
 * LSN from heartbeats): the confirmed LSN. Nothing past it is ever in the
 * index, so a tail the primary lost in a crash can be cut without undoing
 * anything (see ship/protocol.ts and divergence.ts). The confirmed LSN is
 * persisted (confirmed.ts); recovery installs only up to it.
 */
import { initHash } from '../codec/hash.js'
import type { Index } from '../index/indirection.js'
import { BLOCK_HEADER_BYTES } from '../constants.js'
import { nowMs } from '../io/clock.js'
import { GroupCommit } from '../log/group_commit.js'
import { LogFiles } from '../log/log_file.js'
import { SegmentStore } from '../log/segment_store.js'
import { recoverInto, type RecoveryReport } from '../replay/recover.js'
import { ReplayScheduler } from '../replay/scheduler.js'
import type { CommandSpec } from '../server/commands.js'
import type { ExpiryStats, InfoLines, InfoSections, ServedNode } from '../node.js'
import { ReadView } from '../view/read_view.js'
import { Snapshot } from '../view/snapshot.js'
import { EPOCH, FSYNCS, LOG_DISK_BYTES, memoryInfo } from '../metrics/figures.js'
import { gauge } from '../metrics/metric.js'
import { ACK_INTERVAL_MS, HEARTBEAT_INTERVAL_MS, SYNC_COMMAND } from '../ship/protocol.js'
import { LinkError, Receiver, type ReceiverSink } from '../ship/receiver.js'
import { CHECK_COMMAND } from '../ship/protocol.js'
import { checksumEndingAt } from '../ship/agreement.js'
import { blockStartEndingAt } from '../log/segment_store.js'
import { blockCommitTimeMs, blockKeyCount, blockLength } from '../codec/record.js'
import { ConfirmedWriter, clearResyncMarker, readConfirmedLsn, readResyncMarker, writeResyncMarker } from './confirmed.js'
import { DivergenceProbe, cutLogTail, type ProbeOutcome } from './divergence.js'
import { PENDING_BLOCKS_MAX, PendingBlocks } from './pending_blocks.js'
import { Releases } from './releases.js'
import { LsnWaits } from './wait_lsn.js'
import { FreshReads } from './fresh_reads.js'
import { LAG_HISTOGRAMS } from '../metrics/lag_histograms.js'
import { StageLag } from './stage_lag.js'
import { currentEpoch, formatHistory, historyUpTo, readEpochs, writeEpochs, type EpochHistory } from '../log/epochs.js'
import type { PromotedLog } from '../primary/primary.js'
import { dbError } from '../errors.js'
import type { HandshakeLine } from './handshake.js'
import { LINK_READ_BYTES, PrimaryLink, RECONNECT_MS_MAX, RECONNECT_MS_MIN } from './link.js'

/** A backup expires nothing itself: it replays the primary's deletes. */
const NO_EXPIRY: ExpiryStats = Object.freeze({ expiring: 0, expired: 0, cycleMs: 0 })

export interface BackupOptions {
  dir: string
  segmentBytes: number
  primaryHost: string
  primaryPort: number
  primaryAuth: string | null
  workers: number
  listenPort: number
  /** Cut the log at the first damage (logged) instead of refusing to start (--accept-log-damage). */
  acceptLogDamage?: boolean
  /** Memory for log + index; past it the backup stops following and says why. Default: no bound. */
  maxMemoryBytes?: number
  /**
   * The new primary's history parts from this backup's below what it may
   * have shown (a failover took back writes it had made visible): this
   * backup has cut its log at the common point and closed; the node must
   * open it again (the index is rebuilt from the cut log). Without it, the
   * backup refuses to follow (DIVERGED) as before.
   */
  reopen?: (reason: string) => void
  log: (line: string) => void
}

/** A full resync in progress (or the last one): where it started, what it must reach, since when. */
export interface FullResync {
  fromLsn: number
  targetLsn: number
  startMs: number
  doneMs: number
  reason: string
}

/** The confirmed LSN goes to disk at most this often (an older value is always safe). */
const CONFIRMED_PERSIST_MS = 1000
/** What an idle primary's heartbeats leave unsaid: their interval, the sender's tick (half of it) and timer slack. */
const HEARTBEAT_ALLOWANCE_MS = HEARTBEAT_INTERVAL_MS * 1.5 + 10
/** The link pauses with this much room left in the pending ring: one read holds fewer blocks (each is longer than its header). */
const PENDING_ROOM_PER_READ = Math.ceil(LINK_READ_BYTES / BLOCK_HEADER_BYTES)


/** The backup's replication figures /metrics shows (metrics/metric.ts). */
const M = {
  received: gauge('freshet_received_lsn', 'Backup: the end of the log received', 'lsn'),
  flushed: gauge('freshet_flushed_lsn', 'Backup: the end of the log fsynced here', 'lsn'),
  visible: gauge('freshet_visible_lsn', 'Backup: reads run at this LSN', 'lsn'),
  primaryCommit: gauge('freshet_primary_commit_lsn', 'Backup: the primary\'s commit LSN as last heard', 'lsn'),
  lagBytes: gauge('freshet_replication_lag_bytes', 'Backup: the primary\'s commit LSN minus the visible LSN', 'bytes'),
  lag: gauge('freshet_replication_lag_seconds', 'Backup: the age of the oldest write not yet visible (0 when caught up)', 'ms'),
  staleness: gauge('freshet_replication_staleness_seconds', 'Backup: every write committed longer ago than this is visible (an upper bound)', 'ms'),
}

export class Backup implements ServedNode, ReceiverSink {
  readonly role = 'backup' as const
  readonly writer = null
  readonly options: BackupOptions
  readonly store: SegmentStore
  readonly index: Index
  readonly files: LogFiles
  readonly view: ReadView
  readonly groupCommit: GroupCommit
  readonly scheduler: ReplayScheduler
  readonly receiver: Receiver
  readonly recovery: RecoveryReport
  /** Replay lag samples (replay_lag.ts). */
  /** Commit on the primary -> visible here (replay lag), -> received, -> fsynced here: per block. */
  readonly lag: StageLag
  readonly receivedLag: StageLag
  readonly flushedLag: StageLag
  epoch: number
  /** The epochs of this backup's log (log/epochs.ts), adopted from its primary at each handshake; empty until one is known. */
  history: EpochHistory
  /** Log cuts that took back what this backup had made visible (a failover's loss window; INFO log_cuts_visible_total). */
  visibleCutsTotal: number
  /** Set while this backup is closed for a reopen (a cut below what it had shown): reads get -LOADING. */
  reopening: string | null
  /** The replication link to the primary (link.ts). */
  readonly link: PrimaryLink
  primaryCommitLsn: number
  /** A commit the primary announced before its blocks arrived, and its commit time (lagMs). */
  private unreceivedLsn: number
  private unreceivedMs: number
  /** The newest heartbeat's commit LSN and time, and the newest heartbeat time whose commit LSN is visible (stalenessMs). */
  private beatLsn: number
  private beatMs: number
  private certifiedMs: number
  visibleKeyCount: number
  appliedBytesTotal: number
  /** Replay (visibility) may go up to here: min(received, primary's safe LSN), a block end. */
  confirmedLsn: number
  /** The current link's primary safe LSN (heartbeats). */
  primarySafeLsn: number
  /** Why the primary last refused the link ('' while none). */
  linkError: string
  logCutsTotal: number
  logCutOpsTotal: number
  /** What the primary's cleaner released, followed here (releases.ts). */
  readonly releases: Releases
  fullResyncsTotal: number
  /** The current or last full resync; reads get -LOADING until `targetLsn` is visible. */
  resync: FullResync | null
  /** The primary's data did not fit --max-memory: the backup stopped following (linkError says so). */
  private overMemory: boolean
  private persistedConfirmedLsn: number
  private readonly confirmedFile: ConfirmedWriter
  private lastPersistMs: number
  private probe: DivergenceProbe | null
  private readonly pending: PendingBlocks
  /** Blocks received and not yet fsynced here, for the flushed-lag histogram (samples, not state: full, it skips some). */
  private readonly unflushed: PendingBlocks
  /** WAITLSN's parked connections (wait_lsn.ts). */
  private readonly waits: LsnWaits
  /** Reads parked by their freshness contract (ServedNode.freshness). */
  readonly freshness: FreshReads
  private readonly timer: NodeJS.Timeout
  private closed: boolean
  private listenPort: number

  private constructor(options: BackupOptions, store: SegmentStore, index: Index, files: LogFiles, recovery: RecoveryReport, pool: ReplayScheduler | null, headBytes: number, confirmedLsn: number) {
    this.options = options
    this.store = store
    this.index = index
    this.files = files
    this.recovery = recovery
    this.epoch = recovery.lastEpoch
    // A log from before epoch histories has had one primary: its blocks' epoch from LSN 0.
    this.history = readEpochs(options.dir) ?? (recovery.blockCount > 0 ? [{ epoch: Math.max(1, recovery.lastEpoch), startLsn: 0 }] : [])
    if (this.history.length > 0) this.epoch = currentEpoch(this.history)
    this.visibleCutsTotal = 0
    this.reopening = null
    this.confirmedLsn = confirmedLsn
    this.primarySafeLsn = confirmedLsn
    this.persistedConfirmedLsn = confirmedLsn
    this.confirmedFile = new ConfirmedWriter(options.dir)
    this.lastPersistMs = 0
    this.linkError = ''
    this.logCutsTotal = 0
    this.logCutOpsTotal = 0
    this.fullResyncsTotal = 0
    this.resync = null
    this.overMemory = false
    this.probe = null
    // Expiry is decided at the commit time of the newest visible block (the log's clock).
    this.view = new ReadView(store, index, confirmedLsn, commitTimeAt(store, confirmedLsn))
    this.groupCommit = new GroupCommit(files, store, store.endLsn, (err) => {
      options.log(`FATAL: backup log write failed: ${String(err)}`)
      process.exit(70)
    })
    const onError = (err: unknown): void => { options.log(`FATAL: replay worker failed: ${String(err)}`); process.exit(70) }
    // The pool that recovered the log (if it was large enough to recover in parallel) goes on replaying.
    this.scheduler = pool ?? new ReplayScheduler({ workers: options.workers, store, index, onVisible: () => {}, onError }, confirmedLsn)
    this.scheduler.onVisible = (lsn) => this.visible(lsn)
    this.scheduler.onError = onError
    this.scheduler.heads.bytes = headBytes
    const maxMemory = options.maxMemoryBytes
    // Pooled buffers never take the node past --max-memory (no limit: the pool's count bounds them).
    if (maxMemory !== undefined) store.poolRoomBytes = () => maxMemory - this.usedMemoryBytes()
    this.receiver = new Receiver(store, this.epoch, this)
    this.releases = new Releases(store, files, this.scheduler, () => Math.min(this.groupCommit.durableLsn, this.view.visibleLsn), options.log)
    this.lag = new StageLag('replay_lag', LAG_HISTOGRAMS.visible)
    this.receivedLag = new StageLag('received_lag', LAG_HISTOGRAMS.received)
    this.flushedLag = new StageLag('flushed_lag', LAG_HISTOGRAMS.flushed)
    this.primaryCommitLsn = store.endLsn
    this.unreceivedLsn = 0
    this.unreceivedMs = 0
    this.beatLsn = 0
    this.beatMs = 0
    this.certifiedMs = 0
    this.visibleKeyCount = keyCountAt(store, confirmedLsn)
    this.appliedBytesTotal = 0
    this.pending = new PendingBlocks()
    this.unflushed = new PendingBlocks()
    this.waits = new LsnWaits(this)
    this.freshness = new FreshReads(this)
    this.closed = false
    this.listenPort = options.listenPort
    this.link = new PrimaryLink(options.primaryHost, options.primaryPort, store.segmentBytes, this, options.log)
    this.groupCommit.onDurable = () => {
      this.flushed()
      this.link.scheduleAck()
    }
    this.timer = setInterval(() => this.tick(), ACK_INTERVAL_MS)
    this.timer.unref()
    // The recovered log past the confirmed LSN waits, received-but-unconfirmed, for the primary.
    for (let at = confirmedLsn; at < store.endLsn && this.pending.count < PENDING_BLOCKS_MAX;) {
      at = store.skipGap(at)
      const segment = store.segmentAt(at)!
      const offset = at - segment.baseLsn
      const length = blockLength(segment.dv, offset)
      this.block(at, at + length, blockCommitTimeMs(segment.dv, offset), blockKeyCount(segment.dv, offset))
      at += length
    }
  }

  static async open(options: BackupOptions): Promise<Backup> {
    await initHash()
    const store = new SegmentStore(options.segmentBytes)
    const files = LogFiles.open(options.dir, options.segmentBytes, { acceptLogDamage: options.acceptLogDamage === true })
    let confirmed = readConfirmedLsn(options.dir, options.log)
    const { index, report, scheduler, replayedLsn, headBytes } = await recoverInto(files, store, options.workers, confirmed)
    if (report.cutReason !== null) options.log(`log recovery: ${report.cutReason}; ${report.truncatedBytes} bytes cut at LSN ${report.endLsn}`)
    confirmed = replayedLsn
    if (confirmed < report.endLsn) options.log(`log recovery: LSN ${confirmed}..${report.endLsn} is held unconfirmed until the primary confirms it`)
    const backup = new Backup(options, store, index, files, report, scheduler, headBytes, confirmed)
    const marker = readResyncMarker(options.dir, options.log)
    if (marker !== null) {
      options.log(`a full resync was under way (to LSN ${marker.targetLsn}): loading until it is visible`)
      backup.resync = { fromLsn: marker.fromLsn, targetLsn: marker.targetLsn, startMs: nowMs(), doneMs: 0, reason: marker.reason }
    }
    return backup
  }

  /** Starts following the primary; `listenPort` is the port this backup serves clients on. */
  start(listenPort: number): void {
    this.listenPort = listenPort
    this.link.connect()
  }

  // ---- ServedNode ----
  heldReplyBoundMs(): number { return 0 }
  expiryStats(): ExpiryStats { return NO_EXPIRY }
  setActiveExpiry(): void {}
  heldReplyError(): string { return '' }
  releasedLsn(): number { return Number.MAX_SAFE_INTEGER }
  waitLsn(): number { return -1 }
  endTurn(): void {}
  keyCount(): number { return this.visibleKeyCount }

  loading(): string | null {
    if (this.reopening !== null) return `freshet is loading the dataset in memory (${this.reopening})`
    const r = this.resync
    if (r === null || r.doneMs > 0 || (r.targetLsn >= 0 && this.appliedLsn() >= r.targetLsn)) return null
    return `freshet is loading the dataset in memory (full resync from the primary: ${this.appliedLsn() - r.fromLsn} of ${r.targetLsn - r.fromLsn} bytes)`
  }

  /** A snapshot at the visible LSN: consistent across releases until closed (view/snapshot.ts). */
  snapshot(): Snapshot {
    return Snapshot.open(this.store, this.index, this.view.visibleLsn, this.view.timeMs)
  }

  /** Bytes of memory this backup holds: retained segments and the index. */
  usedMemoryBytes(): number {
    return this.store.retainedBytes() + this.index.memoryBytes()
  }

  resetStats(): void {
    this.lag.reset()
    this.receivedLag.reset()
    this.flushedLag.reset()
  }

  /** Ops replayed since start (RDB saves: rdb_changes_since_last_save). */
  changesTotal(): number { return this.scheduler.installedTotal }

  receivedLsn(): number { return this.store.endLsn }
  flushedLsn(): number { return this.groupCommit.durableLsn }
  appliedLsn(): number { return this.view.visibleLsn }

  lagBytes(): number { return Math.max(0, this.primaryCommitLsn - this.appliedLsn()) }

  /**
   * How stale what is visible may be, at most: the age of the newest primary
   * time as of which every commit is visible here (the newest visible block's
   * commit time, or a heartbeat's time once its commit LSN is visible; the
   * log is sequential, so nothing committed before either is missing). A
   * read "at most N ms stale" (FRESHET.READ MAXLAG) is held to this bound:
   * it reflects every write the primary committed more than N ms before it.
   * On an idle, connected backup it stays under a heartbeat interval.
   */
  stalenessMs(): number {
    const complete = Math.max(this.view.timeMs, this.certifiedMs)
    return complete > 0 ? Math.max(0, nowMs() - complete) : Number.POSITIVE_INFINITY
  }

  /**
   * lag_ms: the age of the oldest write not yet visible here (PostgreSQL's
   * replay_lag, read at any instant), in three cases: a received block not
   * yet visible (its commit time: exact); else a commit the primary announced
   * beyond what arrived (its heartbeat's time: a lower bound); else nothing
   * is known to be missing, and the lag is the staleness bound less what an
   * idle primary's heartbeats leave (HEARTBEAT_INTERVAL_MS and the sender's
   * tick): 0 when caught up, and growing, never 0 between blocks, while the
   * primary's word arrives late. With the link down, at least the time since
   * the primary was last heard from.
   */
  lagMs(): number {
    const now = nowMs()
    let lag: number
    if (this.pending.count > 0) lag = now - this.pending.commitMs[this.pending.head]
    else if (this.unreceivedLsn > this.store.endLsn) lag = now - this.unreceivedMs
    else lag = this.stalenessMs() - HEARTBEAT_ALLOWANCE_MS
    if (!this.linkUp) lag = Math.max(lag, now - this.link.lastHeardMs)
    return Number.isFinite(lag) ? Math.max(0, lag) : 0
  }

  private certify(): void {
    if (this.beatMs > this.certifiedMs && this.appliedLsn() >= this.beatLsn) this.certifiedMs = this.beatMs
  }

  /** INFO replication of a backup. */
  private replicationInfo(): InfoLines {
    const staleness = this.stalenessMs()
    return [
      ['role', 'backup'], ['epoch', this.epoch, EPOCH], ['epoch_history', formatHistory(this.history)], ['primary', `${this.options.primaryHost}:${this.options.primaryPort}`],
      ['link', this.linkUp ? 'up' : 'down'], ['link_error', this.linkError],
      ['received_lsn', this.receivedLsn(), M.received], ['flushed_lsn', this.flushedLsn(), M.flushed], ['confirmed_lsn', this.confirmedLsn],
      ['applied_lsn', this.appliedLsn(), M.visible], ['primary_commit_lsn', this.primaryCommitLsn, M.primaryCommit], ['lag_bytes', this.lagBytes(), M.lagBytes],
      ['lag_ms', this.lagMs().toFixed(3), M.lag],
      // -1: no bound yet (nothing heard); absent from /metrics then.
      ['staleness_ms', Number.isFinite(staleness) ? staleness.toFixed(3) : '-1', M.staleness], ['workers', this.scheduler.laneCount],
    ]
  }

  /** The backup's INFO sections. */
  infoSections(): InfoSections {
    return {
      replication: () => this.replicationInfo(),
      persistence: () => [
        ...this.resyncInfo(),
        ['dir', this.options.dir], ['horizon_lsn', this.store.horizonLsn()], ['log_holes', this.store.holes.size], ['log_disk_bytes', this.files.bytesOnDisk(), LOG_DISK_BYTES], ['flushed_lsn', this.flushedLsn()], ['fsyncs_total', this.groupCommit.flushCount, FSYNCS],
        ['recovery_blocks', this.recovery.blockCount], ['recovery_bytes', this.recovery.endLsn],
        ['recovery_truncated_bytes', this.recovery.truncatedBytes],
        ['recovery_ms', Math.round(this.recovery.readMs + this.recovery.replayMs)],
      ],
      memory: () => [
        ...memoryInfo(this.store, this.index, {
          usedBytes: this.usedMemoryBytes(), maxMemoryBytes: this.options.maxMemoryBytes ?? 0,
          liveBytes: this.scheduler.heads.bytes, pinnedBytes: this.releases.pinnedBytes(),
        }),
        ['segments_released_total', this.releases.segmentsReleasedTotal],
      ],
      stats: () => {
        return [
          ['replay_tasks_total', this.scheduler.tasksTotal], ['replay_inline_batches_total', this.scheduler.inlineBatchesTotal], ['replay_ops_total', this.scheduler.installedTotal],
          ['replay_bytes_total', this.appliedBytesTotal], ['replay_worker_cpu_ms', Math.round(this.scheduler.workerCpuMs)],
          ...this.lag.infoLines(), ...this.receivedLag.infoLines(), ...this.flushedLag.infoLines(),
          ['link_frames_total', this.receiver.framesTotal], ['link_bytes_total', this.receiver.bytesTotal],
          ['log_cuts_total', this.logCutsTotal], ['log_cut_ops_total', this.logCutOpsTotal], ['log_cuts_visible_total', this.visibleCutsTotal],
        ]
      },
    }
  }

  /** The backup's own commands (WAITLSN). */
  commands(): CommandSpec[] {
    return [this.waits.command()]
  }

  // ---- LinkSink (link.ts) ----
  get linkUp(): boolean { return this.link.up }

  mayConnect(): boolean {
    return !this.closed && !this.overMemory
  }

  hello(): string {
    let hello = ''
    if (this.options.primaryAuth !== null) hello += resp(['AUTH', this.options.primaryAuth])
    const ask = this.probe?.next() ?? null
    if (ask !== null) return hello + resp([CHECK_COMMAND.toUpperCase(), String(ask.lsn), String(ask.checksum)])
    this.probe = null
    const end = this.store.endLsn
    // An empty log that starts at its horizon (after a full resync reset) has no block to name: checksum 0.
    const checksum = end === this.store.horizonLsn() ? 0 : checksumEndingAt(this.store, end)
    const history = historyUpTo(this.history, end)
    const args = [SYNC_COMMAND.toUpperCase(), String(history.length > 0 ? currentEpoch(history) : 0), String(end), String(this.listenPort), String(checksum)]
    // Loading (a full resync): the primary may skip the segments it released (holes).
    if (this.loading() !== null) args.push('RESYNC')
    // The primary finds where our logs part from the two histories (a CUT answer), in this one round trip.
    if (history.length > 0) args.push('HISTORY', formatHistory(history))
    return hello + resp(args)
  }

  ackPositions(): { received: number, flushed: number, applied: number, lagMs: number } {
    return { received: this.receivedLsn(), flushed: this.flushedLsn(), applied: this.appliedLsn(), lagMs: this.lagMs() }
  }

  frames(chunk: Buffer): void {
    const before = this.store.endLsn
    let failure: unknown = null
    try {
      this.receiver.feed(chunk)
    } catch (err) {
      failure = err
    }
    // Whole frames validated before a bad one in the same chunk are ours: persist them, and
    // replay what the primary confirmed (heartbeats before the bad frame count too).
    if (this.store.endLsn > before) {
      if (this.store.endLsn > this.primaryCommitLsn) this.primaryCommitLsn = this.store.endLsn
      this.groupCommit.submit(this.store.endLsn)
      if (this.pending.count >= PENDING_BLOCKS_MAX - PENDING_ROOM_PER_READ) this.link.pause()
      const max = this.options.maxMemoryBytes ?? Number.MAX_SAFE_INTEGER
      if (failure === null && this.usedMemoryBytes() > max) {
        failure = new Error(`the primary's data does not fit in this backup's --max-memory ${max} bytes ` +
          `(holding ${this.usedMemoryBytes()} bytes: log LSN ${this.store.horizonLsn()}..${this.store.endLsn} and index); ` +
          'not following any more (reads go on at what is visible); restart it with a larger --max-memory')
        this.linkError = (failure as Error).message
        this.overMemory = true
      }
    }
    this.confirm()
    if (failure !== null) {
      this.link.drop(failure instanceof Error ? failure.message : String(failure))
      return
    }
    this.link.scheduleAck()
  }

  handshakeLine(h: HandshakeLine): 'more' | 'up' | 'end' {
    switch (h.type) {
      case 'other': return 'more' // +OK for AUTH: keep reading
      case 'check': {
        if (this.probe === null) return 'more'
        const outcome = this.probe.answer(h.agree, h.released)
        if (outcome === null) {
          const ask = this.probe.next()!
          this.link.write(resp([CHECK_COMMAND.toUpperCase(), String(ask.lsn), String(ask.checksum)]))
          return 'more'
        }
        this.finishProbe(outcome)
        return 'end'
      }
      case 'sync':
        return this.linkSynced(h.epoch, h.commitLsn, h.segmentBytes, h.history) ? 'up' : 'end'
      case 'cut':
        this.cutAt(h.lsn, h.epoch, h.why)
        return 'end'
      case 'refused':
        this.refused(h.code, h.text)
        return 'end'
      case 'fullresync':
        this.link.detach()
        this.fullResync(h.epoch, h.horizonLsn, h.commitLsn, h.reason).then(() => this.link.connect(), (err: unknown) => {
          this.options.log(`FATAL: resetting for a full resync failed: ${String(err)}`)
          process.exit(70)
        })
        return 'end'
      case 'malformed':
        this.link.detach()
        this.options.log(`primary answered a malformed handshake line (${h.text}); retrying`)
        this.link.retrySoon(false)
        this.link.connectIn(RECONNECT_MS_MAX)
        return 'end'
    }
  }

  /** Makes visible what the primary confirmed: up to min(received, safe LSN), whole blocks only. */
  private confirm(): void {
    const end = this.store.endLsn
    const to = end <= this.primarySafeLsn ? end : this.pending.endAtOrBelow(this.primarySafeLsn)
    if (to <= this.confirmedLsn) return
    this.confirmedLsn = to
    this.scheduler.advance(to)
  }

  /** The primary refused the link (-CODE text). */
  private refused(code: string, text: string): void {
    this.options.log(`primary refused the link: ${text}`)
    this.linkError = text
    if (this.probe === null && code === 'DIVERGED') this.startProbe()
    else this.probe = null
    // A primary of another epoch will not change its mind soon: retry slowly (REPLICAOF repoints at once).
    this.link.retrySoon(code !== 'EPOCH')
    this.link.drop(null)
  }

  /** +SYNC: the link is up (returns true), unless the primary is one this backup must not follow. */
  private linkSynced(e: number, commit: number, segmentBytes: number, theirs: EpochHistory | null): boolean {
    if (segmentBytes !== this.store.segmentBytes) {
      this.options.log(`primary's segment size is ${segmentBytes} bytes, this backup's --segment-size is ${this.store.segmentBytes}: they must match; not following`)
      this.link.drop(null)
      return false
    }
    const ours = this.history.length > 0 ? currentEpoch(this.history) : 0
    if (theirs === null ? (this.epoch !== 0 && e !== this.epoch) : (currentEpoch(theirs) !== e || e < ours)) {
      // Never follow a primary of a lower epoch than our own (it was fenced, or is about to be).
      this.linkError = `EPOCH primary answered epoch ${e}, this backup is at epoch ${ours || this.epoch}; not following it`
      this.link.retrySoon(false)
      this.link.drop(this.linkError)
      return false
    }
    // Adopt the primary's history (our log is a prefix of its log now), durably, before any block of a new epoch arrives.
    if (theirs !== null && formatHistory(theirs) !== formatHistory(this.history)) {
      writeEpochs(this.options.dir, theirs)
      this.history = theirs
    }
    this.epoch = e
    this.receiver.reset(e)
    // Only this link's heartbeats confirm anything past what is already confirmed.
    this.primarySafeLsn = this.confirmedLsn
    this.linkError = ''
    this.primaryCommitLsn = Math.max(this.primaryCommitLsn, commit)
    // A resync whose target was lost (unreadable marker) loads until what the primary has now.
    if (this.resync !== null && this.resync.targetLsn < 0) this.resync.targetLsn = commit
    this.options.log(`link to primary ${this.options.primaryHost}:${this.options.primaryPort} up (epoch ${e}, from LSN ${this.store.endLsn}, primary commit LSN ${commit})`)
    // Tell the primary at once what is flushed and applied here: it assumes nothing until acked (the link is up once this returns).
    setImmediate(() => this.link.scheduleAck())
    return true
  }

  // ---- ReceiverSink ----
  block(_startLsn: number, endLsn: number, commitTimeMs: number, keyCount: number): void {
    this.pending.push(endLsn, commitTimeMs, keyCount)
    if (this.unflushed.count < PENDING_BLOCKS_MAX) this.unflushed.push(endLsn, commitTimeMs, keyCount)
    this.receivedLag.record(Math.max(0, nowMs() - commitTimeMs))
  }

  /** Blocks made durable here: the flushed lag of the newest (commit on the primary -> fsynced here). */
  private flushed(): void {
    const newest = this.unflushed.popThrough(this.groupCommit.durableLsn)
    if (newest >= 0) this.flushedLag.record(Math.max(0, nowMs() - this.unflushed.commitMs[newest]))
  }

  heartbeat(commitLsn: number, commitTimeMs: number, safeLsn: number, horizonLsn: number, horizonAfterLsn: number): void {
    if (commitLsn > this.primaryCommitLsn) this.primaryCommitLsn = commitLsn
    // What this heartbeat certifies (every commit before its time) counts once its commit LSN is visible.
    if (Number.isFinite(commitTimeMs) && commitTimeMs > this.beatMs) { this.beatLsn = commitLsn; this.beatMs = commitTimeMs }
    this.certify()
    // The first commit announced beyond what has arrived: the lag's oldest write while nothing is pending.
    if (commitLsn > this.store.endLsn && this.unreceivedLsn <= this.store.endLsn && Number.isFinite(commitTimeMs)) {
      this.unreceivedLsn = commitLsn
      this.unreceivedMs = commitTimeMs
    }
    this.releases.horizon(horizonLsn, horizonAfterLsn)
    // confirm() (after the chunk) makes it visible, whole blocks only; a bad value confirms nothing.
    if (Number.isSafeInteger(safeLsn) && safeLsn > this.primarySafeLsn) this.primarySafeLsn = safeLsn
  }

  /** A RELEASE frame (releases.ts): segments the primary released above its horizon. */
  release(horizonLsn: number, afterLsn: number, ids: number[]): void {
    this.releases.named(horizonLsn, afterLsn, ids)
  }

  // ---- failover ----
  /**
   * `-CUT <lsn> <epoch> <why>`: the primary's epoch history leaves ours at
   * `lsn`. Past what we may have shown, the tail is cut as a divergence cut;
   * at or below it, a failover took back writes we made visible: the cut
   * is made, logged as such, and the node reopens this backup (the index is
   * rebuilt from the cut log), or, without that, we refuse as DIVERGED.
   */
  private cutAt(lsn: number, epoch: number, why: string): void {
    this.link.detach()
    const blockEnd = lsn === this.store.horizonLsn() || blockStartEndingAt(this.store, lsn) >= 0
    if (lsn > this.store.endLsn || lsn < this.store.horizonLsn() || !blockEnd) {
      this.options.log(`primary answered a cut at LSN ${lsn}, not a block end of this log (LSN ${this.store.horizonLsn()}..${this.store.endLsn}); searching for the common block instead`)
      this.startProbe()
      this.link.connectIn(RECONNECT_MS_MIN)
      return
    }
    this.options.log(`the primary's epoch history (epoch ${epoch}) leaves this backup's at LSN ${lsn}: ${why}`)
    if (lsn >= this.confirmedLsn) {
      this.cutTail(lsn, 1).then(() => this.link.connect(), (err: unknown) => this.cutFailed(err))
      return
    }
    const reopen = this.options.reopen
    if (reopen === undefined || this.loading() !== null) {
      this.linkError = `DIVERGED the primary's history leaves this backup's at LSN ${lsn}, below what this backup may have shown (confirmed LSN ${this.confirmedLsn}); not following`
      this.options.log(this.linkError)
      this.link.connectIn(RECONNECT_MS_MAX)
      return
    }
    this.cutVisible(lsn).then(() => reopen(`log cut at LSN ${lsn} (the new primary's history)`), (err: unknown) => this.cutFailed(err))
    this.waits.fail(`the log is being cut at LSN ${lsn}`)
    this.freshness.fail(`the log is being cut at LSN ${lsn}`)
  }

  /** Cuts below the confirmed LSN: the log (memory and files) and the confirmed position; the caller reopens this backup. */
  private async cutVisible(lsn: number): Promise<void> {
    this.closed = true
    this.reopening = `rebuilding the index after a failover cut at LSN ${lsn}`
    clearInterval(this.timer)
    await this.releases.stop()
    await this.groupCommit.drain()
    await this.scheduler.close()
    const from = this.confirmedLsn
    const to = this.store.endLsn
    const { blocks, ops, bytes } = cutLogTail(this.store, this.files, lsn)
    this.confirmedFile.write(lsn)
    this.persistedConfirmedLsn = lsn
    this.files.close()
    this.visibleCutsTotal++
    this.options.log(`FAILOVER CUT: cut log LSN ${lsn}..${to} (${blocks} blocks, ${ops} ops, ${bytes} bytes on disk), of which LSN ${lsn}..${from} had been visible here: ` +
      'the new primary does not have it (writes the old primary had not made safe on the new one); rebuilding the index from the cut log')
  }

  private cutFailed(err: unknown): void {
    this.options.log(`FATAL: cutting the log tail failed: ${String(err)}`)
    process.exit(70)
  }

  /**
   * REPLICAOF NO ONE: stops following, makes durable and visible everything
   * received (a sync backup's log holds every write its primary acknowledged),
   * appends a new epoch to the history durably, and hands the log, index and
   * files over to the primary this node becomes (Primary.adopt). The backup
   * is closed afterwards; nothing of it runs.
   */
  async promote(): Promise<PromotedLog> {
    const loading = this.loading()
    if (loading !== null) throw dbError('NOT_PRIMARY', `cannot be promoted while loading: ${loading}`)
    if (this.closed) throw dbError('CLOSED', 'this backup is closed')
    this.closed = true
    clearInterval(this.timer)
    this.link.close()
    this.probe = null
    // A release in progress finishes on the backup's terms before the primary owns the files.
    await this.releases.stop()
    await this.groupCommit.drain()
    const end = this.store.endLsn
    // Everything received is now flushed: show it all (confirmation waited for the old primary's safe LSN).
    if (this.confirmedLsn < end) this.confirmedLsn = end
    await this.scheduler.replayTo(end)
    await this.scheduler.close()
    // WAITLSN waits end here: answered if this log reached them, else an error (nothing more will arrive as a backup).
    this.waits.fail(`promoted to primary at LSN ${end}`)
    this.freshness.fail(`promoted to primary at LSN ${end}`)
    const history = [...historyUpTo(this.history, end)]
    const next = Math.max(this.epoch, history.length > 0 ? currentEpoch(history) : 0, 1) + 1
    if (history.length === 0) history.push({ epoch: next - 1, startLsn: 0 })
    history.push({ epoch: next, startLsn: end })
    writeEpochs(this.options.dir, history)
    this.history = history
    this.epoch = next
    return { store: this.store, index: this.index, files: this.files, recovery: this.recovery, keyCount: this.visibleKeyCount, history }
  }

  /** REPLICAOF host port: follow another primary from where this log is (the handshake finds any divergence). */
  repoint(host: string, port: number): void {
    this.options.primaryHost = host
    this.options.primaryPort = port
    this.probe = null
    this.linkError = ''
    this.link.repoint(host, port)
  }

  // ---- divergence ----
  /** The primary refused our log end: search for the last block both logs hold (divergence.ts). */
  private startProbe(): void {
    const ends = [this.confirmedLsn]
    const checksums = [checksumEndingAt(this.store, this.confirmedLsn)]
    for (let i = 0; i < this.pending.count; i++) {
      const end = this.pending.end[this.pending.at(i)]
      if (end <= this.confirmedLsn) continue
      ends.push(end)
      checksums.push(checksumEndingAt(this.store, end))
    }
    this.probe = new DivergenceProbe(ends, checksums)
  }

  private finishProbe(outcome: ProbeOutcome): void {
    const rounds = this.probe!.roundTrips
    this.probe = null
    if (outcome.type === 'refuse') {
      this.linkError = `DIVERGED this backup's confirmed log (LSN ${outcome.lsn}, possibly visible) is not the primary's; not following (log end ${this.store.endLsn})`
      this.options.log(`DIVERGED: the primary's log disagrees with this backup's at its confirmed LSN ${outcome.lsn} (log end ${this.store.endLsn}); refusing to follow, retrying`)
      this.link.retrySoon(false)
      this.link.drop(null)
      return
    }
    // Taken off the link first: the cut reconnects.
    this.link.detach()
    this.cutTail(outcome.lsn, rounds).then(() => this.link.connect(), (err: unknown) => this.cutFailed(err))
  }

  /** Cuts the received-but-unconfirmed tail after `lsn` (nothing past the confirmed LSN is installed). */
  private async cutTail(lsn: number, rounds: number): Promise<void> {
    // Nothing of the tail may still be on its way to the files when they are cut.
    await this.groupCommit.drain()
    const from = lsn
    const to = this.store.endLsn
    const { blocks, ops, bytes } = cutLogTail(this.store, this.files, lsn)
    this.groupCommit.cut(lsn)
    this.pending.dropAbove(lsn)
    this.unflushed.dropAbove(lsn)
    if (this.primaryCommitLsn > lsn) this.primaryCommitLsn = lsn
    this.logCutsTotal++
    this.logCutOpsTotal += ops
    this.options.log(`DIVERGED: cut unconfirmed log LSN ${from}..${to} (${blocks} blocks, ${ops} ops, ${bytes} bytes on disk) that the primary does not have; resuming from LSN ${lsn} (${rounds} checks)`)
  }

  // ---- replay progress ----
  private visible(lsn: number): void {
    const now = nowMs()
    const newest = this.pending.popThrough(lsn)
    this.appliedBytesTotal += lsn - this.view.visibleLsn
    this.view.visibleLsn = lsn
    const r = this.resync
    if (r !== null && r.doneMs === 0 && r.targetLsn >= 0 && lsn >= r.targetLsn) {
      r.doneMs = now
      clearResyncMarker(this.options.dir)
      this.options.log(`full resync done: ${r.targetLsn - r.fromLsn} bytes of log in ${Math.round(r.doneMs - r.startMs)} ms; serving reads`)
    }
    if (newest >= 0) {
      this.visibleKeyCount = this.pending.keys[newest]
      this.view.timeMs = this.pending.commitMs[newest]
      this.lag.record(Math.max(0, now - this.pending.commitMs[newest]))
    }
    if (this.pending.count < PENDING_BLOCKS_MAX / 2) this.link.resume()
    this.certify()
    if (this.waits.size > 0) this.waits.check()
    if (this.freshness.size > 0) this.freshness.check()
    this.link.scheduleAck()
    // As soon as the relocations that moved the primary's horizon are visible (a segment at a time, like the primary).
    this.releases.maybeRelease()
  }

  private tick(): void {
    const now = nowMs()
    this.lag.rotate()
    this.receivedLag.rotate()
    this.flushedLag.rotate()
    this.link.tick(now)
    if (now - this.lastPersistMs >= CONFIRMED_PERSIST_MS) this.persistConfirmed(now)
    if (this.waits.size > 0) this.waits.check()
    if (this.freshness.size > 0) this.freshness.check()
    this.releases.maybeRelease()
  }

  /**
   * The primary no longer has the log this backup needs: discard the local
   * log and index (files first, durably) and start empty at the primary's
   * horizon; reads answer -LOADING until `commitLsn` is visible.
   */
  private async fullResync(epoch: number, horizon: number, commitLsn: number, reason: string): Promise<void> {
    this.options.log(`full resync from the primary at LSN ${horizon} (visible by LSN ${commitLsn}): ${reason}; ` +
      `discarding this backup's log LSN ${this.store.horizonLsn()}..${this.store.endLsn}`)
    await this.groupCommit.drain()
    await this.scheduler.resetTo(horizon)
    // First, durably: a restart from here on loads until commitLsn (see confirmed.ts).
    writeResyncMarker(this.options.dir, { fromLsn: horizon, targetLsn: commitLsn, reason })
    this.files.resetTo(horizon)
    this.confirmedFile.write(horizon)
    this.persistedConfirmedLsn = horizon
    this.store.resetTo(horizon)
    this.index.clear()
    this.groupCommit.resetTo(horizon)
    this.pending.dropAbove(-1)
    this.unflushed.dropAbove(-1)
    this.confirmedLsn = horizon
    this.primarySafeLsn = horizon
    this.view.visibleLsn = horizon
    this.view.timeMs = 0
    this.visibleKeyCount = 0
    this.releases.reset(horizon)
    this.primaryCommitLsn = commitLsn
    this.epoch = epoch
    this.fullResyncsTotal++
    this.resync = { fromLsn: horizon, targetLsn: commitLsn, startMs: nowMs(), doneMs: 0, reason }
  }

  private resyncInfo(): Array<[string, string | number]> {
    const r = this.resync
    const loading = this.loading() !== null
    const lines: Array<[string, string | number]> = [['loading', loading ? 1 : 0], ['full_resyncs_total', this.fullResyncsTotal]]
    if (r === null) return lines
    const done = Math.max(0, Math.min(r.targetLsn, this.appliedLsn()) - r.fromLsn)
    const total = Math.max(0, r.targetLsn - r.fromLsn)
    const elapsedMs = (r.doneMs > 0 ? r.doneMs : nowMs()) - r.startMs
    const rate = elapsedMs > 0 ? done / (elapsedMs / 1000) : 0
    lines.push(
      ['full_resync_bytes_done', done], ['full_resync_bytes_total', total],
      ['full_resync_rate_bytes_per_sec', Math.round(rate)],
      ['full_resync_eta_sec', loading && rate > 0 ? ((total - done) / rate).toFixed(1) : '0'],
      ['full_resync_ms', Math.round(elapsedMs)], ['full_resync_reason', r.reason.replace(/[\r\n]/g, ' ')],
    )
    return lines
  }

  /**
   * Writes min(confirmed, flushed) to disk if it moved: recovery makes it
   * visible again. The periodic write (the tick's) does its fsyncs on the
   * thread pool; with `inBackground` false (close) it is durable on return.
   */
  private persistConfirmed(now: number, inBackground = true): void {
    const lsn = Math.min(this.confirmedLsn, this.flushedLsn())
    if (lsn <= this.persistedConfirmedLsn) return
    this.lastPersistMs = now
    if (!inBackground) {
      this.confirmedFile.write(lsn)
      this.persistedConfirmedLsn = lsn
      return
    }
    this.confirmedFile.writeInBackground(lsn).then((done) => {
      if (done && lsn > this.persistedConfirmedLsn) this.persistedConfirmedLsn = lsn
    }, (err: unknown) => {
      // An older value on disk is always safe (it only makes less visible); the next tick tries again.
      this.options.log(`writing the confirmed position failed (retried): ${String(err)}`)
    })
  }

  async close(): Promise<void> {
    this.closed = true
    clearInterval(this.timer)
    this.link.close()
    await this.releases.stop()
    await this.groupCommit.drain()
    this.persistConfirmed(nowMs(), false)
    await this.scheduler.close()
    this.files.close()
  }
}

/** Commit time of the block ending at `lsn` (0 for an empty log: nothing has expired). */
function commitTimeAt(store: SegmentStore, lsn: number): number {
  const start = blockStartEndingAt(store, lsn)
  if (start < 0) return 0
  const segment = store.segmentAt(start)!
  return blockCommitTimeMs(segment.dv, start - segment.baseLsn)
}

/** Live key count recorded in the block ending at `lsn` (0 for an empty log). */
function keyCountAt(store: SegmentStore, lsn: number): number {
  const start = blockStartEndingAt(store, lsn)
  if (start < 0) return 0
  const segment = store.segmentAt(start)!
  return blockKeyCount(segment.dv, start - segment.baseLsn)
}

function resp(args: string[]): string {
  let s = `*${args.length}\r\n`
  for (const a of args) s += `$${Buffer.byteLength(a)}\r\n${a}\r\n`
  return s
}

/**
 * A backup follows its primary's cleaner: it releases exactly the segments
 * the primary released, once it holds what replaced them.
 *
 *   - below the primary's horizon (heartbeats carry it and the LSN after
 *     which the relocations that moved it are in the log);
 *   - holes above it (RELEASE frames name them), each once this backup's
 *     horizon reached the primary's of that moment, so the tombstone rule
 *     is the one the primary applied.
 *
 * "Holds" means flushed and visible here, with no snapshot older than those
 * relocations (a view at that LSN may still follow a chain into the victim).
 * Each release drops the victims' remaining heads (tombstones) from the index
 * first (ReplayScheduler.sweep, with the replay lanes quiet), then the
 * manifest moves (LogFiles), then the memory goes (SegmentStore).
 *
 * Bounded: a primary holds at most a ref window of segments, so more pending
 * ids than segment slots is a broken link (LinkError).
 */
import { nowMs } from '../io/clock.js'
import type { LogFiles } from '../log/log_file.js'
import type { SegmentStore } from '../log/segment_store.js'
import type { ReplayScheduler } from '../replay/scheduler.js'
import { LinkError } from '../ship/receiver.js'

interface PendingHoles {
  horizonLsn: number
  afterLsn: number
  ids: number[]
}

export class Releases {
  /** The primary's horizon and the LSN this backup must hold before releasing below it. */
  primaryHorizonLsn: number
  primaryHorizonAfterLsn: number
  segmentsReleasedTotal: number
  private readonly store: SegmentStore
  private readonly files: LogFiles
  private readonly scheduler: ReplayScheduler
  /** min(flushed, visible) of the backup. */
  private readonly heldLsn: () => number
  private readonly log: (line: string) => void
  /** Holes the primary named that this backup still holds, oldest first. */
  private readonly pending: PendingHoles[]
  private pendingCount: number
  private releasing: boolean
  private lastLogMs: number
  /** Set by stop(): no release starts any more. */
  private stopped: boolean
  private idleWaiters: Array<() => void>

  constructor(store: SegmentStore, files: LogFiles, scheduler: ReplayScheduler, heldLsn: () => number, log: (line: string) => void) {
    this.primaryHorizonLsn = store.horizonLsn()
    this.primaryHorizonAfterLsn = store.horizonLsn()
    this.segmentsReleasedTotal = 0
    this.store = store
    this.files = files
    this.scheduler = scheduler
    this.heldLsn = heldLsn
    this.log = log
    this.pending = []
    this.pendingCount = 0
    this.releasing = false
    this.lastLogMs = 0
    this.stopped = false
    this.idleWaiters = []
  }

  /** No release starts from now on; resolves once the one in progress (if any) is done (the backup stops being one). */
  stop(): Promise<void> {
    this.stopped = true
    if (!this.releasing) return Promise.resolve()
    return new Promise((resolve) => this.idleWaiters.push(resolve))
  }

  private settled(): void {
    this.releasing = false
    if (this.idleWaiters.length === 0) return
    const waiters = this.idleWaiters
    this.idleWaiters = []
    for (const w of waiters) w()
  }

  /** A heartbeat's horizon (it only moves forward). */
  horizon(horizonLsn: number, afterLsn: number): void {
    if (horizonLsn <= this.primaryHorizonLsn) return
    this.primaryHorizonLsn = horizonLsn
    this.primaryHorizonAfterLsn = afterLsn
  }

  /**
   * A RELEASE frame: the primary released `ids` above its horizon. Those this
   * backup never held (past its log: a full resync skips them) become holes
   * at once; those it holds wait until it may release them too.
   */
  named(horizonLsn: number, afterLsn: number, ids: number[]): void {
    const store = this.store
    const ahead = ids.filter((id) => id > store.newestId && !store.holes.has(id))
    if (ahead.length > 0) {
      this.files.releaseHoles(ahead)
      store.releaseHoles(ahead)
    }
    const held = ids.filter((id) => id <= store.newestId && !store.released(id))
    if (held.length === 0) return
    if (this.pendingCount + held.length > store.slotCount) throw new LinkError(`RELEASE frames name more segments than a log holds (${this.pendingCount + held.length})`)
    this.pending.push({ horizonLsn, afterLsn, ids: held })
    this.pendingCount += held.length
    this.maybeRelease()
  }

  /** A full resync: the log restarts empty at `horizon`; nothing is pending. */
  reset(horizon: number): void {
    this.primaryHorizonLsn = horizon
    this.primaryHorizonAfterLsn = horizon
    this.pending.length = 0
    this.pendingCount = 0
  }

  /** Bytes of segments whose release (the primary moved its horizon past them) waits for an open snapshot. */
  pinnedBytes(): number {
    if (this.store.oldestPin() >= this.primaryHorizonAfterLsn || this.primaryHorizonLsn <= this.store.horizonLsn()) return 0
    return this.primaryHorizonLsn - this.store.horizonLsn()
  }

  /** Releases what may go now (called as the backup's positions move). */
  maybeRelease(): void {
    if (this.releasing || this.stopped) return
    const h = this.primaryHorizonLsn
    if (h > this.store.horizonLsn()) {
      if (this.mayRelease(this.primaryHorizonAfterLsn)) this.releaseBelow(h)
      return
    }
    const next = this.pending[0]
    // A hole waits for the horizon the primary had when it made it (tombstones follow the same rule there).
    if (next !== undefined && next.horizonLsn <= this.store.horizonLsn() && this.mayRelease(next.afterLsn)) this.releaseHoles()
  }

  /** Does this backup hold (flushed and visible), with no snapshot below, the relocations that ended at `afterLsn`? */
  private mayRelease(afterLsn: number): boolean {
    return this.heldLsn() >= afterLsn && this.store.oldestPin() >= afterLsn
  }

  private releaseBelow(h: number): void {
    const id = h / this.store.segmentBytes
    this.releasing = true
    this.scheduler.sweep(this.heldBelow(id), h).then(() => {
      const before = this.store.oldestId
      this.files.releaseBelow(id)
      this.segmentsReleasedTotal += this.store.releaseBelow(id)
      this.logRelease(`released segments ${before}..${id - 1} (the primary's horizon is LSN ${h}; ${this.segmentsReleasedTotal} released since start)`)
      this.settled()
      this.maybeRelease()
    }, (err: unknown) => this.releaseFailed(err))
  }

  /** Retained segment ids below `id`. */
  private heldBelow(id: number): number[] {
    const ids: number[] = []
    for (let i = this.store.oldestId; i < id; i++) if (this.store.segment(i) !== undefined) ids.push(i)
    return ids
  }

  /** Releases the oldest pending holes (those still held), as the primary did. */
  private releaseHoles(): void {
    const batch = this.pending.shift()!
    this.pendingCount -= batch.ids.length
    const ids = batch.ids.filter((id) => this.store.segment(id) !== undefined)
    if (ids.length === 0) { this.maybeRelease(); return }
    this.releasing = true
    this.scheduler.sweep(ids, this.store.horizonLsn()).then((swept) => {
      if (swept.length > 0) {
        this.files.releaseHoles(swept)
        this.segmentsReleasedTotal += this.store.releaseHoles(swept)
        this.logRelease(`released segments ${swept.join(',')} (holes the primary's cleaner made; ${this.segmentsReleasedTotal} released since start)`)
      }
      this.settled()
      // A segment with a head that must stay (never, if the primary relocated what it had to) waits for the horizon.
      this.maybeRelease()
    }, (err: unknown) => this.releaseFailed(err))
  }

  /** At most a line a second: under churn a segment goes every few milliseconds. */
  private logRelease(line: string): void {
    const now = nowMs()
    if (now - this.lastLogMs < 1000) return
    this.lastLogMs = now
    this.log(line)
  }

  private releaseFailed(err: unknown): void {
    this.log(`FATAL: releasing segments failed: ${String(err)}`)
    process.exit(70)
  }
}

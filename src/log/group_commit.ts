/**
 * Group commit: one write + fdatasync per batch of sealed blocks, while the
 * next batch accumulates. submit(end) marks the log sealed up to `end`; at
 * most one flush is in flight; when it completes, `durableLsn` advances and
 * onDurable fires, and everything sealed meanwhile goes out in the next flush.
 * A failed write or fsync is fatal for the process (the page cache can no
 * longer be trusted; recovery on restart cuts to the last whole block), so
 * nothing acknowledged as durable is ever lost.
 */
import type { LogFiles } from './log_file.js'
import type { SegmentStore } from './segment_store.js'

export class GroupCommit {
  durableLsn: number
  sealedLsn: number
  inFlight: boolean
  flushCount: number
  onDurable: ((lsn: number) => void) | null
  onFatal: (err: unknown) => void
  private readonly files: LogFiles
  private readonly store: SegmentStore
  private idleWaiters: Array<() => void>

  constructor(files: LogFiles, store: SegmentStore, durableLsn: number, onFatal: (err: unknown) => void) {
    this.files = files
    this.store = store
    this.durableLsn = durableLsn
    this.sealedLsn = durableLsn
    this.inFlight = false
    this.flushCount = 0
    this.onDurable = null
    this.onFatal = onFatal
    this.idleWaiters = []
  }

  submit(endLsn: number): void {
    if (endLsn > this.sealedLsn) this.sealedLsn = endLsn
    if (!this.inFlight) this.flush()
  }

  private flush(): void {
    const from = this.durableLsn
    const to = this.sealedLsn
    if (to <= from) {
      const waiters = this.idleWaiters
      this.idleWaiters = []
      for (const w of waiters) w()
      return
    }
    this.inFlight = true
    this.files.write(this.store, from, to).then(() => {
      this.inFlight = false
      this.flushCount++
      this.durableLsn = to
      if (this.onDurable !== null) this.onDurable(to)
      this.flush()
    }, (err) => {
      this.inFlight = false
      this.onFatal(err)
    })
  }

  /** Backup only, once drained (nothing in flight): the log was cut back to `lsn`. */
  cut(lsn: number): void {
    if (this.durableLsn > lsn) this.durableLsn = lsn
    if (this.sealedLsn > lsn) this.sealedLsn = lsn
  }

  /** Backup only, once drained: the log restarts empty at `lsn` (a full resync). */
  resetTo(lsn: number): void {
    this.durableLsn = lsn
    this.sealedLsn = lsn
  }

  /** Resolves once everything submitted so far is durable. */
  drain(): Promise<void> {
    if (!this.inFlight && this.durableLsn >= this.sealedLsn) return Promise.resolve()
    return new Promise((resolve) => this.idleWaiters.push(resolve))
  }
}

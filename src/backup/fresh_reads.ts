/**
 * A backup's side of the freshness contract (server/freshness.ts): reads
 * parked until the backup is fresh enough for them, settled as replay makes
 * blocks visible and on every tick, like WAITLSN's waits. A parked read holds
 * its own copy of its arguments and runs when it may; past its budget it is
 * answered -STALE. When the backup stops being one (promotion, a cut), every
 * parked read is answered -STALE at once.
 */
import { nowMs } from '../io/clock.js'
import type { Args } from '../server/args.js'
import { BlockedWaits, type BlockedWait } from '../server/blocked_waits.js'
import type { Session } from '../server/commands.js'
import { staleError, type Freshness, type FreshnessGate } from '../server/freshness.js'

/** What the gate reads of its backup. */
export interface FreshnessStatus {
  appliedLsn(): number
  /** The staleness bound a MAXLAG contract is held to (Backup.stalenessMs). */
  stalenessMs(): number
  readonly linkUp: boolean
}

interface ParkedRead { f: Freshness, args: Args, run: (args: Args) => void }

export class FreshReads implements FreshnessGate {
  private readonly waits: BlockedWaits
  private readonly parked: Map<Session, ParkedRead>
  private readonly status: FreshnessStatus

  constructor(status: FreshnessStatus) {
    this.waits = new BlockedWaits()
    this.parked = new Map()
    this.status = status
  }

  get size(): number {
    return this.waits.size
  }

  fresh(f: Freshness): boolean {
    return this.status.appliedLsn() >= f.minLsn && this.status.stalenessMs() <= f.maxLagMs
  }

  park(s: Session, f: Freshness, args: Args, run: (args: Args) => void): void {
    if (f.waitMs === 0) { s.conn.out.error(this.stale(f)); return }
    this.parked.set(s, { f, args, run })
    this.waits.park(s, f.minLsn, 0, f.waitMs, () => this.check())
  }

  /** Runs the parked reads that are fresh now; answers those past their budget. */
  check(now = nowMs()): void {
    this.settle(now, true, (p) => this.stale(p.f))
  }

  /** Answers every parked read -STALE: `why` nothing more will arrive. */
  fail(why: string): void {
    this.settle(Number.POSITIVE_INFINITY, false, (p) => `${this.stale(p.f)} (${why})`)
  }

  /** Runs the fresh parked reads (when `run`) and answers those past `now`'s deadline with `error`. */
  private settle(now: number, run: boolean, error: (p: ParkedRead) => string): void {
    const take = (w: BlockedWait): ParkedRead => {
      const p = this.parked.get(w.session)!
      this.parked.delete(w.session)
      return p
    }
    this.waits.settle(now, (w) => {
      if (!run || !this.fresh(this.parked.get(w.session)!.f)) return false
      const p = take(w)
      p.run(p.args)
      return true
    }, (w) => w.session.conn.out.error(error(take(w))))
    // A closed connection's wait is dropped unanswered: so is its read.
    if (this.parked.size > this.waits.size) for (const s of this.parked.keys()) if (s.conn.closed) this.parked.delete(s)
  }

  private stale(f: Freshness): string {
    return staleError(f, this.status.appliedLsn(), this.status.stalenessMs(), this.status.linkUp)
  }
}

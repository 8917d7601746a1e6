/**
 * WAITLSN lsn timeout-ms on a backup: parks the connection until the applied
 * LSN reaches `lsn` (answered with the applied LSN) or the timeout passes
 * (a TIMEOUT error saying how far behind the backup is and why). Settled as
 * replay makes blocks visible and on every tick; when the backup stops being
 * one (promotion, a cut that reopens it), every wait is answered at once.
 */
import { nowMs } from '../io/clock.js'
import { argInt } from '../server/args.js'
import { BlockedWaits } from '../server/blocked_waits.js'
import { F_BLOCKING, type CommandSpec } from '../server/commands.js'

/** What a wait reads of its backup. */
export interface LsnWaitStatus {
  appliedLsn(): number
  readonly linkUp: boolean
  readonly primaryCommitLsn: number
}

export class LsnWaits {
  private readonly waits: BlockedWaits
  private readonly status: LsnWaitStatus

  constructor(status: LsnWaitStatus) {
    this.waits = new BlockedWaits()
    this.status = status
  }

  get size(): number {
    return this.waits.size
  }

  command(): CommandSpec {
    return {
      name: 'waitlsn', arity: 3, flags: F_BLOCKING,
      run: (s, a) => {
        const lsn = argInt(a, 1)
        const timeoutMs = argInt(a, 2)
        if (!(lsn >= 0) || !(timeoutMs >= 0)) { s.conn.out.error('ERR value is not an integer or out of range'); return }
        const applied = this.status.appliedLsn()
        if (applied >= lsn) { s.conn.out.integer(applied); return }
        this.waits.park(s, lsn, 0, timeoutMs, () => this.check())
      },
    }
  }

  /** Answers the waits that are done or past their deadline. */
  check(now = nowMs()): void {
    const st = this.status
    this.settle(now, (applied, target) => `TIMEOUT applied_lsn ${applied} is ${target - applied} bytes behind LSN ${target} (link ${st.linkUp ? 'up' : 'down'}, primary commit LSN ${st.primaryCommitLsn})`)
  }

  /** Answers every wait now: reached, or a TIMEOUT error saying `why` nothing more will arrive. */
  fail(why: string): void {
    this.settle(Number.POSITIVE_INFINITY, (applied, target) => `TIMEOUT applied_lsn ${applied} is ${target - applied} bytes behind LSN ${target}: ${why}`)
  }

  private settle(now: number, timeout: (applied: number, target: number) => string): void {
    const applied = this.status.appliedLsn()
    this.waits.settle(now, (w) => {
      if (applied < w.target) return false
      w.session.conn.out.integer(applied)
      return true
    }, (w) => w.session.conn.out.error(timeout(applied, w.target)))
  }
}

/**
 * Connections parked by a blocking command (WAIT on a primary, WAITLSN on a
 * backup) until their condition holds or their deadline passes. The owner
 * calls settle() whenever the condition may have changed (an ACK, a replay
 * step, a tick); a wait's own timer calls its recheck at the deadline. Bounded
 * by the connections: each parked connection holds one wait and reads no
 * further input until it is answered.
 */
import { nowMs } from '../io/clock.js'
import type { Session } from './commands.js'

export interface BlockedWait {
  readonly session: Session
  /** The position the command waits for (an LSN). */
  readonly target: number
  /** WAIT's number of backups; 0 for WAITLSN. */
  readonly count: number
  readonly deadline: number
  timer: NodeJS.Timeout | null
}

export class BlockedWaits {
  private waits: BlockedWait[]

  constructor() {
    this.waits = []
  }

  get size(): number {
    return this.waits.length
  }

  /** Parks the session's connection (timeoutMs 0: no deadline); `recheck` runs when the deadline passes. */
  park(s: Session, target: number, count: number, timeoutMs: number, recheck: () => void): void {
    const w: BlockedWait = { session: s, target, count, deadline: timeoutMs === 0 ? Number.POSITIVE_INFINITY : nowMs() + timeoutMs, timer: null }
    if (timeoutMs > 0) w.timer = setTimeout(recheck, timeoutMs + 1)
    this.waits.push(w)
    s.server.block(s.conn)
  }

  /**
   * Answers the waits that are done (`answer` writes the reply and returns
   * true) or past their deadline (`expire` writes the reply), and unblocks
   * their connections; the others keep waiting. A closed connection's wait is
   * dropped.
   */
  settle(now: number, answer: (w: BlockedWait) => boolean, expire: (w: BlockedWait) => void): void {
    const still: BlockedWait[] = []
    for (const w of this.waits) {
      const conn = w.session.conn
      if (!conn.closed) {
        if (!answer(w)) {
          if (now < w.deadline) { still.push(w); continue }
          expire(w)
        }
      }
      if (w.timer !== null) clearTimeout(w.timer)
      if (!conn.closed) w.session.server.unblock(conn)
    }
    this.waits = still
  }
}

/**
 * The freshness contract of a read (FRESHET.FRESHNESS for a connection,
 * FRESHET.READ for one command): "at most N ms stale", "at least LSN x", or
 * both, with a wait budget. A backup runs a read only once it is that fresh:
 * at once if it is, after waiting (its connection parked, as WAITLSN parks
 * one) if it becomes so within the budget, and otherwise answers `-STALE`
 * with how far behind it is, so the client can read from the primary. "At
 * most N ms stale" is held to the backup's staleness bound (staleness_ms:
 * every write committed more than that long ago is visible). A primary is
 * always fresh. Every read command is held to it, and EXEC (a
 * transaction's reads).
 */
import { argIs, parseInt64Bytes, type Args } from './args.js'
import type { Session } from './commands.js'

export interface Freshness {
  /** The most staleness (ms: the backup's staleness_ms, a bound) a read may see; Infinity: any. */
  maxLagMs: number
  /** The applied LSN a read needs at least; 0: any. */
  minLsn: number
  /** How long a read may wait to become fresh (ms); 0: answer -STALE at once. */
  waitMs: number
}

/** What a role does with a read under a contract (a backup; a primary has none: always fresh). */
export interface FreshnessGate {
  fresh(f: Freshness): boolean
  /** Parks `s`'s connection until `run(args)` may go (args are the command's own copy), or answers -STALE. */
  park(s: Session, f: Freshness, args: Args, run: (args: Args) => void): void
}

/** FRESHET.FRESHNESS's and FRESHET.READ's upper bound on WAIT, ms. */
export const FRESHNESS_WAIT_MS_MAX = 60_000

/**
 * Parses `MAXLAG ms`, `MINLSN lsn` and `WAIT ms` pairs from argument `from`
 * on, stopping at the first argument that is none of them (FRESHET.READ's
 * command) or at `end`. Returns the contract and where parsing stopped, or
 * null (the error reply written) for a bad value or a contract that asks for
 * nothing.
 */
export function parseFreshness(s: Session, a: Args, from: number, end: number): { f: Freshness, next: number } | null {
  const f: Freshness = { maxLagMs: Number.POSITIVE_INFINITY, minLsn: 0, waitMs: 0 }
  let i = from
  let any = false
  for (; i + 1 < end; i += 2) {
    const which = argIs(a, i, 'maxlag') ? 1 : argIs(a, i, 'minlsn') ? 2 : argIs(a, i, 'wait') ? 3 : 0
    if (which === 0) break
    const big = parseInt64Bytes(a.data, a.argStart[i + 1], a.argLength[i + 1])
    const v = big === null ? -1 : Number(big)
    if (!(v >= 0) || !Number.isSafeInteger(v) || (which === 3 && v > FRESHNESS_WAIT_MS_MAX)) {
      s.conn.out.error(which === 3 ? `ERR WAIT must be an integer from 0 to ${FRESHNESS_WAIT_MS_MAX} ms` : 'ERR value is not an integer or out of range')
      return null
    }
    if (which === 1) { f.maxLagMs = v; any = true } else if (which === 2) { f.minLsn = v; any = true } else f.waitMs = v
  }
  if (!any) {
    s.conn.out.error('ERR syntax error: give MAXLAG ms and/or MINLSN lsn, optionally WAIT ms')
    return null
  }
  return { f, next: i }
}

/** The -STALE reply: how far behind the backup is against what the read asked. */
export function staleError(f: Freshness, appliedLsn: number, stalenessMs: number, linkUp: boolean): string {
  const wanted = [Number.isFinite(f.maxLagMs) ? `staleness_ms <= ${f.maxLagMs}` : '', f.minLsn > 0 ? `applied_lsn >= ${f.minLsn}` : ''].filter((x) => x !== '').join(' and ')
  return `STALE applied_lsn ${appliedLsn} staleness_ms ${Number.isFinite(stalenessMs) ? stalenessMs.toFixed(3) : 'unknown'} link ${linkUp ? 'up' : 'down'}: wanted ${wanted} within ${f.waitMs} ms; read from the primary`
}

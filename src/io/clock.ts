/**
 * The node's one clock: wall-clock milliseconds since the Unix epoch, with
 * sub-millisecond resolution (performance.timeOrigin + performance.now(), so
 * intervals measured with it are monotonic within a process). Block commit
 * times, lag, timeouts, INFO times, snapshot times and key expiry all read it
 * here, so tests control time in one place: advanceClock() (DEBUG
 * ADVANCE-CLOCK from a loopback connection) moves it forward, never back, so
 * it stays monotonic and a test of a TTL need not sleep for it.
 */
let advancedMs = 0

export function nowMs(): number {
  return performance.timeOrigin + performance.now() + advancedMs
}

/** Moves this process's clock forward by `ms` (a test's controlled time). */
export function advanceClock(ms: number): void {
  if (!(ms >= 0)) throw new RangeError('the clock only moves forward')
  advancedMs += ms
}

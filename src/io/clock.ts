/**
 * The node's one clock: wall-clock milliseconds since the Unix epoch, with
 * sub-millisecond resolution (performance.timeOrigin + performance.now(), so
 * intervals measured with it are monotonic within a process). Block commit
 * times, lag, timeouts, INFO times and snapshot times all read it here, so
 * there is one place to substitute a controlled clock (key expiry's tests
 * will need one) rather than fifty calls to Date.now() and performance.now().
 */
export function nowMs(): number {
  return performance.timeOrigin + performance.now()
}

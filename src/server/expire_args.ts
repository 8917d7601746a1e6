/**
 * The arguments of key expiry, shared by SET (commands.ts) and the expiry
 * commands (expire_commands.ts): an expire time as an absolute integer ms
 * time, with Redis's error replies, and SET's options. A leaf module: it
 * imports only the argument parsers, so commands.ts can use it.
 */
import { type Args, argIs, argString, parseInt64Bytes } from './args.js'
import type { Session } from './commands.js'

const ERR_NOT_INTEGER = 'ERR value is not an integer or out of range'
const ERR_SYNTAX = 'ERR syntax error'

/**
 * The largest absolute expiry time a version carries (exact in an f64): a
 * later one (Redis takes any int64 ms time, up to 292 million years) is kept
 * as this one, some 285,000 years from now; PEXPIRETIME then shows this.
 */
const EXPIRE_AT_MS_MAX = Number.MAX_SAFE_INTEGER
const LLONG_MAX = 2n ** 63n - 1n
const LLONG_MIN = -(2n ** 63n)

/** The clock expiry is decided by on the primary: integer ms, as Redis's. */
export function nowMsInt(s: Session): number {
  return Math.floor(s.node.view.nowMs())
}

function invalidExpire(s: Session, command: string): void {
  s.conn.out.error(`ERR invalid expire time in '${command}' command`)
}

/**
 * An expire argument as an absolute ms time: `value` in `unit` (s or ms),
 * relative to now or absolute. Null (and the reply written) if it is not an
 * integer, is not positive (when `positive`), or overflows int64 as Redis
 * computes it (seconds times 1000, plus now): the int64 range is Redis's, so
 * a time far in the past (any negative one) is simply past: the key goes.
 * Argument parsing, once per command: BigInt is fine here.
 */
export function expireAtArg(s: Session, a: Args, i: number, seconds: boolean, relative: boolean, command: string, positive: boolean): number | null {
  let v = parseInt64Bytes(a.data, a.argStart[i], a.argLength[i])
  if (v === null) { s.conn.out.error(ERR_NOT_INTEGER); return null }
  if (positive && v <= 0n) { invalidExpire(s, command); return null }
  if (seconds) {
    if (v > LLONG_MAX / 1000n || v < LLONG_MIN / 1000n) { invalidExpire(s, command); return null }
    v *= 1000n
  }
  if (relative) {
    const base = BigInt(nowMsInt(s))
    if (v > LLONG_MAX - base) { invalidExpire(s, command); return null }
    v += base
  }
  return v > BigInt(EXPIRE_AT_MS_MAX) ? EXPIRE_AT_MS_MAX : Number(v)
}

/** The options of SET after the value. */
export interface SetOptions {
  nx: boolean
  xx: boolean
  get: boolean
  keepTtl: boolean
  /** Absolute expiry (ms), 0 for none. */
  expireAtMs: number
}

/**
 * SET's options from argument `from` on, as Redis parses them (an option
 * that conflicts with one already given is a syntax error). Null when the
 * reply (an error) was written.
 */
export function parseSetOptions(s: Session, a: Args, from: number): SetOptions | null {
  const o: SetOptions = { nx: false, xx: false, get: false, keepTtl: false, expireAtMs: 0 }
  let unit: 'ex' | 'px' | 'exat' | 'pxat' | '' = ''
  let at = -1
  for (let i = from; i < a.argc; i++) {
    const last = i + 1 >= a.argc
    if (argIs(a, i, 'nx') && !o.xx) o.nx = true
    else if (argIs(a, i, 'xx') && !o.nx) o.xx = true
    else if (argIs(a, i, 'get')) o.get = true
    else if (argIs(a, i, 'keepttl') && unit === '') o.keepTtl = true
    else if (!last && !o.keepTtl && (unit === '' || argIs(a, i, unit)) && (argIs(a, i, 'ex') || argIs(a, i, 'px') || argIs(a, i, 'exat') || argIs(a, i, 'pxat'))) {
      unit = argString(a, i).toLowerCase() as typeof unit
      at = ++i
    } else { s.conn.out.error(ERR_SYNTAX); return null }
  }
  if (unit !== '') {
    const when = expireAtArg(s, a, at, unit === 'ex' || unit === 'exat', unit === 'ex' || unit === 'px', 'set', true)
    if (when === null) return null
    o.expireAtMs = when
  }
  return o
}


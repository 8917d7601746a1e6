/**
 * Key expiry, with Redis's semantics and error replies: SET's EX/PX/EXAT/
 * PXAT/KEEPTTL (parsed here for set()), SETEX, PSETEX, GETEX, EXPIRE/
 * PEXPIRE/EXPIREAT/PEXPIREAT with NX/XX/GT/LT, TTL, PTTL, EXPIRETIME,
 * PEXPIRETIME and PERSIST.
 *
 * An expiry is a property of a version: the log records the absolute time
 * (ms since the Unix epoch, an integer; relative TTLs are made absolute on
 * the primary, as Redis 7 does before propagating). Changing a key's expiry
 * writes a new version of the same value with the new time (or none). A
 * time already past deletes the key (a delete op), as Redis does. Reads
 * decide at their view's time (view/read_view.ts); the primary's active
 * cycle (primary/expiry.ts) logs the deletes of keys that expired untouched.
 * Times past 2^53 ms (far beyond any clock) are refused as invalid.
 */
import { OP_TYPE_DELETE, OP_TYPE_SET, REF_NONE } from '../constants.js'
import { type Args, argIs, argString } from './args.js'
import { F_READ, F_WRITE, lookupArg, opBound, recordWrite, valueMax, type CommandSpec, type Session } from './commands.js'
import { currentLength, ERR_SYNTAX, probeLive } from './string_commands.js'
import { expireAtArg, nowMsInt } from './expire_args.js'

/** Writes the key of argument `k` with the value of argument `v`, expiring at `expireAtMs` (0: never). */
function writeArgs(s: Session, a: Args, k: number, v: number, expireAtMs: number): void {
  s.node.writer!.writeProbed(OP_TYPE_SET, a.data, a.argStart[k], a.argLength[k], a.data, a.argStart[v], a.argLength[v], null, 0, 0, expireAtMs)
  recordWrite(s)
}

/** Rewrites the live version `ref` of the key of argument `k` with expiry `expireAtMs` (0: none); a time already past deletes the key. */
function reExpire(s: Session, a: Args, k: number, ref: number, expireAtMs: number): void {
  const w = s.node.writer!
  if (expireAtMs > 0 && expireAtMs <= nowMsInt(s)) {
    w.writeProbed(OP_TYPE_DELETE, a.data, a.argStart[k], a.argLength[k], null, 0, 0, null, 0, 0)
  } else {
    const c = s.node.view.locate(ref)
    w.writeProbed(OP_TYPE_SET, a.data, a.argStart[k], a.argLength[k], c.u8, c.valueStart, c.valueLength, null, 0, 0, expireAtMs)
  }
  recordWrite(s)
}

function setex(s: Session, a: Args, seconds: boolean): void {
  const command = seconds ? 'setex' : 'psetex'
  const when = expireAtArg(s, a, 2, seconds, true, command, true)
  if (when === null) return
  probeLive(s, a, 1)
  writeArgs(s, a, 1, 3, when)
  s.conn.out.simple('OK')
}

function getex(s: Session, a: Args): void {
  let unit = ''
  let at = -1
  let persist = false
  for (let i = 2; i < a.argc; i++) {
    const last = i + 1 >= a.argc
    if (argIs(a, i, 'persist') && unit === '') persist = true
    else if (!last && !persist && (unit === '' || argIs(a, i, unit)) && (argIs(a, i, 'ex') || argIs(a, i, 'px') || argIs(a, i, 'exat') || argIs(a, i, 'pxat'))) {
      unit = argString(a, i).toLowerCase()
      at = ++i
    } else { s.conn.out.error(ERR_SYNTAX); return }
  }
  let when = 0
  if (unit !== '') {
    const w = expireAtArg(s, a, at, unit === 'ex' || unit === 'exat', unit === 'ex' || unit === 'px', 'getex', true)
    if (w === null) return
    when = w
  }
  const ref = probeLive(s, a, 1)
  if (ref === REF_NONE) { s.conn.out.nullBulk(); return }
  const c = s.node.view.locate(ref)
  s.conn.out.bulk(c.u8, c.valueStart, c.valueLength) // copied out before a new version is written
  if (unit !== '') reExpire(s, a, 1, ref, when)
  else if (persist && s.node.view.expiryOf(ref) > 0) reExpire(s, a, 1, ref, 0)
}

function expire(s: Session, a: Args, seconds: boolean, relative: boolean, command: string): void {
  let nx = false; let xx = false; let gt = false; let lt = false
  for (let i = 3; i < a.argc; i++) {
    if (argIs(a, i, 'nx')) nx = true
    else if (argIs(a, i, 'xx')) xx = true
    else if (argIs(a, i, 'gt')) gt = true
    else if (argIs(a, i, 'lt')) lt = true
    else { s.conn.out.error(`ERR Unsupported option ${argString(a, i)}`); return }
  }
  if (nx && (xx || gt || lt)) { s.conn.out.error('ERR NX and XX, GT or LT options at the same time are not compatible'); return }
  if (gt && lt) { s.conn.out.error('ERR GT and LT options at the same time are not compatible'); return }
  const when = expireAtArg(s, a, 2, seconds, relative, command, false)
  if (when === null) return
  const ref = probeLive(s, a, 1)
  if (ref === REF_NONE) { s.conn.out.integer(0); return }
  const current = s.node.view.expiryOf(ref)
  // No expiry counts as infinite: GT never passes it, LT always does.
  if ((nx && current > 0) || (xx && current === 0) || (gt && (current === 0 || when <= current)) || (lt && current > 0 && when >= current)) {
    s.conn.out.integer(0)
    return
  }
  reExpire(s, a, 1, ref, when > 0 ? when : 1)
  s.conn.out.integer(1)
}

/** TTL, PTTL, EXPIRETIME, PEXPIRETIME: -2 for no key, -1 for no expiry. */
function ttl(s: Session, a: Args, ms: boolean, absolute: boolean): void {
  const ref = lookupArg(s, a, 1)
  if (ref === REF_NONE) { s.conn.out.integer(-2); return }
  const at = s.node.view.expiryOf(ref)
  if (at === 0) { s.conn.out.integer(-1); return }
  if (absolute) { s.conn.out.integer(ms ? at : Math.floor(at / 1000)); return }
  const left = Math.max(0, at - nowMsInt(s))
  s.conn.out.integer(ms ? left : Math.floor((left + 500) / 1000))
}

function persist(s: Session, a: Args): void {
  const ref = probeLive(s, a, 1)
  if (ref === REF_NONE || s.node.view.expiryOf(ref) === 0) { s.conn.out.integer(0); return }
  reExpire(s, a, 1, ref, 0)
  s.conn.out.integer(1)
}

/**
 * Bound of a command that rewrites the value of argument 1 with a new
 * expiry: its current value, which earlier commands of the same transaction
 * may have grown by at most `extra` bytes (what the transaction writes).
 */
function rewriteBound(s: Session, a: Args, extra: number): number {
  return opBound(a.argLength[1], Math.min(currentLength(s, a, 1) + extra, valueMax(s)), valueMax(s))
}

export const EXPIRE_COMMANDS: CommandSpec[] = [
  { name: 'setex', arity: 4, flags: F_WRITE, bound: (s, a) => opBound(a.argLength[1], a.argLength[3], valueMax(s)), run: (s, a) => setex(s, a, true) },
  { name: 'psetex', arity: 4, flags: F_WRITE, bound: (s, a) => opBound(a.argLength[1], a.argLength[3], valueMax(s)), run: (s, a) => setex(s, a, false) },
  { name: 'getex', arity: -2, flags: F_WRITE, bound: rewriteBound, run: getex },
  { name: 'expire', arity: -3, flags: F_WRITE, bound: rewriteBound, run: (s, a) => expire(s, a, true, true, 'expire') },
  { name: 'pexpire', arity: -3, flags: F_WRITE, bound: rewriteBound, run: (s, a) => expire(s, a, false, true, 'pexpire') },
  { name: 'expireat', arity: -3, flags: F_WRITE, bound: rewriteBound, run: (s, a) => expire(s, a, true, false, 'expireat') },
  { name: 'pexpireat', arity: -3, flags: F_WRITE, bound: rewriteBound, run: (s, a) => expire(s, a, false, false, 'pexpireat') },
  { name: 'persist', arity: 2, flags: F_WRITE, bound: rewriteBound, run: persist },
  { name: 'ttl', arity: 2, flags: F_READ, run: (s, a) => ttl(s, a, false, false) },
  { name: 'pttl', arity: 2, flags: F_READ, run: (s, a) => ttl(s, a, true, false) },
  { name: 'expiretime', arity: 2, flags: F_READ, run: (s, a) => ttl(s, a, false, true) },
  { name: 'pexpiretime', arity: 2, flags: F_READ, run: (s, a) => ttl(s, a, true, true) },
]

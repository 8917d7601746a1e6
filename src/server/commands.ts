/**
 * The command table: arity, flags, and for writes a byte bound (so that all
 * of a command's ops, or a whole MULTI, are reserved in one block before
 * anything is written: a transaction is all-or-nothing in the log).
 *
 * Handlers read through node.view (a ReadView at the node's visible LSN) and
 * write through node.writer (the primary; null on a backup, where write
 * commands answer -READONLY before reaching a handler).
 */
import { KEY_BYTES_MAX, OP_TYPE_DELETE, OP_TYPE_SET, REF_NONE } from '../constants.js'
import { DbError, dbError } from '../errors.js'
import { opBytes } from '../codec/record.js'
import { nowMs } from '../io/clock.js'
import { parseSetOptions } from './expire_args.js'
import { type Args, argInt, argIs, argString, globMatch, INT64_MAX, INT64_MIN, parseInt64Bytes, parseIntBytes } from './args.js'
import type { Connection } from './connection.js'
import type { ServedNode } from '../node.js'
import type { RespServer } from './server.js'

export const F_WRITE = 1
export const F_READ = 2
export const F_NOAUTH = 4
/** Not queued inside MULTI (executes immediately). */
export const F_MULTI_CONTROL = 8
/** Blocks or ends the connection (WAIT, WAITLSN, MONITOR, SHUTDOWN): refused inside MULTI. */
export const F_BLOCKING = 16
/** The reply reflects the whole keyspace (DBSIZE, SCAN): it waits for every write before it. */
export const F_OBSERVES_ALL = 32
/** Administrative (CONFIG, DEBUG, MONITOR, SHUTDOWN): not echoed to MONITOR, as in Redis. */
export const F_ADMIN = 64
/** A write that only removes or moves data (DEL, FLUSHALL, RENAME): allowed past maxmemory, as Redis allows it. */
export const F_MAY_FREE = 128

export interface CommandSpec {
  name: string
  /** Redis convention: n > 0 exact argc, n < 0 at least -n. */
  arity: number
  flags: number
  /** For writes: bytes all of its ops may take in the log (validates sizes; throws DbError). */
  bound?: (s: Session, a: Args, extra: number) => number
  run: (s: Session, a: Args) => void
  /** Times run and error replies, since start (INFO commandstats, /metrics); kept by the server. */
  calls?: number
  failed?: number
}

/**
 * What a handler sees: the server, the connection (its reply writer), and
 * the node the server serves now (read at each use, so a role change is
 * served at once).
 */
export class Session {
  readonly server: RespServer
  readonly conn: Connection

  constructor(server: RespServer, conn: Connection) {
    this.server = server
    this.conn = conn
  }

  get node(): ServedNode {
    return this.server.node
  }
}

const scratch = Buffer.allocUnsafe(64)

export function opBound(keyLength: number, valueLength: number, valueBytesMax: number): number {
  if (keyLength > KEY_BYTES_MAX) throw dbError('KEY_TOO_LARGE', `key is larger than ${KEY_BYTES_MAX} bytes`)
  if (valueLength > valueBytesMax) throw dbError('VALUE_TOO_LARGE', 'string exceeds maximum allowed size (proto-max-bulk-len)')
  // Room for an expiry time too: whether the version keeps or gets one is decided when it is written.
  return opBytes(keyLength, valueLength, true)
}

/** The largest value this node stores (the bound every write checks). */
export function valueMax(s: Session): number {
  return s.server.options.valueBytesMax
}

function replyValue(s: Session, ref: number): void {
  if (ref === REF_NONE) { s.conn.out.nullBulk(); return }
  const c = s.node.view.locate(ref)
  s.conn.out.bulk(c.u8, c.valueStart, c.valueLength)
}

/** The live value's ref of key argument i (a visible set version), or REF_NONE. */
export function lookupArg(s: Session, a: Args, i: number): number {
  return s.node.view.lookup(a.data, a.argStart[i], a.argLength[i])
}

function get(s: Session, a: Args): void {
  replyValue(s, s.node.view.lookup(a.data, a.argStart[1], a.argLength[1]))
}

/** Notes which block holds the connection's newest write (for LSN and WAIT). */
export function recordWrite(s: Session): void {
  s.conn.lastWriteBlockStart = s.node.writer!.lastOpBlockStart()
}

/** Writes the key of argument k with the value of argument v, expiring at `expireAtMs` (0: never; SET and GETSET clear a TTL). */
function setValue(s: Session, a: Args, k: number, v: number, expireAtMs = 0): void {
  const w = s.node.writer!
  w.writeProbed(OP_TYPE_SET, a.data, a.argStart[k], a.argLength[k], a.data, a.argStart[v], a.argLength[v], null, 0, 0, expireAtMs)
  recordWrite(s)
}

/** The expiry a rewrite of the live version `ref` keeps (INCR, APPEND, SETRANGE, ... keep a key's TTL, as Redis does). */
export function keptExpiry(s: Session, ref: number): number {
  return ref === REF_NONE ? 0 : s.node.view.expiryOf(ref)
}

function set(s: Session, a: Args): void {
  const o = parseSetOptions(s, a, 3)
  if (o === null) return
  const w = s.node.writer!
  const head = w.probe(a.data, a.argStart[1], a.argLength[1])
  const live = head !== REF_NONE && s.node.view.isSet(head)
  if ((o.nx && live) || (o.xx && !live)) {
    if (o.get) replyValue(s, live ? head : REF_NONE)
    else s.conn.out.nullBulk()
    return
  }
  if (o.get) replyValue(s, live ? head : REF_NONE) // copied out before the new version is written
  setValue(s, a, 1, 2, o.keepTtl && live ? keptExpiry(s, head) : o.expireAtMs)
  if (!o.get) s.conn.out.raw(OK)
}

function getset(s: Session, a: Args): void {
  const w = s.node.writer!
  const head = w.probe(a.data, a.argStart[1], a.argLength[1])
  replyValue(s, head !== REF_NONE && s.node.view.isSet(head) ? head : REF_NONE)
  setValue(s, a, 1, 2)
}

function del(s: Session, a: Args): void {
  const w = s.node.writer!
  let n = 0
  for (let i = 1; i < a.argc; i++) {
    const head = w.probe(a.data, a.argStart[i], a.argLength[i])
    if (head === REF_NONE || !s.node.view.isSet(head)) continue
    w.writeProbed(OP_TYPE_DELETE, a.data, a.argStart[i], a.argLength[i], null, 0, 0, null, 0, 0)
    recordWrite(s)
    n++
  }
  s.conn.out.integer(n)
}

/** TIME: the node's clock (the one expiry reads) as [unix seconds, microseconds], as Redis answers it. */
function time(s: Session): void {
  const us = Math.floor(nowMs() * 1000)
  s.conn.out.arrayHeader(2)
  s.conn.out.bulkString(String(Math.floor(us / 1e6)))
  s.conn.out.bulkString(String(us % 1e6))
}

/** EXISTS (and TOUCH, which counts the same way: freshet keeps no access times). */
export function exists(s: Session, a: Args): void {
  let n = 0
  for (let i = 1; i < a.argc; i++) if (s.node.view.lookup(a.data, a.argStart[i], a.argLength[i]) !== REF_NONE) n++
  s.conn.out.integer(n)
}

function mget(s: Session, a: Args): void {
  s.conn.out.arrayHeader(a.argc - 1)
  for (let i = 1; i < a.argc; i++) replyValue(s, s.node.view.lookup(a.data, a.argStart[i], a.argLength[i]))
}

function mset(s: Session, a: Args): void {
  const w = s.node.writer!
  for (let i = 1; i < a.argc; i += 2) {
    w.probe(a.data, a.argStart[i], a.argLength[i])
    setValue(s, a, i, i + 1)
  }
  s.conn.out.raw(OK)
}

function msetnx(s: Session, a: Args): void {
  for (let i = 1; i < a.argc; i += 2) {
    if (s.node.view.lookup(a.data, a.argStart[i], a.argLength[i]) !== REF_NONE) { s.conn.out.integer(0); return }
  }
  const w = s.node.writer!
  for (let i = 1; i < a.argc; i += 2) {
    w.probe(a.data, a.argStart[i], a.argLength[i])
    setValue(s, a, i, i + 1)
  }
  s.conn.out.integer(1)
}

function incrBy(s: Session, a: Args, delta: number, deltaBig: bigint | null): void {
  const w = s.node.writer!
  const head = w.probe(a.data, a.argStart[1], a.argLength[1])
  let current = 0
  let currentBig: bigint | null = null
  if (head !== REF_NONE && s.node.view.isSet(head)) {
    const c = s.node.view.locate(head)
    current = parseIntBytes(c.u8, c.valueStart, c.valueLength)
    if (Number.isNaN(current)) {
      currentBig = parseInt64Bytes(c.u8, c.valueStart, c.valueLength)
      if (currentBig === null) { s.conn.out.error('ERR value is not an integer or out of range'); return }
    }
  }
  let text: string
  const sum = current + delta
  if (currentBig === null && deltaBig === null && Number.isSafeInteger(sum)) {
    text = String(sum)
  } else {
    const big = (currentBig ?? BigInt(current)) + (deltaBig ?? BigInt(delta))
    if (big > INT64_MAX || big < INT64_MIN) { s.conn.out.error('ERR increment or decrement would overflow'); return }
    text = big.toString()
  }
  const n = scratch.write(text, 0, 'latin1')
  const live = head !== REF_NONE && s.node.view.isSet(head)
  w.writeProbed(OP_TYPE_SET, a.data, a.argStart[1], a.argLength[1], scratch, 0, n, null, 0, 0, live ? keptExpiry(s, head) : 0)
  recordWrite(s)
  s.conn.out.integerText(text)
}

function deltaArg(s: Session, a: Args, negate: boolean): { n: number, big: bigint | null } | null {
  const n = argInt(a, 2)
  if (!Number.isNaN(n)) return { n: negate ? -n : n, big: null }
  const big = parseInt64Bytes(a.data, a.argStart[2], a.argLength[2])
  if (big === null) { s.conn.out.error('ERR value is not an integer or out of range'); return null }
  // DECRBY of the smallest integer: its negation does not fit, whatever the key holds.
  if (negate && big === INT64_MIN) { s.conn.out.error('ERR decrement would overflow'); return null }
  return { n: 0, big: negate ? -big : big }
}

function append(s: Session, a: Args): void {
  const w = s.node.writer!
  const head = w.probe(a.data, a.argStart[1], a.argLength[1])
  let total = a.argLength[2]
  if (head !== REF_NONE && s.node.view.isSet(head)) {
    const c = s.node.view.locate(head)
    total += c.valueLength
    if (total > valueMax(s)) { s.conn.out.error('ERR string exceeds maximum allowed size (proto-max-bulk-len)'); return }
    w.writeProbed(OP_TYPE_SET, a.data, a.argStart[1], a.argLength[1], c.u8, c.valueStart, c.valueLength, a.data, a.argStart[2], a.argLength[2], keptExpiry(s, head))
    recordWrite(s)
  } else {
    w.writeProbed(OP_TYPE_SET, a.data, a.argStart[1], a.argLength[1], a.data, a.argStart[2], a.argLength[2], null, 0, 0)
    recordWrite(s)
  }
  s.conn.out.integer(total)
}

function strlen(s: Session, a: Args): void {
  const ref = s.node.view.lookup(a.data, a.argStart[1], a.argLength[1])
  s.conn.out.integer(ref === REF_NONE ? 0 : s.node.view.locate(ref).valueLength)
}

const SCAN_COUNT_MAX = 100000
const SCAN_STEPS_MAX = 8

function scan(s: Session, a: Args): void {
  const out = s.conn.out
  const cursorText = argString(a, 1)
  if (!/^[0-9]{1,10}$/.test(cursorText) || Number(cursorText) >= 2 ** 32) { out.error('ERR invalid cursor'); return }
  let cursor = Number(cursorText)
  let count = 10
  let matchAt = -1
  for (let i = 2; i < a.argc; i += 2) {
    if (i + 1 >= a.argc) { out.error('ERR syntax error'); return }
    if (argIs(a, i, 'count')) {
      count = argInt(a, i + 1)
      if (!(count >= 1)) { out.error(Number.isNaN(count) ? 'ERR value is not an integer or out of range' : 'ERR syntax error'); return }
      count = Math.min(count, SCAN_COUNT_MAX)
    } else if (argIs(a, i, 'match')) {
      matchAt = i + 1
    } else if (argIs(a, i, 'type')) {
      if (!argIs(a, i + 1, 'string')) cursor = -1
    } else { out.error('ERR syntax error'); return }
  }
  const refs: number[] = []
  let next = 0
  if (cursor >= 0) {
    const view = s.node.view
    const emit = (ref: number): void => {
      if (matchAt >= 0) {
        const c = view.locate(ref)
        if (!globMatch(a.data, a.argStart[matchAt], a.argLength[matchAt], c.u8, c.keyStart, c.keyLength)) return
      }
      refs.push(ref)
    }
    // Bounded: at most one pass over each partition per call.
    next = cursor
    for (let step = 0; step < SCAN_STEPS_MAX; step++) {
      next = view.scanStep(next, count - refs.length, emit)
      if (next === 0 || refs.length >= count) break
    }
  }
  out.arrayHeader(2)
  out.bulkString(String(next))
  out.arrayHeader(refs.length)
  for (const ref of refs) {
    const c = s.node.view.locate(ref)
    out.bulk(c.u8, c.keyStart, c.keyLength)
  }
}

const OK = Buffer.from('+OK\r\n')
const PONG = Buffer.from('+PONG\r\n')
const QUEUED = Buffer.from('+QUEUED\r\n')

function keyBound(s: Session, a: Args, first: number, step: number, valueOffset: number): number {
  let n = 0
  for (let i = first; i < a.argc; i += step) {
    n += opBound(a.argLength[i], valueOffset > 0 ? a.argLength[i + valueOffset] : 0, valueMax(s))
  }
  return n
}

function setBound(s: Session, a: Args): number {
  return opBound(a.argLength[1], a.argLength[2], valueMax(s))
}

function incrBound(s: Session, a: Args): number {
  return opBound(a.argLength[1], 20, valueMax(s))
}

export const COMMANDS: CommandSpec[] = [
  { name: 'ping', arity: -1, flags: F_NOAUTH, run: (s, a) => { if (a.argc > 2) s.conn.out.error('ERR wrong number of arguments for \'ping\' command'); else if (a.argc > 1) s.conn.out.bulk(a.data, a.argStart[1], a.argLength[1]); else s.conn.out.raw(PONG) } },
  { name: 'echo', arity: 2, flags: 0, run: (s, a) => s.conn.out.bulk(a.data, a.argStart[1], a.argLength[1]) },
  { name: 'time', arity: 1, flags: 0, run: time },
  { name: 'select', arity: 2, flags: 0, run: (s, a) => { if (argInt(a, 1) === 0) s.conn.out.raw(OK); else s.conn.out.error('ERR DB index is out of range') } },
  { name: 'get', arity: 2, flags: F_READ, run: get },
  { name: 'set', arity: -3, flags: F_WRITE, bound: setBound, run: set },
  { name: 'getset', arity: 3, flags: F_WRITE, bound: setBound, run: getset },
  { name: 'del', arity: -2, flags: F_WRITE | F_MAY_FREE, bound: (s, a) => keyBound(s, a, 1, 1, 0), run: del },
  { name: 'unlink', arity: -2, flags: F_WRITE | F_MAY_FREE, bound: (s, a) => keyBound(s, a, 1, 1, 0), run: del },
  { name: 'exists', arity: -2, flags: F_READ, run: exists },
  { name: 'mget', arity: -2, flags: F_READ, run: mget },
  { name: 'mset', arity: -3, flags: F_WRITE, bound: (s, a) => { if (a.argc % 2 === 0) throw dbError('PROTOCOL', 'wrong number of arguments for \'mset\' command'); return keyBound(s, a, 1, 2, 1) }, run: mset },
  { name: 'msetnx', arity: -3, flags: F_WRITE, bound: (s, a) => { if (a.argc % 2 === 0) throw dbError('PROTOCOL', 'wrong number of arguments for \'msetnx\' command'); return keyBound(s, a, 1, 2, 1) }, run: msetnx },
  { name: 'incr', arity: 2, flags: F_WRITE, bound: incrBound, run: (s, a) => incrBy(s, a, 1, null) },
  { name: 'decr', arity: 2, flags: F_WRITE, bound: incrBound, run: (s, a) => incrBy(s, a, -1, null) },
  { name: 'incrby', arity: 3, flags: F_WRITE, bound: incrBound, run: (s, a) => { const d = deltaArg(s, a, false); if (d !== null) incrBy(s, a, d.n, d.big) } },
  { name: 'decrby', arity: 3, flags: F_WRITE, bound: incrBound, run: (s, a) => { const d = deltaArg(s, a, true); if (d !== null) incrBy(s, a, d.n, d.big) } },
  {
    name: 'append', arity: 3, flags: F_WRITE,
    bound: (s, a, extra) => {
      const ref = s.node.view.lookup(a.data, a.argStart[1], a.argLength[1])
      const current = ref === REF_NONE ? 0 : s.node.view.locate(ref).valueLength
      return opBound(a.argLength[1], Math.min(current + a.argLength[2] + extra, valueMax(s)), valueMax(s))
    },
    run: append,
  },
  { name: 'strlen', arity: 2, flags: F_READ, run: strlen },
  { name: 'dbsize', arity: 1, flags: F_READ | F_OBSERVES_ALL, run: (s) => s.conn.out.integer(s.node.keyCount()) },
  { name: 'scan', arity: -2, flags: F_READ | F_OBSERVES_ALL, run: scan },
  // Not inside MULTI (as WAIT): it seals the block holding the connection's last write, which a transaction still has open.
  { name: 'lsn', arity: 1, flags: F_BLOCKING, run: (s) => s.conn.out.integer(s.node.writer === null ? s.node.view.visibleLsn : s.node.writer.blockEndOf(s.conn.lastWriteBlockStart)) },
]

export { OK, QUEUED }

/** Maps a DbError from a write's bound or execution to its RESP error line. */
export function errorReply(err: unknown): string {
  if (err instanceof DbError) {
    if (err.code === 'OOM' || err.code === 'NOREPLICAS' || err.code === 'READONLY') return `${err.code} ${err.message}`
    return `ERR ${err.message}`
  }
  throw err
}

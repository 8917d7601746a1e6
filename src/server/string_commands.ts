/**
 * Redis's string and keyspace commands beyond the core table (commands.ts):
 * SETNX, GETDEL, GETEX, GETRANGE/SUBSTR, SETRANGE, INCRBYFLOAT, LCS, TYPE, TOUCH,
 * KEYS, RANDOMKEY, RENAME, RENAMENX, COPY (the bit commands are in
 * bit_commands.ts, which shares the helpers exported here).
 *
 * Every write is a physical redo op, like the core writes: SETRANGE and
 * INCRBYFLOAT log the resulting string, RENAME logs a set of the destination and a
 * delete of the source (one command, so one block: atomic on backups). Replies
 * and error replies follow Redis 7; test/diff checks them against a real
 * redis-server. Values are bounded by the node's value size (not Redis's
 * 512 MB), so offsets past it are refused with "string exceeds maximum
 * allowed size".
 */
import { OP_TYPE_DELETE, OP_TYPE_SET, REF_NONE } from '../constants.js'
import { type Args, argIs, globMatch, parseInt64Bytes } from './args.js'
import { addExtended, type Extended, formatExtended, parseExtended, TEXT_CHARS_MAX as FLOAT_TEXT_CHARS_MAX } from './long_double.js'
import { type CommandSpec, exists, F_MAY_FREE, F_OBSERVES_ALL, F_READ, F_WRITE, lookupArg, OK, opBound, recordWrite, keptExpiry, type Session, valueMax } from './commands.js'

export const ERR_NOT_INTEGER = 'ERR value is not an integer or out of range'
export const ERR_SYNTAX = 'ERR syntax error'
export const ERR_TOO_LARGE = 'ERR string exceeds maximum allowed size (proto-max-bulk-len)'
/** KEYS replies with every match at once: it stops (with an error) past this many keys. */
const KEYS_REPLY_MAX = 1_000_000

const TYPE_STRING = Buffer.from('+string\r\n')
const TYPE_NONE = Buffer.from('+none\r\n')

/** A signed 64-bit argument as a number (exact to 2^53, ordered beyond it), or null if not an integer. */
export function argLong(a: Args, i: number): number | null {
  const v = parseInt64Bytes(a.data, a.argStart[i], a.argLength[i])
  return v === null ? null : Number(v)
}

/** probe() on the primary, then the ref if it holds a live value, else REF_NONE. */
export function probeLive(s: Session, a: Args, i: number): number {
  const head = s.node.writer!.probe(a.data, a.argStart[i], a.argLength[i])
  return head !== REF_NONE && s.node.view.isSet(head) ? head : REF_NONE
}

export function currentLength(s: Session, a: Args, i: number): number {
  const ref = lookupArg(s, a, i)
  return ref === REF_NONE ? 0 : s.node.view.locate(ref).valueLength
}

/** Redis's range rule (GETRANGE, BITCOUNT, BITPOS): negative ends count from the end; clamped. */
export function clampRange(start: number, end: number, length: number): [number, number] {
  if (start < 0) start = length + start
  if (end < 0) end = length + end
  if (start < 0) start = 0
  if (end < 0) end = 0
  if (end >= length) end = length - 1
  return [start, end]
}

// ---------------------------------------------------------------- reads

function getrange(s: Session, a: Args): void {
  const start = argLong(a, 2)
  const end = argLong(a, 3)
  if (start === null || end === null) { s.conn.out.error(ERR_NOT_INTEGER); return }
  const ref = lookupArg(s, a, 1)
  if (ref === REF_NONE || (start < 0 && end < 0 && start > end)) { s.conn.out.bulkString(''); return }
  const c = s.node.view.locate(ref)
  const [from, to] = clampRange(start, end, c.valueLength)
  if (c.valueLength === 0 || from > to) { s.conn.out.bulkString(''); return }
  s.conn.out.bulk(c.u8, c.valueStart + from, to - from + 1)
}

/** The bytes of key argument i's live value, empty when missing (a view into the log: do not keep). */
export function valueBytes(s: Session, a: Args, i: number): Uint8Array {
  const ref = lookupArg(s, a, i)
  if (ref === REF_NONE) return EMPTY
  const c = s.node.view.locate(ref)
  return c.u8.subarray(c.valueStart, c.valueStart + c.valueLength)
}

const EMPTY = new Uint8Array(0)

/**
 * LCS key1 key2 [LEN] [IDX] [MINMATCHLEN n] [WITHMATCHLEN]: the longest common
 * subsequence by the textbook dynamic programme, with Redis's replies. Its
 * table is bounded like a value (the node's largest value size), as Redis
 * bounds it by proto-max-bulk-len.
 */
function lcs(s: Session, a: Args): void {
  const out = s.conn.out
  let getLen = false
  let getIdx = false
  let withMatchLen = false
  let minMatchLen = 0
  for (let i = 3; i < a.argc; i++) {
    const more = a.argc - 1 - i
    if (argIs(a, i, 'idx')) getIdx = true
    else if (argIs(a, i, 'len')) getLen = true
    else if (argIs(a, i, 'withmatchlen')) withMatchLen = true
    else if (argIs(a, i, 'minmatchlen') && more >= 1) {
      const n = argLong(a, i + 1)
      if (n === null) { out.error(ERR_NOT_INTEGER); return }
      minMatchLen = Math.max(0, n)
      i++
    } else { out.error(ERR_SYNTAX); return }
  }
  if (getLen && getIdx) { out.error('ERR If you want both the length and indexes, please just use IDX.'); return }
  // Copies: the table is built while nothing else runs, but the log views must not be kept past it.
  const x = Buffer.from(valueBytes(s, a, 1))
  const y = Buffer.from(valueBytes(s, a, 2))
  const alen = x.length
  const blen = y.length
  const cells = (alen + 1) * (blen + 1)
  if (cells * 4 > valueMax(s)) { out.error('ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len'); return }
  const w = blen + 1
  const dp = new Uint32Array(cells)
  for (let i = 1; i <= alen; i++) {
    for (let j = 1; j <= blen; j++) {
      dp[i * w + j] = x[i - 1] === y[j - 1] ? dp[(i - 1) * w + j - 1] + 1 : Math.max(dp[(i - 1) * w + j], dp[i * w + j - 1])
    }
  }
  const length = dp[alen * w + blen]
  if (getLen) { out.integer(length); return }
  const result = Buffer.alloc(length)
  const ranges: number[] = [] // aStart, aEnd, bStart, bEnd per match, from the end of the strings
  let idx = length
  let i = alen
  let j = blen
  let aStart = alen
  let aEnd = 0
  let bStart = 0
  let bEnd = 0
  while (i > 0 && j > 0) {
    let emit = false
    if (x[i - 1] === y[j - 1]) {
      result[idx - 1] = x[i - 1]
      if (aStart === alen) {
        aStart = i - 1; aEnd = i - 1; bStart = j - 1; bEnd = j - 1
      } else if (aStart === i && bStart === j) {
        aStart--; bStart--
      } else {
        emit = true
      }
      if (aStart === 0 || bStart === 0) emit = true
      idx--; i--; j--
    } else {
      if (dp[(i - 1) * w + j] > dp[i * w + j - 1]) i--
      else j--
      if (aStart !== alen) emit = true
    }
    if (emit) {
      if (minMatchLen === 0 || aEnd - aStart + 1 >= minMatchLen) ranges.push(aStart, aEnd, bStart, bEnd)
      aStart = alen
    }
  }
  if (!getIdx) { out.bulk(result, 0, length); return }
  out.mapHeader(2)
  out.bulkString('matches')
  out.arrayHeader(ranges.length / 4)
  for (let r = 0; r < ranges.length; r += 4) {
    out.arrayHeader(withMatchLen ? 3 : 2)
    out.arrayHeader(2); out.integer(ranges[r]); out.integer(ranges[r + 1])
    out.arrayHeader(2); out.integer(ranges[r + 2]); out.integer(ranges[r + 3])
    if (withMatchLen) out.integer(ranges[r + 1] - ranges[r] + 1)
  }
  out.bulkString('len')
  out.integer(length)
}

function type(s: Session, a: Args): void {
  s.conn.out.raw(lookupArg(s, a, 1) === REF_NONE ? TYPE_NONE : TYPE_STRING)
}

function keys(s: Session, a: Args): void {
  const view = s.node.view
  const refs: number[] = []
  let overflow = false
  view.forEachLive((ref) => {
    const c = view.locate(ref)
    if (!globMatch(a.data, a.argStart[1], a.argLength[1], c.u8, c.keyStart, c.keyLength)) return true
    if (refs.length >= KEYS_REPLY_MAX) { overflow = true; return false }
    refs.push(ref)
    return true
  })
  if (overflow) { s.conn.out.error(`ERR KEYS matched more than ${KEYS_REPLY_MAX} keys; use SCAN`); return }
  s.conn.out.arrayHeader(refs.length)
  for (const ref of refs) {
    const c = view.locate(ref)
    s.conn.out.bulk(c.u8, c.keyStart, c.keyLength)
  }
}

function randomkey(s: Session): void {
  const view = s.node.view
  let found = REF_NONE
  const emit = (ref: number): void => { if (found === REF_NONE) found = ref }
  // Start at a random point of hash space and walk on (wrapping once) to the first live key.
  const start = Math.floor(Math.random() * 2 ** 32)
  let cursor = start
  do cursor = view.scanStep(cursor, 1, emit)
  while (found === REF_NONE && cursor !== 0)
  if (found === REF_NONE) {
    cursor = 0
    do cursor = view.scanStep(cursor, 1, emit)
    while (found === REF_NONE && cursor !== 0 && cursor < start)
  }
  if (found === REF_NONE) { s.conn.out.nullBulk(); return }
  const c = view.locate(found)
  s.conn.out.bulk(c.u8, c.keyStart, c.keyLength)
}

// ---------------------------------------------------------------- writes

function setnx(s: Session, a: Args): void {
  if (probeLive(s, a, 1) !== REF_NONE) { s.conn.out.integer(0); return }
  s.node.writer!.writeProbed(OP_TYPE_SET, a.data, a.argStart[1], a.argLength[1], a.data, a.argStart[2], a.argLength[2], null, 0, 0)
  recordWrite(s)
  s.conn.out.integer(1)
}

function getdel(s: Session, a: Args): void {
  const ref = probeLive(s, a, 1)
  if (ref === REF_NONE) { s.conn.out.nullBulk(); return }
  const c = s.node.view.locate(ref)
  s.conn.out.bulk(c.u8, c.valueStart, c.valueLength) // copied out before the delete is written
  s.node.writer!.writeProbed(OP_TYPE_DELETE, a.data, a.argStart[1], a.argLength[1], null, 0, 0, null, 0, 0)
  recordWrite(s)
}

/**
 * Writes the key of argument i with the value `bytes[0, length)`; it keeps
 * the expiry of `ttlFrom` (the live version it rewrites: SETRANGE, SETBIT,
 * INCRBYFLOAT keep a key's TTL, as Redis does), or has none (REF_NONE).
 */
export function writeValue(s: Session, a: Args, i: number, bytes: Uint8Array, length: number, ttlFrom: number): void {
  s.node.writer!.writeProbed(OP_TYPE_SET, a.data, a.argStart[i], a.argLength[i], bytes, 0, length, null, 0, 0, keptExpiry(s, ttlFrom))
  recordWrite(s)
}

/** A copy of the live value at `ref` (REF_NONE: empty), grown with zeros to at least `length` bytes. */
export function valueCopy(s: Session, ref: number, length: number): { bytes: Buffer, length: number } {
  const current = ref === REF_NONE ? 0 : s.node.view.locate(ref).valueLength
  const size = Math.max(current, length)
  const bytes = Buffer.alloc(size)
  if (current > 0) {
    const c = s.node.view.locate(ref)
    bytes.set(c.u8.subarray(c.valueStart, c.valueStart + current), 0)
  }
  return { bytes, length: size }
}

function incrbyfloat(s: Session, a: Args): void {
  const incr = parseExtended(a.data.toString('latin1', a.argStart[2], a.argStart[2] + a.argLength[2]))
  const ref = probeLive(s, a, 1)
  let value: Extended | null = ZERO
  if (ref !== REF_NONE) {
    const c = s.node.view.locate(ref)
    value = parseExtended(Buffer.from(c.u8.buffer, c.u8.byteOffset + c.valueStart, c.valueLength).toString('latin1'))
  }
  if (incr === null || value === null) { s.conn.out.error('ERR value is not a valid float'); return }
  const sum = addExtended(value, incr)
  if (sum === null) { s.conn.out.error('ERR increment would produce NaN or Infinity'); return }
  // Logged as the resulting string, as Redis replicates it: replay never redoes float arithmetic.
  const text = formatExtended(sum)
  const n = Buffer.byteLength(text, 'latin1')
  const bytes = Buffer.from(text, 'latin1')
  writeValue(s, a, 1, bytes, n, ref)
  s.conn.out.bulk(bytes, 0, n)
}

const ZERO: Extended = { neg: false, m: 0n, e: 0, inf: false }

function setrange(s: Session, a: Args): void {
  const offset = argLong(a, 2)
  if (offset === null) { s.conn.out.error(ERR_NOT_INTEGER); return }
  if (offset < 0) { s.conn.out.error('ERR offset is out of range'); return }
  const ref = probeLive(s, a, 1)
  const current = ref === REF_NONE ? 0 : s.node.view.locate(ref).valueLength
  const n = a.argLength[3]
  if (n === 0) { s.conn.out.integer(current); return }
  if (offset + n > valueMax(s)) { s.conn.out.error(ERR_TOO_LARGE); return }
  const v = valueCopy(s, ref, offset + n)
  v.bytes.set(a.data.subarray(a.argStart[3], a.argStart[3] + n), offset)
  writeValue(s, a, 1, v.bytes, v.length, ref)
  s.conn.out.integer(v.length)
}

/**
 * RENAME/RENAMENX/COPY, once the caller checked that the source holds a value:
 * writes the destination with the source's value, then (for a rename) deletes
 * the source; both ops are in this command's block.
 */
function moveValue(s: Session, a: Args, keep: boolean): void {
  const w = s.node.writer!
  const src = probeLive(s, a, 1)
  const c = s.node.view.locate(src)
  const u8 = c.u8
  const valueStart = c.valueStart
  const valueLength = c.valueLength
  w.probe(a.data, a.argStart[2], a.argLength[2])
  // RENAME keeps the source's TTL, COPY copies it.
  w.writeProbed(OP_TYPE_SET, a.data, a.argStart[2], a.argLength[2], u8, valueStart, valueLength, null, 0, 0, keptExpiry(s, src))
  if (!keep) {
    w.probe(a.data, a.argStart[1], a.argLength[1])
    w.writeProbed(OP_TYPE_DELETE, a.data, a.argStart[1], a.argLength[1], null, 0, 0, null, 0, 0)
  }
  recordWrite(s)
}

function sameKey(a: Args, i: number, j: number): boolean {
  if (a.argLength[i] !== a.argLength[j]) return false
  for (let k = 0; k < a.argLength[i]; k++) if (a.data[a.argStart[i] + k] !== a.data[a.argStart[j] + k]) return false
  return true
}

function rename(s: Session, a: Args, nx: boolean): void {
  if (lookupArg(s, a, 1) === REF_NONE) { s.conn.out.error('ERR no such key'); return }
  if (sameKey(a, 1, 2)) { if (nx) s.conn.out.integer(0); else s.conn.out.raw(OK); return }
  if (nx && lookupArg(s, a, 2) !== REF_NONE) { s.conn.out.integer(0); return }
  moveValue(s, a, false)
  if (nx) s.conn.out.integer(1); else s.conn.out.raw(OK)
}

function copy(s: Session, a: Args): void {
  let replace = false
  for (let i = 3; i < a.argc; i++) {
    if (argIs(a, i, 'replace')) { replace = true; continue }
    if (argIs(a, i, 'db') && i + 1 < a.argc) {
      const db = argLong(a, i + 1)
      if (db === null) { s.conn.out.error(ERR_NOT_INTEGER); return }
      if (db !== 0) { s.conn.out.error('ERR DB index is out of range'); return }
      i++
      continue
    }
    s.conn.out.error(ERR_SYNTAX)
    return
  }
  if (sameKey(a, 1, 2)) { s.conn.out.error('ERR source and destination objects are the same'); return }
  if (lookupArg(s, a, 1) === REF_NONE) { s.conn.out.integer(0); return }
  if (!replace && lookupArg(s, a, 2) !== REF_NONE) { s.conn.out.integer(0); return }
  moveValue(s, a, true)
  s.conn.out.integer(1)
}

// ---------------------------------------------------------------- bounds (bytes a write may take in the log)

function keyValueBound(s: Session, a: Args): number {
  return opBound(a.argLength[1], a.argLength[2], valueMax(s))
}

function deleteBound(s: Session, a: Args): number {
  return opBound(a.argLength[1], 0, valueMax(s))
}

function setrangeBound(s: Session, a: Args, extra: number): number {
  const offset = argLong(a, 2)
  const grown = offset === null || offset < 0 ? 0 : offset + a.argLength[3]
  return opBound(a.argLength[1], Math.min(Math.max(currentLength(s, a, 1) + extra, grown), valueMax(s)), valueMax(s))
}

function moveBound(s: Session, a: Args, extra: number): number {
  const length = Math.min(currentLength(s, a, 1) + extra, valueMax(s))
  return opBound(a.argLength[2], length, valueMax(s)) + opBound(a.argLength[1], 0, valueMax(s))
}

export const STRING_COMMANDS: CommandSpec[] = [
  { name: 'setnx', arity: 3, flags: F_WRITE, bound: keyValueBound, run: setnx },
  { name: 'getdel', arity: 2, flags: F_WRITE | F_MAY_FREE, bound: deleteBound, run: getdel },
  { name: 'getrange', arity: 4, flags: F_READ, run: getrange },
  { name: 'substr', arity: 4, flags: F_READ, run: getrange },
  { name: 'incrbyfloat', arity: 3, flags: F_WRITE, bound: (s, a) => opBound(a.argLength[1], FLOAT_TEXT_CHARS_MAX, valueMax(s)), run: incrbyfloat },
  { name: 'setrange', arity: 4, flags: F_WRITE, bound: setrangeBound, run: setrange },
  { name: 'lcs', arity: -3, flags: F_READ, run: lcs },
  { name: 'type', arity: 2, flags: F_READ, run: type },
  { name: 'touch', arity: -2, flags: F_READ, run: exists },
  { name: 'keys', arity: 2, flags: F_READ | F_OBSERVES_ALL, run: keys },
  { name: 'randomkey', arity: 1, flags: F_READ | F_OBSERVES_ALL, run: randomkey },
  { name: 'rename', arity: 3, flags: F_WRITE | F_MAY_FREE, bound: moveBound, run: (s, a) => rename(s, a, false) },
  { name: 'renamenx', arity: 3, flags: F_WRITE | F_MAY_FREE, bound: moveBound, run: (s, a) => rename(s, a, true) },
  { name: 'copy', arity: -3, flags: F_WRITE, bound: moveBound, run: copy },
]

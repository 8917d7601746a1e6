/**
 * The bit commands on string values: GETBIT, SETBIT, BITCOUNT and BITPOS
 * (BYTE|BIT ranges), BITOP, and BITFIELD/BITFIELD_RO (bitfield.ts). Writes log
 * the resulting string, like every write; replies follow Redis 7 (test/diff
 * checks them against a real redis-server).
 */
import { OP_TYPE_DELETE, REF_NONE } from '../constants.js'
import { type Args, argIs, argString } from './args.js'
import { bitfield, bitfieldValueBytes } from './bitfield.js'
import { type CommandSpec, F_READ, F_WRITE, lookupArg, opBound, recordWrite, type Session, valueMax } from './commands.js'
import {
  argLong, clampRange, currentLength, ERR_NOT_INTEGER, ERR_SYNTAX, ERR_TOO_LARGE, probeLive, valueBytes, valueCopy, writeValue,
} from './string_commands.js'

const ERR_BIT_OFFSET = 'ERR bit offset is not an integer or out of range'
const BIT_OFFSET_MAX = 2 ** 32 - 1

function getbit(s: Session, a: Args): void {
  const offset = argLong(a, 2)
  if (offset === null || offset < 0 || offset > BIT_OFFSET_MAX) { s.conn.out.error(ERR_BIT_OFFSET); return }
  const ref = lookupArg(s, a, 1)
  if (ref === REF_NONE) { s.conn.out.integer(0); return }
  const c = s.node.view.locate(ref)
  const byte = Math.floor(offset / 8)
  s.conn.out.integer(byte < c.valueLength ? (c.u8[c.valueStart + byte] >> (7 - (offset % 8))) & 1 : 0)
}

/** Parses BITCOUNT/BITPOS's optional BYTE|BIT unit at argument i; true for BIT, null after an error reply. */
function unitArg(s: Session, a: Args, i: number): boolean | null {
  if (i >= a.argc) return false
  if (i + 1 < a.argc) { s.conn.out.error(ERR_SYNTAX); return null }
  if (argIs(a, i, 'bit')) return true
  if (argIs(a, i, 'byte')) return false
  s.conn.out.error(ERR_SYNTAX)
  return null
}

function bitcount(s: Session, a: Args): void {
  let start = 0
  let end = -1
  let isBit = false
  if (a.argc === 3 || a.argc > 5) { s.conn.out.error(ERR_SYNTAX); return }
  if (a.argc >= 4) {
    const st = argLong(a, 2)
    const en = argLong(a, 3)
    if (st === null || en === null) { s.conn.out.error(ERR_NOT_INTEGER); return }
    const unit = unitArg(s, a, 4)
    if (unit === null) return
    start = st; end = en; isBit = unit
  }
  const ref = lookupArg(s, a, 1)
  if (ref === REF_NONE) { s.conn.out.integer(0); return }
  const c = s.node.view.locate(ref)
  const total = isBit ? c.valueLength * 8 : c.valueLength
  if (start < 0 && end < 0 && start > end) { s.conn.out.integer(0); return }
  const [from, to] = clampRange(start, end, total)
  if (from > to || total === 0) { s.conn.out.integer(0); return }
  const bitFrom = isBit ? from : from * 8
  const bitTo = isBit ? to : to * 8 + 7
  let n = 0
  for (let bit = bitFrom; bit <= bitTo;) {
    if (bit % 8 === 0 && bit + 7 <= bitTo) {
      n += popcount8(c.u8[c.valueStart + bit / 8])
      bit += 8
    } else {
      n += (c.u8[c.valueStart + (bit >> 3)] >> (7 - (bit & 7))) & 1
      bit++
    }
  }
  s.conn.out.integer(n)
}

function popcount8(b: number): number {
  b = b - ((b >> 1) & 0x55)
  b = (b & 0x33) + ((b >> 2) & 0x33)
  return (b + (b >> 4)) & 0x0f
}

function bitpos(s: Session, a: Args): void {
  const out = s.conn.out
  const bitArg = argLong(a, 2)
  if (bitArg === null) { out.error(ERR_NOT_INTEGER); return }
  if (bitArg !== 0 && bitArg !== 1) { out.error('ERR The bit argument must be 1 or 0.'); return }
  let start = 0
  let end = -1
  let endGiven = false
  let isBit = false
  if (a.argc >= 4) {
    const st = argLong(a, 3)
    if (st === null) { out.error(ERR_NOT_INTEGER); return }
    start = st
    if (a.argc >= 5) {
      const en = argLong(a, 4)
      if (en === null) { out.error(ERR_NOT_INTEGER); return }
      end = en
      endGiven = true
      const unit = unitArg(s, a, 5)
      if (unit === null) return
      isBit = unit
    }
  }
  const ref = lookupArg(s, a, 1)
  if (ref === REF_NONE) { out.integer(bitArg === 1 ? -1 : 0); return }
  const c = s.node.view.locate(ref)
  const total = isBit ? c.valueLength * 8 : c.valueLength
  const [from, to] = clampRange(start, end, total)
  if (from > to) { out.integer(-1); return }
  const bitFrom = isBit ? from : from * 8
  const bitTo = isBit ? to : to * 8 + 7
  for (let bit = bitFrom; bit <= bitTo; bit++) {
    if (((c.u8[c.valueStart + (bit >> 3)] >> (7 - (bit & 7))) & 1) === bitArg) { out.integer(bit); return }
  }
  // Looking for a clear bit with no end given: the string continues with zeros past its end.
  out.integer(bitArg === 0 && !endGiven ? (Math.floor(bitTo / 8) + 1) * 8 : -1)
}

function setbit(s: Session, a: Args): void {
  const offset = argLong(a, 2)
  if (offset === null || offset < 0 || offset > BIT_OFFSET_MAX) { s.conn.out.error(ERR_BIT_OFFSET); return }
  const on = a.argLength[3] === 1 ? a.data[a.argStart[3]] - 48 : -1
  if (on !== 0 && on !== 1) { s.conn.out.error('ERR bit is not an integer or out of range'); return }
  const byte = Math.floor(offset / 8)
  if (byte + 1 > valueMax(s)) { s.conn.out.error(ERR_TOO_LARGE); return }
  const ref = probeLive(s, a, 1)
  const v = valueCopy(s, ref, byte + 1)
  const mask = 1 << (7 - (offset % 8))
  const old = (v.bytes[byte] & mask) !== 0 ? 1 : 0
  v.bytes[byte] = on === 1 ? v.bytes[byte] | mask : v.bytes[byte] & ~mask
  writeValue(s, a, 1, v.bytes, v.length, ref)
  s.conn.out.integer(old)
}

/** BITOP AND|OR|XOR|NOT destkey srckey...: the result (as long as the longest source) is written to destkey, or destkey deleted when it is empty. */
function bitop(s: Session, a: Args): void {
  const out = s.conn.out
  const op = argString(a, 1).toLowerCase()
  if (op !== 'and' && op !== 'or' && op !== 'xor' && op !== 'not') { out.error(ERR_SYNTAX); return }
  if (op === 'not' && a.argc !== 4) { out.error('ERR BITOP NOT must be called with a single source key.'); return }
  const sources: Uint8Array[] = []
  let length = 0
  for (let i = 3; i < a.argc; i++) {
    const v = Buffer.from(valueBytes(s, a, i))
    sources.push(v)
    if (v.length > length) length = v.length
  }
  const result = Buffer.alloc(length)
  for (let j = 0; j < length; j++) {
    let b = sources[0][j] ?? 0
    if (op === 'not') b = ~b & 0xff
    for (let k = 1; k < sources.length; k++) {
      const x = sources[k][j] ?? 0
      if (op === 'and') b &= x
      else if (op === 'or') b |= x
      else b ^= x
    }
    result[j] = b
  }
  const w = s.node.writer!
  const head = probeLive(s, a, 2)
  if (length === 0) {
    if (head !== REF_NONE) {
      w.writeProbed(OP_TYPE_DELETE, a.data, a.argStart[2], a.argLength[2], null, 0, 0, null, 0, 0)
      recordWrite(s)
    }
  } else {
    // BITOP's destination is a new value: no TTL, as Redis sets it.
    writeValue(s, a, 2, result, length, REF_NONE)
  }
  out.integer(length)
}

function bitopBound(s: Session, a: Args, extra: number): number {
  let length = 0
  for (let i = 3; i < a.argc; i++) length = Math.max(length, currentLength(s, a, i))
  return opBound(a.argLength[2], Math.min(length + extra, valueMax(s)), valueMax(s))
}

function setbitBound(s: Session, a: Args, extra: number): number {
  const offset = argLong(a, 2)
  const grown = offset === null || offset < 0 ? 0 : Math.floor(offset / 8) + 1
  return opBound(a.argLength[1], Math.min(Math.max(currentLength(s, a, 1) + extra, grown), valueMax(s)), valueMax(s))
}

export const BIT_COMMANDS: CommandSpec[] = [
  { name: 'getbit', arity: 3, flags: F_READ, run: getbit },
  { name: 'setbit', arity: 4, flags: F_WRITE, bound: setbitBound, run: setbit },
  { name: 'bitfield', arity: -2, flags: F_WRITE, bound: (s, a, extra) => opBound(a.argLength[1], Math.min(Math.max(currentLength(s, a, 1) + extra, bitfieldValueBytes(s, a)), valueMax(s)), valueMax(s)), run: (s, a) => bitfield(s, a, false) },
  { name: 'bitfield_ro', arity: -2, flags: F_READ, run: (s, a) => bitfield(s, a, true) },
  { name: 'bitop', arity: -4, flags: F_WRITE, bound: bitopBound, run: bitop },
  { name: 'bitcount', arity: -2, flags: F_READ, run: bitcount },
  { name: 'bitpos', arity: -3, flags: F_READ, run: bitpos },
]

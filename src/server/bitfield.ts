/**
 * BITFIELD and BITFIELD_RO: signed (i1..i64) and unsigned (u1..u63) integers
 * at any bit offset of a string value, read, set and incremented with the
 * WRAP, SAT or FAIL overflow rule, as Redis does. Arithmetic is exact
 * (BigInt), once per field of the command; the result string is logged as
 * one set op, like every write.
 */
import { OP_TYPE_SET, REF_NONE } from '../constants.js'
import { type Args, argIs, argString, parseInt64Bytes } from './args.js'
import { recordWrite, type Session, keptExpiry } from './commands.js'

const OP_GET = 0
const OP_SET = 1
const OP_INCRBY = 2
const WRAP = 0
const SAT = 1
const FAIL = 2

interface FieldOp {
  op: number
  signed: boolean
  bits: number
  offset: number
  value: bigint
  overflow: number
}

const ERR_TYPE = 'ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.'
const ERR_OFFSET = 'ERR bit offset is not an integer or out of range'

function parseType(text: string): { signed: boolean, bits: number } | null {
  // Lower case only, as Redis reads it.
  const sign = text[0]
  if (sign !== 'i' && sign !== 'u') return null
  const digits = text.slice(1)
  if (!/^[0-9]{1,2}$/.test(digits)) return null
  const bits = Number(digits)
  const signed = sign === 'i'
  if (bits < 1 || bits > (signed ? 64 : 63)) return null
  return { signed, bits }
}

/** Bit offset argument: N, or #N for N fields of this width. Null if invalid or past the largest value. */
function parseOffset(text: string, bits: number, valueBytesMax: number): number | null {
  const hash = text.startsWith('#')
  const digits = Buffer.from(hash ? text.slice(1) : text, 'latin1')
  const n = parseInt64Bytes(digits, 0, digits.length)
  if (n === null || n < 0n) return null
  const offset = hash ? n * BigInt(bits) : n
  if ((offset + BigInt(bits) - 1n) / 8n >= BigInt(valueBytesMax)) return null
  return Number(offset)
}

/** Parses every operation before any runs (an error anywhere runs nothing); null after an error reply. */
function parseOps(s: Session, a: Args, readOnly: boolean): FieldOp[] | null {
  const out = s.conn.out
  const ops: FieldOp[] = []
  let overflow = WRAP
  for (let i = 2; i < a.argc;) {
    const more = a.argc - 1 - i
    if (argIs(a, i, 'overflow') && more >= 1) {
      if (argIs(a, i + 1, 'wrap')) overflow = WRAP
      else if (argIs(a, i + 1, 'sat')) overflow = SAT
      else if (argIs(a, i + 1, 'fail')) overflow = FAIL
      else { out.error('ERR Invalid OVERFLOW type specified'); return null }
      i += 2
      continue
    }
    const op = argIs(a, i, 'get') && more >= 2 ? OP_GET : argIs(a, i, 'set') && more >= 3 ? OP_SET : argIs(a, i, 'incrby') && more >= 3 ? OP_INCRBY : -1
    if (op < 0) { out.error('ERR syntax error'); return null }
    const type = parseType(argString(a, i + 1))
    if (type === null) { out.error(ERR_TYPE); return null }
    const offset = parseOffset(argString(a, i + 2), type.bits, s.server.options.valueBytesMax)
    if (offset === null) { out.error(ERR_OFFSET); return null }
    let value = 0n
    if (op !== OP_GET) {
      const v = parseInt64Bytes(a.data, a.argStart[i + 3], a.argLength[i + 3])
      if (v === null) { out.error('ERR value is not an integer or out of range'); return null }
      value = v
    }
    if (readOnly && op !== OP_GET) { out.error('ERR BITFIELD_RO only supports the GET subcommand'); return null }
    ops.push({ op, signed: type.signed, bits: type.bits, offset, value, overflow })
    i += op === OP_GET ? 3 : 4
  }
  return ops
}

function readField(buf: Uint8Array, f: FieldOp): bigint {
  let v = 0n
  for (let b = 0; b < f.bits; b++) {
    const bit = f.offset + b
    const byte = bit >> 3
    v = (v << 1n) | BigInt(byte < buf.length ? (buf[byte] >> (7 - (bit & 7))) & 1 : 0)
  }
  if (f.signed && f.bits > 0 && (v >> BigInt(f.bits - 1)) === 1n) v -= 1n << BigInt(f.bits)
  return v
}

function writeField(buf: Uint8Array, f: FieldOp, value: bigint): void {
  const u = BigInt.asUintN(f.bits, value)
  for (let b = 0; b < f.bits; b++) {
    const bit = f.offset + b
    const on = ((u >> BigInt(f.bits - 1 - b)) & 1n) === 1n
    const mask = 1 << (7 - (bit & 7))
    buf[bit >> 3] = on ? buf[bit >> 3] | mask : buf[bit >> 3] & ~mask
  }
}

/** The field's new value under its overflow rule, or null for FAIL on overflow. */
function applyOverflow(f: FieldOp, exact: bigint): bigint | null {
  const max = f.signed ? (1n << BigInt(f.bits - 1)) - 1n : (1n << BigInt(f.bits)) - 1n
  const min = f.signed ? -(1n << BigInt(f.bits - 1)) : 0n
  if (exact >= min && exact <= max) return exact
  if (f.overflow === FAIL) return null
  if (f.overflow === SAT) return exact > max ? max : min
  return f.signed ? BigInt.asIntN(f.bits, exact) : BigInt.asUintN(f.bits, exact)
}

export function bitfield(s: Session, a: Args, readOnly: boolean): void {
  const ops = parseOps(s, a, readOnly)
  if (ops === null) return
  const out = s.conn.out
  const writes = ops.some((f) => f.op !== OP_GET)
  const view = s.node.view
  const ref = writes ? s.node.writer!.probe(a.data, a.argStart[1], a.argLength[1]) : view.lookup(a.data, a.argStart[1], a.argLength[1])
  const live = ref !== REF_NONE && view.isSet(ref)
  let current: Uint8Array = new Uint8Array(0)
  if (live) {
    const c = view.locate(ref)
    current = c.u8.subarray(c.valueStart, c.valueStart + c.valueLength)
  }
  // A write grows the string to its highest written bit first (zeros), whatever the overflow rule decides.
  let needed = current.length
  for (const f of ops) if (f.op !== OP_GET) needed = Math.max(needed, ((f.offset + f.bits - 1) >> 3) + 1)
  const buf = Buffer.alloc(needed)
  buf.set(current, 0)
  out.arrayHeader(ops.length)
  for (const f of ops) {
    const old = readField(buf, f)
    if (f.op === OP_GET) { out.integerText(old.toString()); continue }
    // SET takes the value as a 64-bit pattern: an unsigned field sees a negative value as a huge one.
    const exact = f.op === OP_SET ? (f.signed ? f.value : BigInt.asUintN(64, f.value)) : old + f.value
    const next = applyOverflow(f, exact)
    if (next === null) { out.nullBulk(); continue }
    writeField(buf, f, next)
    out.integerText((f.op === OP_SET ? old : next).toString())
  }
  if (writes) {
    // A rewrite of the value keeps the key's TTL, as Redis's BITFIELD does.
    s.node.writer!.writeProbed(OP_TYPE_SET, a.data, a.argStart[1], a.argLength[1], buf, 0, needed, null, 0, 0, live ? keptExpiry(s, ref) : 0)
    recordWrite(s)
  }
}

/** Log bytes a BITFIELD may write: the key with its value grown to the highest field written. */
export function bitfieldValueBytes(s: Session, a: Args): number {
  let needed = 0
  for (let i = 2; i + 2 < a.argc; i++) {
    if (!argIs(a, i, 'set') && !argIs(a, i, 'incrby')) continue
    const type = parseType(argString(a, i + 1))
    if (type === null) continue
    const offset = parseOffset(argString(a, i + 2), type.bits, s.server.options.valueBytesMax)
    if (offset !== null) needed = Math.max(needed, ((offset + type.bits - 1) >> 3) + 1)
  }
  return needed
}

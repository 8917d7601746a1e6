/**
 * Reads an RDB file (format.ts) as real Redis dumps contain it for strings:
 * plain, integer-encoded (int8/16/32) and LZF-compressed values,
 * EXPIRETIME_MS / EXPIRETIME, AUX, RESIZEDB, SELECTDB 0, IDLE, FREQ, and the
 * CRC-64 trailer. Input from a file: every length is bounded by the bytes
 * left, and anything malformed is a DbError (RDB_INVALID) naming the offset;
 * a checksum that does not match, or a file that ends early, is refused
 * before the caller sees a key (readRdb checks the whole file first).
 *
 * A value of another type, a key in another database, or a function library
 * is refused naming the key and type, or skipped and counted with
 * `skipUnsupported` (lists, sets, hashes and sorted sets in every encoding;
 * streams and module values cannot be skipped: they are always refused).
 */
import { dbError } from '../errors.js'
import { crc64 } from './crc64.js'
import {
  ENC_INT16, ENC_INT32, ENC_INT8, ENC_LZF, OPCODE_AUX, OPCODE_EOF, OPCODE_EXPIRETIME, OPCODE_EXPIRETIME_MS, OPCODE_FREQ,
  OPCODE_FUNCTION2, OPCODE_IDLE, OPCODE_MODULE_AUX, OPCODE_RESIZEDB, OPCODE_SELECTDB, RDB_MAGIC, RDB_VERSION_READ_MAX,
  TYPE_NAMES, TYPE_STRING,
} from './format.js'
import { lzfDecompress } from './lzf.js'

/** One string key as read: key and value bytes (views into the file or a decompressed copy), its expiry (ms, -1: none). */
export interface RdbEntry {
  key: Buffer
  value: Buffer
  expireAtMs: number
}

export interface RdbReadOptions {
  skipUnsupported: boolean
  /** Verify the CRC-64 trailer (default true; a second pass over a file already verified may skip it). */
  checksum?: boolean
}

export interface RdbReadReport {
  version: number
  aux: Map<string, string>
  keys: number
  /** Entries skipped (skipUnsupported), by reason. */
  skipped: Map<string, number>
  checksum: string
}

/** Lengths and strings of an RDB file in a buffer, with bounds. */
class Cursor {
  at: number
  constructor(readonly b: Buffer) {
    this.at = 0
  }

  fail(what: string): never {
    throw dbError('RDB_INVALID', `not a valid RDB file: ${what} at offset ${this.at}`)
  }

  need(n: number): void {
    if (this.at + n > this.b.length) this.fail(`truncated (${n} more bytes needed, ${this.b.length - this.at} left)`)
  }

  byte(): number {
    this.need(1)
    return this.b[this.at++]
  }

  /** A length; `special` receives the 11xxxxxx encodings (then the return value is -1 - encoding). */
  length(allowSpecial = false): number {
    const first = this.byte()
    const kind = first >> 6
    if (kind === 0) return first & 0x3f
    if (kind === 1) return ((first & 0x3f) << 8) | this.byte()
    if (kind === 3) {
      if (!allowSpecial) this.fail('an encoded string where a length belongs')
      return -1 - (first & 0x3f)
    }
    if (first === 0x80) {
      this.need(4)
      const n = this.b.readUInt32BE(this.at)
      this.at += 4
      return n
    }
    if (first === 0x81) {
      this.need(8)
      const hi = this.b.readUInt32BE(this.at)
      const lo = this.b.readUInt32BE(this.at + 4)
      this.at += 8
      const n = hi * 2 ** 32 + lo
      if (!Number.isSafeInteger(n)) this.fail('a length past 2^53')
      return n
    }
    return this.fail(`an unknown length encoding 0x${first.toString(16)}`)
  }

  string(): Buffer {
    const n = this.length(true)
    if (n >= 0) {
      this.need(n)
      const s = this.b.subarray(this.at, this.at + n)
      this.at += n
      return s
    }
    const enc = -1 - n
    if (enc === ENC_INT8) { this.need(1); const v = this.b.readInt8(this.at); this.at += 1; return Buffer.from(String(v)) }
    if (enc === ENC_INT16) { this.need(2); const v = this.b.readInt16LE(this.at); this.at += 2; return Buffer.from(String(v)) }
    if (enc === ENC_INT32) { this.need(4); const v = this.b.readInt32LE(this.at); this.at += 4; return Buffer.from(String(v)) }
    if (enc === ENC_LZF) {
      const compressed = this.length()
      const plain = this.length()
      this.need(compressed)
      const out = lzfDecompress(this.b, this.at, this.at + compressed, plain)
      if (out === null) this.fail('an LZF string that does not decompress to its length')
      this.at += compressed
      return out
    }
    return this.fail(`an unknown string encoding ${enc}`)
  }

  /** Skips a value of `type` that freshet does not hold (skipUnsupported); false if it cannot be skipped. */
  skipValue(type: number): boolean {
    switch (type) {
      case 1: case 2: { const n = this.length(); for (let i = 0; i < n; i++) this.string(); return true }
      case 3: { const n = this.length(); for (let i = 0; i < n; i++) { this.string(); const l = this.byte(); if (l < 253) { this.need(l); this.at += l } } return true }
      case 4: { const n = this.length(); for (let i = 0; i < 2 * n; i++) this.string(); return true }
      case 5: { const n = this.length(); for (let i = 0; i < n; i++) { this.string(); this.need(8); this.at += 8 } return true }
      case 9: case 10: case 11: case 12: case 13: case 16: case 17: case 20: this.string(); return true
      case 14: { const n = this.length(); for (let i = 0; i < n; i++) this.string(); return true }
      case 18: { const n = this.length(); for (let i = 0; i < n; i++) { this.length(); this.string() } return true }
      default: return false
    }
  }
}

/** A key as error messages name it. */
function keyName(key: Buffer): string {
  return JSON.stringify(key.toString('utf8').slice(0, 200))
}

function checkHeader(c: Cursor): number {
  c.need(9)
  if (c.b.toString('latin1', 0, 5) !== RDB_MAGIC) c.fail('no REDIS magic')
  const versionText = c.b.toString('latin1', 5, 9)
  if (!/^\d{4}$/.test(versionText)) c.fail('no version number')
  const version = Number(versionText)
  if (version < 1 || version > RDB_VERSION_READ_MAX) throw dbError('RDB_INVALID', `RDB version ${version} is not one freshet reads (1 to ${RDB_VERSION_READ_MAX})`)
  c.at = 9
  return version
}

/**
 * Reads every string key of the RDB in `file` and hands it to `entry` (in
 * file order). The whole file is checked first (framing, checksum), so
 * `entry` is never called for a file that would be refused.
 */
export function readRdb(file: Buffer, o: RdbReadOptions, entry: (e: RdbEntry) => void): RdbReadReport {
  const report = walk(file, o, null)
  walk(file, { ...o, checksum: false }, entry)
  return report
}

/** One pass over the file: `entry` sees each string key as it is read; a refusal can come after some were seen. */
export function walkRdb(file: Buffer, o: RdbReadOptions, entry: (e: RdbEntry) => void): RdbReadReport {
  return walk(file, o, entry)
}

function walk(file: Buffer, o: RdbReadOptions, entry: ((e: RdbEntry) => void) | null): RdbReadReport {
  const c = new Cursor(file)
  const version = checkHeader(c)
  const report: RdbReadReport = { version, aux: new Map(), keys: 0, skipped: new Map(), checksum: '0' }
  const skip = (why: string): void => { report.skipped.set(why, (report.skipped.get(why) ?? 0) + 1) }
  let db = 0
  let expireAtMs = -1
  for (;;) {
    const op = c.byte()
    switch (op) {
      case OPCODE_EOF: {
        if (version >= 5) {
          c.need(8)
          const stored = c.b.readUInt32LE(c.at + 4).toString(16).padStart(8, '0') + c.b.readUInt32LE(c.at).toString(16).padStart(8, '0')
          // A stored 0 means the writer did not compute one (rdbchecksum no).
          if (stored !== '0000000000000000' && o.checksum !== false && stored !== crc64(c.b, 0, c.at).hex()) throw dbError('RDB_INVALID', `RDB checksum mismatch: the file says ${stored}, its bytes give ${crc64(c.b, 0, c.at).hex()}`)
          report.checksum = stored
          c.at += 8
        }
        if (c.at !== c.b.length) c.fail(`${c.b.length - c.at} bytes after the end of the RDB`)
        return report
      }
      case OPCODE_AUX: {
        const k = c.string().toString('utf8')
        const v = c.string().toString('utf8')
        if (report.aux.size < 1000) report.aux.set(k, v)
        continue
      }
      case OPCODE_SELECTDB: db = c.length(); continue
      case OPCODE_RESIZEDB: c.length(); c.length(); continue
      case OPCODE_EXPIRETIME_MS: {
        c.need(8)
        expireAtMs = c.b.readUInt32LE(c.at + 4) * 2 ** 32 + c.b.readUInt32LE(c.at)
        c.at += 8
        continue
      }
      case OPCODE_EXPIRETIME: {
        c.need(4)
        expireAtMs = c.b.readUInt32LE(c.at) * 1000
        c.at += 4
        continue
      }
      case OPCODE_IDLE: c.length(); continue
      case OPCODE_FREQ: c.byte(); continue
      case OPCODE_FUNCTION2: {
        c.string()
        if (!o.skipUnsupported) throw dbError('RDB_UNSUPPORTED', 'the RDB holds a function library (FUNCTION LOAD): freshet has no scripting (--skip-unsupported skips it)')
        skip('function library')
        continue
      }
      case OPCODE_MODULE_AUX:
        throw dbError('RDB_UNSUPPORTED', 'the RDB holds module data: freshet cannot read or skip it')
      default: {
        const type = op
        const name = TYPE_NAMES[type]
        if (name === undefined) c.fail(`an unknown opcode or value type ${type}`)
        const key = c.string()
        const expiry = expireAtMs
        expireAtMs = -1
        if (type !== TYPE_STRING) {
          if (!o.skipUnsupported) throw dbError('RDB_UNSUPPORTED', `key ${keyName(key)} is a ${name}: freshet stores strings only (--skip-unsupported skips it)`)
          if (!c.skipValue(type)) throw dbError('RDB_UNSUPPORTED', `key ${keyName(key)} is a ${name}, which freshet can neither load nor skip`)
          skip(name)
          continue
        }
        const value = c.string()
        if (db !== 0) {
          if (!o.skipUnsupported) throw dbError('RDB_UNSUPPORTED', `key ${keyName(key)} is in database ${db}: freshet has one database, 0 (--skip-unsupported skips it)`)
          skip(`database ${db}`)
          continue
        }
        report.keys++
        if (entry !== null) entry({ key, value, expireAtMs: expiry })
      }
    }
  }
}

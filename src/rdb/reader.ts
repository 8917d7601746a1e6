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
import { LZF_EXPANSION_MAX, lzfDecompressInto } from './lzf.js'

/**
 * One string key as read: key and value as ranges of a buffer (the file, or
 * a decompressed or integer-spelled copy), its expiry (ms, -1: none). One
 * object serves every key of a walk, so a reader copies what it keeps.
 */
export interface RdbEntry {
  keySource: Buffer
  keyStart: number
  keyLength: number
  valueSource: Buffer
  valueStart: number
  valueLength: number
  expireAtMs: number
}

export interface RdbReadOptions {
  skipUnsupported: boolean
  /**
   * Verify the CRC-64 trailer (default true). False leaves it to the caller
   * (a restore computes it on another thread while it loads): the report's
   * checksum is then the stored one, over the bytes before the trailer.
   */
  checksum?: boolean
  /** RESIZEDB's hint: the number of keys in the database that follows. */
  sizeHint?: (keyCount: number) => void
}

export interface RdbReadReport {
  version: number
  aux: Map<string, string>
  keys: number
  /** Entries skipped (skipUnsupported), by reason. */
  skipped: Map<string, number>
  checksum: string
  /** Where the bytes the trailer's CRC-64 covers end ([0, checksumEnd)); -1 where the file has no trailer (version < 5). */
  checksumEnd: number
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

  /** The last string read by range(): its bytes are source[start, end). */
  source: Buffer = Buffer.alloc(0)
  start = 0
  end = 0
  /** Where range(slot) puts a string it must spell out or decompress: one per slot, so a key outlives its value's read. */
  private readonly scratch: Buffer[] = [Buffer.alloc(256), Buffer.alloc(256)]

  private scratchOf(slot: number, bytes: number): Buffer {
    if (this.scratch[slot].length < bytes) this.scratch[slot] = Buffer.allocUnsafe(Math.max(bytes, 2 * this.scratch[slot].length))
    return this.scratch[slot]
  }

  /**
   * Reads a string into source/start/end: a plain one stays a range of the
   * file; an integer-encoded or compressed one is written into scratch
   * buffer `slot` (0 or 1), valid until the next read into that slot.
   */
  range(slot = 0): void {
    const n = this.length(true)
    if (n >= 0) {
      this.need(n)
      this.source = this.b
      this.start = this.at
      this.end = this.at + n
      this.at += n
      return
    }
    const enc = -1 - n
    let v: number
    if (enc === ENC_INT8) { this.need(1); v = this.b.readInt8(this.at); this.at += 1 }
    else if (enc === ENC_INT16) { this.need(2); v = this.b.readInt16LE(this.at); this.at += 2 }
    else if (enc === ENC_INT32) { this.need(4); v = this.b.readInt32LE(this.at); this.at += 4 }
    else if (enc === ENC_LZF) {
      const compressed = this.length()
      const plain = this.length()
      this.need(compressed)
      if (plain > compressed * LZF_EXPANSION_MAX) this.fail(`an LZF string of ${compressed} bytes claiming ${plain}`)
      const out = this.scratchOf(slot, plain)
      if (!lzfDecompressInto(this.b, this.at, this.at + compressed, out, plain)) this.fail('an LZF string that does not decompress to its length')
      this.at += compressed
      this.source = out
      this.start = 0
      this.end = plain
      return
    } else {
      return this.fail(`an unknown string encoding ${enc}`)
    }
    // At most 11 characters ("-2147483648").
    const out = this.scratchOf(slot, 16)
    this.source = out
    this.start = 0
    this.end = out.write(String(v), 0, 'latin1')
  }

  /** A string as a buffer of its own bytes (a copy where it is not a range of the file). */
  string(): Buffer {
    this.range()
    return this.source === this.b ? this.b.subarray(this.start, this.end) : Buffer.from(this.source.subarray(this.start, this.end))
  }

  /** Skips a value of `type` that freshet does not hold (skipUnsupported), reading its strings into scratch slot 1 (the key's stays); false if it cannot be skipped. */
  skipValue(type: number): boolean {
    switch (type) {
      case 1: case 2: { const n = this.length(); for (let i = 0; i < n; i++) this.range(1); return true }
      case 3: { const n = this.length(); for (let i = 0; i < n; i++) { this.range(1); const l = this.byte(); if (l < 253) { this.need(l); this.at += l } } return true }
      case 4: { const n = this.length(); for (let i = 0; i < 2 * n; i++) this.range(1); return true }
      case 5: { const n = this.length(); for (let i = 0; i < n; i++) { this.range(1); this.need(8); this.at += 8 } return true }
      case 9: case 10: case 11: case 12: case 13: case 16: case 17: case 20: this.range(1); return true
      case 14: { const n = this.length(); for (let i = 0; i < n; i++) this.range(1); return true }
      case 18: { const n = this.length(); for (let i = 0; i < n; i++) { this.length(); this.range(1) } return true }
      default: return false
    }
  }
}

/** The CRC-64 trailer's check: a stored 0 means the writer did not compute one (rdbchecksum no). */
export function checkChecksum(stored: string, computed: () => string): void {
  if (stored === NO_CHECKSUM) return
  const c = computed()
  if (stored !== c) throw dbError('RDB_INVALID', `RDB checksum mismatch: the file says ${stored}, its bytes give ${c}`)
}

/** What an RDB writer stores when it computed no checksum. */
export const NO_CHECKSUM = '0000000000000000'

/** A key as error messages name it. */
function keyName(e: RdbEntry): string {
  return JSON.stringify(e.keySource.toString('utf8', e.keyStart, e.keyStart + Math.min(e.keyLength, 200)))
}

/** The entry's key as a string (tests, messages). */
export function entryKey(e: RdbEntry): string {
  return e.keySource.toString('utf8', e.keyStart, e.keyStart + e.keyLength)
}

/** The entry's value as a string (tests). */
export function entryValue(e: RdbEntry): string {
  return e.valueSource.toString('utf8', e.valueStart, e.valueStart + e.valueLength)
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
  const w = new RdbWalker(file, o, entry)
  while (!w.step(Number.MAX_SAFE_INTEGER));
  return w.report
}

/**
 * A walk over the file in steps (walkRdb takes one step for all of it): a
 * loader that must let other work run (a restore's group commit writes and
 * fsyncs the log while it loads) takes a bounded number of keys per step.
 */
export class RdbWalker {
  readonly report: RdbReadReport
  private readonly c: Cursor
  private readonly e: RdbEntry
  private db = 0
  private expireAtMs = -1

  constructor(file: Buffer, private readonly o: RdbReadOptions, private readonly entry: ((e: RdbEntry) => void) | null) {
    this.c = new Cursor(file)
    const version = checkHeader(this.c)
    this.report = { version, aux: new Map(), keys: 0, skipped: new Map(), checksum: '0', checksumEnd: -1 }
    this.e = { keySource: file, keyStart: 0, keyLength: 0, valueSource: file, valueStart: 0, valueLength: 0, expireAtMs: -1 }
  }

  private skip(why: string): void {
    this.report.skipped.set(why, (this.report.skipped.get(why) ?? 0) + 1)
  }

  /** Reads on until `keys` more string keys were handed to the entry callback, or the end; true at the end. */
  step(keys: number): boolean {
    const { c, e, o, report } = this
    const version = report.version
    const stopAt = report.keys + keys
    while (report.keys < stopAt) {
      const op = c.byte()
      switch (op) {
        case OPCODE_EOF: {
          if (version >= 5) {
            c.need(8)
            const stored = c.b.readUInt32LE(c.at + 4).toString(16).padStart(8, '0') + c.b.readUInt32LE(c.at).toString(16).padStart(8, '0')
            if (o.checksum !== false) checkChecksum(stored, () => crc64(c.b, 0, c.at).hex())
            report.checksum = stored
            report.checksumEnd = c.at
            c.at += 8
          }
          if (c.at !== c.b.length) c.fail(`${c.b.length - c.at} bytes after the end of the RDB`)
          return true
        }
        case OPCODE_AUX: {
          const k = c.string().toString('utf8')
          const v = c.string().toString('utf8')
          if (report.aux.size < 1000) report.aux.set(k, v)
          continue
        }
        case OPCODE_SELECTDB: this.db = c.length(); continue
        case OPCODE_RESIZEDB: {
          const keyCount = c.length()
          c.length()
          if (o.sizeHint !== undefined && this.db === 0) o.sizeHint(keyCount)
          continue
        }
        case OPCODE_EXPIRETIME_MS: {
          c.need(8)
          this.expireAtMs = c.b.readUInt32LE(c.at + 4) * 2 ** 32 + c.b.readUInt32LE(c.at)
          c.at += 8
          continue
        }
        case OPCODE_EXPIRETIME: {
          c.need(4)
          this.expireAtMs = c.b.readUInt32LE(c.at) * 1000
          c.at += 4
          continue
        }
        case OPCODE_IDLE: c.length(); continue
        case OPCODE_FREQ: c.byte(); continue
        case OPCODE_FUNCTION2: {
          c.string()
          if (!o.skipUnsupported) throw dbError('RDB_UNSUPPORTED', 'the RDB holds a function library (FUNCTION LOAD): freshet has no scripting (--skip-unsupported skips it)')
          this.skip('function library')
          continue
        }
        case OPCODE_MODULE_AUX:
          throw dbError('RDB_UNSUPPORTED', 'the RDB holds module data: freshet cannot read or skip it')
        default: {
          const type = op
          const name = TYPE_NAMES[type]
          if (name === undefined) c.fail(`an unknown opcode or value type ${type}`)
          c.range()
          e.keySource = c.source
          e.keyStart = c.start
          e.keyLength = c.end - c.start
          e.expireAtMs = this.expireAtMs
          this.expireAtMs = -1
          if (type !== TYPE_STRING) {
            if (!o.skipUnsupported) throw dbError('RDB_UNSUPPORTED', `key ${keyName(e)} is a ${name}: freshet stores strings only (--skip-unsupported skips it)`)
            if (!c.skipValue(type)) throw dbError('RDB_UNSUPPORTED', `key ${keyName(e)} is a ${name}, which freshet can neither load nor skip`)
            this.skip(name)
            continue
          }
          c.range(1)
          if (this.db !== 0) {
            if (!o.skipUnsupported) throw dbError('RDB_UNSUPPORTED', `key ${keyName(e)} is in database ${this.db}: freshet has one database, 0 (--skip-unsupported skips it)`)
            this.skip(`database ${this.db}`)
            continue
          }
          e.valueSource = c.source
          e.valueStart = c.start
          e.valueLength = c.end - c.start
          report.keys++
          if (this.entry !== null) this.entry(e)
        }
      }
    }
    return false
  }
}

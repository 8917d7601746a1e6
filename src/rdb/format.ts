/**
 * Redis's RDB file format, the parts freshet writes and reads: the magic and
 * version ("REDIS0009" written; 1 to 12 read), opcodes, value types, and the
 * length encoding:
 *
 *   00xxxxxx                  a length below 64
 *   01xxxxxx xxxxxxxx         below 16384 (14 bits, big-endian)
 *   10000000 + 4 bytes BE     below 2^32
 *   10000001 + 8 bytes BE     below 2^64 (safe integers here)
 *   11xxxxxx                  a special string encoding: 0 int8, 1 int16,
 *                             2 int32 (little-endian), 3 LZF
 *
 * A file is: magic + version, AUX fields, SELECTDB, RESIZEDB, then entries
 * ([EXPIRETIME_MS | EXPIRETIME] [IDLE | FREQ] type key value), EOF and the
 * CRC-64 of everything before it (crc64.ts; 0 means "not computed").
 */
export const RDB_MAGIC = 'REDIS'
export const RDB_VERSION_WRITTEN = 9
export const RDB_VERSION_READ_MAX = 12

export const OPCODE_FUNCTION2 = 0xf5
export const OPCODE_FUNCTION_PRE_GA = 0xf6
export const OPCODE_MODULE_AUX = 0xf7
export const OPCODE_IDLE = 0xf8
export const OPCODE_FREQ = 0xf9
export const OPCODE_AUX = 0xfa
export const OPCODE_RESIZEDB = 0xfb
export const OPCODE_EXPIRETIME_MS = 0xfc
export const OPCODE_EXPIRETIME = 0xfd
export const OPCODE_SELECTDB = 0xfe
export const OPCODE_EOF = 0xff

export const TYPE_STRING = 0

/** Value type names (error messages and skip counts). */
export const TYPE_NAMES: Readonly<Record<number, string>> = {
  0: 'string', 1: 'list', 2: 'set', 3: 'zset', 4: 'hash', 5: 'zset', 6: 'module', 7: 'module',
  9: 'hash (zipmap)', 10: 'list (ziplist)', 11: 'set (intset)', 12: 'zset (ziplist)', 13: 'hash (ziplist)',
  14: 'list (quicklist)', 15: 'stream', 16: 'hash (listpack)', 17: 'zset (listpack)', 18: 'list (quicklist)',
  19: 'stream', 20: 'set (listpack)', 21: 'stream',
}

export const ENC_INT8 = 0
export const ENC_INT16 = 1
export const ENC_INT32 = 2
export const ENC_LZF = 3

/** Bytes writeLength() takes for `n`. */
export function lengthBytes(n: number): number {
  if (n < 64) return 1
  if (n < 16384) return 2
  if (n <= 0xffffffff) return 5
  return 9
}

/** Writes the length encoding of `n` at `at`; returns the next offset. */
export function writeLength(out: Buffer, at: number, n: number): number {
  if (n < 64) {
    out[at] = n
    return at + 1
  }
  if (n < 16384) {
    out[at] = 0x40 | (n >>> 8)
    out[at + 1] = n & 0xff
    return at + 2
  }
  if (n <= 0xffffffff) {
    out[at] = 0x80
    out.writeUInt32BE(n, at + 1)
    return at + 5
  }
  out[at] = 0x81
  out.writeUInt32BE(Math.floor(n / 2 ** 32), at + 1)
  out.writeUInt32BE(n >>> 0, at + 5)
  return at + 9
}

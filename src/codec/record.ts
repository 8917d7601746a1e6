/**
 * Record codec: the byte layout of log blocks and ops (constants.ts holds the
 * offsets). A block is a header plus ops, each op aligned to LSN_ALIGN_BYTES:
 *
 *   block = header(48) op* padding      op = header(16) key value padding
 *
 * Encoding writes straight into a segment's bytes; decoding reads fields from a
 * DataView into locals: nothing here allocates per op. The block checksum
 * (XXH32, xxhash-wasm) covers bytes [4, length): every other header field, every
 * op and the padding, so any single-bit flip anywhere in a block is detected.
 *
 * validateBlock() returns -1 for anything that is not a whole, checksummed,
 * well-formed block at the expected LSN (torn tails are expected at recovery,
 * not exceptions); validateBlockFault() says why, for a log line.
 */
import { assert } from '../assert.js'
import {
  BLOCK_CHECKSUM_OFFSET, BLOCK_COMMIT_TIME_OFFSET, BLOCK_EPOCH_OFFSET, BLOCK_FLAG_PADDING, BLOCK_FLAGS_OFFSET,
  BLOCK_HEADER_BYTES, BLOCK_KEY_COUNT_OFFSET, BLOCK_LENGTH_OFFSET, BLOCK_MAGIC, BLOCK_MAGIC_OFFSET,
  BLOCK_OP_COUNT_OFFSET, BLOCK_START_LSN_HI_OFFSET, BLOCK_START_LSN_LO_OFFSET, BLOCK_TXN_COUNT_OFFSET,
  BLOCK_VERSION, BLOCK_VERSION_MIN, BLOCK_VERSION_OFFSET, LSN_ALIGN_BYTES, OP_EXPIRY_BYTES, OP_FLAG_EXPIRES, OP_FLAG_RELOCATED, OP_FLAGS_OFFSET, OP_HEADER_BYTES, OP_KEY_HASH_OFFSET,
  OP_KEY_LENGTH_OFFSET, OP_PREV_REF_OFFSET, OP_TYPE_DELETE, OP_TYPE_OFFSET, OP_TYPE_SET,
  OP_VALUE_LENGTH_OFFSET, alignUp,
} from '../constants.js'
import { goesBack, refAtOffset, refOfLsn } from '../index/ref.js'
import { checksum32, keyHash } from './hash.js'

/**
 * Commit times (ms since the Unix epoch) above this are refused: year 2400, far
 * past any clock, still exact in an f64 and small enough that lag arithmetic
 * (now - commit time, in microseconds) stays a safe integer.
 */
export const COMMIT_TIME_MS_MAX = 13_569_465_600_000

const TWO_32 = 2 ** 32

/*
 * The op layout, in one place: header (OP_HEADER_BYTES), key, value, padding
 * to LSN_ALIGN_BYTES. Everything that walks ops goes through these, so a
 * format version that adds a field (key expiry) changes them alone.
 */

/** Bytes of an op's header, expiry (if it expires), key and value, before padding. */
export function opUsedBytes(keyLength: number, valueLength: number, expires = false): number {
  return OP_HEADER_BYTES + (expires ? OP_EXPIRY_BYTES : 0) + keyLength + valueLength
}

/** Bytes an op occupies in the log, padding included. */
export function opBytes(keyLength: number, valueLength: number, expires = false): number {
  return alignUp(opUsedBytes(keyLength, valueLength, expires))
}

/** Does the op at `at` carry an expiry time? */
export function opExpires(dv: DataView, at: number): boolean {
  return (dv.getUint8(at + OP_FLAGS_OFFSET) & OP_FLAG_EXPIRES) !== 0
}

/** The op's absolute expiry time (ms since the Unix epoch), or 0 if it never expires. */
export function opExpiryMs(dv: DataView, at: number): number {
  return (dv.getUint8(at + OP_FLAGS_OFFSET) & OP_FLAG_EXPIRES) !== 0 ? dv.getFloat64(at + OP_HEADER_BYTES, true) : 0
}

/** Offset of the key bytes of the op at `at`. */
export function opKeyAt(dv: DataView, at: number): number {
  return at + OP_HEADER_BYTES + ((dv.getUint8(at + OP_FLAGS_OFFSET) & OP_FLAG_EXPIRES) !== 0 ? OP_EXPIRY_BYTES : 0)
}

/** Bytes the op at `at` occupies in the log, padding included. */
export function opSizeAt(dv: DataView, at: number): number {
  return opBytes(dv.getUint16(at + OP_KEY_LENGTH_OFFSET, true), dv.getUint32(at + OP_VALUE_LENGTH_OFFSET, true), opExpires(dv, at))
}

/**
 * Writes an op header at `offset` (and its expiry, if `expireAtMs` > 0); the
 * caller copies key and value behind it (at opKeyAt), then pads.
 */
export function writeOpHeader(
  dv: DataView, offset: number, type: number, keyHash: number, prevRef: number,
  keyLength: number, valueLength: number, expireAtMs = 0,
): void {
  dv.setUint8(offset + OP_TYPE_OFFSET, type)
  dv.setUint8(offset + OP_FLAGS_OFFSET, expireAtMs > 0 ? OP_FLAG_EXPIRES : 0)
  if (expireAtMs > 0) dv.setFloat64(offset + OP_HEADER_BYTES, expireAtMs, true)
  dv.setUint16(offset + OP_KEY_LENGTH_OFFSET, keyLength, true)
  dv.setInt32(offset + OP_KEY_HASH_OFFSET, keyHash, true)
  dv.setUint32(offset + OP_VALUE_LENGTH_OFFSET, valueLength, true)
  dv.setUint32(offset + OP_PREV_REF_OFFSET, prevRef, true)
}

/** Zeroes the padding after an op's bytes and returns the op's aligned size. */
export function padOp(u8: Uint8Array, offset: number, keyLength: number, valueLength: number, expires = false): number {
  const used = opUsedBytes(keyLength, valueLength, expires)
  const size = alignUp(used)
  for (let i = offset + used; i < offset + size; i++) u8[i] = 0
  return size
}

/**
 * Writes one op at `offset` and returns its aligned size. Key and value are
 * copied from their sources (byte arrays with start and length).
 */
export function writeOp(
  u8: Uint8Array, dv: DataView, offset: number, type: number, keyHash: number, prevRef: number,
  key: Uint8Array, keyStart: number, keyLength: number,
  value: Uint8Array | null, valueStart: number, valueLength: number,
): number {
  writeOpHeader(dv, offset, type, keyHash, prevRef, keyLength, valueLength)
  const keyAt = opKeyAt(dv, offset)
  copyBytes(u8, keyAt, key, keyStart, keyLength)
  if (valueLength > 0) copyBytes(u8, keyAt + keyLength, value!, valueStart, valueLength)
  return padOp(u8, offset, keyLength, valueLength)
}

/**
 * Small copies by loop, large ones by TypedArray.set. Every native copy
 * between two buffers makes a view (Buffer's copy makes one inside too), so
 * only copies past 256 bytes, where the view is cheap beside the bytes, go
 * native: the hot paths allocate nothing per record.
 */
const COPY_LOOP_MAX = 256

export function copyBytes(dst: Uint8Array, dstAt: number, src: Uint8Array, srcStart: number, length: number): void {
  if (length <= COPY_LOOP_MAX) {
    for (let i = 0; i < length; i++) dst[dstAt + i] = src[srcStart + i]
  } else {
    dst.set(src.subarray(srcStart, srcStart + length), dstAt)
  }
}

export interface BlockHeaderFields {
  epoch: number
  startLsn: number
  length: number
  opCount: number
  txnCount: number
  keyCount: number
  commitTimeMs: number
  /** 0, or BLOCK_FLAG_PADDING for a block that only fills a segment's tail. */
  flags?: number
}

/** Writes the header of a block whose ops are already in place, then its checksum. */
export function sealBlock(u8: Uint8Array, dv: DataView, offset: number, f: BlockHeaderFields): void {
  assert(Number.isSafeInteger(f.startLsn) && f.startLsn >= 0, 'startLsn is a safe integer')
  assert(f.length % LSN_ALIGN_BYTES === 0, 'block length is aligned')
  assert(f.length >= BLOCK_HEADER_BYTES, 'block holds its header')
  dv.setUint32(offset + BLOCK_MAGIC_OFFSET, BLOCK_MAGIC, true)
  dv.setUint16(offset + BLOCK_VERSION_OFFSET, BLOCK_VERSION, true)
  dv.setUint16(offset + BLOCK_FLAGS_OFFSET, f.flags ?? 0, true)
  dv.setUint32(offset + BLOCK_EPOCH_OFFSET, f.epoch, true)
  dv.setUint32(offset + BLOCK_START_LSN_LO_OFFSET, f.startLsn % TWO_32, true)
  dv.setUint32(offset + BLOCK_START_LSN_HI_OFFSET, Math.floor(f.startLsn / TWO_32), true)
  dv.setUint32(offset + BLOCK_LENGTH_OFFSET, f.length, true)
  dv.setUint32(offset + BLOCK_OP_COUNT_OFFSET, f.opCount, true)
  dv.setUint32(offset + BLOCK_TXN_COUNT_OFFSET, f.txnCount, true)
  dv.setUint32(offset + BLOCK_KEY_COUNT_OFFSET, f.keyCount, true)
  dv.setFloat64(offset + BLOCK_COMMIT_TIME_OFFSET, f.commitTimeMs, true)
  const sum = checksum32(u8, offset + BLOCK_MAGIC_OFFSET, offset + f.length)
  dv.setUint32(offset + BLOCK_CHECKSUM_OFFSET, sum, true)
}

export function blockLength(dv: DataView, offset: number): number {
  return dv.getUint32(offset + BLOCK_LENGTH_OFFSET, true)
}
export function blockStartLsn(dv: DataView, offset: number): number {
  return dv.getUint32(offset + BLOCK_START_LSN_HI_OFFSET, true) * TWO_32 +
    dv.getUint32(offset + BLOCK_START_LSN_LO_OFFSET, true)
}
export function blockEpoch(dv: DataView, offset: number): number {
  return dv.getUint32(offset + BLOCK_EPOCH_OFFSET, true)
}
export function blockOpCount(dv: DataView, offset: number): number {
  return dv.getUint32(offset + BLOCK_OP_COUNT_OFFSET, true)
}
export function blockTxnCount(dv: DataView, offset: number): number {
  return dv.getUint32(offset + BLOCK_TXN_COUNT_OFFSET, true)
}
export function blockKeyCount(dv: DataView, offset: number): number {
  return dv.getUint32(offset + BLOCK_KEY_COUNT_OFFSET, true)
}
export function blockCommitTimeMs(dv: DataView, offset: number): number {
  return dv.getFloat64(offset + BLOCK_COMMIT_TIME_OFFSET, true)
}

export function opType(dv: DataView, offset: number): number {
  return dv.getUint8(offset + OP_TYPE_OFFSET)
}
export function opKeyLength(dv: DataView, offset: number): number {
  return dv.getUint16(offset + OP_KEY_LENGTH_OFFSET, true)
}
/** The op's key hash, signed as keyHash() returns it. */
export function opKeyHash(dv: DataView, offset: number): number {
  return dv.getInt32(offset + OP_KEY_HASH_OFFSET, true)
}
export function opValueLength(dv: DataView, offset: number): number {
  return dv.getUint32(offset + OP_VALUE_LENGTH_OFFSET, true)
}
export function opPrevRef(dv: DataView, offset: number): number {
  return dv.getUint32(offset + OP_PREV_REF_OFFSET, true)
}

/** Why a block is refused (validateBlockFault); BLOCK_OK when it is whole and well-formed. */
export const BLOCK_OK = 0
export const BLOCK_TORN = 1
export const BLOCK_BAD_MAGIC = 2
export const BLOCK_BAD_VERSION = 3
export const BLOCK_BAD_LENGTH = 4
export const BLOCK_BAD_POSITION = 5
export const BLOCK_BAD_CHECKSUM = 6
export const BLOCK_BAD_OP_FRAMING = 7
export const BLOCK_BAD_OP_TYPE = 8
export const BLOCK_BAD_KEY_HASH = 9
export const BLOCK_BAD_PREV_REF = 10
export const BLOCK_BAD_COMMIT_TIME = 11
export const BLOCK_BAD_KEY_COUNT = 12
export const BLOCK_BAD_FLAGS = 13
/** Index = fault code; constant strings, so naming a fault allocates nothing. */
export const BLOCK_FAULT_NAMES: readonly string[] = [
  'ok', 'torn (shorter than its header or length)', 'bad magic', 'unknown format version',
  'bad length', 'wrong start LSN', 'checksum mismatch', 'ops do not fill the block', 'unknown op type',
  'key hash is not the hash of the key', 'prevRef not below the op\'s own ref',
  'commit time not a finite, non-negative number', 'live-key count out of bounds',
  'unknown flags, a padding block with ops, or a bad op flag',
]

/**
 * Checks the block at `offset` (log position `expectedLsn`), with `available`
 * bytes readable from `offset`. Returns the block's length, or -1 if it is not a
 * whole, well-formed, checksummed block for that position (torn or corrupt).
 * See validateBlockFault for what is checked.
 */
export function validateBlock(
  u8: Uint8Array, dv: DataView, offset: number, available: number, expectedLsn: number,
  prevKeyCount = -1,
): number {
  if (validateBlockFault(u8, dv, offset, available, expectedLsn, prevKeyCount) !== BLOCK_OK) return -1
  return blockLength(dv, offset)
}

/**
 * validateBlock with the reason: BLOCK_OK or a BLOCK_* fault code. A block
 * passes only if every field a reader later trusts holds: framing (magic,
 * version, aligned length within `available`, start LSN, checksum), ops that
 * exactly fill the block (so replay never reads outside it), each op's type,
 * key hash (= keyHash of its key bytes: replay and reads find keys by it),
 * prevRef (REF_NONE or strictly below the op's own ref: the version chain only
 * goes back, so walking it ends), a finite, non-negative commit time, and,
 * when `prevKeyCount` (the live-key count after the block before; -1 if
 * unknown) is given, a live-key count within what this block's ops can
 * change: each set adds at most one live key, each delete removes at most one.
 * Checksum-valid is not enough: a buggy or hostile primary checksums nonsense.
 * Allocates nothing; one keyHash per op (the bytes are in cache after the
 * checksum pass).
 */
export function validateBlockFault(
  u8: Uint8Array, dv: DataView, offset: number, available: number, expectedLsn: number,
  prevKeyCount: number,
): number {
  if (available < BLOCK_HEADER_BYTES) return BLOCK_TORN
  if (dv.getUint32(offset + BLOCK_MAGIC_OFFSET, true) !== BLOCK_MAGIC) return BLOCK_BAD_MAGIC
  const version = dv.getUint16(offset + BLOCK_VERSION_OFFSET, true)
  if (version < BLOCK_VERSION_MIN || version > BLOCK_VERSION) return BLOCK_BAD_VERSION
  // Expiring ops exist from block format 2 on.
  const knownOpFlags = version >= 2 ? OP_FLAG_RELOCATED | OP_FLAG_EXPIRES : OP_FLAG_RELOCATED
  const length = blockLength(dv, offset)
  if (length < BLOCK_HEADER_BYTES || length % LSN_ALIGN_BYTES !== 0) return BLOCK_BAD_LENGTH
  if (length > available) return BLOCK_TORN
  if (blockStartLsn(dv, offset) !== expectedLsn) return BLOCK_BAD_POSITION
  const sum = checksum32(u8, offset + BLOCK_MAGIC_OFFSET, offset + length)
  if (sum !== dv.getUint32(offset + BLOCK_CHECKSUM_OFFSET, true)) return BLOCK_BAD_CHECKSUM
  const commitTimeMs = blockCommitTimeMs(dv, offset)
  // Written as a positive test so that NaN fails it.
  if (!(commitTimeMs >= 0 && commitTimeMs <= COMMIT_TIME_MS_MAX)) return BLOCK_BAD_COMMIT_TIME
  const opCount = blockOpCount(dv, offset)
  const flags = dv.getUint16(offset + BLOCK_FLAGS_OFFSET, true)
  if (flags !== 0 && (flags !== BLOCK_FLAG_PADDING || opCount !== 0)) return BLOCK_BAD_FLAGS
  const end = offset + length
  // Each op takes at least OP_HEADER_BYTES: a larger count cannot fill the block (and bounds the loop).
  if (opCount > (length - BLOCK_HEADER_BYTES) / OP_HEADER_BYTES) return BLOCK_BAD_OP_FRAMING
  // The ref of the op at buffer offset `at` is refAtOffset(baseRef, at) (ops are aligned: exact).
  const baseRef = refOfLsn(expectedLsn - offset)
  let sets = 0
  let deletes = 0
  let at = offset + BLOCK_HEADER_BYTES
  for (let i = 0; i < opCount; i++) {
    if (at + OP_HEADER_BYTES > end) return BLOCK_BAD_OP_FRAMING
    const type = opType(dv, at)
    if (type === OP_TYPE_SET) sets++
    else if (type === OP_TYPE_DELETE) deletes++
    else return BLOCK_BAD_OP_TYPE
    const opFlags = dv.getUint8(at + OP_FLAGS_OFFSET)
    if ((opFlags & ~knownOpFlags) !== 0) return BLOCK_BAD_FLAGS
    // A relocation (a set, or a tombstone that must stay) names the version it copies.
    if ((opFlags & OP_FLAG_RELOCATED) !== 0 && opPrevRef(dv, at) === 0) return BLOCK_BAD_FLAGS
    const expires = (opFlags & OP_FLAG_EXPIRES) !== 0
    // Only a set expires, at a positive integer time (ms since the Unix epoch).
    if (expires && (type !== OP_TYPE_SET || at + OP_HEADER_BYTES + OP_EXPIRY_BYTES > end)) return BLOCK_BAD_FLAGS
    if (expires && !(Number.isSafeInteger(opExpiryMs(dv, at)) && opExpiryMs(dv, at) > 0)) return BLOCK_BAD_FLAGS
    const keyLength = opKeyLength(dv, at)
    const size = opBytes(keyLength, opValueLength(dv, at), expires)
    if (at + size > end) return BLOCK_BAD_OP_FRAMING
    const prevRef = opPrevRef(dv, at)
    if (!goesBack(refAtOffset(baseRef, at), prevRef)) return BLOCK_BAD_PREV_REF
    if (opKeyHash(dv, at) !== keyHash(u8, opKeyAt(dv, at), keyLength)) return BLOCK_BAD_KEY_HASH
    at += size
  }
  // A padding block's body is filler (covered by the checksum); every other block is exactly its ops.
  if (at !== end && flags !== BLOCK_FLAG_PADDING) return BLOCK_BAD_OP_FRAMING
  if (prevKeyCount >= 0) {
    const keyCount = blockKeyCount(dv, offset)
    if (keyCount > prevKeyCount + sets || keyCount < prevKeyCount - deletes) return BLOCK_BAD_KEY_COUNT
  }
  return BLOCK_OK
}

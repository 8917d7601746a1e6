/**
 * Limits and layout sizes. Layout constants derive from one another; the
 * relationships that must hold are asserted at load.
 */
import { assert } from './assert.js'

/** Every op and every block starts at a multiple of this; index slots store lsn / LSN_ALIGN_BYTES. */
export const LSN_ALIGN_BYTES = 8
/** The largest LSN: block headers carry 64-bit LSNs; positions stay exact doubles below 2^52. */
export const LSN_MAX = 2 ** 52

export const BLOCK_MAGIC = 0x48535246 // 'FRSH' little-endian
export const FORMAT_VERSION = 1
/**
 * Block format written: 2 adds ops that carry an expiry time (OP_FLAG_EXPIRES).
 * Blocks of format 1 (no expiring ops) are read as they are.
 */
export const BLOCK_VERSION = 2
export const BLOCK_VERSION_MIN = 1

// Block header layout (little-endian). The checksum covers bytes [4, length).
export const BLOCK_CHECKSUM_OFFSET = 0
export const BLOCK_MAGIC_OFFSET = 4
export const BLOCK_VERSION_OFFSET = 8 // u16
export const BLOCK_FLAGS_OFFSET = 10 // u16
/**
 * A padding block holds no ops: it fills a segment's tail that the next block
 * does not fit in, so blocks are contiguous (only a gap smaller than a block
 * header is ever skipped) and a backup can check every position.
 */
export const BLOCK_FLAG_PADDING = 1
export const BLOCK_EPOCH_OFFSET = 12 // u32
export const BLOCK_START_LSN_LO_OFFSET = 16 // u32
export const BLOCK_START_LSN_HI_OFFSET = 20 // u32
export const BLOCK_LENGTH_OFFSET = 24 // u32: whole block, header included, padding included
export const BLOCK_OP_COUNT_OFFSET = 28 // u32
export const BLOCK_TXN_COUNT_OFFSET = 32 // u32
export const BLOCK_KEY_COUNT_OFFSET = 36 // u32: live keys after this block (DBSIZE at this LSN)
export const BLOCK_COMMIT_TIME_OFFSET = 40 // f64: primary commit time, ms since the Unix epoch
export const BLOCK_HEADER_BYTES = 48

// Op layout (little-endian), starting at an LSN_ALIGN_BYTES boundary.
export const OP_TYPE_OFFSET = 0 // u8
export const OP_FLAGS_OFFSET = 1 // u8: 0, or OP_FLAG_RELOCATED
export const OP_KEY_LENGTH_OFFSET = 2 // u16
export const OP_KEY_HASH_OFFSET = 4 // u32
export const OP_VALUE_LENGTH_OFFSET = 8 // u32
export const OP_PREV_REF_OFFSET = 12 // u32: previous version's ref (index/ref.ts), 0 = none
export const OP_HEADER_BYTES = 16

export const OP_TYPE_SET = 1
export const OP_TYPE_DELETE = 2
/**
 * An op the cleaner copied to the tail from a segment it is releasing: a
 * set, or a tombstone an older version of its key still needs (primary/
 * cleaner.ts); the same key and value as the version its prevRef names (not
 * a write: WATCH and write counters look through it).
 */
export const OP_FLAG_RELOCATED = 1
/** A set that expires (block format 2): an f64 absolute expiry time (ms since the Unix epoch) follows the op header, before the key. */
export const OP_FLAG_EXPIRES = 2
export const OP_EXPIRY_BYTES = 8

/** Ref 0 means "no version": its positions (multiples of the ref ring) are segment starts, which hold block headers, never ops. */
export const REF_NONE = 0

export const KEY_BYTES_MAX = 0xffff
export const VALUE_BYTES_MAX_DEFAULT = 8 * 1024 * 1024
export const SEGMENT_BYTES_DEFAULT = 8 * 1024 * 1024
export const SEGMENT_BYTES_MIN = 1024 * 1024
/** --retain-bytes default: log the cleaner keeps behind the tail for backups that fall behind (a short blip). */
export const RETAIN_BYTES_DEFAULT = 8 * 1024 * 1024
/** A block is sealed once it reaches this size even inside one event-loop turn. */
export const BLOCK_BYTES_TARGET = 1024 * 1024

/** Index: 2^PARTITION_BITS partitions chosen by the top bits of the key hash. */
export const PARTITION_BITS = 6
export const PARTITION_COUNT = 1 << PARTITION_BITS
export const INDEX_SLOTS_MIN = 1024
/** Grow a partition table when live slots exceed this fraction. */
export const INDEX_LOAD_MAX = 0.7

export const CLIENTS_MAX_DEFAULT = 10000
export const QUERY_BUFFER_BYTES_MAX = 64 * 1024 * 1024
export const REPLY_BUFFER_BYTES_MAX = 64 * 1024 * 1024
/**
 * After a protocol error the connection sends its error reply and a FIN, then
 * reads and drops input for at most this long before it is destroyed: a close
 * with unread input is a reset, and a reset can destroy the error reply at a
 * client that is still writing before it reads.
 */
export const PROTOCOL_ERROR_LINGER_MS_MAX = 2_000
export const ARGS_MAX = 1024 * 1024
export const INLINE_BYTES_MAX = 64 * 1024
/**
 * Before AUTH (when a password is required) a connection may send only small
 * requests: AUTH and HELLO need a few short arguments, so a client that has not
 * proven who it is holds at most this much of the server's memory.
 */
export const UNAUTH_ARGS_MAX = 10
export const UNAUTH_BULK_BYTES_MAX = 16 * 1024
export const UNAUTH_QUERY_BYTES_MAX = 64 * 1024

/**
 * V8's young generation, per semi-space, for every freshet thread (the main
 * thread via NODE_FLAGS, replay workers via resourceLimits). Left alone, V8
 * doubles it to 16 MB a semi-space once enough bytes have survived scavenges
 * (they add up over time under any steady load) and never shrinks it while the
 * load lasts: a step of about 25 MB in a backup's RSS (main thread plus one
 * worker) that looked like growth in the soak. At 2 MB, RSS stays flat with no
 * measurable change in throughput or lag (BENCHMARKS §8c).
 */
export const YOUNG_SEMI_SPACE_MB = 2

/**
 * glibc's malloc threshold above which a block is mmapped (and unmapped when
 * freed), fixed for every freshet node (MALLOC_MMAP_THRESHOLD_, see
 * NODE_ENV_VARS). Left alone, glibc raises the threshold to the size of each
 * mmapped block that is freed, so after the first segment buffer goes, every
 * later one is carved from a malloc arena, and a freed buffer's pages stay in
 * RSS around whatever was allocated after it: a backup's brk heap grew from 6
 * to 15 MB in 4 minutes of the soak's load, and its RSS stepped up for good.
 * Fixed at 128 KB (glibc's own starting value; setting it also stops the
 * raising), segment buffers and index tables are always mmapped and their
 * memory goes back to the OS when the GC frees them (the brk heap stayed at
 * 4.9 MB). Other allocators ignore the variable.
 */
export const MALLOC_MMAP_THRESHOLD_BYTES = 128 * 1024

export const PORT_DEFAULT = 7379
export const HOST_DEFAULT = '127.0.0.1'

export function alignUp(n: number): number {
  return Math.ceil(n / LSN_ALIGN_BYTES) * LSN_ALIGN_BYTES
}

assert(BLOCK_HEADER_BYTES % LSN_ALIGN_BYTES === 0, 'block header keeps ops aligned')
assert(BLOCK_COMMIT_TIME_OFFSET + 8 === BLOCK_HEADER_BYTES, 'header fields fill the header')
assert(OP_PREV_REF_OFFSET + 4 === OP_HEADER_BYTES, 'op fields fill the op header')
assert(SEGMENT_BYTES_MIN % LSN_ALIGN_BYTES === 0, 'segments keep blocks aligned')
assert(UNAUTH_QUERY_BYTES_MAX >= UNAUTH_BULK_BYTES_MAX + 1024, 'an unauthenticated request of the largest bulk fits its buffer')
assert(UNAUTH_QUERY_BYTES_MAX <= INLINE_BYTES_MAX, 'the inline bound does not exceed the unauthenticated one')
assert(BLOCK_BYTES_TARGET <= SEGMENT_BYTES_DEFAULT, 'a target block fits a segment')

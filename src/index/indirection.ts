/**
 * The indirection table: key hash -> ref of the key's newest version in the log
 * (a u32 naming segment slot + offset, see ref.ts). It is the only state
 * besides the log: values are never copied out of the log.
 *
 * The table is split into PARTITION_COUNT partitions by the top bits of the key
 * hash. Each partition is one Int32Array over a SharedArrayBuffer:
 *
 *   [TABLE_USED, TABLE_SLOT_COUNT_LOG2, TABLE_GONE, reserved, (hash, ref) * slotCount]
 *
 * Open addressing with linear probing. A delete is a tombstone version, so a
 * key keeps its slot until the cleaner drops the tombstone (a DROP op): the
 * slot's ref becomes REF_GONE, which probes pass and an insert of any key may
 * reuse; a rebuild (growth) leaves gone slots out, so the table is bounded by
 * live keys plus tombstones the cleaner has not reached. Exactly one thread writes a
 * partition at a time (the primary's main thread, or the replay worker running
 * that partition's lane); any thread may read it concurrently:
 *
 *   insert: store hash, then Atomics.store(ref)  — the ref publishes the slot
 *   update: Atomics.store(ref) only (hash unchanged), newer refs only on replay
 *   read:   Atomics.load(ref) first; 0 = empty (end of probe); then read hash
 *
 * A hash is passed and stored as keyHash() returns it, a signed 32-bit
 * integer (opKeyHash reads an op's the same way): slots compare it with ===,
 * so an unsigned copy of the same bits would never match.
 *
 * Two keys with the same 32-bit hash are told apart by comparing the full key
 * in the log at the slot's ref. Growth builds a new, doubled table from the
 * old one (hashes are in the slots, so the log is not touched) and the writer
 * swaps it in; readers of the old table still see a consistent older state.
 */
import { opKeyAt, opSizeAt } from '../codec/record.js'
import { assert } from '../assert.js'
import {
  INDEX_LOAD_MAX, INDEX_SLOTS_MIN, OP_KEY_LENGTH_OFFSET,
  OP_PREV_REF_OFFSET, PARTITION_BITS, PARTITION_COUNT, REF_NONE,
} from '../constants.js'
import { REF_GONE, goesBack, isNewer, refAtOrPast, refPosition } from './ref.js'

/** REF_GONE as the Int32 a table word holds. */
const GONE_WORD = REF_GONE | 0

export const TABLE_USED = 0
export const TABLE_SLOT_COUNT_LOG2 = 1
/** Slots whose ref is REF_GONE (counted in TABLE_USED too: they lengthen probes until a rebuild). */
export const TABLE_GONE = 2
export const TABLE_HEADER_WORDS = 4

/** The log's segments as the index sees them: views by segment id. */
export interface LogSegments {
  segmentBytes: number
  u8: Uint8Array[]
  dv: DataView[]
}

export function partitionOf(hash: number): number {
  return hash >>> (32 - PARTITION_BITS)
}

export function createTable(slotCount: number): Int32Array {
  assert(slotCount >= INDEX_SLOTS_MIN, 'table has its minimum size')
  assert((slotCount & (slotCount - 1)) === 0, 'slot count is a power of two')
  const table = new Int32Array(new SharedArrayBuffer((TABLE_HEADER_WORDS + 2 * slotCount) * 4))
  table[TABLE_SLOT_COUNT_LOG2] = Math.log2(slotCount)
  return table
}

export function tableSlotCount(table: Int32Array): number {
  return 1 << table[TABLE_SLOT_COUNT_LOG2]
}

/** Slots holding a key (gone slots excluded). */
export function tableUsed(table: Int32Array): number {
  // Written only by the partition's writer; readers use them for statistics only.
  return Atomics.load(table, TABLE_USED) - Atomics.load(table, TABLE_GONE)
}

/** Does the log key of the version at `ref` equal key[keyStart, keyStart + keyLength)? */
export function keyEquals(
  log: LogSegments, ref: number, key: Uint8Array, keyStart: number, keyLength: number,
): boolean {
  const position = refPosition(ref)
  const id = Math.floor(position / log.segmentBytes)
  const at = position - id * log.segmentBytes
  const dv = log.dv[id]
  if (dv.getUint16(at + OP_KEY_LENGTH_OFFSET, true) !== keyLength) return false
  const u8 = log.u8[id]
  const k = opKeyAt(dv, at)
  for (let i = 0; i < keyLength; i++) {
    if (u8[k + i] !== key[keyStart + i]) return false
  }
  return true
}

/** Bytes the op at `ref` occupies in the log (header, key, value, padding). */
export function opBytesAt(log: LogSegments, ref: number): number {
  const position = refPosition(ref)
  const id = Math.floor(position / log.segmentBytes)
  const at = position - id * log.segmentBytes
  return opSizeAt(log.dv[id], at)
}

/**
 * Probes for the key. Returns its slot (>= 0), or -(empty slot) - 1 where it
 * would be inserted. (findSlotForOp with no previous-version hint: every hash
 * match compares key bytes, since no slot holds ref 0.)
 */
export function findSlot(
  table: Int32Array, log: LogSegments, hash: number,
  key: Uint8Array, keyStart: number, keyLength: number,
): number {
  return findSlotForOp(table, log, hash, REF_NONE, key, keyStart, keyLength)
}

/** The slot's ref: a version, or REF_NONE for a gone slot (the key was dropped). */
export function slotRef(table: Int32Array, slot: number): number {
  // Acquire: observes the newest ref the writer published for this slot.
  const ref = Atomics.load(table, TABLE_HEADER_WORDS + 2 * slot + 1)
  return ref === GONE_WORD ? REF_NONE : ref >>> 0
}

/** Writer only: points an existing slot at a newer version. */
export function setSlotRef(table: Int32Array, slot: number, ref: number): void {
  // Release: the version's bytes at `ref` are in the log before readers can follow it.
  Atomics.store(table, TABLE_HEADER_WORDS + 2 * slot + 1, ref | 0)
}

/** Writer only: fills an empty or gone slot. The caller grows the table first if needed. */
export function insertAt(table: Int32Array, slot: number, hash: number, ref: number): void {
  const w = TABLE_HEADER_WORDS + 2 * slot
  // The writer's own earlier store; no ordering needed to read it back.
  const reused = Atomics.load(table, w + 1) === GONE_WORD
  table[w] = hash
  // Release: publishes the slot; the hash above is visible to any reader that sees this ref.
  Atomics.store(table, w + 1, ref | 0)
  // Only the writer updates the counts; the stores make them visible to the next writer thread.
  if (reused) Atomics.store(table, TABLE_GONE, table[TABLE_GONE] - 1)
  else Atomics.store(table, TABLE_USED, table[TABLE_USED] + 1)
}

/**
 * Writer only: the key in `slot` is gone (its tombstone was dropped). Readers
 * that load REF_GONE treat the slot as absent and probe on.
 */
export function removeAt(table: Int32Array, slot: number): void {
  // Release: a reader that sees REF_GONE passes the slot; one that saw the old ref read a tombstone.
  Atomics.store(table, TABLE_HEADER_WORDS + 2 * slot + 1, GONE_WORD)
  // Only the writer updates the count; the store makes it visible to the next writer thread.
  Atomics.store(table, TABLE_GONE, table[TABLE_GONE] + 1)
}

export function tableNeedsGrowth(table: Int32Array): boolean {
  return table[TABLE_USED] + 1 > tableSlotCount(table) * INDEX_LOAD_MAX
}

/**
 * Writer only: a rebuilt copy of `table` holding every key and no gone slot
 * (no log reads): doubled, unless gone slots made up most of the load.
 */
export function growTable(table: Int32Array): Int32Array {
  const oldCount = tableSlotCount(table)
  const newCount = table[TABLE_GONE] * 2 > table[TABLE_USED] ? oldCount : oldCount * 2
  const next = createTable(newCount)
  const mask = newCount - 1
  let used = 0
  for (let s = 0; s < oldCount; s++) {
    const w = TABLE_HEADER_WORDS + 2 * s
    // Acquire is unnecessary (the caller is the only writer) but harmless; keeps one read rule.
    const ref = Atomics.load(table, w + 1)
    if (ref === REF_NONE || ref === GONE_WORD) continue
    const hash = table[w]
    let slot = hash & mask
    while (next[TABLE_HEADER_WORDS + 2 * slot + 1] !== REF_NONE) slot = (slot + 1) & mask
    next[TABLE_HEADER_WORDS + 2 * slot] = hash
    next[TABLE_HEADER_WORDS + 2 * slot + 1] = ref
    used++
  }
  next[TABLE_USED] = used
  return next
}

/**
 * Replay's probe: like findSlot, but a slot whose ref equals the op's
 * previous-version ref is the op's key without comparing key bytes (refs are
 * unique, and the primary took prevRef from this key's chain). Only other
 * hash matches fall back to comparing the key in the log.
 */
export function findSlotForOp(
  table: Int32Array, log: LogSegments, hash: number, prevRef: number,
  key: Uint8Array, keyStart: number, keyLength: number,
): number {
  const mask = (1 << table[TABLE_SLOT_COUNT_LOG2]) - 1
  let slot = hash & mask
  let firstGone = -1
  for (let probe = 0; probe <= mask; probe++) {
    const w = TABLE_HEADER_WORDS + 2 * slot
    // Acquire: a non-zero ref was stored after its slot's hash (see insert protocol).
    const ref = Atomics.load(table, w + 1)
    if (ref === REF_NONE) return firstGone >= 0 ? -firstGone - 1 : -slot - 1
    if (ref === GONE_WORD) {
      if (firstGone < 0) firstGone = slot
    } else if (table[w] === hash) {
      if ((ref >>> 0) === prevRef || keyEquals(log, ref >>> 0, key, keyStart, keyLength)) return slot
    }
    slot = (slot + 1) & mask
  }
  assert(firstGone >= 0, 'index table is never full')
  return -firstGone - 1
}

/**
 * Bytes of the heads an index holds (every key's newest version, tombstones
 * included: what the primary counts as live_bytes), kept by the code that
 * installs and drops heads. One per writer thread; no allocation per op.
 */
export interface HeadBytes {
  bytes: number
}

/** A sink for callers that keep their own count (the primary) or none (tests). */
export const UNCOUNTED: HeadBytes = { bytes: 0 }

/**
 * Installs version `ref` (whose previous version is `prevRef`) of the key
 * stored at that ref if it is newer than what the table holds
 * (install-if-newer: idempotent and order-independent), adding to `heads`
 * its `size` (the op's bytes) less those of the head it replaced. Returns
 * the table, replaced if it grew.
 */
export function installOp(
  table: Int32Array, log: LogSegments, hash: number, ref: number, prevRef: number,
  keyU8: Uint8Array, keyStart: number, keyLength: number, size: number, heads: HeadBytes,
): Int32Array {
  let slot = findSlotForOp(table, log, hash, prevRef, keyU8, keyStart, keyLength)
  if (slot >= 0) {
    const old = slotRef(table, slot)
    if (isNewer(ref, old)) {
      setSlotRef(table, slot, ref)
      heads.bytes += size - opBytesAt(log, old)
    }
    return table
  }
  if (tableNeedsGrowth(table)) {
    table = growTable(table)
    slot = findSlotForOp(table, log, hash, prevRef, keyU8, keyStart, keyLength)
    assert(slot < 0, 'a key absent before growth is absent after')
  }
  insertAt(table, -slot - 1, hash, ref)
  heads.bytes += size
  return table
}

/** installOp without a previous-version hint (every hash match compares key bytes), uncounted. */
export function installVersion(
  table: Int32Array, log: LogSegments, hash: number, ref: number,
  keyU8: Uint8Array, keyStart: number, keyLength: number,
): Int32Array {
  return installOp(table, log, hash, ref, REF_NONE, keyU8, keyStart, keyLength, opBytesAt(log, ref), UNCOUNTED)
}

/** Follows the version chain from `ref` to the newest version below `visibleLsn` (REF_NONE if none). */
export function resolveVisible(log: LogSegments, ref: number, visibleLsn: number): number {
  if (visibleLsn === Number.MAX_SAFE_INTEGER) return ref
  while (ref !== REF_NONE && refAtOrPast(ref, visibleLsn)) {
    const position = refPosition(ref)
    const id = Math.floor(position / log.segmentBytes)
    const prev = log.dv[id].getUint32(position - id * log.segmentBytes + OP_PREV_REF_OFFSET, true)
    // Chains only go back in the log: a link that does not (bytes a validated block cannot hold, but a
    // prevRef can point into another op's value) ends the walk, so no log content can loop a reader.
    if (!goesBack(ref, prev)) return REF_NONE
    ref = prev
  }
  return ref
}

/** The whole index: one table per partition. */
export class Index {
  readonly tables: Int32Array[]
  /** Bytes of all tables; kept current by replaceTable(). */
  private bytes: number

  constructor(tables?: Int32Array[]) {
    if (tables !== undefined) {
      assert(tables.length === PARTITION_COUNT, 'one table per partition')
      this.tables = tables
    } else {
      this.tables = []
      for (let p = 0; p < PARTITION_COUNT; p++) this.tables.push(createTable(INDEX_SLOTS_MIN))
    }
    this.bytes = 0
    for (const t of this.tables) this.bytes += t.byteLength
  }

  /**
   * An index sized up front for about `keyCount` keys (recovery knows the
   * count from the log), with room for `headroom` times as many before the
   * first growth (recovery leaves room for the writes that follow).
   */
  static withCapacity(keyCount: number, headroom = 1.25): Index {
    const perPartition = Math.ceil((keyCount * headroom) / PARTITION_COUNT / INDEX_LOAD_MAX)
    let slots = INDEX_SLOTS_MIN
    while (slots < perPartition && slots < 1 << 26) slots *= 2
    const tables: Int32Array[] = []
    for (let p = 0; p < PARTITION_COUNT; p++) tables.push(createTable(slots))
    return new Index(tables)
  }

  /** Replaces the (still empty) tables with ones sized for about `keyCount` keys (withCapacity). */
  presize(keyCount: number, headroom?: number): void {
    const sized = Index.withCapacity(keyCount, headroom)
    for (let p = 0; p < PARTITION_COUNT; p++) {
      assert(tableUsed(this.tables[p]) === 0, 'only an empty index is presized')
      if (sized.tables[p].length > this.tables[p].length) this.replaceTable(p, sized.tables[p])
    }
  }

  /** Empties every partition (a backup's full resync; no lane holds a table). */
  clear(): void {
    for (let p = 0; p < PARTITION_COUNT; p++) this.replaceTable(p, createTable(INDEX_SLOTS_MIN))
  }

  /** Swaps in a grown table for partition `p`. */
  replaceTable(p: number, table: Int32Array): void {
    this.bytes += table.byteLength - this.tables[p].byteLength
    this.tables[p] = table
  }

  /** Ref of the key's newest installed version, or REF_NONE. */
  head(log: LogSegments, hash: number, key: Uint8Array, keyStart: number, keyLength: number): number {
    const table = this.tables[partitionOf(hash)]
    const slot = findSlot(table, log, hash, key, keyStart, keyLength)
    return slot >= 0 ? slotRef(table, slot) : REF_NONE
  }

  memoryBytes(): number {
    return this.bytes
  }

  slotsUsed(): number {
    let n = 0
    for (const t of this.tables) n += tableUsed(t)
    return n
  }
}

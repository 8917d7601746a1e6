/**
 * Indirection index properties, over a real log (blocks written with writeOp
 * and sealBlock into a SegmentStore, so keyEquals compares real log keys):
 *
 * - install/lookup against a Map model (fc.commands + fc.modelRun), with forced
 *   full-hash collisions, many keys in one partition (several table growths)
 *   and install-if-newer (older refs never replace newer ones);
 * - applyRange with any lane count, any chunking and any chunk order gives the
 *   heads of serial replay, which are the newest version of every key;
 * - resolveVisible returns the newest version below a visible LSN.
 */
import { beforeAll, expect } from 'vitest'
import { fc, test } from '@fast-check/vitest'
import { initHash, keyHash } from '../../src/codec/hash.js'
import { opBytes } from '../../src/codec/record.js'
import {
  BLOCK_HEADER_BYTES, INDEX_LOAD_MAX, INDEX_SLOTS_MIN, LSN_ALIGN_BYTES, OP_TYPE_DELETE, OP_TYPE_SET, PARTITION_BITS, PARTITION_COUNT,
  REF_NONE,
} from '../../src/constants.js'
import {
  Index, findSlot, growTable, installVersion, opBytesAt, partitionOf, resolveVisible, tableSlotCount, tableUsed,
} from '../../src/index/indirection.js'
import { SegmentStore } from '../../src/log/segment_store.js'
import { applyRange } from '../../src/replay/apply.js'
import { appendBlock, type AppendedBlock, type OpSpec } from './log_builder.js'

beforeAll(async () => {
  await initHash()
})

const SEGMENT_BYTES = 64 * 1024
/** The partition most test keys are forced into (top PARTITION_BITS bits of the hash). */
const HOT_PARTITION = 42
const HOT_TOP = (HOT_PARTITION << (32 - PARTITION_BITS)) >>> 0
/** Two full hashes shared by many keys; same home slot for tables up to 4096 slots. */
const FIXED_A = (HOT_TOP | 0x155) | 0
const FIXED_B = (FIXED_A + 4096) | 0

/** Key i's bytes: key 0 is empty, some keys are long, "k1" is a prefix of "k10". */
function keyBytes(i: number): Uint8Array {
  if (i === 0) return new Uint8Array(0)
  return Buffer.from(`k${i}` + (i % 5 === 0 ? '-'.repeat(i % 97) : ''))
}

/**
 * Key i's hash. For i < 256, i % 8 = 0 or 1 share one of two fixed hashes
 * (full 32-bit collisions told apart only by the log key; 32 keys each, so
 * probe chains stay short enough for many runs). Otherwise i % 8 in 0..5 is in
 * HOT_PARTITION with the key's own low bits, and 6..7 use the real keyHash
 * (any partition).
 */
function hashOf(i: number, key: Uint8Array): number {
  const c = i % 8
  if (i < 256 && c === 0) return FIXED_A
  if (i < 256 && c === 1) return FIXED_B
  const h = keyHash(key, 0, key.length)
  if (c <= 5) return (HOT_TOP | (h & ((1 << (32 - PARTITION_BITS)) - 1))) | 0
  return h
}

interface KeyInfo {
  bytes: Uint8Array
  hash: number
}

const keyCache = new Map<number, KeyInfo>()
function keyInfo(i: number): KeyInfo {
  let k = keyCache.get(i)
  if (k === undefined) {
    const bytes = keyBytes(i)
    k = { bytes, hash: hashOf(i, bytes) }
    keyCache.set(i, k)
  }
  return k
}

function opFor(i: number, isDelete: boolean, valueLength: number): OpSpec {
  const k = keyInfo(i)
  const value = isDelete ? null : new Uint8Array(valueLength).fill(i & 0xff)
  return { type: isDelete ? OP_TYPE_DELETE : OP_TYPE_SET, key: k.bytes, value, hash: k.hash }
}

/**
 * Appends `ops` (key ids) as one block, chaining each op's prev-ref to the
 * key's previous version. Returns the ops' refs and the block.
 */
function appendVersions(
  store: SegmentStore, versions: Map<number, number[]>, ops: { key: number, del: boolean, len: number }[],
): { refs: number[], block: AppendedBlock } {
  const specs = ops.map((o) => opFor(o.key, o.del, o.len))
  const refs: number[] = []
  const block = appendBlock(store, specs, (n, ref) => {
    const list = versions.get(ops[n].key) ?? []
    const prev = list.length > 0 ? list[list.length - 1] : REF_NONE
    list.push(ref)
    versions.set(ops[n].key, list)
    refs.push(ref)
    return prev
  })
  return { refs, block }
}

function install(index: Index, store: SegmentStore, keyId: number, ref: number): void {
  const k = keyInfo(keyId)
  const p = partitionOf(k.hash)
  const t = installVersion(index.tables[p], store, k.hash, ref, k.bytes, 0, k.bytes.length)
  if (t !== index.tables[p]) index.replaceTable(p, t)
}

function head(index: Index, store: SegmentStore, keyId: number): number {
  const k = keyInfo(keyId)
  return index.head(store, k.hash, k.bytes, 0, k.bytes.length)
}

// ---------------------------------------------------------------------------
// Model-based install/lookup.

interface Model {
  /** Every version of each key, in log order (ascending refs). The newest is last. */
  versions: Map<number, number[]>
  nextKey: number
}

interface Real {
  store: SegmentStore
  index: Index
}

function newestOf(m: Model, key: number): number {
  const list = m.versions.get(key)
  return list === undefined ? REF_NONE : list[list.length - 1]
}

function pickKey(m: Model, pick: number): number {
  return [...m.versions.keys()][pick % m.versions.size]
}

class PutCommand implements fc.Command<Model, Real> {
  constructor(readonly pick: number, readonly fresh: boolean, readonly del: boolean, readonly len: number) {}
  check(): boolean {
    return true
  }
  run(m: Model, r: Real): void {
    const key = this.fresh || m.versions.size === 0 ? m.nextKey++ : pickKey(m, this.pick)
    const [ref] = appendVersions(r.store, m.versions, [{ key, del: this.del, len: this.len }]).refs
    install(r.index, r.store, key, ref)
    expect(head(r.index, r.store, key)).toBe(ref)
  }
  toString(): string {
    return `put(${this.pick}, fresh=${this.fresh}, del=${this.del}, ${this.len})`
  }
}

/** Many fresh keys (and some rewrites) in one block: drives tables through growth. */
class BulkPutCommand implements fc.Command<Model, Real> {
  constructor(readonly count: number, readonly rewriteEvery: number) {}
  check(): boolean {
    return true
  }
  run(m: Model, r: Real): void {
    const ops: { key: number, del: boolean, len: number }[] = []
    for (let n = 0; n < this.count; n++) {
      const key = n % this.rewriteEvery === 0 && m.versions.size > 0 ? pickKey(m, n * 7919) : m.nextKey++
      ops.push({ key, del: n % 11 === 0, len: n % 13 })
    }
    const { refs } = appendVersions(r.store, m.versions, ops)
    for (let n = 0; n < ops.length; n++) install(r.index, r.store, ops[n].key, refs[n])
  }
  toString(): string {
    return `bulkPut(${this.count}, ${this.rewriteEvery})`
  }
}

/** Reinstalls any existing version (usually an older one): the head stays the newest. */
class ReinstallCommand implements fc.Command<Model, Real> {
  constructor(readonly pick: number, readonly version: number) {}
  check(m: Readonly<Model>): boolean {
    return m.versions.size > 0
  }
  run(m: Model, r: Real): void {
    const key = pickKey(m, this.pick)
    const list = m.versions.get(key)!
    install(r.index, r.store, key, list[this.version % list.length])
    expect(head(r.index, r.store, key)).toBe(newestOf(m, key))
  }
  toString(): string {
    return `reinstall(${this.pick}, ${this.version})`
  }
}

/** Two versions of a key in one block, installed newest first. */
class ReversedPairCommand implements fc.Command<Model, Real> {
  constructor(readonly pick: number, readonly fresh: boolean) {}
  check(): boolean {
    return true
  }
  run(m: Model, r: Real): void {
    const key = this.fresh || m.versions.size === 0 ? m.nextKey++ : pickKey(m, this.pick)
    const [older, newer] = appendVersions(r.store, m.versions, [{ key, del: false, len: 3 }, { key, del: true, len: 0 }]).refs
    install(r.index, r.store, key, newer)
    install(r.index, r.store, key, older)
    expect(head(r.index, r.store, key)).toBe(newer)
  }
  toString(): string {
    return `reversedPair(${this.pick}, fresh=${this.fresh})`
  }
}

class GetCommand implements fc.Command<Model, Real> {
  constructor(readonly pick: number, readonly absent: number) {}
  check(): boolean {
    return true
  }
  run(m: Model, r: Real): void {
    if (m.versions.size > 0) {
      const key = pickKey(m, this.pick)
      expect(head(r.index, r.store, key)).toBe(newestOf(m, key))
    }
    // A key never written, sharing its hash class (often the full hash) with written ones.
    const absent = m.nextKey + this.absent
    expect(head(r.index, r.store, absent)).toBe(REF_NONE)
  }
  toString(): string {
    return `get(${this.pick}, absent+${this.absent})`
  }
}

class CheckAllCommand implements fc.Command<Model, Real> {
  check(): boolean {
    return true
  }
  run(m: Model, r: Real): void {
    const perPartition = new Array<number>(PARTITION_COUNT).fill(0)
    for (const key of m.versions.keys()) {
      expect(head(r.index, r.store, key)).toBe(newestOf(m, key))
      perPartition[partitionOf(keyInfo(key).hash)]++
    }
    // One slot per key, never more: versions of a key share its slot.
    expect(r.index.slotsUsed()).toBe(m.versions.size)
    let bytes = 0
    for (let p = 0; p < PARTITION_COUNT; p++) {
      const t = r.index.tables[p]
      const slots = tableSlotCount(t)
      expect(tableUsed(t)).toBe(perPartition[p])
      expect(slots).toBeGreaterThanOrEqual(INDEX_SLOTS_MIN)
      expect(tableUsed(t)).toBeLessThanOrEqual(slots * INDEX_LOAD_MAX)
      bytes += t.byteLength
    }
    expect(r.index.memoryBytes()).toBe(bytes)
  }
  toString(): string {
    return 'checkAll'
  }
}

const indexCommands = fc.commands([
  fc.tuple(fc.nat(), fc.boolean(), fc.boolean(), fc.nat({ max: 40 })).map(([p, f, d, l]) => new PutCommand(p, f, d, l)),
  fc.tuple(fc.integer({ min: 100, max: 700 }), fc.integer({ min: 2, max: 10 })).map(([n, e]) => new BulkPutCommand(n, e)),
  fc.tuple(fc.nat(), fc.nat()).map(([p, v]) => new ReinstallCommand(p, v)),
  fc.tuple(fc.nat(), fc.boolean()).map(([p, f]) => new ReversedPairCommand(p, f)),
  fc.tuple(fc.nat(), fc.nat({ max: 20 })).map(([p, a]) => new GetCommand(p, a)),
  fc.constant(new CheckAllCommand()),
], { maxCommands: 40, size: 'large' })

test.prop([indexCommands], { seed: 0x1d0e01, numRuns: 15 })(
  'index install/lookup matches a Map model (collisions, growth, install-if-newer)',
  (cmds) => {
    const real: Real = { store: new SegmentStore(SEGMENT_BYTES), index: new Index() }
    fc.modelRun(() => ({ model: { versions: new Map(), nextKey: 0 }, real }), cmds)
  },
)

test.prop([fc.integer({ min: 2000, max: 3200 }), fc.nat()], { seed: 0x1d0e02, numRuns: 4 })(
  'thousands of keys in one partition: the table grows several times and keeps every key',
  (count, rotate) => {
    const store = new SegmentStore(SEGMENT_BYTES)
    const index = new Index()
    const versions = new Map<number, number[]>()
    const ops: { key: number, del: boolean, len: number }[] = []
    for (let n = 0; n < count; n++) ops.push({ key: n, del: false, len: 0 })
    const refs: number[] = []
    for (let at = 0; at < ops.length; at += 500) refs.push(...appendVersions(store, versions, ops.slice(at, at + 500)).refs)
    // Install in a rotated order: not the log order, so growth happens mid-chain.
    const hot = index.tables[HOT_PARTITION]
    for (let n = 0; n < count; n++) {
      const j = (n + rotate) % count
      install(index, store, ops[j].key, refs[j])
    }
    expect(index.tables[HOT_PARTITION]).not.toBe(hot)
    // 3/4 of the keys are in the hot partition: at least 1500 > 0.7 * 2048, so 1024 -> 2048 -> 4096 slots.
    expect(tableSlotCount(index.tables[HOT_PARTITION])).toBeGreaterThanOrEqual(4 * INDEX_SLOTS_MIN)
    for (let n = 0; n < count; n++) expect(head(index, store, n)).toBe(refs[n])
    for (let n = count; n < count + 16; n++) expect(head(index, store, n)).toBe(REF_NONE)
    expect(index.slotsUsed()).toBe(count)
  },
)

test.prop([fc.integer({ min: 1, max: 700 })], { seed: 0x1d0e03, numRuns: 20 })(
  'growTable keeps every slot findable and the used count',
  (count) => {
    const store = new SegmentStore(SEGMENT_BYTES)
    const versions = new Map<number, number[]>()
    const ops = Array.from({ length: count }, (_, n) => ({ key: n, del: false, len: 1 }))
    const { refs } = appendVersions(store, versions, ops)
    let t = new Index().tables[HOT_PARTITION]
    const hotKeys: number[] = []
    for (let n = 0; n < count; n++) {
      const k = keyInfo(n)
      if (partitionOf(k.hash) !== HOT_PARTITION) continue
      t = installVersion(t, store, k.hash, refs[n], k.bytes, 0, k.bytes.length)
      hotKeys.push(n)
    }
    const grown = growTable(t)
    expect(tableSlotCount(grown)).toBe(2 * tableSlotCount(t))
    expect(tableUsed(grown)).toBe(tableUsed(t))
    for (const n of hotKeys) {
      const k = keyInfo(n)
      const slot = findSlot(grown, store, k.hash, k.bytes, 0, k.bytes.length)
      expect(slot).toBeGreaterThanOrEqual(0)
    }
  },
)

// ---------------------------------------------------------------------------
// Replay: applyRange over lanes and chunks, and resolveVisible.

interface LogPlan {
  /** Blocks of ops. */
  blocks: { key: number, del: boolean, len: number }[][]
}

function planOf(keys: number, opsMin: number, opsMax: number, blocksMin: number, blocksMax: number): fc.Arbitrary<LogPlan> {
  const op = fc.record({
    key: fc.nat({ max: keys - 1 }),
    del: fc.boolean(),
    len: fc.oneof({ weight: 4, arbitrary: fc.nat({ max: 16 }) }, { weight: 1, arbitrary: fc.nat({ max: 300 }) }),
  })
  const block = fc.array(op, { minLength: opsMin, maxLength: opsMax, size: 'max' })
  return fc.record({ blocks: fc.array(block, { minLength: blocksMin, maxLength: blocksMax, size: 'max' }) })
}

// Few keys (long version chains), some keys, or enough keys for the hot partition to grow during replay.
const logPlan = fc.oneof(
  fc.integer({ min: 1, max: 8 }).chain((keys) => planOf(keys, 1, 20, 1, 20)),
  fc.integer({ min: 1, max: 600 }).chain((keys) => planOf(keys, 1, 60, 1, 30)),
  fc.integer({ min: 1100, max: 1300 }).chain((keys) => planOf(keys, 100, 150, 20, 25)),
)

interface BuiltLog {
  store: SegmentStore
  versions: Map<number, number[]>
  /** Whole blocks as (segment id, start offset, end offset), in log order. */
  blockRanges: { id: number, start: number, end: number }[]
  opCount: number
}

function buildLog(plan: LogPlan, segmentBytes: number): BuiltLog {
  const store = new SegmentStore(segmentBytes)
  const versions = new Map<number, number[]>()
  const blockRanges: { id: number, start: number, end: number }[] = []
  let opCount = 0
  const flush = (ops: { key: number, del: boolean, len: number }[]): void => {
    const { block } = appendVersions(store, versions, ops)
    const id = store.segmentId(block.startLsn)
    const start = store.offsetOf(block.startLsn)
    blockRanges.push({ id, start, end: start + block.length })
    opCount += ops.length
  }
  for (const ops of plan.blocks) {
    // Split a planned block that would not fit in one segment.
    let part: { key: number, del: boolean, len: number }[] = []
    let bytes = BLOCK_HEADER_BYTES
    for (const o of ops) {
      const size = opBytes(keyInfo(o.key).bytes.length, o.del ? 0 : o.len)
      if (part.length > 0 && bytes + size > segmentBytes) {
        flush(part)
        part = []
        bytes = BLOCK_HEADER_BYTES
      }
      part.push(o)
      bytes += size
    }
    flush(part)
  }
  return { store, versions, blockRanges, opCount }
}

/** Applies chunks (runs of consecutive blocks in one segment) in `order` for every lane. */
function replay(log: BuiltLog, laneCount: number, chunks: { id: number, start: number, end: number }[], laneOrder: number[]): { index: Index, installed: number, headBytes: number } {
  const tables = new Index().tables
  let installed = 0
  let headBytes = 0
  for (const lane of laneOrder) {
    // One count per lane, as each replay worker keeps its own.
    const heads = { bytes: 0 }
    for (const c of chunks) installed += applyRange(log.store, c.id, c.start, c.end, tables, lane, laneCount, heads)
    headBytes += heads.bytes
  }
  return { index: new Index(tables), installed, headBytes }
}

/** Bytes of every head in `index`, counted by walking its tables. */
function headBytesOf(index: Index, log: BuiltLog): number {
  let n = 0
  for (const key of log.versions.keys()) {
    const ref = head(index, log.store, key)
    if (ref !== REF_NONE) n += opBytesAt(log.store, ref)
  }
  return n
}

/** Merges consecutive block ranges of one segment into chunks wherever `cut` says not to cut. */
function chunksOf(ranges: BuiltLog['blockRanges'], cuts: boolean[]): { id: number, start: number, end: number }[] {
  const out: { id: number, start: number, end: number }[] = []
  for (let i = 0; i < ranges.length; i++) {
    const r = ranges[i]
    const last = out[out.length - 1]
    if (last !== undefined && last.id === r.id && last.end === r.start && !cuts[i % cuts.length]) last.end = r.end
    else out.push({ ...r })
  }
  return out
}

function permute<T>(items: T[], keys: number[]): T[] {
  return items.map((x, i) => ({ x, k: keys[i % keys.length] * 1024 + i })).sort((a, b) => a.k - b.k).map((e) => e.x)
}

test.prop(
  [logPlan, fc.constantFrom(4096, 16 * 1024, 64 * 1024), fc.array(fc.boolean(), { minLength: 1, maxLength: 50 }), fc.array(fc.nat({ max: 1000 }), { minLength: 1, maxLength: 50 })],
  { seed: 0x1d0e04, numRuns: 25 },
)(
  'applyRange with 1..4 lanes, any chunking and any chunk order gives the heads of serial replay',
  (plan, segmentBytes, cuts, order) => {
    const log = buildLog(plan, segmentBytes)
    const serial = replay(log, 1, log.blockRanges, [0])
    expect(serial.installed).toBe(log.opCount)
    for (const [key, list] of log.versions) expect(head(serial.index, log.store, key)).toBe(list[list.length - 1])
    expect(serial.index.slotsUsed()).toBe(log.versions.size)
    const chunks = permute(chunksOf(log.blockRanges, cuts), order)
    for (let laneCount = 1; laneCount <= 4; laneCount++) {
      const lanes = permute(Array.from({ length: laneCount }, (_, i) => i), order.slice().reverse())
      const r = replay(log, laneCount, chunks, lanes)
      expect(r.installed).toBe(log.opCount)
      for (const key of log.versions.keys()) {
        expect(head(r.index, log.store, key)).toBe(head(serial.index, log.store, key))
      }
      for (let p = 0; p < PARTITION_COUNT; p++) expect(tableUsed(r.index.tables[p])).toBe(tableUsed(serial.index.tables[p]))
      // A backup's live_bytes: what the lanes counted as they installed and replaced heads, in any order.
      expect(r.headBytes).toBe(headBytesOf(serial.index, log))
    }
    expect(serial.headBytes).toBeGreaterThan(0)
    // Replaying everything again changes nothing (install-if-newer is idempotent), and counts nothing.
    const tables = serial.index.tables
    const again = { bytes: 0 }
    for (const c of chunks) applyRange(log.store, c.id, c.start, c.end, tables, 0, 1, again)
    expect(again.bytes).toBe(0)
    for (const [key, list] of log.versions) expect(head(serial.index, log.store, key)).toBe(list[list.length - 1])
  },
)

test.prop([logPlan, fc.array(fc.double({ min: 0, max: 1.01, noNaN: true }), { minLength: 1, maxLength: 30 })], { seed: 0x1d0e05, numRuns: 40 })(
  'resolveVisible returns the newest version below the visible LSN',
  (plan, fractions) => {
    const log = buildLog(plan, 16 * 1024)
    const { index } = replay(log, 1, log.blockRanges, [0])
    const endLsn = log.store.endLsn
    const expected = (list: number[], visibleLsn: number): number => {
      let best = REF_NONE
      for (const ref of list) if (ref * LSN_ALIGN_BYTES < visibleLsn) best = ref
      return best
    }
    for (const [key, list] of log.versions) {
      const h = head(index, log.store, key)
      const probes = [0, 1, endLsn, endLsn + LSN_ALIGN_BYTES, Number.MAX_SAFE_INTEGER]
      for (const ref of list) probes.push(ref * LSN_ALIGN_BYTES - 1, ref * LSN_ALIGN_BYTES, ref * LSN_ALIGN_BYTES + 1)
      for (const f of fractions) probes.push(Math.floor(f * endLsn))
      for (const v of probes) {
        const got = resolveVisible(log.store, h, v)
        if (got !== expected(list, v)) expect.fail(`key ${key} versions ${list} visible ${v}: got ${got}`)
      }
    }
    expect(resolveVisible(log.store, REF_NONE, endLsn)).toBe(REF_NONE)
  },
)

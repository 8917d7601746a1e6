/**
 * SegmentStore against an array model (fc.commands + fc.modelRun): real
 * sealed blocks of random sizes are appended at placeBlock(endLsn, size) and
 * published; blocks never straddle a segment, placement wastes space only at a
 * segment's end, the LSN <-> (segment, offset) mapping is consistent, and every
 * block reads back intact and validates at its LSN.
 */
import { beforeAll, expect } from 'vitest'
import { fc, test } from '@fast-check/vitest'
import { initHash, keyHash } from '../../src/codec/hash.js'
import { validateBlock } from '../../src/codec/record.js'
import { BLOCK_HEADER_BYTES, LSN_ALIGN_BYTES, LSN_MAX, OP_HEADER_BYTES, OP_TYPE_SET } from '../../src/constants.js'
import { DbError } from '../../src/errors.js'
import type { Segment } from '../../src/log/segment.js'
import { SegmentStore } from '../../src/log/segment_store.js'
import { appendBlock } from './log_builder.js'

beforeAll(async () => {
  await initHash()
})

interface ModelBlock {
  lsn: number
  size: number
  /** Seed of the value bytes (valueByte(seed, i)). */
  seed: number
}

interface Model {
  segmentBytes: number
  blocks: ModelBlock[]
  endLsn: number
}

interface Real {
  store: SegmentStore
  created: Segment[]
}

/** Smallest block: a header plus one op with an empty key and empty value. */
const BLOCK_MIN = BLOCK_HEADER_BYTES + OP_HEADER_BYTES

function valueByte(seed: number, i: number): number {
  return (seed * 31 + i * 7 + (i >>> 8)) & 0xff
}

/** A block of exactly `size` bytes: one SET op with key "" whose value fills the rest. */
function valueFor(size: number, seed: number): Uint8Array {
  const v = new Uint8Array(size - BLOCK_MIN)
  for (let i = 0; i < v.length; i++) v[i] = valueByte(seed, i)
  return v
}

class AppendCommand implements fc.Command<Model, Real> {
  constructor(readonly sizeFraction: number, readonly seed: number) {}
  check(): boolean {
    return true
  }
  run(m: Model, r: Real): void {
    const S = m.segmentBytes
    const words = (S - BLOCK_MIN) / LSN_ALIGN_BYTES
    const size = BLOCK_MIN + Math.floor(this.sizeFraction * (words + 1)) * LSN_ALIGN_BYTES
    expect(r.store.endLsn).toBe(m.endLsn)
    const placed = r.store.placeBlock(m.endLsn, size)
    // Placement: at the tail if the block fits in the tail's segment, else the next segment's start.
    const fitsHere = Math.floor(m.endLsn / S) === Math.floor((m.endLsn + size - 1) / S)
    expect(placed).toBe(fitsHere ? m.endLsn : (Math.floor(m.endLsn / S) + 1) * S)

    const block = appendBlock(r.store, [{ type: OP_TYPE_SET, key: new Uint8Array(0), value: valueFor(size, this.seed), hash: keyHash(new Uint8Array(0), 0, 0) }], () => 0)
    expect(block.startLsn).toBe(placed)
    expect(block.length).toBe(size)
    expect(r.store.segmentId(placed)).toBe(r.store.segmentId(placed + size - 1)) // never straddles
    m.blocks.push({ lsn: placed, size, seed: this.seed })
    m.endLsn = placed + size
    expect(r.store.endLsn).toBe(m.endLsn)
  }
  toString(): string {
    return `append(${this.sizeFraction.toFixed(3)}, ${this.seed})`
  }
}

class ReadBackCommand implements fc.Command<Model, Real> {
  constructor(readonly pick: number) {}
  check(m: Readonly<Model>): boolean {
    return m.blocks.length > 0
  }
  run(m: Model, r: Real): void {
    const b = m.blocks[this.pick % m.blocks.length]
    const s = r.store
    const id = s.segmentId(b.lsn)
    const offset = s.offsetOf(b.lsn)
    const segment = s.peek(b.lsn)
    expect(segment).toBeDefined()
    expect(segment!.id).toBe(id)
    expect(s.segmentFor(b.lsn)).toBe(segment)
    expect(segment!.baseLsn + offset).toBe(b.lsn)
    expect(s.u8[id]).toBe(segment!.u8)
    expect(s.dv[id]).toBe(segment!.dv)
    const committed = segment!.committedBytes()
    expect(committed).toBeGreaterThanOrEqual(offset + b.size)
    expect(validateBlock(segment!.u8, segment!.dv, offset, committed - offset, b.lsn)).toBe(b.size)
    const v = offset + BLOCK_MIN
    for (let i = 0; i < b.size - BLOCK_MIN; i++) {
      if (segment!.u8[v + i] !== valueByte(b.seed, i)) expect.fail(`block at ${b.lsn} byte ${i} differs`)
    }
  }
  toString(): string {
    return `readBack(${this.pick})`
  }
}

class CheckCommand implements fc.Command<Model, Real> {
  constructor(readonly lsnFraction: number) {}
  check(): boolean {
    return true
  }
  run(m: Model, r: Real): void {
    const s = r.store
    const S = m.segmentBytes
    // The LSN <-> (segment, offset) mapping for an LSN anywhere up to one segment past the tail.
    const lsn = Math.floor(this.lsnFraction * (m.endLsn + S))
    const id = s.segmentId(lsn)
    const offset = s.offsetOf(lsn)
    expect(id * S + offset).toBe(lsn)
    expect(offset).toBeGreaterThanOrEqual(0)
    expect(offset).toBeLessThan(S)
    expect(s.placeBlock(lsn, S)).toBe(offset === 0 ? lsn : (id + 1) * S)
    // Segments: dense ids 0..n-1, each created once, in order, matching the views.
    const n = s.segments.length
    expect(r.created.length).toBe(n)
    for (let i = 0; i < n; i++) {
      expect(s.segments[i].id).toBe(i)
      expect(s.segments[i].baseLsn).toBe(i * S)
      expect(r.created[i]).toBe(s.segments[i])
      expect(s.u8[i]).toBe(s.segments[i].u8)
    }
    expect(s.retainedBytes()).toBe(n * S)
    expect(s.pooledBytes()).toBe(0)
    if (m.blocks.length > 0) expect(n).toBe(s.segmentId(m.endLsn - 1) + 1)
    // Blocks are disjoint, ordered, each inside one segment; each segment's committed bytes end at its last block.
    let prevEnd = 0
    const lastEnd = new Map<number, number>()
    for (const b of m.blocks) {
      expect(b.lsn).toBeGreaterThanOrEqual(prevEnd)
      expect(b.lsn % LSN_ALIGN_BYTES).toBe(0)
      if (b.lsn > prevEnd) expect(b.lsn % S).toBe(0) // gaps only before a segment start
      expect(s.segmentId(b.lsn)).toBe(s.segmentId(b.lsn + b.size - 1))
      prevEnd = b.lsn + b.size
      lastEnd.set(s.segmentId(b.lsn), s.offsetOf(b.lsn) + b.size)
    }
    for (const [sid, end] of lastEnd) expect(s.segments[sid].committedBytes()).toBe(end)
    // Past the tail's segment nothing exists yet.
    expect(s.peek(n * S)).toBeUndefined()
  }
  toString(): string {
    return `check(${this.lsnFraction.toFixed(3)})`
  }
}

const unit = fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true })
// Mostly small blocks, sometimes near or exactly a whole segment.
const sizeFraction = fc.oneof(
  { weight: 4, arbitrary: fc.double({ min: 0, max: 0.3, noNaN: true }) },
  { weight: 1, arbitrary: unit },
  { weight: 1, arbitrary: fc.constantFrom(0, 0.999999, 1) },
)

const commands = fc.commands([
  fc.tuple(sizeFraction, fc.nat({ max: 255 })).map(([f, seed]) => new AppendCommand(Math.min(f, 0.999999), seed)),
  fc.nat().map((p) => new ReadBackCommand(p)),
  unit.map((f) => new CheckCommand(f)),
], { maxCommands: 60 })

test.prop([fc.constantFrom(256, 1024, 4096), commands], { seed: 0x5e6a01, numRuns: 150 })(
  'segment store matches an array model of appended blocks',
  (segmentBytes, cmds) => {
    const store = new SegmentStore(segmentBytes)
    const created: Segment[] = []
    store.onSegmentCreated = (s) => created.push(s)
    fc.modelRun(() => ({
      model: { segmentBytes, blocks: [], endLsn: 0 },
      real: { store, created },
    }), cmds)
  },
)

test.prop([fc.constantFrom(256, 1024), fc.nat({ max: 20 })], { seed: 0x5e6a02, numRuns: 50 })(
  'segmentFor far ahead creates every segment up to it, zeroed, once each',
  (segmentBytes, id) => {
    const store = new SegmentStore(segmentBytes)
    const created: number[] = []
    store.onSegmentCreated = (s) => created.push(s.id)
    const lsn = id * segmentBytes + segmentBytes - LSN_ALIGN_BYTES
    const s = store.segmentFor(lsn)
    expect(s.id).toBe(id)
    expect(created).toEqual(Array.from({ length: id + 1 }, (_, i) => i))
    expect(store.segmentFor(lsn)).toBe(s)
    expect(store.segmentFor(0)).toBe(store.segments[0])
    expect(created.length).toBe(id + 1)
    for (const seg of store.segments) {
      expect(seg.committedBytes()).toBe(0)
      expect(seg.u8.every((x) => x === 0)).toBe(true)
    }
  },
)

test('segmentFor past the largest addressable LSN throws LOG_FULL', () => {
  const store = new SegmentStore(1024)
  let caught: unknown = null
  try {
    store.segmentFor(LSN_MAX + 1)
  } catch (e) {
    caught = e
  }
  expect(caught).toBeInstanceOf(DbError)
  expect((caught as DbError).code).toBe('LOG_FULL')
  expect(store.segments.length).toBe(0)
})

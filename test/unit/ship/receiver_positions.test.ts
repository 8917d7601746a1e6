/**
 * Blocks on the replication link are contiguous: the primary pads a
 * segment's tail that its next block does not fit, so a backup accepts a
 * block at its log end, or at the next segment's start only when less than a
 * block header was left. A frame that jumps a segment with room left (which,
 * repeated, would open one segment per tiny frame) is refused; the primary's
 * own log, padding blocks included, is accepted whole.
 */
import { beforeAll, expect, test } from 'vitest'
import { initHash, keyHash } from '../../../src/codec/hash.js'
import { opBytes, sealBlock, writeOp } from '../../../src/codec/record.js'
import { BLOCK_FLAG_PADDING, BLOCK_HEADER_BYTES, OP_TYPE_SET } from '../../../src/constants.js'
import { DbError } from '../../../src/errors.js'
import { Appender } from '../../../src/log/appender.js'
import { SegmentStore } from '../../../src/log/segment_store.js'
import { FRAME_BLOCKS, FRAME_HEADER_BYTES } from '../../../src/ship/protocol.js'
import { Receiver } from '../../../src/ship/receiver.js'

const SEGMENT_BYTES = 64 * 1024

beforeAll(async () => {
  await initHash()
})

function block(startLsn: number, key: string, keyCount: number, flags = 0, padBytes = 0): Buffer {
  const k = Buffer.from(key)
  const v = Buffer.from('v')
  const length = flags === BLOCK_FLAG_PADDING ? padBytes : BLOCK_HEADER_BYTES + opBytes(k.length, v.length)
  const u8 = new Uint8Array(length)
  const dv = new DataView(u8.buffer)
  if (flags === 0) writeOp(u8, dv, BLOCK_HEADER_BYTES, OP_TYPE_SET, keyHash(k, 0, k.length), 0, k, 0, k.length, v, 0, v.length)
  sealBlock(u8, dv, 0, { epoch: 1, startLsn, length, opCount: flags === 0 ? 1 : 0, txnCount: flags === 0 ? 1 : 0, keyCount, commitTimeMs: Date.now(), flags })
  return Buffer.from(u8)
}

function frame(...blocks: Buffer[]): Buffer {
  const body = Buffer.concat(blocks)
  const h = Buffer.alloc(FRAME_HEADER_BYTES)
  h[0] = FRAME_BLOCKS
  h.writeUInt32LE(body.length, 4)
  return Buffer.concat([h, body])
}

function receiverOf(store: SegmentStore): { r: Receiver, blocks: Array<[number, number]> } {
  const blocks: Array<[number, number]> = []
  const r = new Receiver(store, 1, { block: (s, e) => { blocks.push([s, e]) }, heartbeat: () => {}, release: () => {} })
  return { r, blocks }
}

function codeOf(f: () => void): string {
  try {
    f()
  } catch (err) {
    return err instanceof DbError ? err.code : `not a DbError: ${String(err)}`
  }
  return 'none'
}

test('a block that jumps to the next segment with room left is refused (PROTOCOL); nothing of it is published', () => {
  const store = new SegmentStore(SEGMENT_BYTES)
  const { r, blocks } = receiverOf(store)
  const a = block(0, 'k:a', 1)
  r.feed(frame(a))
  expect(blocks).toEqual([[0, a.length]])
  expect(codeOf(() => r.feed(frame(block(SEGMENT_BYTES, 'k:b', 2))))).toBe('PROTOCOL')
  expect(store.endLsn).toBe(a.length)
  expect(store.segments.length).toBe(1)
})

test('a padding block to the segment end, then a block at the next segment, is accepted', () => {
  const store = new SegmentStore(SEGMENT_BYTES)
  const { r, blocks } = receiverOf(store)
  const a = block(0, 'k:a', 1)
  const pad = block(a.length, '', 1, BLOCK_FLAG_PADDING, SEGMENT_BYTES - a.length)
  const b = block(SEGMENT_BYTES, 'k:b', 2)
  r.feed(frame(a, pad))
  r.feed(frame(b))
  expect(blocks).toEqual([[0, a.length], [a.length, SEGMENT_BYTES], [SEGMENT_BYTES, SEGMENT_BYTES + b.length]])
})

test('a padding block with ops, or unknown flags, is refused', () => {
  for (const flags of [BLOCK_FLAG_PADDING | 2, 4]) {
    const store = new SegmentStore(SEGMENT_BYTES)
    const { r } = receiverOf(store)
    const k = Buffer.from('k')
    const length = BLOCK_HEADER_BYTES + opBytes(1, 1)
    const u8 = new Uint8Array(length)
    const dv = new DataView(u8.buffer)
    writeOp(u8, dv, BLOCK_HEADER_BYTES, OP_TYPE_SET, keyHash(k, 0, 1), 0, k, 0, 1, k, 0, 1)
    sealBlock(u8, dv, 0, { epoch: 1, startLsn: 0, length, opCount: 1, txnCount: 1, keyCount: 1, commitTimeMs: Date.now(), flags })
    expect(codeOf(() => r.feed(frame(Buffer.from(u8))))).toBe('PROTOCOL')
  }
})

test('the primary\'s appender pads every tail its next block does not fit, so its log is accepted whole', () => {
  const primary = new SegmentStore(SEGMENT_BYTES)
  const appender = new Appender(primary, 1, 0)
  const sealed: Array<[number, number]> = []
  appender.onSeal = (s, e) => { sealed.push([s, e]) }
  const value = Buffer.alloc(3000, 'x')
  for (let i = 0; i < 100; i++) {
    const k = Buffer.from(`key:${i}`)
    // Reserve far more than the op takes, as INCR or SET NX do: placement is by reservation.
    appender.reserveCommand(opBytes(k.length, value.length) + 8 * 1024)
    appender.ensureRoom(opBytes(k.length, value.length))
    const segment = appender.opSegment()
    const at = appender.opOffset()
    writeOp(segment.u8, segment.dv, at, OP_TYPE_SET, keyHash(k, 0, k.length), 0, k, 0, k.length, value, 0, value.length)
    appender.keyCount++
    appender.commitOp(opBytes(k.length, value.length))
    appender.endCommand()
    appender.seal()
  }
  expect(primary.segments.length).toBeGreaterThan(3)
  const backup = new SegmentStore(SEGMENT_BYTES)
  const { r, blocks } = receiverOf(backup)
  for (const [s, e] of sealed) {
    const segment = primary.segments[primary.segmentId(s)]
    r.feed(frame(Buffer.from(segment.u8.subarray(s - segment.baseLsn, e - segment.baseLsn))))
  }
  expect(blocks).toEqual(sealed)
  expect(backup.endLsn).toBe(primary.endLsn)
})

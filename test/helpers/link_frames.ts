/**
 * Replication-link wire helpers for tests that play one end of the link by
 * hand (a fake primary or a fake backup): RESP commands, frame headers,
 * single-op blocks and heartbeats, encoded as ship/protocol.ts describes.
 */
import { keyHash } from '../../src/codec/hash.js'
import { opBytes, sealBlock, writeOp } from '../../src/codec/record.js'
import { BLOCK_HEADER_BYTES, OP_TYPE_SET } from '../../src/constants.js'
import { FRAME_BLOCKS, FRAME_HEADER_BYTES, encodeFrameHeader, encodeHeartbeat } from '../../src/ship/protocol.js'

export { FRAME_BLOCKS, FRAME_HEADER_BYTES, FRAME_HEARTBEAT } from '../../src/ship/protocol.js'

export function resp(...args: string[]): Buffer {
  return Buffer.from(`*${args.length}\r\n` + args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join(''))
}

export function frameHeader(type: number, payloadBytes: number): Buffer {
  const b = Buffer.alloc(FRAME_HEADER_BYTES)
  encodeFrameHeader(b, 0, type, payloadBytes)
  return b
}

export const FAKE_KEY = 'fake:key'
export const FAKE_VALUE = 'fake-value'

export interface BlockFields { prevRef?: number, hash?: number, keyCount?: number, commitTimeMs?: number }

/** One block with one SET op, sealed at `startLsn` with `epoch`; `f` overrides fields (the checksum stays valid). */
export function makeBlock(startLsn: number, epoch: number, key = FAKE_KEY, value = FAKE_VALUE, f: BlockFields = {}): Buffer {
  const k = Buffer.from(key)
  const v = Buffer.from(value)
  const length = BLOCK_HEADER_BYTES + opBytes(k.length, v.length)
  const u8 = new Uint8Array(length)
  const dv = new DataView(u8.buffer)
  writeOp(u8, dv, BLOCK_HEADER_BYTES, OP_TYPE_SET, f.hash ?? keyHash(k, 0, k.length), f.prevRef ?? 0, k, 0, k.length, v, 0, v.length)
  sealBlock(u8, dv, 0, { epoch, startLsn, length, opCount: 1, txnCount: 1, keyCount: f.keyCount ?? 1, commitTimeMs: f.commitTimeMs ?? Date.now() })
  return Buffer.from(u8)
}

export function blocksFrame(...blocks: Buffer[]): Buffer {
  const body = Buffer.concat(blocks)
  return Buffer.concat([frameHeader(FRAME_BLOCKS, body.length), body])
}

/** A heartbeat from the fake primary: commit LSN, time, the safe LSN (all it sent is durable), horizon 0 (nothing released). */
export function heartbeat(commitLsn: number, commitTimeMs = Date.now(), safeLsn = commitLsn, horizonLsn = 0, horizonAfterLsn = 0): Buffer {
  return encodeHeartbeat(commitLsn, commitTimeMs, safeLsn, horizonLsn, horizonAfterLsn)
}

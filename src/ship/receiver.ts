/**
 * Backup side of log shipping: a frame state machine that copies each BLOCKS
 * frame's bytes straight from socket chunks into the backup's own segment at
 * the block's LSN (the one copy of the log on the backup), then validates
 * every block in place (position, length, checksum, op framing, epoch) before
 * publishing it. Nothing is published from a frame that fails: the caller
 * closes the link and the unpublished bytes are overwritten on resume.
 */
import { BLOCK_HEADER_BYTES } from '../constants.js'
import { blockCommitTimeMs, blockEpoch, blockKeyCount, blockLength, blockStartLsn, validateBlock } from '../codec/record.js'
import { DbError } from '../errors.js'
import type { Segment } from '../log/segment.js'
import type { SegmentStore } from '../log/segment_store.js'
import { FRAME_BLOCKS, FRAME_HEADER_BYTES, FRAME_HEARTBEAT, HEARTBEAT_PAYLOAD_BYTES } from './protocol.js'

const S_HEADER = 0
const S_FIRST_BLOCK_HEADER = 1
const S_BLOCK_BODY = 2
const S_HEARTBEAT = 3

export class LinkError extends DbError {
  constructor(message: string) {
    super('PROTOCOL', message)
  }
}

export interface ReceiverSink {
  /** One validated block, in LSN order. */
  block(startLsn: number, endLsn: number, commitTimeMs: number, keyCount: number): void
  heartbeat(commitLsn: number, commitTimeMs: number, safeLsn: number): void
}

export class Receiver {
  readonly store: SegmentStore
  readonly sink: ReceiverSink
  /** Blocks of an epoch above this are refused. */
  epoch: number
  framesTotal: number
  bytesTotal: number
  private state: number
  private readonly stage: Buffer
  private readonly stageView: DataView
  private staged: number
  private payloadBytes: number
  private segment: Segment | null
  private targetOffset: number
  private progress: number

  constructor(store: SegmentStore, epoch: number, sink: ReceiverSink) {
    this.store = store
    this.sink = sink
    this.epoch = epoch
    this.framesTotal = 0
    this.bytesTotal = 0
    this.state = S_HEADER
    this.stage = Buffer.alloc(BLOCK_HEADER_BYTES)
    this.stageView = new DataView(this.stage.buffer, this.stage.byteOffset, BLOCK_HEADER_BYTES)
    this.staged = 0
    this.payloadBytes = 0
    this.segment = null
    this.targetOffset = 0
    this.progress = 0
  }

  /** Resets the frame state for a fresh link. */
  reset(epoch: number): void {
    this.epoch = epoch
    this.state = S_HEADER
    this.staged = 0
    this.segment = null
  }

  /** Consumes a socket chunk. Throws LinkError on anything malformed. */
  feed(chunk: Buffer): void {
    let at = 0
    while (at < chunk.length) {
      switch (this.state) {
        case S_HEADER: {
          at = this.fill(chunk, at, FRAME_HEADER_BYTES)
          if (this.staged < FRAME_HEADER_BYTES) return
          const type = this.stage[0]
          const length = this.stage.readUInt32LE(4)
          this.staged = 0
          if (type === FRAME_BLOCKS) {
            if (length < BLOCK_HEADER_BYTES || length > this.store.segmentBytes) throw new LinkError(`BLOCKS frame of ${length} bytes`)
            this.payloadBytes = length
            this.state = S_FIRST_BLOCK_HEADER
          } else if (type === FRAME_HEARTBEAT) {
            if (length !== HEARTBEAT_PAYLOAD_BYTES) throw new LinkError(`HEARTBEAT frame of ${length} bytes`)
            this.state = S_HEARTBEAT
          } else {
            throw new LinkError(`unknown frame type ${type}`)
          }
          break
        }
        case S_HEARTBEAT: {
          at = this.fill(chunk, at, HEARTBEAT_PAYLOAD_BYTES)
          if (this.staged < HEARTBEAT_PAYLOAD_BYTES) return
          this.staged = 0
          this.state = S_HEADER
          this.framesTotal++
          this.sink.heartbeat(this.stage.readDoubleLE(0), this.stage.readDoubleLE(8), this.stage.readDoubleLE(16))
          break
        }
        case S_FIRST_BLOCK_HEADER: {
          at = this.fill(chunk, at, BLOCK_HEADER_BYTES)
          if (this.staged < BLOCK_HEADER_BYTES) return
          this.staged = 0
          const first = blockLength(this.stageView, 0)
          if (first < BLOCK_HEADER_BYTES || first > this.payloadBytes) throw new LinkError(`block length ${first} in a frame of ${this.payloadBytes}`)
          // The primary decides where a block starts (it may skip a segment's tail); a block
          // may only start at our log end or at the start of the next segment.
          const start = blockStartLsn(this.stageView, 0)
          const end = this.store.endLsn
          const nextSegment = (this.store.segmentId(end) + 1) * this.store.segmentBytes
          if (start !== end && start !== nextSegment) throw new LinkError(`block starts at LSN ${start}, expected ${end} or ${nextSegment}`)
          const segment = this.store.segmentFor(start)
          const offset = start - segment.baseLsn
          if (offset + this.payloadBytes > segment.sizeBytes) throw new LinkError('BLOCKS frame straddles a segment')
          this.stage.copy(segment.buf, offset, 0, BLOCK_HEADER_BYTES)
          this.segment = segment
          this.targetOffset = offset
          this.progress = BLOCK_HEADER_BYTES
          this.state = S_BLOCK_BODY
          if (this.progress === this.payloadBytes) this.finishBlocks()
          break
        }
        case S_BLOCK_BODY: {
          const n = Math.min(this.payloadBytes - this.progress, chunk.length - at)
          chunk.copy(this.segment!.buf, this.targetOffset + this.progress, at, at + n)
          this.progress += n
          at += n
          if (this.progress === this.payloadBytes) this.finishBlocks()
          break
        }
      }
    }
  }

  private fill(chunk: Buffer, at: number, want: number): number {
    const n = Math.min(want - this.staged, chunk.length - at)
    chunk.copy(this.stage, this.staged, at, at + n)
    this.staged += n
    return at + n
  }

  /** Validates every block of the completed frame in place, then publishes them. */
  private finishBlocks(): void {
    const segment = this.segment!
    const end = this.targetOffset + this.payloadBytes
    let at = this.targetOffset
    while (at < end) {
      const lsn = segment.baseLsn + at
      const length = validateBlock(segment.u8, segment.dv, at, end - at, lsn)
      if (length < 0) throw new LinkError(`invalid block at LSN ${lsn} (checksum, position or framing)`)
      const epoch = blockEpoch(segment.dv, at)
      if (epoch > this.epoch) throw new LinkError(`block at LSN ${lsn} has epoch ${epoch}, link is at epoch ${this.epoch}`)
      at += length
    }
    // All valid: publish the whole frame, then report its blocks in order.
    segment.publish(end)
    this.store.endLsn = segment.baseLsn + end
    at = this.targetOffset
    while (at < end) {
      const length = blockLength(segment.dv, at)
      this.sink.block(segment.baseLsn + at, segment.baseLsn + at + length, blockCommitTimeMs(segment.dv, at), blockKeyCount(segment.dv, at))
      at += length
    }
    this.framesTotal++
    this.bytesTotal += this.payloadBytes
    this.segment = null
    this.state = S_HEADER
  }
}

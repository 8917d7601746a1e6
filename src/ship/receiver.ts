/**
 * Backup side of log shipping: a frame state machine that copies each BLOCKS
 * frame's bytes straight from socket chunks into the backup's own segment at
 * the block's LSN (the one copy of the log on the backup), then validates
 * every block in place before publishing it: position, length, checksum, op
 * framing, and every field a reader later trusts (key hashes, prevRefs, commit
 * time, live-key count: codec/record.ts validateBlockFault), plus the epoch
 * (never above the link's, never below the block before). A checksum only
 * proves the bytes are what the primary sent; a buggy or hostile primary
 * checksums nonsense too. Nothing is published from a frame that fails: the
 * caller logs the reason, closes the link, and the unpublished bytes are
 * overwritten on resume. Heartbeat fields are checked the same way.
 */
import { BLOCK_HEADER_BYTES, LSN_ALIGN_BYTES, LSN_MAX } from '../constants.js'
import {
  BLOCK_FAULT_NAMES, BLOCK_OK, COMMIT_TIME_MS_MAX, blockCommitTimeMs, blockEpoch, blockKeyCount, blockLength,
  blockStartLsn, validateBlockFault,
} from '../codec/record.js'
import { DbError } from '../errors.js'
import type { Segment } from '../log/segment.js'
import { blockStartEndingAt, type SegmentStore } from '../log/segment_store.js'
import {
  FRAME_BLOCKS, FRAME_HEADER_BYTES, FRAME_HEARTBEAT, FRAME_RELEASE, HEARTBEAT_PAYLOAD_BYTES, RELEASE_FIXED_BYTES, RELEASE_IDS_MAX,
} from './protocol.js'

const S_HEADER = 0
const S_FIRST_BLOCK_HEADER = 1
const S_BLOCK_BODY = 2
const S_HEARTBEAT = 3
const S_RELEASE = 4

export class LinkError extends DbError {
  constructor(message: string) {
    super('PROTOCOL', message)
  }
}

export interface ReceiverSink {
  /** One validated block, in LSN order. */
  block(startLsn: number, endLsn: number, commitTimeMs: number, keyCount: number): void
  heartbeat(commitLsn: number, commitTimeMs: number, safeLsn: number, horizonLsn: number, horizonAfterLsn: number): void
  /** The primary released segments `ids` above its horizon `horizonLsn`, once its log held `afterLsn`. */
  release(horizonLsn: number, afterLsn: number, ids: number[]): void
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
  /** A RELEASE frame's payload, staged (at most RELEASE_FIXED_BYTES + 8 * RELEASE_IDS_MAX bytes). */
  private releaseStage: Buffer | null
  private segment: Segment | null
  private targetOffset: number
  private progress: number
  /** Log end at which prevKeyCount and prevEpoch (of the block ending there) hold; -1 for none. */
  private prevLsn: number
  private prevKeyCount: number
  private prevEpoch: number

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
    this.releaseStage = null
    this.segment = null
    this.targetOffset = 0
    this.progress = 0
    this.prevLsn = -1
    this.prevKeyCount = -1
    this.prevEpoch = 0
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
          } else if (type === FRAME_RELEASE) {
            if (length <= RELEASE_FIXED_BYTES || length > RELEASE_FIXED_BYTES + 8 * RELEASE_IDS_MAX || (length - RELEASE_FIXED_BYTES) % 8 !== 0) {
              throw new LinkError(`RELEASE frame of ${length} bytes`)
            }
            this.payloadBytes = length
            if (this.releaseStage === null) this.releaseStage = Buffer.alloc(RELEASE_FIXED_BYTES + 8 * RELEASE_IDS_MAX)
            this.state = S_RELEASE
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
          const commitLsn = this.stage.readDoubleLE(0)
          const commitTimeMs = this.stage.readDoubleLE(8)
          const safeLsn = this.stage.readDoubleLE(16)
          if (!isLsn(commitLsn)) throw new LinkError(`HEARTBEAT commit LSN ${commitLsn} is not a log position`)
          if (!(commitTimeMs >= 0 && commitTimeMs <= COMMIT_TIME_MS_MAX)) throw new LinkError(`HEARTBEAT commit time ${commitTimeMs}`)
          // The primary's safe LSN (durable, or committed in async mode) never passes its commit LSN.
          if (!isLsn(safeLsn) || safeLsn > commitLsn) throw new LinkError(`HEARTBEAT safe LSN ${safeLsn} (commit LSN ${commitLsn})`)
          const horizonLsn = this.stage.readDoubleLE(24)
          const horizonAfterLsn = this.stage.readDoubleLE(32)
          // The horizon is a segment start; the relocations that moved it end at or before the commit LSN.
          if (!isLsn(horizonLsn) || horizonLsn % this.store.segmentBytes !== 0 || !isLsn(horizonAfterLsn) ||
            horizonAfterLsn < horizonLsn || horizonAfterLsn > commitLsn) {
            throw new LinkError(`HEARTBEAT horizon ${horizonLsn} after ${horizonAfterLsn} (commit LSN ${commitLsn})`)
          }
          this.sink.heartbeat(commitLsn, commitTimeMs, safeLsn, horizonLsn, horizonAfterLsn)
          break
        }
        case S_RELEASE: {
          const stage = this.releaseStage!
          const n = Math.min(this.payloadBytes - this.staged, chunk.length - at)
          chunk.copy(stage, this.staged, at, at + n)
          this.staged += n
          at += n
          if (this.staged < this.payloadBytes) return
          this.staged = 0
          this.state = S_HEADER
          this.framesTotal++
          this.release(stage)
          break
        }
        case S_FIRST_BLOCK_HEADER: {
          at = this.fill(chunk, at, BLOCK_HEADER_BYTES)
          if (this.staged < BLOCK_HEADER_BYTES) return
          this.staged = 0
          const first = blockLength(this.stageView, 0)
          if (first < BLOCK_HEADER_BYTES || first > this.payloadBytes) throw new LinkError(`block length ${first} in a frame of ${this.payloadBytes}`)
          // Blocks are contiguous: the primary fills a segment's tail that its next block does
          // not fit with a padding block, so a block starts at our log end, or at the next
          // segment's start only when less than a block header was left in this one.
          // Past a segment, the stream skips the segments the primary released (holes this backup was
          // told of in RELEASE frames; only a loading backup is sent a stream with holes).
          const start = blockStartLsn(this.stageView, 0)
          const end = this.store.endLsn
          const nextSegment = this.store.offsetOf(end) === 0 ? end : (this.store.segmentId(end) + 1) * this.store.segmentBytes
          const nextHeld = this.store.nextHeldId(this.store.segmentId(nextSegment)) * this.store.segmentBytes
          if (start !== end && !((start === nextSegment || start === nextHeld) && nextSegment - end < BLOCK_HEADER_BYTES)) {
            throw new LinkError(`block starts at LSN ${start}, expected ${end}${nextSegment - end < BLOCK_HEADER_BYTES ? ` or ${nextHeld}` : ''}`)
          }
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

  /** Checks a staged RELEASE payload and hands it on. */
  private release(stage: Buffer): void {
    const horizonLsn = stage.readDoubleLE(0)
    const afterLsn = stage.readDoubleLE(8)
    const bytes = this.store.segmentBytes
    if (!isLsn(horizonLsn) || horizonLsn % bytes !== 0 || !isLsn(afterLsn) || afterLsn < horizonLsn) {
      throw new LinkError(`RELEASE horizon ${horizonLsn} after ${afterLsn}`)
    }
    const ids: number[] = []
    for (let at = RELEASE_FIXED_BYTES; at < this.payloadBytes; at += 8) {
      const id = stage.readDoubleLE(at)
      // A hole lies above the horizon, within the LSNs a log may reach.
      if (!Number.isSafeInteger(id) || id * bytes <= horizonLsn || id * bytes > LSN_MAX) throw new LinkError(`RELEASE of segment ${id} (horizon LSN ${horizonLsn})`)
      ids.push(id)
    }
    this.sink.release(horizonLsn, afterLsn, ids)
  }

  /**
   * Key count and epoch of the block ending at our log end, read from the log
   * when the log end moved without us (a fresh receiver, a cut tail): once,
   * not per frame. -1 (check skipped) only if no block ends there.
   */
  private learnPrevious(): void {
    const end = this.store.endLsn
    if (this.prevLsn === end) return
    this.prevLsn = end
    this.prevKeyCount = end === 0 ? 0 : -1
    this.prevEpoch = 0
    const start = blockStartEndingAt(this.store, end)
    if (start < 0) return
    const segment = this.store.segmentAt(start)!
    this.prevKeyCount = blockKeyCount(segment.dv, start - segment.baseLsn)
    this.prevEpoch = blockEpoch(segment.dv, start - segment.baseLsn)
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
    this.learnPrevious()
    let keyCount = this.prevKeyCount
    let epochMin = this.prevEpoch
    let at = this.targetOffset
    while (at < end) {
      const lsn = segment.baseLsn + at
      const fault = validateBlockFault(segment.u8, segment.dv, at, end - at, lsn, keyCount)
      if (fault !== BLOCK_OK) throw new LinkError(`invalid block at LSN ${lsn}: ${BLOCK_FAULT_NAMES[fault]}`)
      const epoch = blockEpoch(segment.dv, at)
      if (epoch > this.epoch) throw new LinkError(`block at LSN ${lsn} has epoch ${epoch}, link is at epoch ${this.epoch}`)
      if (epoch < epochMin) throw new LinkError(`block at LSN ${lsn} has epoch ${epoch}, below the epoch ${epochMin} of the block before`)
      epochMin = epoch
      keyCount = blockKeyCount(segment.dv, at)
      at += blockLength(segment.dv, at)
    }
    this.prevKeyCount = keyCount
    this.prevEpoch = epochMin
    this.prevLsn = segment.baseLsn + end
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

/** A log position as the primary reports one: a non-negative, aligned integer within the addressable log. */
function isLsn(x: number): boolean {
  return Number.isSafeInteger(x) && x >= 0 && x <= LSN_MAX + 1 && x % LSN_ALIGN_BYTES === 0
}

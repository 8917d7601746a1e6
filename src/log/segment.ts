/**
 * One log segment: a fixed-size SharedArrayBuffer of log bytes plus a tiny
 * Int32Array of control words. Segment `id` holds LSNs
 * [id * sizeBytes, (id + 1) * sizeBytes); blocks never straddle two segments.
 *
 * Publication: the appender writes a block's bytes, then
 * Atomics.store(ctrl, CTRL_COMMITTED_BYTES, end). A reader on another thread
 * loads that word first and reads only below it. Bytes below the committed
 * offset are never modified again, with one exception: a backup may cut its
 * received-but-unconfirmed tail (cut()), which no reader or replay task ever
 * reads (replay and views stay at or below the confirmed LSN).
 *
 * Views (Uint8Array, DataView, Buffer, Int32Array) are created once here.
 */
import { assert } from '../assert.js'
import { LSN_ALIGN_BYTES } from '../constants.js'

export const CTRL_COMMITTED_BYTES = 0
export const CTRL_FIELD_COUNT = 1

export interface SegmentHandle {
  id: number
  sizeBytes: number
  data: SharedArrayBuffer
  ctrl: SharedArrayBuffer
}

export class Segment {
  readonly id: number
  readonly sizeBytes: number
  readonly baseLsn: number
  readonly data: SharedArrayBuffer
  readonly ctrlBuffer: SharedArrayBuffer
  readonly u8: Uint8Array
  readonly dv: DataView
  readonly buf: Buffer
  readonly ctrl: Int32Array

  constructor(handle: SegmentHandle) {
    assert(handle.sizeBytes % LSN_ALIGN_BYTES === 0, 'segment size is aligned')
    assert(handle.data.byteLength === handle.sizeBytes, 'segment buffer has its size')
    this.id = handle.id
    this.sizeBytes = handle.sizeBytes
    this.baseLsn = handle.id * handle.sizeBytes
    this.data = handle.data
    this.ctrlBuffer = handle.ctrl
    this.u8 = new Uint8Array(handle.data)
    this.dv = new DataView(handle.data)
    this.buf = Buffer.from(handle.data)
    this.ctrl = new Int32Array(handle.ctrl)
  }

  static create(id: number, sizeBytes: number): Segment {
    return new Segment({
      id, sizeBytes,
      data: new SharedArrayBuffer(sizeBytes),
      ctrl: new SharedArrayBuffer(CTRL_FIELD_COUNT * 4),
    })
  }

  handle(): SegmentHandle {
    return { id: this.id, sizeBytes: this.sizeBytes, data: this.data, ctrl: this.ctrlBuffer }
  }

  /** Publishes bytes [0, offset) as whole blocks. */
  publish(offset: number): void {
    assert(offset <= this.sizeBytes, 'publish within the segment')
    // Release: every byte below `offset` was written before this store; readers load it first.
    Atomics.store(this.ctrl, CTRL_COMMITTED_BYTES, offset)
  }

  /**
   * Backup only: forgets the blocks at [offset, committed): unconfirmed blocks
   * that the primary does not have. Nothing installed or visible lies there.
   */
  cut(offset: number): void {
    const committed = this.committedBytes()
    assert(offset >= 0 && offset <= committed, 'cut within the published bytes')
    // Release: readers that load the lower value never look at the bytes zeroed after it.
    Atomics.store(this.ctrl, CTRL_COMMITTED_BYTES, offset)
    this.u8.fill(0, offset, committed)
  }

  /** Bytes [0, committed) are whole blocks, safe to read from any thread. */
  committedBytes(): number {
    // Acquire: pairs with publish(); bytes below the loaded value are complete.
    return Atomics.load(this.ctrl, CTRL_COMMITTED_BYTES)
  }
}

/**
 * Writes one snapshot (view/snapshot.ts: a read view pinned at one LSN) as
 * an RDB file (format.ts, version 9, strings), while writes, replay and reads
 * go on: no fork and no copy of the data. The keys are visited in hash order
 * (ReadView.scanStep, which neither skips nor repeats a key across table
 * growth), a few hundred at a time, and the writer yields to the event loop
 * after at most `stepMs` of work, so the main thread is never held longer
 * than a step (the longest step is reported). Values are copied once, from
 * the log segments into a bounded output buffer (CHUNK_BYTES, or one value
 * if larger) that goes to the sink, which applies back-pressure: the sink's
 * promise resolves once it is done with the bytes (a file write has
 * completed), and the buffer is then reused, so a save allocates nothing per
 * chunk. Freshet has no key expiry yet, so no entry carries
 * an expiry time. Keys are visited slot by slot over the index tables as
 * they are when the writer starts (ReadView.liveInSlots says why each key
 * visible at the snapshot is met exactly once).
 */
import { Crc64 } from './crc64.js'
import { OPCODE_AUX, OPCODE_EOF, OPCODE_EXPIRETIME_MS, OPCODE_RESIZEDB, OPCODE_SELECTDB, RDB_MAGIC, RDB_VERSION_WRITTEN, TYPE_STRING, lengthBytes, writeLength } from './format.js'
import type { Snapshot } from '../view/snapshot.js'
import { copyBytes } from '../codec/record.js'
import { tableSlotCount } from '../index/indirection.js'

/** Output is handed to the sink in chunks of about this size. */
const CHUNK_BYTES = 64 * 1024
/** Index slots read between two looks at the clock (a hundred keys at most: tens of microseconds). */
const SLOTS_PER_STEP = 128
/** A step longer than this is counted apart (longSteps): the main thread's stall budget. */
export const SAVE_LONG_STEP_MS = 2

export interface RdbWriteResult {
  lsn: number
  keys: number
  bytes: number
  ms: number
  /** The longest the writer held the main thread between two yields (wall time: a thread the OS preempted counts too). */
  maxStepMs: number
  /** Pieces of work between two yields, and how many of them took over SAVE_LONG_STEP_MS. */
  steps: number
  longSteps: number
  crc: string
}

export interface RdbWriteOptions {
  /** AUX fields written after the header (redis-ver, ctime, ...). */
  aux: Array<[string, string]>
  /** Live keys at the snapshot (RESIZEDB). */
  keyCount: number
  /** Work done before yielding to the event loop. */
  stepMs: number
}

/** Appends RDB bytes to a chunk and hands full chunks (with the running CRC) to the sink. */
class Output {
  buf: Buffer
  at: number
  bytes: number
  readonly crc: Crc64
  private readonly sink: (chunk: Buffer) => Promise<void>

  constructor(sink: (chunk: Buffer) => Promise<void>) {
    this.buf = Buffer.allocUnsafe(CHUNK_BYTES)
    this.at = 0
    this.bytes = 0
    this.crc = new Crc64()
    this.sink = sink
  }

  /** Does the chunk have room for `n` more bytes? */
  fits(n: number): boolean {
    return this.at + n <= this.buf.length
  }

  /** Room for `n` more bytes: flushes first if the chunk would overflow (a larger record gets a chunk of its own). */
  async room(n: number): Promise<void> {
    if (this.fits(n)) return
    await this.flush()
    if (n > this.buf.length) this.buf = Buffer.allocUnsafe(n)
  }

  /** Synchronous: the caller made room. */
  byte(b: number): void {
    this.buf[this.at++] = b
  }

  string(src: Uint8Array, start: number, length: number): void {
    this.at = writeLength(this.buf, this.at, length)
    copyBytes(this.buf, this.at, src, start, length)
    this.at += length
  }

  text(s: string): void {
    const b = Buffer.from(s)
    this.string(b, 0, b.length)
  }

  length(n: number): void {
    this.at = writeLength(this.buf, this.at, n)
  }

  /** EXPIRETIME_MS and the time as 8 little-endian bytes. */
  expireAtMs(ms: number): void {
    this.buf[this.at++] = OPCODE_EXPIRETIME_MS
    this.buf.writeUInt32LE(ms % 2 ** 32, this.at)
    this.buf.writeUInt32LE(Math.floor(ms / 2 ** 32), this.at + 4)
    this.at += 8
  }

  /** The chunk so far, folded into the CRC (synchronous work: a writer's step counts it). */
  take(): Buffer {
    const chunk = this.buf.subarray(0, this.at)
    this.crc.update(chunk)
    this.bytes += chunk.length
    this.at = 0
    return chunk
  }

  /** Hands `chunk` (from take()) to the sink; the buffer is reused once the sink's write has completed (no copy). */
  async send(chunk: Buffer): Promise<void> {
    if (chunk.length > 0) await this.sink(chunk)
  }

  async flush(): Promise<void> {
    await this.send(this.take())
  }
}

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}

/** Writes `snapshot` to `sink`; a chunk's bytes are the sink's only until its promise resolves (copy them to keep them). */
export async function writeRdb(snapshot: Snapshot, sink: (chunk: Buffer) => Promise<void>, o: RdbWriteOptions): Promise<RdbWriteResult> {
  const started = performance.now()
  const out = new Output(sink)
  const header = `${RDB_MAGIC}${String(RDB_VERSION_WRITTEN).padStart(4, '0')}`
  let auxBytes = header.length + 16
  for (const [k, v] of o.aux) auxBytes += 1 + lengthBytes(k.length) + Buffer.byteLength(k) + lengthBytes(v.length) + Buffer.byteLength(v) + 8
  await out.room(auxBytes)
  out.buf.write(header, out.at, 'latin1')
  out.at += header.length
  for (const [k, v] of o.aux) {
    out.byte(OPCODE_AUX)
    out.text(k)
    out.text(v)
  }
  out.byte(OPCODE_SELECTDB)
  out.length(0)
  out.byte(OPCODE_RESIZEDB)
  out.length(o.keyCount)
  out.length(0)
  const view = snapshot.view
  // A step's refs, at most one per slot it reads: a fixed array (a JS array emptied per step regrew
  // its backing store every step, about 19 bytes of garbage per key).
  const refs = new Uint32Array(SLOTS_PER_STEP)
  let refCount = 0
  const collect = (ref: number): void => { refs[refCount++] = ref }
  let keys = 0
  let maxStepMs = 0
  let steps = 0
  let longSteps = 0
  let stepStart = performance.now()
  const endStep = (now: number): void => {
    const ms = now - stepStart
    steps++
    if (ms > SAVE_LONG_STEP_MS) longSteps++
    if (ms > maxStepMs) maxStepMs = ms
  }
  // Called only once the step's time is up (checked in the loop, so no promise is made per check).
  const yieldTurn = async (now: number): Promise<void> => {
    endStep(now)
    await nextTurn()
    stepStart = performance.now()
  }
  // The tables as they are now (at or after the snapshot's LSN): walked slot by slot, each once (ReadView.liveInSlots).
  const tables = view.index.tables.slice()
  for (const table of tables) {
    const slots = tableSlotCount(table)
    for (let from = 0; from < slots; from += SLOTS_PER_STEP) {
      refCount = 0
      view.liveInSlots(table, from, Math.min(slots, from + SLOTS_PER_STEP), collect)
      for (let i = 0; i < refCount; i++) {
        let v = view.locate(refs[i])
        const expiry = view.expiryOf(refs[i])
        const need = (expiry > 0 ? 9 : 0) + 1 + lengthBytes(v.keyLength) + v.keyLength + lengthBytes(v.valueLength) + v.valueLength
        if (!out.fits(need)) {
          // The chunk's CRC is this step's work; the write is the yield.
          const chunk = out.take()
          endStep(performance.now())
          await out.send(chunk)
          await out.room(need)
          stepStart = performance.now()
          // Again: the cursor is shared, and another reader may have moved it meanwhile.
          v = view.locate(refs[i])
        }
        if (expiry > 0) out.expireAtMs(expiry)
        out.byte(TYPE_STRING)
        out.string(v.u8, v.keyStart, v.keyLength)
        out.string(v.u8, v.valueStart, v.valueLength)
        keys++
      }
      const now = performance.now()
      if (now - stepStart >= o.stepMs) await yieldTurn(now)
    }
  }
  await out.room(9)
  out.byte(OPCODE_EOF)
  // The CRC covers everything before it, EOF included.
  out.crc.update(out.buf, 0, out.at)
  out.crc.bytesLE(out.buf, out.at)
  const crc = out.crc.hex()
  out.at += 8
  const tail = out.buf.subarray(0, out.at)
  out.bytes += tail.length
  out.at = 0
  endStep(performance.now())
  await sink(tail)
  return { lsn: snapshot.lsn, keys, bytes: out.bytes, ms: performance.now() - started, maxStepMs, steps, longSteps, crc }
}

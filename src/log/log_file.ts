/**
 * Durable log: one file per segment under the node's directory
 * (`segment-<id 12 digits>.log`), holding the segment's bytes from offset 0 up
 * to its last whole block. write(from, to) writes a range of published blocks
 * with one write per touched file and one fdatasync each (group commit: the
 * caller batches everything sealed since the last flush).
 *
 * recover() reads every segment file back into the segment store, validates
 * block after block (magic, version, position, length, checksum, op framing),
 * and cuts the log at the first block that is not whole: the file is
 * truncated there and later segment files are deleted. A torn tail is an
 * expected outcome of a crash, reported, never thrown.
 */
import fs from 'node:fs'
import path from 'node:path'
import { assert } from '../assert.js'
import { blockEpoch, blockKeyCount, validateBlock } from '../codec/record.js'
import { dbError } from '../errors.js'
import { FORMAT_VERSION } from '../constants.js'
import type { SegmentStore } from './segment_store.js'

const SEGMENT_FILE_RE = /^segment-(\d{12})\.log$/
const META_FILE = 'freshet.json'

export function segmentFileName(id: number): string {
  return `segment-${String(id).padStart(12, '0')}.log`
}

/** One segment file to scan into its segment's SharedArrayBuffer. */
export interface ScanJob {
  file: string
  id: number
  baseLsn: number
  size: number
  data: SharedArrayBuffer
}

export interface ScanResult {
  readBytes: number
  /** Bytes from offset 0 that are whole, valid blocks. */
  validBytes: number
  blockCount: number
  lastEpoch: number
  keyCount: number
}

export type SegmentScanner = (jobs: ScanJob[]) => Promise<ScanResult[]>

/**
 * Reads a segment file into `data` and validates its blocks from offset 0.
 * Pure apart from reading the file: runs on any thread (replay workers scan
 * segments in parallel at recovery).
 */
export function scanSegment(job: ScanJob): ScanResult {
  const buf = Buffer.from(job.data)
  const u8 = new Uint8Array(job.data)
  const dv = new DataView(job.data)
  const fd = fs.openSync(job.file, 'r')
  let read = 0
  try {
    while (read < job.size) {
      const n = fs.readSync(fd, buf, read, job.size - read, read)
      if (n === 0) break
      read += n
    }
  } finally {
    fs.closeSync(fd)
  }
  const r: ScanResult = { readBytes: read, validBytes: 0, blockCount: 0, lastEpoch: 0, keyCount: 0 }
  let offset = 0
  while (offset < read) {
    const length = validateBlock(u8, dv, offset, read - offset, job.baseLsn + offset)
    if (length < 0) break
    r.blockCount++
    r.lastEpoch = blockEpoch(dv, offset)
    r.keyCount = blockKeyCount(dv, offset)
    offset += length
  }
  r.validBytes = offset
  return r
}

export function scanInline(jobs: ScanJob[]): Promise<ScanResult[]> {
  return Promise.resolve(jobs.map(scanSegment))
}

export interface RecoveryResult {
  endLsn: number
  blockCount: number
  bytesRead: number
  truncatedBytes: number
  /** Why the log was cut, or null if every file ended on a whole block. */
  cutReason: string | null
  lastEpoch: number
  keyCount: number
}

export class LogFiles {
  readonly dir: string
  readonly segmentBytes: number
  private readonly fds: Map<number, number>

  constructor(dir: string, segmentBytes: number) {
    this.dir = dir
    this.segmentBytes = segmentBytes
    this.fds = new Map()
  }

  /**
   * Opens (creating) a log directory. The directory records the segment size
   * it was created with (`freshet.json`): segment files are only meaningful
   * at that size, so opening it with another one is refused, untouched.
   */
  static open(dir: string, segmentBytes: number): LogFiles {
    fs.mkdirSync(dir, { recursive: true })
    const metaFile = path.join(dir, META_FILE)
    if (fs.existsSync(metaFile)) {
      let meta: { segmentBytes?: unknown }
      try {
        meta = JSON.parse(fs.readFileSync(metaFile, 'utf8')) as { segmentBytes?: unknown }
      } catch (err) {
        throw dbError('LOG_CORRUPT', `${metaFile} is not readable JSON`, err)
      }
      if (meta.segmentBytes !== segmentBytes) {
        throw dbError('INVALID_OPTION', `${dir} holds a log written with --segment-size ${String(meta.segmentBytes)} bytes; start with that size (got ${segmentBytes})`)
      }
    } else {
      const tmp = `${metaFile}.tmp`
      fs.writeFileSync(tmp, JSON.stringify({ format: FORMAT_VERSION, segmentBytes }) + '\n')
      const fd = fs.openSync(tmp, 'r')
      fs.fsyncSync(fd)
      fs.closeSync(fd)
      fs.renameSync(tmp, metaFile)
      const dfd = fs.openSync(dir, 'r')
      try { fs.fsyncSync(dfd) } finally { fs.closeSync(dfd) }
    }
    return new LogFiles(dir, segmentBytes)
  }

  private fdFor(id: number): number {
    let fd = this.fds.get(id)
    if (fd !== undefined) return fd
    const file = path.join(this.dir, segmentFileName(id))
    const created = !fs.existsSync(file)
    fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644)
    this.fds.set(id, fd)
    if (created) this.syncDir()
    return fd
  }

  /** Makes a newly created segment file's directory entry durable. */
  private syncDir(): void {
    const dfd = fs.openSync(this.dir, 'r')
    try { fs.fsyncSync(dfd) } finally { fs.closeSync(dfd) }
  }

  /**
   * Writes the published bytes of [from, to) to the segment files and
   * fdatasyncs each file touched. Gaps at segment tails (where a block did not
   * fit) are skipped: only bytes below each segment's committed offset go out.
   */
  async write(store: SegmentStore, from: number, to: number): Promise<void> {
    let lsn = from
    while (lsn < to) {
      const id = store.segmentId(lsn)
      const segment = store.segments[id]
      assert(segment !== undefined, 'segment exists for published bytes')
      const offset = lsn - segment.baseLsn
      const limit = Math.min(to - segment.baseLsn, segment.committedBytes())
      if (limit > offset) {
        const fd = this.fdFor(id)
        await writeAll(fd, segment.buf, offset, limit - offset)
        await new Promise<void>((resolve, reject) => fs.fdatasync(fd, (err) => err ? reject(err) : resolve()))
      }
      lsn = segment.baseLsn + this.segmentBytes
    }
  }

  /**
   * Reads the log back into `store` and cuts it after the last whole block.
   * Segments are scanned (read into their SAB, blocks validated) by `scan`,
   * which may run them in parallel (the replay pool) or inline; the decision
   * of where to cut is then made here, in LSN order.
   */
  async recover(store: SegmentStore, scan: SegmentScanner = scanInline): Promise<RecoveryResult> {
    const ids = fs.readdirSync(this.dir)
      .map((name) => SEGMENT_FILE_RE.exec(name))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b)
    const result: RecoveryResult = {
      endLsn: 0, blockCount: 0, bytesRead: 0, truncatedBytes: 0, cutReason: null, lastEpoch: 0, keyCount: 0,
    }
    // Segments must be 0, 1, 2, ...: everything after a missing one is cut.
    let contiguous = 0
    while (contiguous < ids.length && ids[contiguous] === contiguous) contiguous++
    const jobs: ScanJob[] = []
    for (let i = 0; i < contiguous; i++) {
      const file = path.join(this.dir, segmentFileName(ids[i]))
      const size = fs.statSync(file).size
      if (size > this.segmentBytes) {
        throw dbError('LOG_CORRUPT', `${file} is ${size} bytes, larger than the segment size ${this.segmentBytes}`)
      }
      const segment = store.segmentFor(ids[i] * this.segmentBytes)
      jobs.push({ file, id: ids[i], baseLsn: segment.baseLsn, size, data: segment.data })
    }
    const scans = await scan(jobs)
    let expected = 0
    let cut = false
    for (let i = 0; i < jobs.length; i++) {
      const job = jobs[i]
      const r = scans[i]
      if (cut) {
        result.truncatedBytes += job.size
        fs.rmSync(job.file)
        continue
      }
      const segment = store.segments[job.id]
      result.bytesRead += r.readBytes
      result.blockCount += r.blockCount
      if (r.blockCount > 0) {
        result.lastEpoch = r.lastEpoch
        result.keyCount = r.keyCount
      }
      segment.publish(r.validBytes)
      expected = job.baseLsn + r.validBytes
      if (r.validBytes < job.size) {
        result.cutReason = `invalid block at LSN ${expected} (torn or corrupt); ${job.size - r.validBytes} bytes cut`
        result.truncatedBytes += job.size - r.validBytes
        segment.u8.fill(0, r.validBytes, job.size)
        const fd = fs.openSync(job.file, 'r+')
        try {
          fs.ftruncateSync(fd, r.validBytes)
          fs.fsyncSync(fd)
        } finally {
          fs.closeSync(fd)
        }
        cut = true
      }
    }
    for (let i = contiguous; i < ids.length; i++) {
      const file = path.join(this.dir, segmentFileName(ids[i]))
      if (!cut) result.cutReason = `segment ${contiguous} is missing; segments from ${ids[i]} on are cut`
      cut = true
      result.truncatedBytes += fs.statSync(file).size
      fs.rmSync(file)
    }
    result.endLsn = expected
    store.endLsn = expected
    return result
  }

  /**
   * Cuts the files back to `lsn`: truncates the file holding it, deletes
   * later segment files, fsyncs. Returns the bytes removed.
   */
  cutTail(lsn: number): number {
    const keepId = Math.floor(lsn / this.segmentBytes)
    const keepBytes = lsn - keepId * this.segmentBytes
    let removed = 0
    for (const name of fs.readdirSync(this.dir)) {
      const m = SEGMENT_FILE_RE.exec(name)
      if (m === null) continue
      const id = Number(m[1])
      if (id < keepId) continue
      const file = path.join(this.dir, name)
      const size = fs.statSync(file).size
      if (id > keepId) {
        const fd = this.fds.get(id)
        if (fd !== undefined) { fs.closeSync(fd); this.fds.delete(id) }
        fs.rmSync(file)
        removed += size
      } else if (size > keepBytes) {
        const fd = fs.openSync(file, 'r+')
        try {
          fs.ftruncateSync(fd, keepBytes)
          fs.fsyncSync(fd)
        } finally {
          fs.closeSync(fd)
        }
        removed += size - keepBytes
      }
    }
    this.syncDir()
    return removed
  }

  /** Total size of the segment files. */
  bytesOnDisk(): number {
    let n = 0
    for (const name of fs.readdirSync(this.dir)) if (SEGMENT_FILE_RE.test(name)) n += fs.statSync(path.join(this.dir, name)).size
    return n
  }

  close(): void {
    for (const fd of this.fds.values()) fs.closeSync(fd)
    this.fds.clear()
  }
}

function writeAll(fd: number, buf: Buffer, offset: number, length: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const step = (done: number): void => {
      if (done === length) { resolve(); return }
      fs.write(fd, buf, offset + done, length - done, offset + done, (err, n) => {
        if (err) reject(err)
        else step(done + n)
      })
    }
    step(0)
  })
}

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

  /** Synchronous write + fdatasync for a range (used by a backup's bulk path and shutdown). */
  writeSync(store: SegmentStore, from: number, to: number): void {
    let lsn = from
    while (lsn < to) {
      const id = store.segmentId(lsn)
      const segment = store.segments[id]
      const offset = lsn - segment.baseLsn
      const limit = Math.min(to - segment.baseLsn, segment.committedBytes())
      if (limit > offset) {
        const fd = this.fdFor(id)
        let done = 0
        while (done < limit - offset) done += fs.writeSync(fd, segment.buf, offset + done, limit - offset - done, offset + done)
        fs.fdatasyncSync(fd)
      }
      lsn = segment.baseLsn + this.segmentBytes
    }
  }

  /** Reads the log back into `store` and cuts it after the last whole block. */
  recover(store: SegmentStore): RecoveryResult {
    const ids = fs.readdirSync(this.dir)
      .map((name) => SEGMENT_FILE_RE.exec(name))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b)
    const result: RecoveryResult = {
      endLsn: 0, blockCount: 0, bytesRead: 0, truncatedBytes: 0, cutReason: null, lastEpoch: 0, keyCount: 0,
    }
    let expected = 0
    let nextId = 0
    let cut = false
    for (const id of ids) {
      const file = path.join(this.dir, segmentFileName(id))
      const size = fs.statSync(file).size
      if (cut) {
        result.truncatedBytes += size
        fs.rmSync(file)
        continue
      }
      const baseLsn = id * this.segmentBytes
      if (size > this.segmentBytes) {
        throw dbError('LOG_CORRUPT', `${file} is ${size} bytes, larger than the segment size ${this.segmentBytes}: was --segment-size changed?`)
      }
      if (id !== nextId) {
        result.cutReason = `segment ${nextId} is missing; segments from ${id} on are cut`
        cut = true
        result.truncatedBytes += size
        fs.rmSync(file)
        continue
      }
      nextId = id + 1
      const segment = store.segmentFor(baseLsn)
      const fd = fs.openSync(file, 'r+')
      let read = 0
      while (read < size) {
        const n = fs.readSync(fd, segment.buf, read, size - read, read)
        if (n === 0) break
        read += n
      }
      result.bytesRead += read
      let offset = 0
      while (offset < read) {
        const length = validateBlock(segment.u8, segment.dv, offset, read - offset, baseLsn + offset)
        if (length < 0) break
        result.blockCount++
        result.lastEpoch = blockEpoch(segment.dv, offset)
        result.keyCount = blockKeyCount(segment.dv, offset)
        offset += length
      }
      segment.publish(offset)
      expected = baseLsn + offset
      if (offset < read) {
        result.cutReason = `invalid block at LSN ${baseLsn + offset} (torn or corrupt); ${read - offset} bytes cut`
        result.truncatedBytes += read - offset
        segment.u8.fill(0, offset, read)
        fs.ftruncateSync(fd, offset)
        fs.fsyncSync(fd)
        cut = true
      }
      fs.closeSync(fd)
    }
    result.endLsn = expected
    store.endLsn = expected
    return result
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

/**
 * Segment files on their own: their names, the ids present in a directory,
 * and the scan that reads one back into its segment's SharedArrayBuffer and
 * validates its blocks. Pure apart from reading files, so replay workers run
 * it in parallel at recovery (workers/replay_worker.ts); recovery
 * (recover.ts) decides what the scans mean.
 */
import fs from 'node:fs'
import { blockEpoch, blockKeyCount, validateBlock } from '../codec/record.js'
import { BLOCK_HEADER_BYTES, LSN_ALIGN_BYTES } from '../constants.js'

export const SEGMENT_FILE_RE = /^segment-(\d{12})\.log$/

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
  /** First 8-byte aligned offset past validBytes where a block validates for its own position; -1 if none. */
  validAfterOffset: number
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
  const r: ScanResult = { readBytes: read, validBytes: 0, blockCount: 0, lastEpoch: 0, keyCount: 0, validAfterOffset: -1 }
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
  // Damage or a torn tail? Look for any later block that validates at its own position
  // (a torn tail has none: nothing was ever written after it).
  for (let at = offset + LSN_ALIGN_BYTES; at + BLOCK_HEADER_BYTES <= read; at += LSN_ALIGN_BYTES) {
    if (validateBlock(u8, dv, at, read - at, job.baseLsn + at) >= 0) {
      r.validAfterOffset = at
      break
    }
  }
  return r
}

export function scanInline(jobs: ScanJob[]): Promise<ScanResult[]> {
  return Promise.resolve(jobs.map(scanSegment))
}

/** Segment ids of the segment files in `dir`, ascending. */
export function segmentIds(dir: string): number[] {
  return fs.readdirSync(dir)
    .map((name) => SEGMENT_FILE_RE.exec(name))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b)
}

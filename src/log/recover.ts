/**
 * Recovery of the durable log: reads every segment file back into the
 * segment store (scanned by `scan`, possibly in parallel on the replay pool),
 * then decides in LSN order what is a torn tail and what is damage.
 *
 * - A torn tail is the expected outcome of a crash: in the newest segment
 *   (the last one the manifest records), bytes after the last whole block
 *   with no block after them that validates at its own position. It is cut
 *   (LogFiles.cutTail) and reported in cutReason, never thrown.
 * - Damage is everything else: an invalid block with valid data after it; a
 *   sealed segment missing, shorter or longer than the manifest recorded, or
 *   not valid to its end; a missing newest segment; a segment file the
 *   manifest does not know. It stops start-up with LOG_DAMAGED naming the
 *   file, offset and LSN range, and nothing on disk is touched, unless
 *   acceptLogDamage: then the log is cut at the first damage and exactly what
 *   was cut is reported.
 *
 * A directory from before manifests (format v1 fixtures) is checked with what
 * it holds (contiguous segment ids, every segment but the last valid to its
 * end, no valid block after damage) and gets a manifest once it is accepted.
 */
import fs from 'node:fs'
import { blockEpoch, blockKeyCount, blockLength } from '../codec/record.js'
import { dbError } from '../errors.js'
import { readManifest } from './manifest.js'
import { segmentIds, type ScanJob, type ScanResult, type SegmentScanner } from './segment_scan.js'
import type { SegmentStore } from './segment_store.js'
import type { Manifest } from './manifest.js'

/** What recovery needs of the segment files (LogFiles implements it; recovery does not import it). */
export interface RecoveringFiles {
  readonly dir: string
  readonly segmentBytes: number
  readonly options: { acceptLogDamage?: boolean, initialLsn?: number }
  manifestRequired: boolean
  manifest: Manifest | null
  fileOf(id: number): string
  writeMeta(): void
  writeManifest(m: Manifest): void
  cutTail(lsn: number): number
  finishCut(): void
  removeHoleFiles(ids: readonly number[]): number
  removeBelow(id: number): number
}

export interface RecoveryResult {
  endLsn: number
  blockCount: number
  bytesRead: number
  truncatedBytes: number
  /** What was cut and why, or null if nothing was. */
  cutReason: string | null
  lastEpoch: number
  keyCount: number
  /** Base LSN of the oldest retained segment. */
  horizonLsn: number
  /** Bytes of segment files below the horizon deleted now (a release a crash interrupted). */
  releasedBytes: number
}

interface Damage {
  id: number
  /** Offset in segment `id` of the first byte lost (a block boundary). */
  offset: number
  what: string
}

export async function recoverLog(files: RecoveringFiles, store: SegmentStore, scan: SegmentScanner): Promise<RecoveryResult> {
  const segmentBytes = files.segmentBytes
  let manifest = readManifest(files.dir, segmentBytes)
  if (manifest === null && files.manifestRequired) {
    throw dbError('LOG_DAMAGED', `${files.dir}/manifest.json is missing, but this log directory was created with one; the log cannot be checked`)
  }
  files.manifest = manifest
  if (manifest !== null && manifest.cutLsn !== null) {
    // A cut was recorded and a crash interrupted it: finish it before looking for damage.
    files.finishCut()
    manifest = files.manifest
  }
  const oldest = manifest !== null ? manifest.oldest : 0
  const holes = new Set(manifest !== null ? manifest.holes : [])
  // Files below the horizon or in holes were released; a crash after the manifest recorded it left them: finish the release.
  const releasedBytes = files.removeBelow(oldest) + (holes.size > 0 ? files.removeHoleFiles([...holes]) : 0)
  const ids = segmentIds(files.dir)
  const present = new Set(ids)
  const sizeOf = (id: number): number => fs.statSync(files.fileOf(id)).size
  const legacy = manifest === null
  let newest = manifest !== null ? manifest.newest : (ids.length > 0 ? ids[ids.length - 1] : -1)
  /** Recorded final length of each sealed segment (index id - oldest); null where it is not known (legacy, adopted). */
  const sealed: Array<number | null> = manifest !== null ? manifest.sealedBytes.slice() : new Array<number | null>(Math.max(0, newest)).fill(null)
  let adopted = false
  if (manifest !== null && present.has(newest + 1) && sizeOf(newest + 1) === 0) {
    // Created (directory fsynced) but not yet recorded when the node stopped: the
    // segment before it was complete and synced, so it is sealed now.
    if (newest >= oldest) sealed.push(null)
    newest++
    adopted = true
  }
  store.resetTo(oldest * segmentBytes)
  store.releaseHoles([...holes])

  const jobs: ScanJob[] = []
  const jobOf = new Map<number, number>()
  for (let id = oldest; id <= newest; id++) {
    if (!present.has(id) || holes.has(id)) continue
    const file = files.fileOf(id)
    const size = sizeOf(id)
    if (size > segmentBytes) throw dbError('LOG_DAMAGED', `${file} is ${size} bytes, larger than the segment size ${segmentBytes}`)
    const segment = store.segmentFor(id * segmentBytes)
    jobOf.set(id, jobs.length)
    jobs.push({ file, id, baseLsn: segment.baseLsn, size, data: segment.data })
  }
  const scans = await scan(jobs)

  let damage: Damage | null = null
  let torn: Damage | null = null
  for (let id = oldest; id <= newest && damage === null; id++) {
    if (holes.has(id)) continue
    const j = jobOf.get(id)
    if (j === undefined) {
      const recorded = sealed[id - oldest]
      damage = { id, offset: 0, what: id < newest ? `is missing (a sealed segment${recorded !== null ? ` of ${recorded} bytes` : ''})` : 'is missing (the newest segment)' }
      break
    }
    const size = jobs[j].size
    const r = scans[j]
    if (id < newest) {
      const recorded = sealed[id - oldest]
      if (r.validBytes < size) damage = { id, offset: r.validBytes, what: `has an invalid block at offset ${r.validBytes} in a sealed segment` }
      else if (recorded !== null && size < recorded) damage = { id, offset: size, what: `is ${size} bytes, but ${recorded} were made durable` }
      else if (recorded !== null && size > recorded) damage = { id, offset: recorded, what: `is ${size} bytes, longer than the ${recorded} recorded` }
      else if (recorded === null && size === 0) damage = { id, offset: 0, what: 'is empty, but later segments exist' }
    } else if (r.validBytes < size) {
      if (r.validAfterOffset >= 0) {
        damage = { id, offset: r.validBytes, what: `has an invalid block at offset ${r.validBytes} with a valid block after it at offset ${r.validAfterOffset}` }
      } else {
        torn = { id, offset: r.validBytes, what: `torn tail (${size - r.validBytes} bytes after the last whole block)` }
      }
    }
  }
  const unknown = ids.find((id) => id > newest)
  if (damage === null && unknown !== undefined) {
    // A file the manifest does not know (never a crash state: files are recorded before they get data).
    const j = jobOf.get(newest)
    damage = {
      id: Math.max(oldest, newest),
      offset: j === undefined ? 0 : scans[j].validBytes,
      what: `${torn === null ? '' : `${torn.what}, and `}${files.fileOf(unknown)} exists past the manifest's newest segment ${newest}`,
    }
  }

  let knownEndLsn = oldest * segmentBytes
  for (const id of ids) knownEndLsn = Math.max(knownEndLsn, id * segmentBytes + sizeOf(id))
  for (let i = 0; i < sealed.length; i++) {
    const recorded = sealed[i]
    if (recorded !== null) knownEndLsn = Math.max(knownEndLsn, (oldest + i) * segmentBytes + recorded)
  }

  if (damage !== null && files.options.acceptLogDamage !== true) {
    const lsn = damage.id * segmentBytes + damage.offset
    const lost = damage.id === newest && !present.has(newest)
      ? `LSN ${lsn} and after (the newest segment's length is recorded nowhere)`
      : `LSN ${lsn}..${knownEndLsn} (${knownEndLsn - lsn} bytes)`
    throw dbError('LOG_DAMAGED', `${files.fileOf(damage.id)} ${damage.what}: offset ${damage.offset}, ${lost} would be lost. ` +
      'Nothing was changed on disk. Restore the file, or start with --accept-log-damage to cut the log at that LSN')
  }

  // Publish what is kept; zero what is cut from memory (the appender writes there next).
  const cut = damage ?? torn
  const cutFrom = cut === null ? -1 : cut.id * segmentBytes + cut.offset
  let cutLsn = cutFrom
  const result: RecoveryResult = {
    endLsn: oldest * segmentBytes, blockCount: 0, bytesRead: 0, truncatedBytes: 0, cutReason: null, lastEpoch: 0, keyCount: 0,
    horizonLsn: oldest * segmentBytes, releasedBytes,
  }
  for (let j = 0; j < jobs.length; j++) {
    const job = jobs[j]
    const segment = store.segment(job.id)!
    const keep = cutFrom < 0 ? scans[j].validBytes : Math.max(0, Math.min(scans[j].validBytes, cutFrom - job.baseLsn))
    const kept = keptPrefix(segment.dv, keep, scans[j])
    if (kept.bytes < job.size) segment.u8.fill(0, kept.bytes, job.size)
    segment.publish(kept.bytes)
    result.bytesRead += scans[j].readBytes
    result.blockCount += kept.blocks
    if (kept.blocks > 0) {
      result.lastEpoch = kept.lastEpoch
      result.keyCount = kept.keyCount
    }
    // The cut lands on the last whole block at or before the damage.
    if (cut !== null && job.id === cut.id) cutLsn = job.baseLsn + kept.bytes
    if (cut === null) result.endLsn = job.baseLsn + kept.bytes
  }
  if (cut !== null) result.endLsn = cutLsn
  store.endLsn = result.endLsn

  // Bring the manifest up to date before any cut (cutTail works from it).
  if (legacy || adopted) {
    const sealedBytes: number[] = []
    for (let id = oldest; id < newest; id++) sealedBytes.push(sealed[id - oldest] ?? (present.has(id) ? sizeOf(id) : 0))
    files.writeManifest({ oldest, holes: [...holes], newest, sealedBytes, cutLsn: null })
  }
  if (cut !== null) {
    const file = files.fileOf(cut.id)
    result.truncatedBytes = files.cutTail(cutLsn)
    result.cutReason = damage === null
      ? `${file}: ${cut.what} at offset ${cut.offset} (LSN ${cutLsn}) cut`
      : `damage accepted (--accept-log-damage): ${file} ${cut.what}; log cut at offset ${cut.offset} of that file, LSN ${cutLsn}..${knownEndLsn} lost (${result.truncatedBytes} bytes of segment files removed)`
  }
  if (!files.manifestRequired) files.writeMeta()
  return result
}

interface Kept { bytes: number, blocks: number, lastEpoch: number, keyCount: number }

/** The whole blocks of a scanned segment that end at or before `limit` (scan.validBytes ≥ limit). */
function keptPrefix(dv: DataView, limit: number, scan: ScanResult): Kept {
  if (limit === scan.validBytes) return { bytes: limit, blocks: scan.blockCount, lastEpoch: scan.lastEpoch, keyCount: scan.keyCount }
  const kept: Kept = { bytes: 0, blocks: 0, lastEpoch: 0, keyCount: 0 }
  // Bounded: every block is at least a header long, and these blocks were validated by the scan.
  while (kept.bytes < limit) {
    const length = blockLength(dv, kept.bytes)
    if (kept.bytes + length > limit) break
    kept.blocks++
    kept.lastEpoch = blockEpoch(dv, kept.bytes)
    kept.keyCount = blockKeyCount(dv, kept.bytes)
    kept.bytes += length
  }
  return kept
}

/**
 * Durable log: one file per segment under the node's directory
 * (`segment-<id 12 digits>.log`), holding the segment's bytes from offset 0 up
 * to its last whole block. write(from, to) writes a range of published blocks
 * with one write per touched file and one fdatasync each (group commit: the
 * caller batches everything sealed since the last flush).
 *
 * The segment manifest (manifest.ts) records what was made durable: it is
 * rewritten when the write path first writes into a new segment (the previous
 * one is already fdatasynced: its length is final) and when the tail is cut
 * (cutTail), never per write. recover() (recover.ts) uses it to tell a torn
 * tail, which it cuts, from damage, which stops start-up (LOG_DAMAGED).
 *
 * Rollover order: fdatasync segment i (done by the write of its last bytes),
 * create file i+1 and fsync the directory, write the manifest {newest: i+1,
 * sealedBytes[i]: size of file i}, then write into i+1. A crash between any
 * two steps leaves a state recovery accepts: an empty file newest+1 not yet in
 * the manifest is adopted.
 */
import fs from 'node:fs'
import path from 'node:path'
import { assert } from '../assert.js'
import { blockEpoch, blockKeyCount, validateBlock } from '../codec/record.js'
import { dbError } from '../errors.js'
import { FORMAT_VERSION, LSN_ALIGN_BYTES } from '../constants.js'
import type { SegmentStore } from './segment_store.js'
import { MANIFEST_FILE, type Manifest, manifestText, replaceDurablyIf, syncDir, syncDirAsync, writeFileDurable, writeManifest } from './manifest.js'
import { recoverLog, type RecoveringFiles, type RecoveryResult } from './recover.js'
import { SEGMENT_FILE_RE, scanInline, segmentFileName, segmentIds, type SegmentScanner } from './segment_scan.js'

export type { RecoveryResult } from './recover.js'

const META_FILE = 'freshet.json'
/** The rollover's own temp name for the next manifest (a synchronous manifest writer uses manifest.json.tmp). */
const ROLLOVER_TMP = `${MANIFEST_FILE}.rollover.tmp`

export interface LogFilesOptions {
  /** Cut the log at the first damage (logged) instead of refusing to start (--accept-log-damage). */
  acceptLogDamage?: boolean
  /** A new directory's log starts at this LSN (a segment boundary; tests of high LSNs). Default 0. */
  initialLsn?: number
  /** Tests only: called at each step of a rollover or cut; throwing there simulates a crash. */
  crashPoint?: (step: CrashStep) => void
}

export type CrashStep = 'rollover:created' | 'rollover:temp' | 'rollover:manifest' | 'cut:intent' | 'cut:truncated' | 'cut:deleted' |
  'release:manifest' | 'release:deleted'

export class LogFiles implements RecoveringFiles {
  readonly dir: string
  readonly segmentBytes: number
  readonly options: LogFilesOptions
  /** The directory was created with a manifest (freshet.json says so): a missing one is damage. */
  manifestRequired: boolean
  /** The manifest as last written (null: a directory from before manifests, until recovery writes one). */
  manifest: Manifest | null
  private readonly fds: Map<number, number>

  constructor(dir: string, segmentBytes: number, options: LogFilesOptions = {}) {
    this.dir = dir
    this.segmentBytes = segmentBytes
    this.options = options
    this.manifestRequired = false
    this.manifest = null
    this.fds = new Map()
  }

  /**
   * Opens (creating) a log directory. The directory records the segment size
   * it was created with (`freshet.json`): segment files are only meaningful
   * at that size, so opening it with another one is refused, untouched.
   * A new directory gets an empty manifest before freshet.json says it has one.
   */
  static open(dir: string, segmentBytes: number, options: LogFilesOptions = {}): LogFiles {
    fs.mkdirSync(dir, { recursive: true })
    const files = new LogFiles(dir, segmentBytes, options)
    const metaFile = path.join(dir, META_FILE)
    if (fs.existsSync(metaFile)) {
      let meta: { segmentBytes?: unknown, manifest?: unknown }
      try {
        meta = JSON.parse(fs.readFileSync(metaFile, 'utf8')) as { segmentBytes?: unknown, manifest?: unknown }
      } catch (err) {
        throw dbError('LOG_CORRUPT', `${metaFile} is not readable JSON`, err)
      }
      if (meta.segmentBytes !== segmentBytes) {
        throw dbError('INVALID_OPTION', `${dir} holds a log written with --segment-size ${String(meta.segmentBytes)} bytes; start with that size (got ${segmentBytes})`)
      }
      files.manifestRequired = meta.manifest === true
    } else if (segmentIds(dir).length === 0 && !fs.existsSync(path.join(dir, MANIFEST_FILE))) {
      const initialLsn = options.initialLsn ?? 0
      if (!Number.isSafeInteger(initialLsn) || initialLsn < 0 || initialLsn % segmentBytes !== 0) {
        throw dbError('INVALID_OPTION', `the initial LSN must be a multiple of the segment size ${segmentBytes}, got ${initialLsn}`)
      }
      const first = initialLsn / segmentBytes
      files.writeManifest({ oldest: first, holes: [], newest: first - 1, sealedBytes: [], cutLsn: null })
      files.writeMeta()
    }
    // else: segment files or a manifest without freshet.json (lost, or a very old directory): recovery
    // checks what is there (with the manifest if there is one) and writes freshet.json once it accepts the log.
    return files
  }

  /** Records in freshet.json that this directory keeps a manifest (after the first one is written). */
  writeMeta(): void {
    writeFileDurable(this.dir, META_FILE, JSON.stringify({ format: FORMAT_VERSION, segmentBytes: this.segmentBytes, manifest: true }) + '\n')
    this.manifestRequired = true
  }

  writeManifest(m: Manifest): void {
    writeManifest(this.dir, m)
    this.manifest = m
  }

  fileOf(id: number): string {
    return path.join(this.dir, segmentFileName(id))
  }

  private fdFor(id: number): number {
    let fd = this.fds.get(id)
    if (fd !== undefined) return fd
    const file = this.fileOf(id)
    const created = !fs.existsSync(file)
    fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644)
    this.fds.set(id, fd)
    if (created) syncDir(this.dir)
    return fd
  }

  private crashPoint(step: CrashStep): void {
    if (this.options.crashPoint !== undefined) this.options.crashPoint(step)
  }

  /**
   * The write path's first write into segment `id`: every earlier segment is
   * sealed and its bytes are fdatasynced, so their lengths are final. Creates
   * the file (directory fsynced), then records it as the newest, in that
   * order as before, but with every fsync on the thread pool: on the main
   * thread a rollover's three fsyncs stalled the node for as long as the disk
   * took (strace: up to 9 ms each on a loaded backup, more while a snapshot is
   * written back). The next manifest goes to its own temp file, fsynced off
   * the main thread; the rename is done on the main thread, and only if no
   * other manifest was recorded meanwhile (a release, which writes its own
   * synchronously): otherwise it is made again from the newer one, so the
   * manifest on disk is never an older one than a writer recorded.
   */
  private async rollover(id: number): Promise<void> {
    assert(this.manifest !== null && id > this.manifest.newest, 'rollover moves past the newest segment of a written manifest')
    await this.createFd(id)
    this.crashPoint('rollover:created')
    for (;;) {
      const m: Manifest = this.manifest
      const next: Manifest = { oldest: m.oldest, holes: m.holes, newest: Math.max(m.newest, id), sealedBytes: this.sealedThrough(m, id), cutLsn: m.cutLsn }
      const current = (): boolean => { this.crashPoint('rollover:temp'); return this.manifest === m }
      if (await replaceDurablyIf(this.dir, ROLLOVER_TMP, MANIFEST_FILE, manifestText(next), current, () => { this.manifest = next })) break
    }
    this.crashPoint('rollover:manifest')
  }

  /** `m`'s sealed lengths extended through the segment before `id` (their files' sizes: final once rolled past). */
  private sealedThrough(m: Manifest, id: number): number[] {
    const sealedBytes = m.sealedBytes.slice()
    // A hole (a backup in a full resync skips the segments its primary released) has no file.
    for (let j = m.oldest + sealedBytes.length; j < id; j++) sealedBytes.push(m.holes.includes(j) ? 0 : fs.fstatSync(this.fdFor(j)).size)
    return sealedBytes
  }

  /** fdFor with its disk work on the thread pool: opens (creating) segment `id`'s file; a created one has the directory fsynced. */
  private async createFd(id: number): Promise<number> {
    const known = this.fds.get(id)
    if (known !== undefined) return known
    const file = this.fileOf(id)
    const created = !fs.existsSync(file)
    const fd = await new Promise<number>((resolve, reject) => {
      fs.open(file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644, (err, d) => err !== null ? reject(err) : resolve(d))
    })
    const opened = this.fds.get(id)
    if (opened !== undefined) {
      // A synchronous path opened it meanwhile (and fsynced the directory if it created it): keep that one.
      fs.closeSync(fd)
      return opened
    }
    this.fds.set(id, fd)
    if (created) await syncDirAsync(this.dir)
    return fd
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
      const segment = store.segment(id)
      if (segment === undefined && store.holes.has(id)) {
        // A backup in a full resync skipped this segment: its primary released it.
        lsn = (id + 1) * this.segmentBytes
        continue
      }
      assert(segment !== undefined, 'segment exists for published bytes')
      const offset = lsn - segment.baseLsn
      const limit = Math.min(to - segment.baseLsn, segment.committedBytes())
      if (limit > offset) {
        if (this.manifest !== null && id > this.manifest.newest) await this.rollover(id)
        const fd = this.fdFor(id)
        await writeAll(fd, segment.buf, offset, limit - offset)
        await new Promise<void>((resolve, reject) => fs.fdatasync(fd, (err) => err ? reject(err) : resolve()))
      }
      lsn = segment.baseLsn + this.segmentBytes
    }
  }

  /**
   * Removes every byte of the durable log at or after `lsn` (a block
   * boundary) and returns how many bytes that was. Order, so that a crash
   * anywhere leaves either the log before the cut or the log after it:
   * 1. the manifest records the intent (newest = the segment holding lsn,
   *    cutLsn = lsn); from here recovery finishes the cut (finishCut);
   * 2. the file holding lsn is truncated there and fsynced;
   * 3. later segment files are deleted, newest first, and the directory fsynced;
   * 4. the manifest drops the intent.
   * Truncating before step 1 would make a sealed segment look short (damage);
   * a crash after step 1 must not bring cut bytes back.
   * The in-memory side (segment store, positions) is the caller's.
   */
  cutTail(lsn: number): number {
    assert(Number.isSafeInteger(lsn) && lsn >= 0 && lsn % LSN_ALIGN_BYTES === 0, 'cut at an aligned LSN')
    const m = this.manifest
    assert(m !== null, 'the manifest is written (at open or by recovery) before any cut')
    const k = Math.floor(lsn / this.segmentBytes)
    const offset = lsn - k * this.segmentBytes
    let removed = 0
    for (const id of segmentIds(this.dir)) {
      if (id < k) continue
      const size = fs.statSync(this.fileOf(id)).size
      removed += id === k ? Math.max(0, size - offset) : size
    }
    if (k > m.newest) {
      // Past every recorded segment: only files no manifest knows can hold such bytes.
      if (removed > 0) this.removeFrom(k, offset)
      return removed
    }
    assert(k >= m.oldest, 'a cut never reaches below the horizon')
    const sealedBytes = m.sealedBytes.slice(0, k - m.oldest)
    for (let j = m.oldest + sealedBytes.length; j < k; j++) sealedBytes.push(m.holes.includes(j) ? 0 : fs.statSync(this.fileOf(j)).size)
    this.writeManifest({ oldest: m.oldest, holes: m.holes, newest: k, sealedBytes, cutLsn: lsn })
    this.crashPoint('cut:intent')
    this.finishCut()
    return removed
  }

  /** Steps 2-4 of cutTail for the cut the manifest records; idempotent (recovery redoes it after a crash). */
  finishCut(): void {
    const m = this.manifest
    assert(m !== null && m.cutLsn !== null, 'a cut is recorded')
    const lsn = m.cutLsn
    const k = Math.floor(lsn / this.segmentBytes)
    const offset = lsn - k * this.segmentBytes
    // The newest recorded segment must exist: create it if the cut starts a missing one.
    const file = this.fileOf(k)
    if (!fs.existsSync(file)) {
      fs.closeSync(fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644))
      syncDir(this.dir)
    }
    this.removeFrom(k, offset)
    this.writeManifest({ oldest: m.oldest, holes: m.holes, newest: m.newest, sealedBytes: m.sealedBytes, cutLsn: null })
  }

  /**
   * Moves the durable horizon to segment `id`: the files below it are
   * released. Called only once everything that replaces their contents (the
   * cleaner's relocated versions) is durable. Order: the manifest records the
   * new oldest segment (from here recovery never reads the files below it and
   * deletes any it finds), then the files are deleted and the directory
   * fsynced. A crash between the steps leaves files recovery removes.
   */
  releaseBelow(id: number): number {
    const m = this.manifest
    assert(m !== null, 'the manifest is written before any release')
    // The horizon never sits on a hole: it moves past the holes it reaches.
    while (m.holes.includes(id)) id++
    // Already recorded (a release that failed after its manifest step is retried): finish the deletion.
    if (id <= m.oldest) return this.removeBelow(id)
    // A backup may release up to a horizon at which it has not started a segment file yet.
    const newest = Math.max(m.newest, id - 1)
    const sealedBytes = id > m.newest ? [] : m.sealedBytes.slice(id - m.oldest)
    this.writeManifest({ oldest: id, holes: m.holes.filter((h) => h > id), newest, sealedBytes, cutLsn: m.cutLsn })
    this.crashPoint('release:manifest')
    return this.removeBelow(id)
  }

  /**
   * Releases segments above the horizon (the cleaner's victims that are not
   * the oldest; on a backup in a full resync, also ids it never held): the
   * manifest records them as holes first (from here recovery skips them and
   * deletes their files), then their files are deleted and the directory
   * fsynced. Called only once what replaces their contents is durable.
   * Returns the bytes of files removed. Idempotent.
   */
  releaseHoles(ids: readonly number[]): number {
    const m = this.manifest
    assert(m !== null, 'the manifest is written before any release')
    const added = ids.filter((h) => h > m.oldest && !m.holes.includes(h))
    if (added.length > 0) {
      const holes = m.holes.concat(added).sort((a, b) => a - b)
      this.writeManifest({ oldest: m.oldest, holes, newest: m.newest, sealedBytes: m.sealedBytes, cutLsn: m.cutLsn })
    }
    this.crashPoint('release:manifest')
    return this.removeHoleFiles(ids)
  }

  /** Deletes the files of segments `ids` if they exist and fsyncs the directory; returns the bytes removed. */
  removeHoleFiles(ids: readonly number[]): number {
    let removed = 0
    let any = false
    for (const j of ids) {
      const open = this.fds.get(j)
      if (open !== undefined) { fs.closeSync(open); this.fds.delete(j) }
      const file = this.fileOf(j)
      if (!fs.existsSync(file)) continue
      removed += fs.statSync(file).size
      fs.rmSync(file)
      any = true
    }
    if (any) syncDir(this.dir)
    this.crashPoint('release:deleted')
    return removed
  }

  /**
   * A backup's full resync: the log restarts empty at `lsn` (a segment
   * boundary at or past every byte this log holds). The manifest records the
   * new horizon first; then every segment file is below it and is deleted
   * (recovery deletes any a crash left).
   */
  resetTo(lsn: number): void {
    assert(lsn % this.segmentBytes === 0, 'a log restarts at a segment boundary')
    const id = lsn / this.segmentBytes
    assert(segmentIds(this.dir).every((j) => j < id || fs.statSync(this.fileOf(j)).size === 0), 'the discarded log lies below the new start')
    for (const j of segmentIds(this.dir).filter((x) => x >= id)) {
      const open = this.fds.get(j)
      if (open !== undefined) { fs.closeSync(open); this.fds.delete(j) }
      fs.rmSync(this.fileOf(j))
    }
    this.writeManifest({ oldest: id, holes: [], newest: id - 1, sealedBytes: [], cutLsn: null })
    this.removeBelow(id)
  }

  /** Deletes segment files below `id` and fsyncs the directory; returns the bytes removed. Idempotent. */
  removeBelow(id: number): number {
    let removed = 0
    const below = segmentIds(this.dir).filter((j) => j < id)
    for (const j of below) {
      const open = this.fds.get(j)
      if (open !== undefined) { fs.closeSync(open); this.fds.delete(j) }
      removed += fs.statSync(this.fileOf(j)).size
      fs.rmSync(this.fileOf(j))
    }
    if (below.length > 0) syncDir(this.dir)
    this.crashPoint('release:deleted')
    return removed
  }

  /** Truncates file k (if any) to `offset` and fsyncs it, then deletes later files, newest first, and fsyncs the directory. */
  private removeFrom(k: number, offset: number): void {
    const file = this.fileOf(k)
    if (fs.existsSync(file)) {
      const fd = fs.openSync(file, 'r+')
      try {
        // Never extend: a cut inside a segment's unused tail keeps the file as it is.
        if (fs.fstatSync(fd).size > offset) fs.ftruncateSync(fd, offset)
        fs.fsyncSync(fd)
      } finally {
        fs.closeSync(fd)
      }
    }
    this.crashPoint('cut:truncated')
    const later = segmentIds(this.dir).filter((id) => id > k).reverse()
    for (const id of later) {
      const open = this.fds.get(id)
      if (open !== undefined) { fs.closeSync(open); this.fds.delete(id) }
      fs.rmSync(this.fileOf(id))
    }
    if (later.length > 0) syncDir(this.dir)
    this.crashPoint('cut:deleted')
  }

  /**
   * Reads the log back into `store`, cuts a torn tail (cutTail) and refuses
   * damage (LOG_DAMAGED) unless options.acceptLogDamage: see recover.ts.
   */
  recover(store: SegmentStore, scan: SegmentScanner = scanInline): Promise<RecoveryResult> {
    return recoverLog(this, store, scan)
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

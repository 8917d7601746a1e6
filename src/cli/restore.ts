/**
 * `freshet restore FILE --dir D` (and `freshet primary --load-rdb FILE`):
 * loads an RDB file (rdb/reader.ts) into a new primary's log.
 *
 *   The keys are written as they are read, as the primary's ops, into a
 *   temporary directory next to D (one op per key, blocks sealed every
 *   RESTORE_BATCH_KEYS keys, fsynced in groups). No index is built: the
 *   primary that opens D builds its own from the log, so the loader only
 *   notes each key's hash and checks at the end that no key came twice
 *   (rdb/unique_keys.ts). Anything that
 *   refuses the file (its framing, a length, the CRC-64 at its end, a key
 *   freshet cannot hold) throws before the log is closed and renamed to D,
 *   and the temporary directory is removed: an error or a crash never leaves
 *   a half-loaded D.
 *
 * Keys whose expiry time has passed are skipped (as Redis does when a
 * primary loads an RDB); the others keep their absolute expiry time. A key
 * the file holds twice is refused (RDB_INVALID), as Redis refuses it.
 *
 * The file is read into shared memory, and a worker thread computes the
 * CRC-64 of the trailer while the main thread loads the keys (the checksum
 * is a fifth of a single-threaded load); the rename waits for it to match.
 * RESIZEDB's key count, bounded by what the file's size can hold, sizes the
 * key notes before the first key.
 */
import fs from 'node:fs'
import path from 'node:path'
import { constants as bufferConstants } from 'node:buffer'
import { dbError } from '../errors.js'
import { assert } from '../assert.js'
import { Primary } from '../primary/primary.js'
import { Worker } from 'node:worker_threads'
import { RdbWalker, checkChecksum, type RdbReadReport } from '../rdb/reader.js'
import { UniqueKeys } from '../rdb/unique_keys.js'
import { keyHash } from '../codec/hash.js'
import { nowMs } from '../io/clock.js'
import { compiledPath } from '../dist_path.js'

/** Keys written between two seals of the open block. */
const RESTORE_BATCH_KEYS = 4096

/** Fewest bytes an RDB spends on one string key (type, key length, value length): bounds RESIZEDB's claim. */
const RDB_KEY_BYTES_MIN = 3
/** Keys noted up front on RESIZEDB's word (128 MB of notes); past it the notes grow with the keys actually read, so a file's claim alone allocates no more. */
const PRESIZE_KEYS_MAX = 1 << 24

/** The file's bytes in shared memory (a worker reads them too). */
function readShared(file: string, size: number): Buffer {
  const bytes = Buffer.from(new SharedArrayBuffer(size))
  const fd = fs.openSync(file, 'r')
  try {
    let at = 0
    while (at < size) {
      const n = fs.readSync(fd, bytes, at, size - at, at)
      if (n === 0) throw dbError('RDB_INVALID', `${file} shrank while it was read (${at} of ${size} bytes)`)
      at += n
    }
  } finally {
    fs.closeSync(fd)
  }
  return bytes
}

/** CRC-64 (hex) of bytes[0, end) on a worker thread; stop() ends it early (the file was refused). */
function crc64OnWorker(bytes: Buffer, end: number): { result: Promise<string>, stop: () => void } {
  const worker = new Worker(compiledPath('../../workers/crc_worker.js', import.meta.url), {
    workerData: { bytes: bytes.buffer, end },
  })
  const result = new Promise<string>((resolve, reject) => {
    worker.once('message', (hex: string) => { resolve(hex); void worker.terminate() })
    worker.once('error', reject)
    worker.once('exit', (code) => { reject(dbError('RDB_INVALID', `the checksum thread exited (code ${code}) before its result`)) })
  })
  result.catch(() => {}) // awaited by the caller unless the walk refuses the file first
  return { result, stop: () => { void worker.terminate() } }
}

export interface RestoreOptions {
  file: string
  dir: string
  segmentBytes: number
  maxMemoryBytes: number
  valueBytesMax: number
  skipUnsupported: boolean
  log: (line: string) => void
}

export interface RestoreReport {
  rdb: RdbReadReport
  keysLoaded: number
  expiredSkipped: number
  /** Keys loaded with their expiry time. */
  ttlKeys: number
  bytesRead: number
  ms: number
}

/** Is `dir` absent or an empty directory? */
export function emptyDir(dir: string): boolean {
  if (!fs.existsSync(dir)) return true
  return fs.statSync(dir).isDirectory() && fs.readdirSync(dir).length === 0
}

export async function restoreRdb(o: RestoreOptions): Promise<RestoreReport> {
  if (!emptyDir(o.dir)) throw dbError('INVALID_OPTION', `--dir ${o.dir} already holds files: restore writes a new log into an empty or new directory`)
  let size: number
  try {
    size = fs.statSync(o.file).size
  } catch (err) {
    throw dbError('INVALID_OPTION', `cannot read ${o.file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, err)
  }
  if (size > bufferConstants.MAX_LENGTH) throw dbError('RDB_UNSUPPORTED', `${o.file} is ${size} bytes: files above ${bufferConstants.MAX_LENGTH} bytes are not read yet`)
  const started = performance.now()
  const file = readShared(o.file, size)
  // The trailer of a well-formed file is its last 8 bytes; the walk refuses any other framing.
  const crc = size > 8 ? crc64OnWorker(file, size - 8) : null
  // One pass, straight into a temporary directory: whatever refuses the file (framing, checksum, a key
  // freshet cannot hold) throws before the rename, and the temporary directory goes with it.
  const now = nowMs()
  let ttlKeys = 0
  let expired = 0
  const temp = path.join(path.dirname(path.resolve(o.dir)), `.${path.basename(o.dir)}.restore-${process.pid}`)
  fs.rmSync(temp, { recursive: true, force: true })
  let loaded = 0
  let rdb: RdbReadReport
  try {
    const primary = await Primary.open({
      dir: temp, segmentBytes: o.segmentBytes, commit: 'local', maxMemoryBytes: o.maxMemoryBytes, valueBytesMax: o.valueBytesMax,
      recoveryWorkers: 1, retainBytes: 0, log: o.log,
    })
    try {
      primary.beginBulkLoad()
      let unique = new UniqueKeys()
      const walker = new RdbWalker(file, {
        skipUnsupported: o.skipUnsupported,
        checksum: false,
        sizeHint: (keys) => { if (loaded === 0) unique = new UniqueKeys(Math.min(keys, Math.floor(size / RDB_KEY_BYTES_MIN), PRESIZE_KEYS_MAX)) },
      }, (e) => {
        // Expired already: dropped, as Redis drops them when it loads a dump; the others keep their expiry.
        if (e.expireAtMs >= 0 && e.expireAtMs <= now) { expired++; return }
        if (e.expireAtMs > 0) ttlKeys++
        // A time past 2^53 ms (some 285,000 years) is kept as the largest a version can carry.
        const expireAtMs = Math.min(Math.max(0, e.expireAtMs), Number.MAX_SAFE_INTEGER)
        const hash = keyHash(e.keySource, e.keyStart, e.keyLength)
        unique.add(hash, primary.appendUnindexed(hash, e.keySource, e.keyStart, e.keyLength, e.valueSource, e.valueStart, e.valueLength, expireAtMs))
        loaded++
      })
      // A batch of keys per turn, then the event loop: the group commit writes and fsyncs each batch while the next loads.
      while (!walker.step(RESTORE_BATCH_KEYS)) {
        primary.endTurn()
        await new Promise<void>((resolve) => setImmediate(resolve))
      }
      rdb = walker.report
      // Sealed first, so the group commit writes the last keys while the check runs.
      primary.endTurn()
      const twice = unique.findDuplicate((ref) => primary.view.copyKey(ref).toString('latin1'))
      if (twice !== null) throw dbError('RDB_INVALID', `the RDB holds key ${JSON.stringify(Buffer.from(twice, 'latin1').toString('utf8').slice(0, 200))} twice`)
      if (rdb.checksumEnd >= 0) {
        assert(rdb.checksumEnd === size - 8 && crc !== null, 'the trailer is the last 8 bytes')
        const computed = await crc.result
        checkChecksum(rdb.checksum, () => computed)
      }
    } finally {
      await primary.close()
    }
    if (fs.existsSync(o.dir)) fs.rmdirSync(o.dir)
    fs.renameSync(temp, o.dir)
  } catch (err) {
    crc?.stop()
    fs.rmSync(temp, { recursive: true, force: true })
    throw err
  }
  const ms = performance.now() - started
  return { rdb, keysLoaded: loaded, expiredSkipped: expired, ttlKeys: ttlKeys, bytesRead: size, ms }
}

export function describeRestore(o: RestoreOptions, r: RestoreReport): string {
  const skipped = [...r.rdb.skipped].map(([why, n]) => `${n} ${why}`)
  if (r.expiredSkipped > 0) skipped.push(`${r.expiredSkipped} already expired`)
  return `restored ${r.keysLoaded} keys (${r.ttlKeys} with a time to live) from ${o.file} (RDB version ${r.rdb.version}, ${(r.bytesRead / 1e6).toFixed(1)} MB, checksum ${r.rdb.checksum}) into ${o.dir}` +
    ` in ${r.ms.toFixed(0)} ms${skipped.length > 0 ? `; skipped ${skipped.join(', ')}` : ''}`
}

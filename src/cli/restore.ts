/**
 * `freshet restore FILE --dir D` (and `freshet primary --load-rdb FILE`):
 * loads an RDB file (rdb/reader.ts) into a new primary's log.
 *
 *   The keys are written as they are read, through the primary's own write
 *   path, into a temporary directory next to D (one op per key, blocks
 *   sealed every RESTORE_BATCH_KEYS keys, fsynced in groups). Anything that
 *   refuses the file (its framing, a length, the CRC-64 at its end, a key
 *   freshet cannot hold) throws before the log is closed and renamed to D,
 *   and the temporary directory is removed: an error or a crash never leaves
 *   a half-loaded D.
 *
 * Keys whose expiry time has passed are skipped (as Redis does when a
 * primary loads an RDB); the others keep their absolute expiry time.
 */
import fs from 'node:fs'
import path from 'node:path'
import { constants as bufferConstants } from 'node:buffer'
import { dbError } from '../errors.js'
import { Primary } from '../primary/primary.js'
import { walkRdb, type RdbReadReport } from '../rdb/reader.js'
import { nowMs } from '../io/clock.js'

/** Keys written between two seals of the open block. */
const RESTORE_BATCH_KEYS = 4096

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
  const file = fs.readFileSync(o.file)
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
      rdb = walkRdb(file, { skipUnsupported: o.skipUnsupported }, (e) => {
        // Expired already: dropped, as Redis drops them when it loads a dump; the others keep their expiry.
        if (e.expireAtMs >= 0 && e.expireAtMs <= now) { expired++; return }
        if (e.expireAtMs > 0) ttlKeys++
        // A time past 2^53 ms (some 285,000 years) is kept as the largest a version can carry.
        primary.put(e.key, e.value, Math.min(Math.max(0, e.expireAtMs), Number.MAX_SAFE_INTEGER))
        if (++loaded % RESTORE_BATCH_KEYS === 0) primary.endTurn()
      })
    } finally {
      await primary.close()
    }
    if (fs.existsSync(o.dir)) fs.rmdirSync(o.dir)
    fs.renameSync(temp, o.dir)
  } catch (err) {
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

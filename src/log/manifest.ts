/**
 * The segment manifest (`manifest.json` in a log directory): what the node
 * last made durable, so that recovery can tell a torn tail from damage.
 *
 * It records the oldest retained segment (the horizon: the cleaner released
 * everything below it), the released segments above it (holes: the cleaner
 * picks victims by cost-benefit, not only the oldest), the newest segment id
 * the write path has started and the final length of every sealed segment
 * between them (a hole's entry is kept, and meaningless). It is rewritten only
 * when the log rolls over into a new segment, when the horizon moves and when
 * the tail is cut, never per write: a tmp file is written and fsynced, renamed over the old one, and the
 * directory fsynced, so a crash leaves the old manifest or the new one.
 *
 * A cut records its intent first (`cutLsn`): recovery finishes a cut that a
 * crash interrupted before it looks for damage, so a half-done cut never
 * looks like damage and a recorded cut is never undone.
 *
 * Invariants: oldest ≤ newest + 1 (newest = oldest - 1: no segment yet);
 * sealedBytes.length === max(0, newest - oldest), sealedBytes[i] being the
 * length of segment oldest + i; every length is ≤ the segment size and 8-byte
 * aligned; holes are ascending ids above oldest (a backup in a full resync
 * may record holes past newest: the primary released them before it got
 * there). Format 1 (before the cleaner) had no `oldest`: it was 0; format 2
 * (oldest-first cleaning) had no `holes`: there were none.
 */
import fs from 'node:fs'
import path from 'node:path'
import { dbError } from '../errors.js'
import { LSN_ALIGN_BYTES } from '../constants.js'

export const MANIFEST_FILE = 'manifest.json'
export const MANIFEST_FORMAT = 3

export interface Manifest {
  /** Id of the oldest retained segment; files below it are released (deleted, or to delete). */
  oldest: number
  /** Released segment ids above oldest, ascending (recovery skips them and deletes their files). */
  holes: number[]
  /** Id of the newest segment the write path has created; oldest - 1 before the first. */
  newest: number
  /** Final length of segments oldest .. newest-1, which are sealed. */
  sealedBytes: number[]
  /** A cut of the tail at this LSN was started and must be finished; null when none. */
  cutLsn: number | null
}

/** Reads the manifest; null if there is none. A manifest that is not valid is damage. */
export function readManifest(dir: string, segmentBytes: number): Manifest | null {
  const file = path.join(dir, MANIFEST_FILE)
  let text: string
  try {
    text = fs.readFileSync(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw dbError('LOG_DAMAGED', `${file} cannot be read`, err)
  }
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch (err) {
    throw dbError('LOG_DAMAGED', `${file} is not valid JSON`, err)
  }
  const m = raw as { format?: unknown, oldest?: unknown, holes?: unknown, newest?: unknown, sealedBytes?: unknown, cutLsn?: unknown }
  const isLength = (n: unknown): n is number =>
    Number.isSafeInteger(n) && (n as number) >= 0 && (n as number) <= segmentBytes && (n as number) % LSN_ALIGN_BYTES === 0
  const oldest = m.format === 1 ? 0 : m.oldest
  const holes = m.format === MANIFEST_FORMAT ? m.holes : []
  const ok = typeof raw === 'object' && raw !== null && (m.format === 1 || m.format === 2 || m.format === MANIFEST_FORMAT) &&
    Number.isSafeInteger(oldest) && (oldest as number) >= 0 &&
    Array.isArray(holes) && holes.every((h: unknown, i: number) => Number.isSafeInteger(h) && (h as number) > (oldest as number) &&
      (i === 0 || (h as number) > (holes[i - 1] as number))) &&
    Number.isSafeInteger(m.newest) && (m.newest as number) >= (oldest as number) - 1 &&
    Array.isArray(m.sealedBytes) && m.sealedBytes.length === Math.max(0, (m.newest as number) - (oldest as number)) &&
    m.sealedBytes.every(isLength) &&
    (m.cutLsn === null || (Number.isSafeInteger(m.cutLsn) && (m.cutLsn as number) >= 0 && (m.cutLsn as number) % LSN_ALIGN_BYTES === 0))
  if (!ok) throw dbError('LOG_DAMAGED', `${file} is not a valid segment manifest`)
  return { oldest: oldest as number, holes: holes as number[], newest: m.newest as number, sealedBytes: m.sealedBytes as number[], cutLsn: m.cutLsn as number | null }
}

/** Writes a file durably and atomically: tmp, fsync, rename, fsync the directory. */
export function writeFileDurable(dir: string, name: string, text: string): void {
  const file = path.join(dir, name)
  const tmp = `${file}.tmp`
  const fd = fs.openSync(tmp, 'w', 0o644)
  try {
    fs.writeSync(fd, text)
    fs.fsyncSync(fd)
  } finally {
    fs.closeSync(fd)
  }
  fs.renameSync(tmp, file)
  syncDir(dir)
}

export function manifestText(m: Manifest): string {
  return JSON.stringify({ format: MANIFEST_FORMAT, oldest: m.oldest, holes: m.holes, newest: m.newest, sealedBytes: m.sealedBytes, cutLsn: m.cutLsn }) + '\n'
}

export function writeManifest(dir: string, m: Manifest): void {
  writeFileDurable(dir, MANIFEST_FILE, manifestText(m))
}

/**
 * writeFileDurable with its fsyncs on the thread pool, for a file that
 * synchronous writers replace too: `text` goes to `dir/tempName` (a name of
 * this caller's own) and is fsynced; then, on the main thread, where the
 * synchronous writers run, `stillCurrent()` decides: false drops it (a newer
 * write was recorded meanwhile: it must not be renamed over); true renames it
 * to `dir/name`, calls `replaced()` at once (before any other code can see
 * the old state) and fsyncs the directory. Returns whether it was renamed.
 */
export async function replaceDurablyIf(
  dir: string, tempName: string, name: string, text: string, stillCurrent: () => boolean, replaced: () => void,
): Promise<boolean> {
  const fh = await fs.promises.open(path.join(dir, tempName), 'w', 0o644)
  try {
    await fh.writeFile(text)
    await fh.sync()
  } finally {
    await fh.close()
  }
  if (!stillCurrent()) return false
  fs.renameSync(path.join(dir, tempName), path.join(dir, name))
  replaced()
  await syncDirAsync(dir)
  return true
}

/** Makes the directory's entries (created, renamed, deleted files) durable. */
export function syncDir(dir: string): void {
  const dfd = fs.openSync(dir, 'r')
  try { fs.fsyncSync(dfd) } finally { fs.closeSync(dfd) }
}

/** syncDir on the thread pool, for a caller that must not hold the main thread while the disk works. */
export async function syncDirAsync(dir: string): Promise<void> {
  const fh = await fs.promises.open(dir, 'r')
  try { await fh.sync() } finally { await fh.close() }
}

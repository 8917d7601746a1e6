/**
 * The backup's confirmed position, persisted: the LSN up to which its
 * primary had confirmed (safe LSN in heartbeats) the backup's log, so up to
 * which the backup may make its log visible again after a restart. The rest
 * of a recovered log is held received-but-unconfirmed until a primary
 * confirms it, or is cut if the primary does not have it.
 *
 * One small file (`confirmed.json`), replaced atomically (tmp + fsync +
 * rename + directory fsync), at most about once a second. An older value is
 * always safe: it only makes less visible until the next heartbeat. A missing
 * or unreadable file reads as 0 (nothing confirmed).
 */
import fs from 'node:fs'
import path from 'node:path'
import { replaceDurablyIf, writeFileDurable } from '../log/manifest.js'

const CONFIRMED_FILE = 'confirmed.json'
/** The periodic write's own temp name (a synchronous write uses confirmed.json.tmp). */
const BACKGROUND_TMP = `${CONFIRMED_FILE}.background.tmp`

function confirmedText(lsn: number): string {
  return JSON.stringify({ confirmedLsn: lsn }) + '\n'
}

export function readConfirmedLsn(dir: string, log: (line: string) => void): number {
  const file = path.join(dir, CONFIRMED_FILE)
  if (!fs.existsSync(file)) return 0
  try {
    const v = (JSON.parse(fs.readFileSync(file, 'utf8')) as { confirmedLsn?: unknown }).confirmedLsn
    if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return v
  } catch {
    // Falls through: an unreadable file means nothing is confirmed (always safe), reported below.
  }
  log(`${file} is unreadable; treating the whole log as unconfirmed until the primary confirms it`)
  return 0
}

export function writeConfirmedLsn(dir: string, lsn: number): void {
  writeFileDurable(dir, CONFIRMED_FILE, confirmedText(lsn))
}

/**
 * A backup's writes of its confirmed position. The periodic one has its
 * fsyncs on the thread pool: on the main thread, one fsync of this small file
 * took 182 ms while a snapshot was being written back (strace), a stall of
 * every client of the node. A synchronous write (a cut, a full resync,
 * close) is in force at once, and a periodic write that began before it is
 * dropped rather than renamed over it: a position from before a cut could
 * name log the cut removed.
 */
export class ConfirmedWriter {
  private generation: number
  private inFlight: boolean

  constructor(private readonly dir: string) {
    this.generation = 0
    this.inFlight = false
  }

  /** Durable when it returns; a periodic write under way is dropped. */
  write(lsn: number): void {
    this.generation++
    writeConfirmedLsn(this.dir, lsn)
  }

  /** The periodic write: true once `lsn` is durable, false if it was dropped or another is under way. */
  async writeInBackground(lsn: number): Promise<boolean> {
    if (this.inFlight) return false
    this.inFlight = true
    const generation = ++this.generation
    try {
      return await replaceDurablyIf(this.dir, BACKGROUND_TMP, CONFIRMED_FILE, confirmedText(lsn), () => generation === this.generation, () => {})
    } finally {
      this.inFlight = false
    }
  }
}

/**
 * A full resync in progress (`resync.json`): written durably before the log
 * is discarded, removed once the backup has made `targetLsn` visible. A backup
 * that restarts mid-resync keeps answering -LOADING until then, instead of
 * serving the part of the primary's log it had received (a state that never
 * existed on the primary: some relocations and not others).
 */
export interface ResyncMarker {
  fromLsn: number
  targetLsn: number
  reason: string
}

const RESYNC_FILE = 'resync.json'

export function writeResyncMarker(dir: string, m: ResyncMarker): void {
  writeFileDurable(dir, RESYNC_FILE, JSON.stringify(m) + '\n')
}

export function clearResyncMarker(dir: string): void {
  fs.rmSync(path.join(dir, RESYNC_FILE), { force: true })
}

/** The marker, or null if there is none. An unreadable one reads as a resync to an unknown target (-1: loading until the primary's commit LSN at the next sync). */
export function readResyncMarker(dir: string, log: (line: string) => void): ResyncMarker | null {
  const file = path.join(dir, RESYNC_FILE)
  if (!fs.existsSync(file)) return null
  try {
    const m = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<ResyncMarker>
    if (Number.isSafeInteger(m.fromLsn) && Number.isSafeInteger(m.targetLsn) && typeof m.reason === 'string') return m as ResyncMarker
  } catch {
    // Falls through: reported below.
  }
  log(`${file} is unreadable; loading until the primary's log is caught up`)
  return { fromLsn: 0, targetLsn: -1, reason: 'unknown (resync.json unreadable)' }
}

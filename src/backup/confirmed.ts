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
import { writeFileDurable } from '../log/manifest.js'

const CONFIRMED_FILE = 'confirmed.json'

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
  writeFileDurable(dir, CONFIRMED_FILE, JSON.stringify({ confirmedLsn: lsn }) + '\n')
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

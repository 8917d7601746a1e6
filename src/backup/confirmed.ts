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
  const file = path.join(dir, CONFIRMED_FILE)
  const tmp = `${file}.tmp`
  const fd = fs.openSync(tmp, 'w')
  try {
    fs.writeSync(fd, JSON.stringify({ confirmedLsn: lsn }) + '\n')
    fs.fsyncSync(fd)
  } finally {
    fs.closeSync(fd)
  }
  fs.renameSync(tmp, file)
  const dfd = fs.openSync(dir, 'r')
  try { fs.fsyncSync(dfd) } finally { fs.closeSync(dfd) }
}

/**
 * The epoch history of a log directory (`epochs.json`): every epoch the log
 * has seen and the LSN where it began, oldest first, like PostgreSQL's
 * timeline history files. A node that is promoted appends (epoch + 1, its log
 * end) durably before it accepts a write; a backup adopts its primary's
 * history at each handshake, before it takes any block of a new epoch.
 *
 * Two logs agree up to the point their histories agree (commonPoint): the
 * last epoch both have, with the same start, ends where the first of them
 * left it. So a primary tells a backup the exact LSN where their logs part in
 * the handshake's one round trip (ship/sender.ts), instead of a search.
 *
 * Format: `{"format":1,"epochs":[[epoch, startLsn], ...]}`, replaced
 * atomically (tmp + fsync + rename + directory fsync). A directory written
 * before epoch histories (no file) has only ever had one primary, so its
 * history is one entry: its newest block's epoch (at least 1) from LSN 0.
 * A file that is present but unreadable is damage: LOG_DAMAGED, never a
 * silent default (a wrong history could make a backup follow a log it
 * disagrees with; the block checksum at the resume point would still stop it).
 */
import fs from 'node:fs'
import path from 'node:path'
import { dbError } from '../errors.js'
import { writeFileDurable } from './manifest.js'

export const EPOCHS_FILE = 'epochs.json'
export const EPOCHS_FORMAT = 1
/** A history longer than this is refused (input bound: a handshake argument or a damaged file). */
export const EPOCHS_MAX = 4096

/** One epoch and the LSN of its first block (or where it was begun: the promoted node's log end). */
export interface EpochStart {
  epoch: number
  startLsn: number
}

export type EpochHistory = EpochStart[]

/** Is `h` a history: non-empty, epochs strictly rising from 1, starts non-decreasing safe integers? */
export function validHistory(h: EpochHistory): boolean {
  if (h.length === 0 || h.length > EPOCHS_MAX) return false
  for (let i = 0; i < h.length; i++) {
    const { epoch, startLsn } = h[i]
    if (!Number.isSafeInteger(epoch) || epoch < 1 || !Number.isSafeInteger(startLsn) || startLsn < 0) return false
    if (i > 0 && (epoch <= h[i - 1].epoch || startLsn < h[i - 1].startLsn)) return false
  }
  return true
}

export function currentEpoch(h: EpochHistory): number {
  return h[h.length - 1].epoch
}

/** The history read from `dir`, or null when the directory has none (a log from before epoch histories). */
export function readEpochs(dir: string): EpochHistory | null {
  const file = path.join(dir, EPOCHS_FILE)
  if (!fs.existsSync(file)) return null
  let h: EpochHistory | null = null
  try {
    const parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as { format?: unknown, epochs?: unknown }
    if (parsed.format === EPOCHS_FORMAT && Array.isArray(parsed.epochs)) {
      h = (parsed.epochs as unknown[]).map((e) => Array.isArray(e) && e.length === 2 ? { epoch: e[0] as number, startLsn: e[1] as number } : { epoch: -1, startLsn: -1 })
    }
  } catch {
    h = null // reported below: an unreadable history is damage
  }
  if (h === null || !validHistory(h)) throw dbError('LOG_DAMAGED', `${file} is not a valid epoch history`)
  return h
}

/** The directory's history; for a log from before histories, the one epoch it has had (`lastEpoch`, at least 1) from LSN 0. */
export function openEpochs(dir: string, lastEpoch: number): EpochHistory {
  const h = readEpochs(dir)
  if (h !== null) {
    // Blocks of a later epoch than the history names (a history write lost in a crash cannot happen: it is written first; this is damage).
    if (lastEpoch > currentEpoch(h)) throw dbError('LOG_DAMAGED', `${path.join(dir, EPOCHS_FILE)} ends at epoch ${currentEpoch(h)}, the log holds blocks of epoch ${lastEpoch}`)
    return h
  }
  return [{ epoch: Math.max(1, lastEpoch), startLsn: 0 }]
}

export function writeEpochs(dir: string, h: EpochHistory): void {
  if (!validHistory(h)) throw dbError('LOG_DAMAGED', 'refusing to write an invalid epoch history')
  writeFileDurable(dir, EPOCHS_FILE, JSON.stringify({ format: EPOCHS_FORMAT, epochs: h.map((e) => [e.epoch, e.startLsn]) }) + '\n')
}

/** The history as one handshake argument: `epoch:lsn,epoch:lsn,...`. */
export function formatHistory(h: EpochHistory): string {
  return h.map((e) => `${e.epoch}:${e.startLsn}`).join(',')
}

/** Parses formatHistory's text; null if it is not a valid history (input from the link). */
export function parseHistory(text: string): EpochHistory | null {
  if (text.length === 0 || text.length > EPOCHS_MAX * 40) return null
  const h: EpochHistory = []
  for (const part of text.split(',')) {
    const m = /^(\d{1,16}):(\d{1,16})$/.exec(part)
    if (m === null) return null
    h.push({ epoch: Number(m[1]), startLsn: Number(m[2]) })
  }
  return validHistory(h) ? h : null
}

/**
 * The history of a log that ends at `endLsn`: entries that begin past it are
 * not yet part of it (a backup adopts its primary's whole history before it
 * has received that far), except that the first entry always stays.
 */
export function historyUpTo(h: EpochHistory, endLsn: number): EpochHistory {
  let n = h.length
  while (n > 1 && h[n - 1].startLsn > endLsn) n--
  return h.slice(0, n)
}

/**
 * The LSN up to which a log with history `b` ending at `bEnd` agrees with a
 * log with history `a` ending at `aEnd`, judged by the histories alone: the
 * last epoch both name with the same start is shared until the first of the
 * two logs moved on from it (or ended). -1 when they share no epoch at all
 * (two unrelated logs). The caller still checks the block checksum at the
 * point (two nodes promoted to the same epoch would otherwise agree here).
 */
export function commonPoint(a: EpochHistory, aEnd: number, b: EpochHistory, bEnd: number): number {
  // The first epochs need only be the same epoch: a history may begin where its log did.
  if (a[0].epoch !== b[0].epoch) return -1
  let i = 1
  while (i < a.length && i < b.length && a[i].epoch === b[i].epoch && a[i].startLsn === b[i].startLsn) i++
  const aLeft = i < a.length ? a[i].startLsn : aEnd
  const bLeft = i < b.length ? b[i].startLsn : bEnd
  return Math.min(aLeft, bLeft, aEnd, bEnd)
}

/**
 * CLI option parsing and validation: done once at the boundary, with exact
 * messages. Inside, the values are trusted.
 */
import os from 'node:os'
import path from 'node:path'
import { SEGMENT_BYTES_MIN, VALUE_BYTES_MAX_DEFAULT } from '../constants.js'
import { dbError } from '../errors.js'

const SIZE_RE = /^(\d+(?:\.\d+)?)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib)?$/i
const UNITS: Record<string, number> = { b: 1, k: 1024, kb: 1024, kib: 1024, m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3, gib: 1024 ** 3 }

export function parseBytes(text: string, name: string, allowZero = false): number {
  const m = SIZE_RE.exec(text.trim())
  if (m === null) throw dbError('INVALID_OPTION', `${name} must be a size such as 64mb or 1gb, got '${text}'`)
  const n = Math.floor(Number(m[1]) * UNITS[(m[2] ?? 'b').toLowerCase()])
  if (!Number.isSafeInteger(n) || n < 0 || (n === 0 && !allowZero)) throw dbError('INVALID_OPTION', `${name} must be a ${allowZero ? 'non-negative' : 'positive'} size, got '${text}'`)
  return n
}

export function parsePort(text: string, name = '--port'): number {
  const n = Number(text)
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw dbError('INVALID_OPTION', `${name} must be a port number 0-65535, got '${text}'`)
  return n
}

export function parseCount(text: string, name: string, min: number, max: number): number {
  const n = Number(text)
  if (!Number.isInteger(n) || n < min || n > max) throw dbError('INVALID_OPTION', `${name} must be an integer from ${min} to ${max}, got '${text}'`)
  return n
}

export function parseSegmentBytes(text: string): number {
  const n = parseBytes(text, '--segment-size')
  if (n < SEGMENT_BYTES_MIN) throw dbError('INVALID_OPTION', `--segment-size must be at least ${SEGMENT_BYTES_MIN} bytes, got ${n}`)
  // Segments are slots of the 32 GiB ref ring (index/ref.ts): their size divides it.
  if (!Number.isInteger(Math.log2(n))) throw dbError('INVALID_OPTION', `--segment-size must be a power of two (such as 8mb or 64mb), got ${n}`)
  if (n > 1024 ** 3) throw dbError('INVALID_OPTION', '--segment-size must be at most 1gb')
  return n
}

export function parseHostPort(text: string, name: string): { host: string, port: number } {
  const i = text.lastIndexOf(':')
  if (i <= 0) throw dbError('INVALID_OPTION', `${name} must be HOST:PORT, got '${text}'`)
  return { host: text.slice(0, i), port: parsePort(text.slice(i + 1), name) }
}

export function defaultDir(port: number): string {
  return path.resolve(`freshet-${port}`)
}

export function defaultMaxMemory(): number {
  return Math.floor(os.totalmem() * 0.75)
}

/** A value must fit in a block with its key and the block header, in one segment. */
export function valueBytesMaxFor(segmentBytes: number): number {
  return Math.min(VALUE_BYTES_MAX_DEFAULT, Math.floor(segmentBytes / 2))
}


/**
 * The password a backup's clients must AUTH with. A backup holds every key
 * its primary holds, so a backup of a protected primary is protected too: by
 * default it requires the password it authenticates to the primary with.
 * `--requirepass PW` sets another; `--requirepass ""` explicitly opens it.
 */
export function backupRequirepass(requirepass: string | undefined, primaryauth: string | undefined): string | null {
  if (requirepass !== undefined) return requirepass === '' ? null : requirepass
  return primaryauth !== undefined && primaryauth !== '' ? primaryauth : null
}

/** A plain file name (no directory part), e.g. --dbfilename. */
export function parseFileName(text: string, name: string): string {
  if (text.length === 0 || text.length > 255 || text.includes('/') || text.includes('\0') || text === '.' || text === '..') {
    throw dbError('INVALID_OPTION', `${name} must be a file name (no directory part): ${JSON.stringify(text.slice(0, 100))}`)
  }
  return text
}

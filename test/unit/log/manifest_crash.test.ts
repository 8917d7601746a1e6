/**
 * The segment manifest under crashes, in process: the write path and cutTail
 * are stopped (an injected throw) between each pair of their steps, and a
 * fresh LogFiles recovers the directory as a restarted node would. kill -9
 * keeps the page cache, so the state at the throw is the state after a crash.
 * A crash must never make a healthy log look damaged, a finished or recorded
 * cut must never come back, and damage must never look healthy.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { BLOCK_HEADER_BYTES, OP_TYPE_SET } from '../../../src/constants.js'
import { opBytes, sealBlock, writeOp } from '../../../src/codec/record.js'
import { initHash, keyHash } from '../../../src/codec/hash.js'
import { DbError } from '../../../src/errors.js'
import { LogFiles, type CrashStep, type LogFilesOptions } from '../../../src/log/log_file.js'
import { segmentFileName } from '../../../src/log/segment_scan.js'
import { MANIFEST_FILE, readManifest } from '../../../src/log/manifest.js'
import { SegmentStore } from '../../../src/log/segment_store.js'

const SEGMENT_BYTES = 1024 * 1024
const VALUE_BYTES = 200 * 1024 // 5 blocks fill a segment: the 6th rolls over
const dirs: string[] = []

beforeAll(async () => { await initHash() })
afterAll(() => { for (const d of dirs) fs.rmSync(d, { recursive: true, force: true }) })

function tempDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'freshet-manifest-'))
  dirs.push(d)
  return d
}

class Crash extends Error {}

/** Appends one block (one SET of `VALUE_BYTES`) at the log end; returns its end LSN. */
function appendBlock(store: SegmentStore, n: number): number {
  const key = Buffer.from(`key:${n}`)
  const value = Buffer.alloc(VALUE_BYTES, n & 0xff)
  const length = BLOCK_HEADER_BYTES + opBytes(key.length, value.length)
  const lsn = store.placeBlock(store.endLsn, length)
  const segment = store.segmentFor(lsn)
  const offset = lsn - segment.baseLsn
  writeOp(segment.u8, segment.dv, offset + BLOCK_HEADER_BYTES, OP_TYPE_SET, keyHash(key, 0, key.length), 0, key, 0, key.length, value, 0, value.length)
  sealBlock(segment.u8, segment.dv, offset, { epoch: 1, startLsn: lsn, length, opCount: 1, txnCount: 1, keyCount: n + 1, commitTimeMs: 1 })
  segment.publish(offset + length)
  store.endLsn = lsn + length
  return store.endLsn
}

/** A log of `blocks` blocks written one write() each, as group commit does; returns the block end LSNs. */
async function writeLog(dir: string, blocks: number, options: LogFilesOptions = {}): Promise<{ ends: number[], files: LogFiles, store: SegmentStore }> {
  const files = LogFiles.open(dir, SEGMENT_BYTES, options)
  const store = new SegmentStore(SEGMENT_BYTES)
  await files.recover(store)
  const ends: number[] = []
  for (let i = 0; i < blocks; i++) {
    const from = store.endLsn
    ends.push(appendBlock(store, i))
    await files.write(store, from, store.endLsn)
  }
  return { ends, files, store }
}

async function reopen(dir: string, options: LogFilesOptions = {}): Promise<{ files: LogFiles, store: SegmentStore, result: Awaited<ReturnType<LogFiles['recover']>> }> {
  const files = LogFiles.open(dir, SEGMENT_BYTES, options)
  const store = new SegmentStore(SEGMENT_BYTES)
  const result = await files.recover(store)
  return { files, store, result }
}

async function expectDamaged(dir: string): Promise<void> {
  const before = snapshot(dir)
  const err = await reopen(dir).then(() => null, (e: unknown) => e)
  expect(err).toBeInstanceOf(DbError)
  expect((err as DbError).code).toBe('LOG_DAMAGED')
  expect(snapshot(dir)).toEqual(before)
}

function snapshot(dir: string): Record<string, number> {
  const out: Record<string, number> = {}
  for (const name of fs.readdirSync(dir).sort()) out[name] = fs.statSync(path.join(dir, name)).size
  return out
}

function crashAt(step: CrashStep): LogFilesOptions {
  return { crashPoint: (s) => { if (s === step) throw new Crash(step) } }
}

function seg(dir: string, id: number): string {
  return path.join(dir, segmentFileName(id))
}

describe('segment manifest', () => {
  test('a healthy multi-segment log recovers whole and the manifest records every sealed length', async () => {
    const dir = tempDir()
    const { ends, files } = await writeLog(dir, 14)
    files.close()
    const m = readManifest(dir, SEGMENT_BYTES)!
    expect(m.newest).toBe(2)
    expect(m.sealedBytes).toEqual([0, 1].map((id) => fs.statSync(seg(dir, id)).size))
    const { result, files: again } = await reopen(dir)
    expect(result.endLsn).toBe(ends[13])
    expect(result.blockCount).toBe(14)
    expect(result.cutReason).toBeNull()
    again.close()
  })

  for (const step of ['rollover:created', 'rollover:temp', 'rollover:manifest'] as const) {
    test(`a crash at ${step} leaves a healthy log that keeps working`, async () => {
      const dir = tempDir()
      const { ends, files, store } = await writeLog(dir, 5)
      files.close()
      // The 6th block rolls into segment 1: crash there.
      const crashing = LogFiles.open(dir, SEGMENT_BYTES, crashAt(step))
      await crashing.recover(new SegmentStore(SEGMENT_BYTES))
      const from = store.endLsn
      appendBlock(store, 5)
      await expect(crashing.write(store, from, store.endLsn)).rejects.toBeInstanceOf(Crash)
      crashing.close()
      expect(fs.existsSync(seg(dir, 1))).toBe(true)
      expect(fs.statSync(seg(dir, 1)).size).toBe(0)

      const { result, files: again, store: s2 } = await reopen(dir)
      expect(result.cutReason).toBeNull()
      expect(result.endLsn).toBe(SEGMENT_BYTES)
      expect(result.blockCount).toBe(5)
      expect(ends[4]).toBeLessThan(SEGMENT_BYTES)
      // Writing on and restarting again: still healthy, nothing lost.
      for (let i = 5; i < 8; i++) {
        const f = s2.endLsn
        appendBlock(s2, i)
        await again.write(s2, f, s2.endLsn)
      }
      again.close()
      const third = await reopen(dir)
      expect(third.result.cutReason).toBeNull()
      expect(third.result.blockCount).toBe(8)
      expect(readManifest(dir, SEGMENT_BYTES)!.sealedBytes).toEqual([fs.statSync(seg(dir, 0)).size])
      third.files.close()
    })
  }

  test('a release recorded while a rollover writes its manifest off the main thread is kept: the rollover makes its manifest again', async () => {
    const dir = tempDir()
    let during: (() => void) | null = null
    const { files, store } = await writeLog(dir, 11, {
      crashPoint: (step) => {
        if (step !== 'rollover:temp' || during === null) return
        const f = during
        during = null
        f()
      },
    })
    // Segments 0 and 1 are full (5 blocks each), segment 2 holds one. Write on until the log rolls into
    // segment 3, and release segment 1 (a hole) while that rollover's manifest is in its temp file.
    let released = false
    during = () => { files.releaseHoles([1]); released = true }
    for (let i = 11; i < 16; i++) {
      const from = store.endLsn
      appendBlock(store, i)
      await files.write(store, from, store.endLsn)
    }
    expect(released).toBe(true)
    const m = readManifest(dir, SEGMENT_BYTES)!
    expect(m.newest).toBe(3)
    expect(m.holes).toEqual([1])
    expect(fs.existsSync(seg(dir, 1))).toBe(false)
    files.close()
    const { result, files: again } = await reopen(dir)
    expect(result.cutReason).toBeNull()
    expect(result.blockCount).toBe(11)
    again.close()
  })

  test('a crash while the manifest is being replaced (tmp file written, not renamed) leaves the old one in force', async () => {
    const dir = tempDir()
    const { ends, files } = await writeLog(dir, 8)
    files.close()
    fs.writeFileSync(path.join(dir, `${MANIFEST_FILE}.tmp`), '{"format":1,"newest":')
    const { result, files: again } = await reopen(dir)
    expect(result.cutReason).toBeNull()
    expect(result.endLsn).toBe(ends[7])
    again.close()
  })

  test('a torn tail in the newest segment is cut through cutTail, logged, and stays cut', async () => {
    const dir = tempDir()
    const { ends, files } = await writeLog(dir, 8)
    files.close()
    fs.truncateSync(seg(dir, 1), ends[6] - SEGMENT_BYTES + 100)
    const { result, files: again } = await reopen(dir)
    expect(result.endLsn).toBe(ends[6])
    expect(result.truncatedBytes).toBe(100)
    expect(result.cutReason).not.toBeNull()
    expect(fs.statSync(seg(dir, 1)).size).toBe(ends[6] - SEGMENT_BYTES)
    expect(readManifest(dir, SEGMENT_BYTES)!.cutLsn).toBeNull()
    again.close()
  })

  test('cutTail at a block boundary in a middle segment removes every later byte and returns the count', async () => {
    const dir = tempDir()
    const { ends, files } = await writeLog(dir, 14)
    const total = files.bytesOnDisk()
    const lsn = ends[2]
    expect(files.cutTail(lsn)).toBe(total - lsn)
    files.close()
    expect(fs.existsSync(seg(dir, 1))).toBe(false)
    const { result, files: again, store } = await reopen(dir)
    expect(result.cutReason).toBeNull()
    expect(result.endLsn).toBe(lsn)
    expect(result.blockCount).toBe(3)
    // A cut past everything on disk removes nothing and records nothing.
    const manifestBefore = readManifest(dir, SEGMENT_BYTES)
    expect(again.cutTail(5 * SEGMENT_BYTES)).toBe(0)
    expect(readManifest(dir, SEGMENT_BYTES)).toEqual(manifestBefore)
    // Writing on from the cut rolls over into new segments again, and the log stays healthy.
    for (let i = 3; i < 13; i++) {
      const from = store.endLsn
      appendBlock(store, i)
      await again.write(store, from, store.endLsn)
    }
    again.close()
    const third = await reopen(dir)
    expect(third.result.cutReason).toBeNull()
    expect(third.result.blockCount).toBe(13)
    expect(readManifest(dir, SEGMENT_BYTES)!.newest).toBe(2)
    third.files.close()
  })

  for (const step of ['cut:intent', 'cut:truncated', 'cut:deleted'] as const) {
    test(`a crash at ${step} during cutTail: recovery finishes the cut, never reports damage, never brings cut bytes back`, async () => {
      const dir = tempDir()
      const { ends, files } = await writeLog(dir, 14)
      files.close()
      const cutting = LogFiles.open(dir, SEGMENT_BYTES, crashAt(step))
      await cutting.recover(new SegmentStore(SEGMENT_BYTES))
      expect(() => cutting.cutTail(ends[6])).toThrow(Crash)
      cutting.close()
      const { result, files: again } = await reopen(dir)
      expect(result.endLsn).toBe(ends[6])
      expect(result.blockCount).toBe(7)
      expect(fs.existsSync(seg(dir, 2))).toBe(false)
      expect(fs.statSync(seg(dir, 1)).size).toBe(ends[6] - SEGMENT_BYTES)
      expect(readManifest(dir, SEGMENT_BYTES)).toEqual({ oldest: 0, holes: [], newest: 1, sealedBytes: [fs.statSync(seg(dir, 0)).size], cutLsn: null })
      again.close()
    })
  }

  describe('damage never looks healthy', () => {
    async function damaged(damage: (dir: string, ends: number[]) => void): Promise<void> {
      const dir = tempDir()
      const { ends, files } = await writeLog(dir, 14)
      files.close()
      damage(dir, ends)
      await expectDamaged(dir)
      // Accepting the damage cuts at it, and the log is healthy from then on.
      const accepted = await reopen(dir, { acceptLogDamage: true })
      expect(accepted.result.cutReason).not.toBeNull()
      accepted.files.close()
      const after = await reopen(dir)
      expect(after.result.cutReason).toBeNull()
      expect(after.result.endLsn).toBe(accepted.result.endLsn)
      after.files.close()
    }

    test('a sealed segment truncated at a block boundary', () => damaged((dir, ends) => fs.truncateSync(seg(dir, 1), ends[7] - SEGMENT_BYTES)))
    test('a sealed segment emptied', () => damaged((dir) => fs.truncateSync(seg(dir, 0), 0)))
    test('a sealed segment missing', () => damaged((dir) => fs.rmSync(seg(dir, 1))))
    test('the newest segment missing', () => damaged((dir) => fs.rmSync(seg(dir, 2))))
    test('a sealed segment longer than recorded', () => damaged((dir) => fs.appendFileSync(seg(dir, 0), Buffer.alloc(64))))
    test('a segment file past the newest one recorded, with data', () => damaged((dir) => fs.writeFileSync(seg(dir, 3), Buffer.alloc(64, 1))))
    test('an invalid block with valid blocks after it, in the newest segment', () => damaged((dir, ends) => {
      const f = seg(dir, 2)
      const b = fs.readFileSync(f)
      b[ends[10] - 2 * SEGMENT_BYTES + 500] ^= 1
      fs.writeFileSync(f, b)
    }))
    test('every segment file and freshet.json deleted: the manifest still knows there was a log', async () => {
      const dir = tempDir()
      const { files } = await writeLog(dir, 14)
      files.close()
      for (const name of fs.readdirSync(dir)) if (name !== MANIFEST_FILE) fs.rmSync(path.join(dir, name))
      await expectDamaged(dir)
    })
    test('the manifest deleted from a directory that had one', async () => {
      const dir = tempDir()
      const { files } = await writeLog(dir, 14)
      files.close()
      fs.rmSync(path.join(dir, MANIFEST_FILE))
      await expectDamaged(dir)
    })
  })
})

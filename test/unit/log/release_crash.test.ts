/**
 * Crashes while the cleaner releases a segment, in process: a Primary
 * (commit 'local', 1 MiB segments, --retain-bytes 0) with LogFiles crash
 * points that throw at 'release:manifest' (the manifest moved the horizon,
 * the victim's file is not deleted yet) or 'release:deleted' (the file is
 * deleted, the in-memory segment not yet released). The cleaner catches the
 * throw and logs it; the test then treats that instant as kill -9: it stops
 * writing, lets the flush already submitted finish (the page cache survives
 * kill -9), closes the files without close() and reopens the directory
 * without the crash point, as a restarted node would.
 *
 * After every crash: no LOG_DAMAGED, every write acknowledged (durable) is
 * there with its value, deleted keys stay deleted (also those whose
 * tombstones were swept out of the crashed primary's index), files below
 * the recorded horizon are deleted by recovery, and the reopened primary
 * keeps cleaning and restarting.
 */
import fs from 'node:fs'
import path from 'node:path'
import { beforeAll, describe, expect, test } from 'vitest'
import { initHash, keyHash } from '../../../src/codec/hash.js'
import { REF_NONE } from '../../../src/constants.js'
import { opBytesAt, slotRef, tableSlotCount } from '../../../src/index/indirection.js'
import { refPosition, slotOfSegment } from '../../../src/index/ref.js'
import { segmentFileName, segmentIds } from '../../../src/log/segment_scan.js'
import type { CrashStep } from '../../../src/log/log_file.js'
import { readManifest } from '../../../src/log/manifest.js'
import type { Primary } from '../../../src/primary/primary.js'
import { Crash, SEGMENT_BYTES, openPrimary as openInProcess, tempDir as tempDirOf, valueOf, waitFor, type Fault, type Model, type Node, writeKey } from '../../helpers/in_process.js'

const FILL_VALUE_BYTES = 200 * 1024
const KEYS_PER_KIND = 20

beforeAll(async () => { await initHash() })

function tempDir(): string {
  return tempDirOf('freshet-release-crash-')
}

function openPrimary(dir: string, fault: Fault | null = null): Promise<Node> {
  return openInProcess(dir, { fault })
}

const write = writeKey

/** Every key the tests write, for absence checks. */
const ALL_KEYS: string[] = []
for (const kind of ['live', 'dead', 'gone', 'late', 'during']) for (let i = 0; i < KEYS_PER_KIND; i++) ALL_KEYS.push(`${kind}:${i}`)
ALL_KEYS.push('fill', 'more')

/**
 * Segment 0 holds live sets (to relocate), sets overwritten later (dead) and
 * tombstones at their key's head (to sweep); segment 1 holds tombstones that
 * stay; filler takes the log to at least 5 segments. Everything durable.
 */
async function writeLog(p: Primary, model: Model): Promise<void> {
  for (let i = 0; i < KEYS_PER_KIND; i++) {
    write(p, model, `live:${i}`, valueOf(100 + i * 97))
    write(p, model, `dead:${i}`, valueOf(50 + i))
    write(p, model, `gone:${i}`, valueOf(i * 13))
    if (i % 4 === 3) p.endTurn()
  }
  for (let i = 0; i < KEYS_PER_KIND; i++) write(p, model, `gone:${i}`, null)
  p.endTurn()
  while (p.store.newestId < 1) { write(p, model, 'fill', valueOf(FILL_VALUE_BYTES)); p.endTurn() }
  for (let i = 0; i < KEYS_PER_KIND; i++) {
    write(p, model, `dead:${i}`, valueOf(70 + i))
    write(p, model, `late:${i}`, valueOf(30))
  }
  p.endTurn()
  for (let i = 0; i < KEYS_PER_KIND; i += 2) write(p, model, `late:${i}`, null)
  p.endTurn()
  while (p.store.newestId < 5) { write(p, model, 'fill', valueOf(FILL_VALUE_BYTES)); p.endTurn() }
  await p.groupCommit.drain()
}

/** Forces `n` cleanings and waits until they are done; no cleaner error may be logged. */
async function clean(node: Node, n: number): Promise<void> {
  const p = node.primary
  p.endTurn()
  await p.groupCommit.drain()
  const before = p.cleaner.stats.segmentsCleaned
  expect(p.cleaner.force(n)).toBe(n)
  await waitFor(`${n} cleanings`, () => p.cleaner.stats.segmentsCleaned >= before + n && !p.cleaner.busy())
  expect(node.log.filter((l) => l.startsWith('cleaner:'))).toEqual([])
}

/** The primary holds exactly the model: reads, index heads, live bytes, key count; the horizon is real on disk. */
function expectModel(p: Primary, model: Model): void {
  expectData(p, model)
  const manifest = readManifest(p.options.dir, SEGMENT_BYTES)!
  expect(manifest.oldest).toBe(p.store.oldestId)
  expect(segmentIds(p.options.dir).filter((id) => id < p.store.oldestId)).toEqual([])
}

/** Reads, index heads, live bytes and key count equal the model. */
function expectData(p: Primary, model: Model): void {
  for (const key of ALL_KEYS) {
    const k = Buffer.from(key)
    const ref = p.view.lookup(k, 0, k.length)
    const want = model.get(key)
    if (want === undefined) {
      expect(ref, `${key} is absent`).toBe(REF_NONE)
    } else {
      expect(ref, `${key} is present`).not.toBe(REF_NONE)
      const c = p.view.locate(ref)
      expect(Buffer.from(c.u8.subarray(c.valueStart, c.valueStart + c.valueLength)).equals(want), `${key} has its acknowledged value`).toBe(true)
    }
  }
  let bytes = 0
  let heads = 0
  for (const table of p.index.tables) {
    for (let s = 0; s < tableSlotCount(table); s++) {
      const ref = slotRef(table, s)
      if (ref === REF_NONE) continue
      heads++
      bytes += opBytesAt(p.store, ref)
      if (!p.view.isSet(ref)) {
        const c = p.view.locate(ref)
        expect(model.has(Buffer.from(c.u8.subarray(c.keyStart, c.keyStart + c.keyLength)).toString())).toBe(false)
      }
    }
  }
  expect(p.liveBytes).toBe(bytes)
  expect(p.index.slotsUsed()).toBe(heads)
  expect(p.keyCount()).toBe(model.size)
}

/** Does the index hold a slot for `key` (a version or a tombstone)? */
function hasSlot(p: Primary, key: string): boolean {
  const k = Buffer.from(key)
  return p.index.head(p.store, keyHash(k, 0, k.length), k, 0, k.length) !== REF_NONE
}

/** The segment slot of the op at `ref` (a ref is slot + offset). */
function slotOfRef(ref: number): number {
  return Math.floor(refPosition(ref) / SEGMENT_BYTES)
}

function segmentFile(dir: string, id: number): string {
  return path.join(dir, segmentFileName(id))
}

/**
 * Writes, forces one cleaning of segment 0 that crashes at `step`, keeps
 * writing (one sealed turn per write) until the crash, then "kills" the
 * primary. Returns the model of every write sealed before the crash (all of
 * them durable once the submitted flush finished, as the page cache keeps
 * them through kill -9) and what the crash left.
 */
async function crashWhileReleasing(dir: string, step: CrashStep): Promise<{ model: Model, victimBytes: number, durableAtCrash: number, ackedDuring: number }> {
  const fault: Fault = { step, armed: false, once: false, fired: 0 }
  const node = await openPrimary(dir, fault)
  const p = node.primary
  const model: Model = new Map()
  await writeLog(p, model)
  const victimBytes = fs.statSync(segmentFile(dir, 0)).size
  fault.armed = true
  expect(p.cleaner.force(1)).toBe(1)
  // Writes go on while the cleaner scans, syncs and releases: overwrites and deletes of keys in the victim too.
  let during = 0
  let crashed = false
  let durableAtCrash = -1
  const lsns: number[] = []
  await waitFor('the crash', () => crashed, () => {
    if (fault.fired > 0 && !crashed) {
      crashed = true
      durableAtCrash = p.groupCommit.durableLsn
      return
    }
    if (during >= 4 * KEYS_PER_KIND) return
    const i = during++
    if (i % 4 === 0) write(p, model, `live:${i / 4}`, valueOf(64))
    else if (i % 4 === 1) write(p, model, `live:${(i - 1) / 4 + 10}`, null)
    else write(p, model, `during:${i % KEYS_PER_KIND}`, valueOf(i))
    lsns.push(p.lastOpLsn)
    p.endTurn()
  })
  // The crash: the cleaner caught the throw and logged it; nothing more is written or cleaned.
  expect(node.log.some((l) => l.startsWith('cleaner:'))).toBe(true)
  expect(p.cleaner.stats.segmentsCleaned).toBe(0)
  await p.groupCommit.drain()
  p.files.close()
  const manifest = readManifest(dir, SEGMENT_BYTES)!
  expect(manifest.oldest).toBe(1)
  expect(fs.existsSync(segmentFile(dir, 0))).toBe(step === 'release:manifest')
  const ackedDuring = lsns.filter((lsn) => lsn < durableAtCrash).length
  return { model, victimBytes, durableAtCrash, ackedDuring }
}

describe('a crash while the cleaner releases a segment', () => {
  for (const step of ['release:manifest', 'release:deleted'] as const) {
    test(`at ${step}: recovery finishes the release, loses no acknowledged write, brings no deleted key back, and cleaning goes on`, async () => {
      const dir = tempDir()
      const { model, victimBytes } = await crashWhileReleasing(dir, step)

      const node = await openPrimary(dir)
      const p = node.primary
      expect(p.recovery.cutReason).toBeNull()
      expect(p.recovery.releasedBytes).toBe(step === 'release:manifest' ? victimBytes : 0)
      expect(fs.existsSync(segmentFile(dir, 0))).toBe(false)
      expect(p.store.horizonLsn()).toBe(SEGMENT_BYTES)
      expectModel(p, model)
      // The tombstones of segment 0 went with it: their keys hold no slot after recovery; later ones stay.
      for (let i = 0; i < KEYS_PER_KIND; i++) expect(hasSlot(p, `gone:${i}`), `gone:${i}`).toBe(false)
      for (let i = 0; i < KEYS_PER_KIND; i += 2) expect(hasSlot(p, `late:${i}`), `late:${i}`).toBe(true)

      // Cleaning goes on from the recovered horizon, and so do writes and restarts.
      await clean(node, 2)
      expect(p.store.horizonLsn()).toBe(3 * SEGMENT_BYTES)
      expectModel(p, model)
      write(p, model, 'more', valueOf(10))
      write(p, model, 'late:1', null)
      await p.close()
      const again = await openPrimary(dir)
      expect(again.primary.recovery.cutReason).toBeNull()
      expect(again.primary.recovery.releasedBytes).toBe(0)
      expect(again.primary.store.horizonLsn()).toBe(3 * SEGMENT_BYTES)
      expectModel(again.primary, model)
      await again.primary.close()
    })
  }

  test('a crash while recovery deletes the files a crash left below the horizon: the next start finishes it', async () => {
    const dir = tempDir()
    const { model } = await crashWhileReleasing(dir, 'release:manifest')
    expect(fs.existsSync(segmentFile(dir, 0))).toBe(true)
    const fault: Fault = { step: 'release:deleted', armed: true, once: false, fired: 0 }
    const err = await openPrimary(dir, fault).then(() => null, (e: unknown) => e)
    expect(err).toBeInstanceOf(Crash)
    const node = await openPrimary(dir)
    expect(node.primary.recovery.cutReason).toBeNull()
    expect(fs.existsSync(segmentFile(dir, 0))).toBe(false)
    expectModel(node.primary, model)
    await clean(node, 1)
    expectModel(node.primary, model)
    await node.primary.close()
  })

  test('writes made while the cleaner ran were acknowledged before it crashed, and survive the crash', async () => {
    const dir = tempDir()
    const { model, durableAtCrash, ackedDuring } = await crashWhileReleasing(dir, 'release:deleted')
    // The release waits for durability, so writes of the same turns as the cleaning were durable before it crashed.
    expect(durableAtCrash).toBeGreaterThan(0)
    expect(ackedDuring).toBeGreaterThan(0)
    const node = await openPrimary(dir)
    expectModel(node.primary, model)
    await node.primary.close()
  })
})

test('a crash once the relocations are durable, before the release starts: both copies recover as one, and cleaning redoes the release', async () => {
  const dir = tempDir()
  const snapshotDir = tempDir()
  const node = await openPrimary(dir)
  const p = node.primary
  const model: Model = new Map()
  await writeLog(p, model)
  let snapshotModel: Model | null = null
  const onDurable = p.groupCommit.onDurable!
  p.groupCommit.onDurable = (lsn) => {
    // The cleaner sealed its relocations and everything sealed is durable: it releases on its next step.
    if (snapshotModel === null && p.cleaner.busy() && p.appender.openStart < 0 && lsn >= p.store.endLsn) {
      fs.rmSync(snapshotDir, { recursive: true, force: true })
      fs.cpSync(dir, snapshotDir, { recursive: true })
      snapshotModel = new Map(model)
    }
    onDurable(lsn)
  }
  await clean(node, 1)
  await p.close()
  expect(snapshotModel).not.toBeNull()

  const crashed = await openPrimary(snapshotDir)
  const q = crashed.primary
  expect(q.recovery.cutReason).toBeNull()
  expect(q.store.horizonLsn()).toBe(0)
  expectModel(q, snapshotModel!)
  // The newer copy wins: every live key of segment 0 is read from its relocated version.
  for (let i = 0; i < KEYS_PER_KIND; i++) {
    const k = Buffer.from(`live:${i}`)
    expect(slotOfRef(q.view.lookup(k, 0, k.length)), `live:${i}`).not.toBe(slotOfSegment(0, SEGMENT_BYTES))
  }
  await clean(crashed, 1)
  expect(q.cleaner.stats.opsRelocated).toBe(0)
  expect(q.store.horizonLsn()).toBe(SEGMENT_BYTES)
  expectModel(q, snapshotModel!)
  await q.close()
})

describe('a release that failed once, in a primary that keeps running', () => {
  for (const step of ['release:manifest', 'release:deleted'] as const) {
    test(`at ${step}: the retried cleaning releases the segment in memory and on disk`, async () => {
      const dir = tempDir()
      const fault: Fault = { step, armed: false, once: true, fired: 0 }
      const node = await openPrimary(dir, fault)
      const p = node.primary
      const model: Model = new Map()
      await writeLog(p, model)
      fault.armed = true
      expect(p.cleaner.force(1)).toBe(1)
      await waitFor('the failed release', () => fault.fired > 0 && !p.cleaner.busy())
      expect(node.log.filter((l) => l.startsWith('cleaner:')).length).toBe(1)
      node.log.length = 0
      // The manifest moved the horizon, memory did not: the data is whole meanwhile.
      expectData(p, model)
      await clean(node, 1)
      expect(p.store.horizonLsn()).toBe(SEGMENT_BYTES)
      // What the first attempt left on disk is removed by the second, not only by a restart.
      expect(segmentIds(dir).filter((id) => id < 1)).toEqual([])
      expectModel(p, model)
      await p.close()
      const again = await openPrimary(dir)
      expect(again.primary.recovery.releasedBytes).toBe(0)
      expectModel(again.primary, model)
      await again.primary.close()
    })
  }
})

test('close() while a cleaning is under way: once close() has resolved, the directory is left as it is', async () => {
  const dir = tempDir()
  const node = await openPrimary(dir)
  const p = node.primary
  const model: Model = new Map()
  await writeLog(p, model)
  expect(p.cleaner.force(3)).toBe(3)
  // One event-loop turn: the cleaner has begun scanning its first victim.
  await new Promise<void>((resolve) => setImmediate(resolve))
  expect(p.cleaner.busy()).toBe(true)
  await p.close()
  const manifest = readManifest(dir, SEGMENT_BYTES)
  const files = segmentIds(dir).map((id) => [id, fs.statSync(segmentFile(dir, id)).size])
  // Bounded watch: a closed primary must not move the horizon, delete files or write any more.
  for (let i = 0; i < 40; i++) {
    await new Promise((resolve) => setTimeout(resolve, 25))
    expect(readManifest(dir, SEGMENT_BYTES)).toEqual(manifest)
    expect(segmentIds(dir).map((id) => [id, fs.statSync(segmentFile(dir, id)).size])).toEqual(files)
  }
  const again = await openPrimary(dir)
  expectModel(again.primary, model)
  await again.primary.close()
})

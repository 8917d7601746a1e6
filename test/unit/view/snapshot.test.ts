/**
 * Snapshots across cleanings (in process): a snapshot taken before a burst of
 * overwrites, deletes and forced cleanings still reads every key as it was
 * (deleted keys included), because the cleaner relocates but does not release
 * what a view at the snapshot's LSN can still reach; once the snapshot is
 * closed the releases happen and the primary's own reads see the new state.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { initHash } from '../../../src/codec/hash.js'
import { opBytes } from '../../../src/codec/record.js'
import { OP_TYPE_DELETE, OP_TYPE_SET, REF_NONE } from '../../../src/constants.js'
import { Primary } from '../../../src/primary/primary.js'
import type { ReadView } from '../../../src/view/read_view.js'
import { lineValues } from '../../../src/node.js'

const SEGMENT_BYTES = 1 << 20
const dirs: string[] = []

beforeAll(async () => {
  await initHash()
})

afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true })
})

function write(p: Primary, key: string, value: string | null): void {
  const k = Buffer.from(key)
  const v = value === null ? null : Buffer.from(value)
  p.beginWrite(opBytes(k.length, v === null ? 0 : v.length), v !== null)
  try {
    p.probe(k, 0, k.length)
    if (v === null) p.writeProbed(OP_TYPE_DELETE, k, 0, k.length, null, 0, 0, null, 0, 0)
    else p.writeProbed(OP_TYPE_SET, k, 0, k.length, v, 0, v.length, null, 0, 0)
  } finally {
    p.endWrite()
  }
}

function read(view: ReadView, key: string): string | null {
  const k = Buffer.from(key)
  const ref = view.lookup(k, 0, k.length)
  if (ref === REF_NONE) return null
  const c = view.locate(ref)
  return Buffer.from(c.u8.subarray(c.valueStart, c.valueStart + c.valueLength)).toString()
}

async function until(what: string, check: () => boolean): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    if (check()) return
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  throw new Error(`timed out waiting for ${what}`)
}

test('a snapshot reads the state at its LSN while the cleaner relocates; releases wait for it to close', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'freshet-snapshot-'))
  dirs.push(dir)
  const p = await Primary.open({
    dir, segmentBytes: SEGMENT_BYTES, commit: 'local', maxMemoryBytes: 2 ** 40, valueBytesMax: SEGMENT_BYTES / 2,
    retainBytes: 0, recoveryWorkers: 1, log: () => {},
  })
  p.cleaner.paused = true
  const filler = 'f'.repeat(20_000)
  for (let i = 0; i < 200; i++) write(p, `k:${i}`, `v1:${i}`)
  for (let i = 0; i < 120; i++) write(p, `fill:${i % 10}`, filler)
  p.endTurn()
  const snap = p.snapshot()
  expect(/snapshots_open:1/.test(p.infoSections().memory().map(([k, v]) => `${k}:${v}`).join('\n'))).toBe(true)
  // After the snapshot: every key overwritten or deleted, and enough log for several cleanings.
  for (let i = 0; i < 200; i++) write(p, `k:${i}`, i % 3 === 0 ? null : `v2:${i}`)
  for (let i = 0; i < 200; i++) write(p, `fill:${i % 10}`, filler)
  p.endTurn()
  const horizonBefore = p.store.horizonLsn()
  expect(p.cleaner.force(3)).toBeGreaterThan(0)
  // The cleaner relocates the first victims, then waits: the snapshot is older than its relocations.
  await until('relocations', () => p.cleaner.stats.opsRelocated > 0 && p.cleaner.busy())
  await new Promise((resolve) => setTimeout(resolve, 100))
  expect(p.store.horizonLsn(), 'nothing is released while the snapshot is open').toBe(horizonBefore)
  const memory = lineValues(p.infoSections().memory())
  expect(Number(memory.get('pinned_bytes')), 'INFO shows what the snapshot holds').toBeGreaterThanOrEqual(SEGMENT_BYTES)
  expect(memory.get('oldest_snapshot_lsn')).toBe(snap.lsn)
  for (let i = 0; i < 200; i++) expect(read(snap.view, `k:${i}`), `k:${i} at the snapshot`).toBe(`v1:${i}`)
  for (let i = 0; i < 200; i++) expect(read(p.view, `k:${i}`), `k:${i} now`).toBe(i % 3 === 0 ? null : `v2:${i}`)
  snap.close()
  await until('the release after the snapshot closed', () => p.store.horizonLsn() > horizonBefore)
  for (let i = 0; i < 200; i++) expect(read(p.view, `k:${i}`), `k:${i} after the release`).toBe(i % 3 === 0 ? null : `v2:${i}`)
  expect(p.store.pinCount()).toBe(0)
  expect(lineValues(p.infoSections().memory()).get('pinned_bytes')).toBe(0)
  await p.close()
}, 60_000)

/**
 * On-disk format fixtures: log directories written by older freshets must still open, with every
 * key as written: format v1 with no segment manifest (test/fixtures/format/v1/README.md), and
 * segment manifest format 1 from before the cleaner (test/fixtures/format/manifest-v1/README.md),
 * which then keeps working: written past a new segment and cleaned, and format 2 from the cleaner that
 * released only the oldest segment (test/fixtures/format/manifest-v2/README.md), which then gets holes.
 */
import fs from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, test } from 'vitest'
import { copyDir, startPrimary } from '../helpers/primary.js'
import { closeClient, connectClient } from '../helpers/clients.js'
import { readEpochs } from '../../src/log/epochs.js'

const FIXTURE_DIR = fileURLToPath(new URL('../fixtures/format/v1/log', import.meta.url))
const MANIFEST_V1_DIR = fileURLToPath(new URL('../fixtures/format/manifest-v1/log', import.meta.url))
const MANIFEST_V2_DIR = fileURLToPath(new URL('../fixtures/format/manifest-v2/log', import.meta.url))
const EPOCHS_V1_DIR = fileURLToPath(new URL('../fixtures/format/epochs-v1/log', import.meta.url))
const BLOCK_V2_DIR = fileURLToPath(new URL('../fixtures/format/block-v2/log', import.meta.url))

/** The model the fixture generator (test/fixtures/format/make_v1.mjs) wrote. */
function expected(): Map<string, string> {
  const m = new Map<string, string>()
  const value = (i: number): string => `v1:${i}:` + String.fromCharCode(97 + (i % 26)).repeat(8000 + (i % 7) * 100)
  for (let i = 0; i < 300; i++) m.set(`k:${i}`, value(i))
  for (let i = 0; i < 300; i += 10) m.delete(`k:${i}`)
  for (let i = 5; i < 300; i += 50) m.set(`k:${i}`, `over:${i}`)
  m.set('ctr', '42')
  return m
}

/** Opens a copy of a fixture with --retain-bytes 0: every key of expected() as written; then `more` (writes, cleanings) on it. */
async function openFixture(copy: string, model: Map<string, string>, more: (c: ReturnType<typeof connectClient>) => Promise<void>): Promise<void> {
  const keys = [...Array.from({ length: 300 }, (_, i) => `k:${i}`), 'ctr']
  const primary = await startPrimary({ dir: copy, commit: 'local', segmentSize: '1mb', args: ['--retain-bytes', '0'] })
  const c = connectClient(primary.port)
  expect(primary.stderr).not.toContain('log recovery:')
  const got = await c.mget(...keys)
  expect(keys.filter((k, i) => got[i] !== (model.get(k) ?? null))).toEqual([])
  await more(c)
  await closeClient(c)
  expect((await primary.stop()).code).toBe(0)
}

/** Reopens the directory: every key of `model` (and nothing else) as written. */
async function expectReopened(copy: string, model: Map<string, string>): Promise<void> {
  const again = await startPrimary({ dir: copy, commit: 'local', segmentSize: '1mb', args: ['--retain-bytes', '0'] })
  const c2 = connectClient(again.port)
  const all = [...model.keys()]
  const values = await c2.mget(...all)
  expect(all.filter((k, i) => values[i] !== model.get(k))).toEqual([])
  expect(await c2.dbsize()).toBe(model.size)
  await closeClient(c2)
  expect((await again.stop()).code).toBe(0)
}

/** Overwrites 40 keys `n` times with 9 KB values (new segments that empty as they go); the model follows. */
async function overwrite(c: ReturnType<typeof connectClient>, model: Map<string, string>, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const v = `new:${i}:` + 'n'.repeat(9000)
    await c.set(`n:${i % 40}`, v)
    model.set(`n:${i % 40}`, v)
  }
}

describe('format v1 fixture', () => {
  test('a v1 log directory (no manifest) opens, every key as written, twice', async () => {
    const copy = copyDir(FIXTURE_DIR)
    const model = expected()
    const keys = [...Array.from({ length: 300 }, (_, i) => `k:${i}`), 'ctr']
    for (let round = 0; round < 2; round++) {
      const primary = await startPrimary({ dir: copy, commit: 'local', segmentSize: '1mb' })
      const c = connectClient(primary.port)
      expect(primary.stderr).not.toContain('log recovery:')
      const got = await c.mget(...keys)
      const wrong = keys.filter((k, i) => got[i] !== (model.get(k) ?? null))
      expect(wrong, `round ${round}`).toEqual([])
      expect(await c.dbsize()).toBe(model.size)
      await closeClient(c)
      expect((await primary.stop()).code).toBe(0)
    }
    // A log from before epoch histories had one primary: it gets the history of one epoch from LSN 0.
    expect(readEpochs(copy)).toEqual([{ epoch: 1, startLsn: 0 }])
    // The fixture itself is never written to.
    expect(fs.readdirSync(FIXTURE_DIR).sort()).toEqual(['freshet.json', 'segment-000000000000.log', 'segment-000000000001.log', 'segment-000000000002.log'])
  })
})

describe('segment manifest format 1 fixture (before the cleaner)', () => {
  test('opens with every key as written, takes writes into new segments, is cleaned, and reopens', async () => {
    const copy = copyDir(MANIFEST_V1_DIR)
    const model = expected()
    await openFixture(copy, model, async (c) => {
      // Enough new writes for new segments, then cleaning releases the old ones.
      await overwrite(c, model, 400)
      expect(Number(await c.call('FRESHET.CLEAN', '3'))).toBeGreaterThan(0)
      for (let i = 0; i < 200 && Number(/cleaner_segments_cleaned:(\d+)/.exec(await c.info('memory'))![1]) < 3; i++) await new Promise((r) => setTimeout(r, 25))
      expect(Number(/cleaner_segments_cleaned:(\d+)/.exec(await c.info('memory'))![1]), 'segments were released').toBeGreaterThanOrEqual(3)
    })
    await expectReopened(copy, model)
    expect(fs.readdirSync(MANIFEST_V1_DIR).sort()).toEqual(['freshet.json', 'manifest.json', 'segment-000000000000.log', 'segment-000000000001.log', 'segment-000000000002.log'])
  }, 60_000)
})

describe('segment manifest format 2 fixture (oldest-first cleaner, no holes)', () => {
  test('opens at its horizon with every key as written, is cleaned with holes, and reopens', async () => {
    const copy = copyDir(MANIFEST_V2_DIR)
    const model = expected()
    await openFixture(copy, model, async (c) => {
      expect(Number(/horizon_lsn:(\d+)/.exec(await c.info('persistence'))![1]), 'the recorded horizon').toBe(1024 * 1024)
      // Overwrite new keys in new segments: those empty, the cleaner releases them and leaves the old, live ones.
      await overwrite(c, model, 600)
      expect(Number(await c.call('FRESHET.CLEAN', '3'))).toBeGreaterThan(0)
      for (let i = 0; i < 200 && Number(/cleaner_segments_cleaned:(\d+)/.exec(await c.info('memory'))![1]) < 3; i++) await new Promise((r) => setTimeout(r, 25))
      expect(Number(/cleaner_segments_cleaned:(\d+)/.exec(await c.info('memory'))![1])).toBeGreaterThanOrEqual(3)
      expect(Number(/cleaner_holes_created:(\d+)/.exec(await c.info('memory'))![1]), 'the old, live segments stay; newer, emptier ones go').toBeGreaterThan(0)
    })
    expect(JSON.parse(fs.readFileSync(`${copy}/manifest.json`, 'utf8')).format, 'rewritten in the current format').toBe(3)
    await expectReopened(copy, model)
    expect(fs.readdirSync(MANIFEST_V2_DIR).sort()).toEqual(['freshet.json', 'manifest.json', 'segment-000000000001.log', 'segment-000000000002.log', 'segment-000000000003.log'])
  }, 60_000)
})

describe('epoch history format 1 fixture (a promoted backup)', () => {
  test('opens as a primary of epoch 2 with its history and every key as written, and reopens', async () => {
    const copy = copyDir(EPOCHS_V1_DIR)
    const model = expected()
    model.set('after', 'promotion')
    model.set('ctr', '43')
    await openFixture(copy, new Map([...model].filter(([k]) => k.startsWith('k:') || k === 'ctr')), async (c) => {
      const replication = await c.info('replication')
      expect(/^epoch:(\d+)/m.exec(replication)![1]).toBe('2')
      expect(/^epoch_history:(\S+)/m.exec(replication)![1]).toBe('1:0,2:2514848')
      expect(await c.get('after')).toBe('promotion')
      // Writes go on in epoch 2.
      expect(await c.incr('ctr')).toBe(44)
      model.set('ctr', '44')
    })
    await expectReopened(copy, model)
    expect(readEpochs(copy)).toEqual([{ epoch: 1, startLsn: 0 }, { epoch: 2, startLsn: 2514848 }])
    expect(fs.readdirSync(EPOCHS_V1_DIR).sort()).toEqual(['epochs.json', 'freshet.json', 'manifest.json', 'segment-000000000000.log', 'segment-000000000001.log', 'segment-000000000002.log'])
  }, 60_000)
})

describe('block format 2 fixture (ops with an expiry time)', () => {
  const FAR_MS = 4102444800000 // 2100-01-01, as test/fixtures/format/v1_writes.mjs wrote
  /** Each expiring key's value and PEXPIRETIME as the generator's writes left them (-1: none, -2: no key). */
  const expiring: Array<[string, string | null, number]> = [
    ['t:far', 'far', FAR_MS], ['t:far2', 'far2', FAR_MS + 123], ['t:append', 'vmore', FAR_MS + 1],
    ['t:n', '15', FAR_MS + 2], ['t:persist', 'p', -1], ['t:cleared', 'c2', -1], ['t:gone', null, -2],
  ]
  const expectExpiring = async (c: ReturnType<typeof connectClient>): Promise<void> => {
    for (const [k, v, at] of expiring) {
      expect(await c.get(k), k).toBe(v)
      expect(Number(await c.call('PEXPIRETIME', k)), k).toBe(at)
    }
  }

  test('opens with every value and expiry time as written (a TTL that ran out stays out), is cleaned, and reopens', async () => {
    const first = fs.readFileSync(`${BLOCK_V2_DIR}/segment-000000000000.log`)
    expect(first.readUInt16LE(8), "the fixture's blocks are of format 2").toBe(2)
    const copy = copyDir(BLOCK_V2_DIR)
    const model = expected()
    await openFixture(copy, model, async (c) => {
      await expectExpiring(c)
      // t:gone's op is in the log without a delete: the active cycle logs one.
      for (let i = 0; i < 100 && Number(/expired_keys:(\d+)/.exec(await c.info('stats'))![1]) < 1; i++) await new Promise((r) => setTimeout(r, 25))
      expect(Number(/expired_keys:(\d+)/.exec(await c.info('stats'))![1])).toBe(1)
      expect(/^db0:(\S+)/m.exec(await c.info('keyspace'))![1]).toBe(`keys=${model.size + 6},expires=4,avg_ttl=0`)
      // Cleaning every segment but the newest two relocates the expiring heads (segment 2) with their expiry times.
      await overwrite(c, model, 400)
      const segment2 = `${copy}/segment-000000000002.log`
      for (let i = 0; i < 400 && fs.existsSync(segment2); i++) {
        await c.call('FRESHET.CLEAN', '100')
        await new Promise((r) => setTimeout(r, 25))
      }
      expect(fs.existsSync(segment2), 'segment 2 released').toBe(false)
      await expectExpiring(c)
    })
    for (const [k, v] of expiring) if (v !== null) model.set(k, v)
    await expectReopened(copy, model)
    const again = await startPrimary({ dir: copy, commit: 'local', segmentSize: '1mb' })
    const c = connectClient(again.port)
    await expectExpiring(c)
    await closeClient(c)
    expect((await again.stop()).code).toBe(0)
    expect(fs.readdirSync(BLOCK_V2_DIR).sort()).toEqual(['epochs.json', 'freshet.json', 'manifest.json', 'segment-000000000000.log', 'segment-000000000001.log', 'segment-000000000002.log'])
  }, 60_000)
})

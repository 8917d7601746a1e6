/**
 * Reclamation on real processes: the cleaner keeps a primary's memory and
 * disk bounded under overwrite churn, backups release the same segments, and
 * no deleted key comes back and no key goes back to an older value through
 * cleaning, kill -9 and restart of the primary (local mode), restart of a
 * backup, and full resyncs of new and far-behind backups.
 */
import type { Redis } from 'ioredis'
import { afterAll, expect, test } from 'vitest'
import {
  Cluster, cleanupClusters, connect, digest, disconnect, info, lsnOf, seededRng, waitApplied, waitFor, type Rng,
} from '../helpers/cluster.js'

const MIB = 1024 * 1024

afterAll(async () => {
  await cleanupClusters()
}, 60_000)

type Model = Map<string, string>

/** Pipelined writes: sets of random values (lengths min..max) and deletes; the model follows. Fails on any error reply. */
async function churn(c: Redis, rng: Rng, model: Model, o: { ops: number, keys: number, prefix: string, min: number, max: number, delShare: number }): Promise<void> {
  const BATCH = 500
  for (let done = 0; done < o.ops; done += BATCH) {
    const p = c.pipeline()
    const n = Math.min(BATCH, o.ops - done)
    for (let i = 0; i < n; i++) {
      const key = `${o.prefix}${rng.int(0, o.keys - 1)}`
      if (rng.next() < o.delShare) {
        p.del(key)
        model.delete(key)
      } else {
        const value = String.fromCharCode(97 + rng.int(0, 25)).repeat(rng.int(o.min, o.max)) + `:${done + i}`
        p.set(key, value)
        model.set(key, value)
      }
    }
    const results = await p.exec()
    for (const r of results ?? []) expect(r[0], 'no write is refused (no -OOM)').toBeNull()
  }
}

async function infoOf(port: number, section: string, cluster: Cluster, primary: boolean): Promise<Map<string, string>> {
  const c = primary ? cluster.primaryClient() : cluster.backupClient(cluster.backups.findIndex((b) => b.port === port))
  try {
    return await info(c, section)
  } finally {
    disconnect(c)
  }
}

async function num(cluster: Cluster, node: 'primary' | number, section: string, field: string): Promise<number> {
  const map = node === 'primary'
    ? await infoOf(cluster.primary.port, section, cluster, true)
    : await infoOf(cluster.backups[node].port, section, cluster, false)
  const v = map.get(field)
  if (v === undefined) throw new Error(`INFO ${section} has no ${field}`)
  return Number(v)
}

/** Every key and value the node serves equals the model (deleted keys absent, no older value). */
async function expectModel(client: Redis, model: Model, what: string): Promise<void> {
  const got = await digest(client)
  const want = new Map<string, string | null>()
  for (const [k, v] of model) want.set(k, Buffer.from(v).toString('hex'))
  expect(got.size, `${what}: key count`).toBe(want.size)
  for (const [k, v] of want) {
    if (got.get(k) !== v) expect(`${k}=${got.get(k)?.slice(0, 40) ?? 'absent'}`, `${what}: value of ${k}`).toBe(`${k}=${v!.slice(0, 40)}`)
  }
}

/** A write every backup then applies (WAITLSN); the model gets it too. */
async function settle(cluster: Cluster, model: Model): Promise<number> {
  const c = cluster.primaryClient()
  try {
    const value = `settle:${Date.now()}:${Math.random()}`
    await c.set('settle', value)
    model.set('settle', value)
    const lsn = await lsnOf(c)
    await cluster.waitAllApplied(lsn)
    return lsn
  } finally {
    disconnect(c)
  }
}

/**
 * Every backup's own live_bytes (counted from what its replay installed and
 * its releases dropped) comes to equal the primary's once it has released
 * what the primary released (bounded wait), and its utilisation is its own.
 */
async function expectLiveAgrees(cluster: Cluster, backups: number, what: string): Promise<void> {
  const primaryLive = await num(cluster, 'primary', 'memory', 'live_bytes')
  expect(primaryLive, `${what}: the primary holds live data`).toBeGreaterThan(0)
  for (let b = 0; b < backups; b++) {
    let seen = -1
    await waitFor(async () => {
      seen = await num(cluster, b, 'memory', 'live_bytes')
      return seen === primaryLive
    }, 15_000, `${what}: backup ${b}'s live_bytes to equal the primary's`, 50).catch(() => {})
    expect(seen, `${what}: backup ${b}'s live_bytes`).toBe(primaryLive)
    const held = await num(cluster, b, 'memory', 'log_bytes')
    expect(await num(cluster, b, 'memory', 'utilisation')).toBeCloseTo(primaryLive / held, 3)
  }
}

/** Forces cleanings until the primary has cleaned `count` more segments (bounded); filler writes join the model. */
async function clean(cluster: Cluster, count: number, model: Model): Promise<void> {
  const c = cluster.primaryClient()
  try {
    const target = (await num(cluster, 'primary', 'memory', 'cleaner_segments_cleaned')) + count
    await waitFor(async () => {
      await c.call('FRESHET.CLEAN', String(count))
      // A little filler keeps a segment between the victim and the tail.
      const p = c.pipeline()
      for (let i = 0; i < 50; i++) {
        p.set(`filler:${i}`, 'f'.repeat(2000))
        model.set(`filler:${i}`, 'f'.repeat(2000))
      }
      await p.exec()
      return (await num(cluster, 'primary', 'memory', 'cleaner_segments_cleaned')) >= target
    }, 30_000, `${count} cleanings`, 20)
  } finally {
    disconnect(c)
  }
}

test('sustained overwrite churn with a small --max-memory: no -OOM, memory and disk bounded on primary and backup', async () => {
  const maxMemory = 12 * MIB
  const cluster = await Cluster.start({
    commit: 'local', workers: [2], segmentSize: '1mb', args: ['--max-memory', '12mb', '--retain-bytes', '0'],
  })
  const rng = seededRng('reclamation churn', 0x5eed01)
  const model: Model = new Map()
  const c = cluster.primaryClient()
  let maxPrimary = 0
  let maxBackup = 0
  let maxDisk = 0
  // 40 rounds of 1000 writes of ~400 bytes over 1500 keys: ~17 MB of log through 12 MB of memory, live ~0.6 MB.
  for (let round = 0; round < 40; round++) {
    await churn(c, rng, model, { ops: 1000, keys: 1500, prefix: 'k:', min: 300, max: 500, delShare: 0.1 })
    maxPrimary = Math.max(maxPrimary, await num(cluster, 'primary', 'memory', 'used_memory'))
    maxBackup = Math.max(maxBackup, await num(cluster, 0, 'memory', 'used_memory'))
    maxDisk = Math.max(maxDisk, await num(cluster, 'primary', 'persistence', 'log_disk_bytes'))
  }
  disconnect(c)
  await settle(cluster, model)
  const cleaned = await num(cluster, 'primary', 'memory', 'cleaner_segments_cleaned')
  const written = await num(cluster, 'primary', 'replication', 'commit_lsn')
  expect(written, 'the churn wrote more log than --max-memory').toBeGreaterThan(maxMemory)
  expect(cleaned, 'the cleaner released segments').toBeGreaterThan(5)
  expect(await num(cluster, 0, 'memory', 'segments_released_total'), 'the backup released segments too').toBeGreaterThan(5)
  // Bounded: --max-memory plus the cleaner's room (two segments) on the primary; the backup holds the same segments.
  expect(maxPrimary).toBeLessThanOrEqual(maxMemory + 2 * MIB)
  expect(maxBackup).toBeLessThanOrEqual(maxMemory + 4 * MIB)
  expect(maxDisk).toBeLessThanOrEqual(maxMemory)
  await expectModel(cluster.primaryClient(), model, 'primary')
  await expectModel(cluster.backupClient(0), model, 'backup')
}, 240_000)

test('deleted stays deleted and old stays old through cleaning, kill -9 and restart, backup restart and full resync', async () => {
  const cluster = await Cluster.start({ commit: 'local', workers: [2], segmentSize: '1mb', args: ['--retain-bytes', '0'] })
  const rng = seededRng('reclamation history', 0x5eed02)
  const model: Model = new Map()
  const c = cluster.primaryClient()
  // Versions v1 everywhere, v2 on half, deletes on a third, spread over many segments by churn in between.
  const p1 = c.pipeline()
  for (let i = 0; i < 600; i++) { p1.set(`d:${i}`, `v1:${i}`); model.set(`d:${i}`, `v1:${i}`) }
  await p1.exec()
  await churn(c, rng, model, { ops: 4000, keys: 300, prefix: 'x:', min: 500, max: 900, delShare: 0.2 })
  const p2 = c.pipeline()
  for (let i = 0; i < 600; i += 2) { p2.set(`d:${i}`, `v2:${i}`); model.set(`d:${i}`, `v2:${i}`) }
  for (let i = 0; i < 600; i += 3) { p2.del(`d:${i}`); model.delete(`d:${i}`) }
  await p2.exec()
  await churn(c, rng, model, { ops: 4000, keys: 300, prefix: 'x:', min: 500, max: 900, delShare: 0.2 })
  disconnect(c)
  // Clean until the segments holding v1, v2 and the tombstones are all released.
  await clean(cluster, 6, model)
  await settle(cluster, model)
  expect(await num(cluster, 'primary', 'persistence', 'horizon_lsn'), 'the horizon moved').toBeGreaterThan(0)
  expect(await num(cluster, 'primary', 'memory', 'cleaner_bytes_relocated'), 'live versions were relocated').toBeGreaterThan(0)
  expect(await num(cluster, 'primary', 'memory', 'cleaner_tombstone_bytes_dropped'), 'tombstones left the index').toBeGreaterThan(0)
  // The index holds live keys and the tombstones not yet reached, not every key ever written.
  expect(await num(cluster, 'primary', 'memory', 'index_keys')).toBeLessThan(600 + 300 + 50 + 1)
  await expectModel(cluster.primaryClient(), model, 'primary after cleaning')
  await expectModel(cluster.backupClient(0), model, 'backup after cleaning')
  await expectLiveAgrees(cluster, 1, 'after cleaning')

  // kill -9 of the primary (local mode: every acknowledged write is durable) and restart.
  await cluster.killPrimary()
  await cluster.restartPrimary()
  await cluster.waitConnectedBackups(1)
  await expectModel(cluster.primaryClient(), model, 'primary after kill -9 and restart')

  // Backup killed and restarted on its directory.
  await cluster.restartBackup(0, 'SIGKILL')
  await cluster.waitConnectedBackups(1)
  await settle(cluster, model)
  await expectModel(cluster.backupClient(0), model, 'backup after restart')
  await expectLiveAgrees(cluster, 1, 'after the backup recovered its log')

  // A new backup: the primary released its first segments, so it gets a full resync.
  const fresh = await cluster.addBackup({ workers: 2 })
  await cluster.waitConnectedBackups(2)
  await settle(cluster, model)
  const freshClient = cluster.backupClient(1)
  expect((await info(freshClient, 'persistence')).get('full_resyncs_total')).toBe('1')
  expect(fresh.stderr()).toMatch(/full resync from the primary at LSN \d+/)
  await expectModel(freshClient, model, 'new backup after full resync')
  await expectLiveAgrees(cluster, 2, 'after a full resync')

  // More history on top, cleaned again: every node still equals the model.
  const c2 = cluster.primaryClient()
  await churn(c2, rng, model, { ops: 3000, keys: 600, prefix: 'd:', min: 100, max: 900, delShare: 0.3 })
  disconnect(c2)
  await clean(cluster, 4, model)
  await settle(cluster, model)
  await expectModel(cluster.primaryClient(), model, 'primary at the end')
  await expectModel(cluster.backupClient(0), model, 'backup at the end')
  await expectModel(cluster.backupClient(1), model, 'new backup at the end')
  await expectLiveAgrees(cluster, 2, 'at the end')
}, 240_000)

test('a backup stopped briefly resumes; one stopped past --retain-bytes resumes by full resync with the reason logged on both sides', async () => {
  const cluster = await Cluster.start({ commit: 'local', workers: [2], segmentSize: '1mb', args: ['--retain-bytes', '2mb'] })
  const rng = seededRng('reclamation retain', 0x5eed03)
  const model: Model = new Map()
  const c = cluster.primaryClient()
  await churn(c, rng, model, { ops: 2000, keys: 200, prefix: 'r:', min: 100, max: 300, delShare: 0.1 })
  await settle(cluster, model)

  // A short stop: the primary still has the log after the backup's end.
  await cluster.restartBackup(0, 'SIGTERM', async () => {
    await churn(c, rng, model, { ops: 200, keys: 200, prefix: 'r:', min: 100, max: 300, delShare: 0.1 })
  })
  await cluster.waitConnectedBackups(1)
  await settle(cluster, model)
  expect(await num(cluster, 0, 'persistence', 'full_resyncs_total'), 'a short stop resumes without a full resync').toBe(0)

  // A long stop: the primary writes and cleans past the backup's end plus --retain-bytes.
  let stoppedAt = 0
  await cluster.restartBackup(0, 'SIGTERM', async () => {
    stoppedAt = await num(cluster, 'primary', 'replication', 'commit_lsn')
    await waitFor(async () => {
      await churn(c, rng, model, { ops: 1000, keys: 200, prefix: 'r:', min: 500, max: 900, delShare: 0.1 })
      await c.call('FRESHET.CLEAN', '8')
      return (await num(cluster, 'primary', 'persistence', 'horizon_lsn')) > stoppedAt
    }, 60_000, 'the primary\'s horizon to pass the stopped backup', 50)
  })
  await cluster.waitConnectedBackups(1)
  await settle(cluster, model)
  disconnect(c)
  const b = cluster.backupClient(0)
  const persistence = await info(b, 'persistence')
  expect(persistence.get('full_resyncs_total')).toBe('1')
  expect(persistence.get('loading')).toBe('0')
  expect(persistence.get('full_resync_reason')).toMatch(/released the log below LSN \d+/)
  expect(cluster.backups[0].stderr()).toMatch(/full resync from the primary at LSN \d+ .*: its log ends at LSN \d+/)
  expect(cluster.primary.stderr()).toMatch(/full resync from LSN \d+: its log ends at LSN \d+/)
  await expectModel(b, model, 'backup after a full resync')
  await expectModel(cluster.primaryClient(), model, 'primary')
  const applied = await waitApplied(cluster.backups[0].port, stoppedAt)
  expect(applied).toBeGreaterThan(stoppedAt)
}, 240_000)

test('a long SCAN on a backup across many cleanings returns every key that was there throughout, once', async () => {
  const cluster = await Cluster.start({ commit: 'local', workers: [2], segmentSize: '1mb', args: ['--retain-bytes', '0'] })
  const rng = seededRng('reclamation scan', 0x5eed04)
  const model: Model = new Map()
  const c = cluster.primaryClient()
  const p = c.pipeline()
  for (let i = 0; i < 3000; i++) { p.set(`stable:${i}`, `s${i}`); model.set(`stable:${i}`, `s${i}`) }
  await p.exec()
  await settle(cluster, model)
  const b = cluster.backupClient(0)
  const seen = new Map<string, number>()
  let cursor = '0'
  let steps = 0
  const releasedBefore = await num(cluster, 0, 'memory', 'segments_released_total')
  // Between SCAN steps: churn on other keys and forced cleanings, so the stable keys' versions are relocated.
  do {
    const [next, keys] = await b.scan(cursor, 'COUNT', 40)
    for (const k of keys) seen.set(k, (seen.get(k) ?? 0) + 1)
    cursor = next
    steps++
    if (steps % 4 === 0) {
      await churn(c, rng, model, { ops: 400, keys: 500, prefix: 'churn:', min: 800, max: 1600, delShare: 0.2 })
      await c.call('FRESHET.CLEAN', '4')
    }
  } while (cursor !== '0' && steps < 100_000)
  disconnect(c)
  await settle(cluster, model)
  expect(cursor, 'the scan finished').toBe('0')
  expect(await num(cluster, 0, 'memory', 'segments_released_total') - releasedBefore, 'the backup released segments during the scan').toBeGreaterThan(3)
  for (let i = 0; i < 3000; i++) expect(seen.get(`stable:${i}`), `stable:${i}`).toBe(1)
  await expectModel(b, model, 'backup after the scan')
}, 240_000)

test('a backup whose --max-memory cannot hold the primary\'s data stops following and says why', async () => {
  const cluster = await Cluster.start({ commit: 'local', workers: [2], segmentSize: '1mb', args: ['--retain-bytes', '0'] })
  const c = cluster.primaryClient()
  const rng = seededRng('reclamation small backup', 0x5eed05)
  const model: Model = new Map()
  // About 6 MB of live data: more than the small backup's 4 MB.
  await churn(c, rng, model, { ops: 6000, keys: 6000, prefix: 'big:', min: 900, max: 1100, delShare: 0 })
  await settle(cluster, model)
  disconnect(c)
  const small = await cluster.addBackup({ workers: 1, args: ['--max-memory', '4mb'] })
  const b = connect(small.port)
  try {
    await waitFor(async () => /does not fit in this backup's --max-memory/.test((await info(b, 'replication')).get('link_error') ?? ''), 30_000, 'the backup to refuse', 50)
    expect(small.stderr()).toMatch(/closing link to primary: the primary's data does not fit in this backup's --max-memory 4194304 bytes/)
    expect((await info(b, 'replication')).get('link')).toBe('down')
    expect(small.node.proc.exitCode, 'the backup keeps running').toBeNull()
  } finally {
    disconnect(b)
  }
}, 120_000)

test('cost-benefit cleaning leaves holes: backups release the same segments; a restarted backup, a new one (full resync past the holes) and a restarted primary hold the same data; deleted keys whose old values stay retained stay deleted', async () => {
  const cluster = await Cluster.start({ commit: 'local', workers: [2], segmentSize: '1mb', args: ['--retain-bytes', '0'] })
  const rng = seededRng('reclamation holes', 0x5eed06)
  const model: Model = new Map()
  const c = cluster.primaryClient()
  // Cold data written once: about 4 MB that fill the oldest segments, which cost-benefit leaves alone.
  const p = c.pipeline()
  for (let i = 0; i < 10; i++) { p.set(`doomed:${i}`, `old:${i}`); model.set(`doomed:${i}`, `old:${i}`) }
  for (let i = 0; i < 280; i++) { p.set(`cold:${i}`, `c${i}:`.padEnd(15_000, 'c')); model.set(`cold:${i}`, `c${i}:`.padEnd(15_000, 'c')) }
  await p.exec()
  // Hot churn: segments that empty as they are overwritten; the doomed keys are deleted in the middle of it.
  await churn(c, rng, model, { ops: 2000, keys: 50, prefix: 'hot:', min: 1500, max: 2500, delShare: 0.1 })
  const d = c.pipeline()
  for (let i = 0; i < 10; i++) { d.del(`doomed:${i}`); model.delete(`doomed:${i}`) }
  await d.exec()
  await churn(c, rng, model, { ops: 2000, keys: 50, prefix: 'hot:', min: 1500, max: 2500, delShare: 0.1 })
  disconnect(c)
  await settle(cluster, model)
  // The cleaner ran by itself during the churn: the hot segments went, the cold ones stayed.

  expect(await num(cluster, 'primary', 'persistence', 'log_holes'), 'segments above the horizon were released').toBeGreaterThan(0)
  expect(await num(cluster, 'primary', 'memory', 'cleaner_holes_created')).toBeGreaterThan(0)
  expect(await num(cluster, 'primary', 'persistence', 'horizon_lsn'), 'the cold oldest segment stays').toBe(0)
  expect(await num(cluster, 'primary', 'memory', 'cleaner_tombstones_relocated'), 'the doomed keys\' tombstones were kept').toBeGreaterThan(0)
  await waitFor(async () => (await num(cluster, 0, 'persistence', 'log_holes')) > 0, 20_000, 'the backup to release the holes', 50)
  expect(cluster.backups[0].stderr()).toMatch(/holes the primary's cleaner made/)
  await expectModel(cluster.primaryClient(), model, 'primary with holes')
  await expectModel(cluster.backupClient(0), model, 'backup with holes')

  await cluster.restartBackup(0, 'SIGKILL')
  await cluster.waitConnectedBackups(1)
  await settle(cluster, model)
  expect(await num(cluster, 0, 'persistence', 'log_holes'), 'the restarted backup recovered its holes').toBeGreaterThan(0)
  await expectModel(cluster.backupClient(0), model, 'backup after restart')
  await expectLiveAgrees(cluster, 1, 'after the backup recovered its log')

  const fresh = await cluster.addBackup({ workers: 2 })
  await cluster.waitConnectedBackups(2)
  await settle(cluster, model)
  const freshClient = cluster.backupClient(1)
  expect((await info(freshClient, 'persistence')).get('full_resyncs_total'), 'a new backup resyncs past the holes').toBe('1')
  expect(Number((await info(freshClient, 'persistence')).get('log_holes')), 'its stream skipped them').toBeGreaterThan(0)
  expect(fresh.stderr()).toMatch(/full resync from the primary at LSN \d+/)
  await expectModel(freshClient, model, 'new backup after a full resync past holes')

  await cluster.killPrimary()
  await cluster.restartPrimary()
  await cluster.waitConnectedBackups(2)
  await settle(cluster, model)
  await expectModel(cluster.primaryClient(), model, 'primary after kill -9 and restart')
  await expectModel(cluster.backupClient(0), model, 'backup at the end')
  await expectModel(cluster.backupClient(1), model, 'new backup at the end')
  await expectLiveAgrees(cluster, 2, 'at the end')
}, 240_000)

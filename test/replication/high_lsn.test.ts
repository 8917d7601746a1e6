/**
 * LSNs past the ref ring: refs name a segment slot and offset on a 32 GiB
 * ring (index/ref.ts) while LSNs keep growing. A primary whose log begins
 * just below 2^35 (32 GiB) and one just below 2^40 (1 TiB) (`--initial-lsn`,
 * so nothing that large is written) take writes across that position; a
 * backup follows (a full resync: the log starts at the primary's horizon),
 * reads agree on both, the cleaner releases segments across the position,
 * and both come back after kill -9 and restart with the same data.
 */
import { afterAll, describe, expect, test } from 'vitest'
import { Cluster, cleanupClusters, digest, disconnect, info, lsnOf, seededRng } from '../helpers/cluster.js'

const MIB = 1024 * 1024

afterAll(async () => {
  await cleanupClusters()
}, 60_000)

async function run(start: number, label: string): Promise<void> {
  const rng = seededRng(`high lsn ${label}`, 0x41 + start % 97)
  const cluster = await Cluster.start({
    commit: 'local', workers: [2], segmentSize: '1mb', args: ['--initial-lsn', String(start), '--retain-bytes', '0'],
  })
  const c = cluster.primaryClient()
  const model = new Map<string, string>()
  // About 5 MB of writes: the log crosses `start + 2 MiB` (the ring boundary) with versions on both sides.
  for (let round = 0; round < 10; round++) {
    const p = c.pipeline()
    for (let i = 0; i < 500; i++) {
      const key = `h:${rng.int(0, 799)}`
      if (rng.int(0, 9) === 0) { p.del(key); model.delete(key) } else {
        const v = `${round}:${i}:${'x'.repeat(rng.int(0, 1500))}`
        p.set(key, v)
        model.set(key, v)
      }
    }
    for (const [err] of (await p.exec()) ?? []) expect(err).toBeNull()
  }
  const lsn = await lsnOf(c)
  expect(lsn, 'the log went past the ring boundary').toBeGreaterThan(start + 2 * MIB)
  await c.call('FRESHET.CLEAN', '3')
  const want = (): Map<string, string | null> => new Map([...model].map(([k, v]) => [k, Buffer.from(v).toString('hex')]))
  await cluster.waitAllApplied(lsn)
  expect(await digest(c)).toEqual(want())
  const b = cluster.backupClient(0)
  expect(await digest(b)).toEqual(want())
  expect((await info(b, 'persistence')).get('full_resyncs_total'), 'a new backup of a log that starts high resyncs from its start').toBe('1')
  disconnect(b)
  disconnect(c)

  await cluster.killPrimary()
  await cluster.restartPrimary()
  await cluster.waitConnectedBackups(1)
  await cluster.restartBackup(0, 'SIGKILL')
  await cluster.waitConnectedBackups(1)
  const c2 = cluster.primaryClient()
  await c2.set('after', 'restart')
  model.set('after', 'restart')
  await cluster.waitAllApplied(await lsnOf(c2))
  expect(Number((await info(c2, 'persistence')).get('horizon_lsn')), 'the horizon passed the start').toBeGreaterThan(start)
  expect(await digest(c2)).toEqual(want())
  const b2 = cluster.backupClient(0)
  expect(await digest(b2)).toEqual(want())
  disconnect(b2)
  disconnect(c2)
}

describe('writes, shipping, replay, reads, cleaning and restart past the ref ring', () => {
  test('a log that begins just below 2^35 (32 GiB)', async () => {
    await run(2 ** 35 - 2 * MIB, '2^35')
  }, 120_000)

  test('a log that begins just below 2^40 (1 TiB)', async () => {
    await run(2 ** 40 - 2 * MIB, '2^40')
  }, 120_000)
})

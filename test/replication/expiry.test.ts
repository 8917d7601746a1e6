/**
 * Key expiry on real processes: only the primary expires keys (its active
 * cycle logs a delete for a key nobody touches), backups hide a key expired
 * at their view's time (the log's clock) and never expire anything
 * themselves, and a restarted primary keeps every key's expiry.
 */
import { afterAll, describe, expect, test } from 'vitest'
import { Cluster, cleanupClusters, disconnect, info, sleep, waitFor } from '../helpers/cluster.js'
import { freezeProcess } from '../helpers/primary.js'

afterAll(async () => {
  await cleanupClusters()
})

describe('key expiry across a primary and a backup', () => {
  test('an untouched key expires on the primary (a logged delete), then on the backup; a restarted primary keeps TTLs', async () => {
    const cluster = await Cluster.start({ commit: 'local', workers: [2] })
    const p = cluster.primaryClient()
    const b = cluster.backupClient(0)
    try {
      expect(await p.set('keep', 'v')).toBe('OK')
      expect(await p.set('long', 'v', 'EX', 1000)).toBe('OK')
      expect(await p.set('short', 'v', 'PX', 300)).toBe('OK')
      const lsn = Number(await p.call('LSN'))
      await b.call('WAITLSN', String(lsn), '10000')
      expect(await b.get('short')).toBe('v')
      expect(Number(await b.call('PTTL', 'short'))).toBeGreaterThan(0)
      expect((await info(p, 'keyspace')).get('db0')).toBe('keys=3,expires=2,avg_ttl=0')
      // Nobody reads it: the primary's cycle deletes it, and the delete reaches the backup.
      await waitFor(async () => Number((await info(p, 'stats')).get('expired_keys')) >= 1, 10_000, 'the primary to expire the key')
      expect(await p.dbsize()).toBe(2)
      await waitFor(async () => await b.dbsize() === 2, 10_000, 'the backup to replay the expiry')
      expect(await b.get('short')).toBeNull()
      expect(await b.call('TTL', 'short')).toBe(-2)
      expect(Number((await info(b, 'stats')).get('expired_keys'))).toBe(0)
      // A restart keeps the expiry times, and the cycle goes on.
      await p.set('later', 'v', 'PX', 1500)
      disconnect(p)
      await cluster.stopPrimary()
      await cluster.restartPrimary()
      const p2 = cluster.primaryClient()
      expect(Number(await p2.call('TTL', 'long'))).toBeGreaterThan(990)
      expect(await p2.get('later')).toBe('v')
      await waitFor(async () => await p2.exists('later') === 0 && await p2.dbsize() === 2, 15_000, 'the restarted primary to expire a key')
      disconnect(p2)
    } finally {
      disconnect(b)
    }
  }, 90_000)

  test("a backup decides expiry at its view's commit time: with its primary stopped it still serves a key past its expiry, and never deletes it", async () => {
    const cluster = await Cluster.start({ commit: 'local', workers: [1] })
    const p = cluster.primaryClient()
    const b = cluster.backupClient(0)
    try {
      expect(await p.set('k', 'v', 'PX', 400)).toBe('OK')
      const lsn = Number(await p.call('LSN'))
      await b.call('WAITLSN', String(lsn), '10000')
      await freezeProcess(cluster.primary.node.proc)
      await sleep(700)
      // Past k's expiry by the wall clock, but the backup's log says it is not yet that late.
      expect(await b.get('k')).toBe('v')
      expect(await b.dbsize()).toBe(1)
      cluster.primary.node.proc.kill('SIGCONT')
      await waitFor(async () => await b.get('k') === null, 15_000, "the backup to see the primary's expiry")
      expect(await b.dbsize()).toBe(0)
    } finally {
      disconnect(p)
      disconnect(b)
    }
  }, 90_000)

  test('under a controlled clock: an hour-long TTL runs out at once; with the active cycle paused, the cleaner deletes expired heads instead of copying them', async () => {
    const cluster = await Cluster.start({ commit: 'local', workers: [1], segmentSize: '1mb', args: ['--retain-bytes', '0'] })
    const p = cluster.primaryClient()
    const b = cluster.backupClient(0)
    const caughtUp = async (): Promise<void> => { await b.call('WAITLSN', String(await p.call('LSN')), '10000') }
    try {
      expect(await p.call('DEBUG', 'SET-ACTIVE-EXPIRE', '0')).toBe('OK')
      // Segment 0: 100 expiring 8 KB values and 50 small keys that live on.
      const big = 'e'.repeat(8000)
      for (let i = 0; i < 100; i++) await p.set(`e:${i}`, big, 'EX', 3600)
      for (let i = 0; i < 50; i++) await p.set(`n:${i}`, `n${i}`)
      await caughtUp()
      expect(Number(await b.call('TTL', 'e:0'))).toBeGreaterThan(3500)
      expect(await p.call('DEBUG', 'ADVANCE-CLOCK', String(3_601_000))).toBe('OK')
      // The backup's view is at its newest block's commit time: still before the jump, until a block of after it arrives.
      expect(await b.get('e:0')).toBe(big)
      // The primary's reads are at its clock: gone. The key a command touched is deleted then (lazy expiry); the
      // others nothing has touched are counted until something deletes them (DBSIZE counts them, as Redis's).
      expect(await p.get('e:0')).toBeNull()
      expect(await p.call('TTL', 'e:0')).toBe(-2)
      expect(await p.dbsize()).toBe(149)
      expect(Number((await info(p, 'stats')).get('expired_keys'))).toBe(1)
      await p.set('tick', '1')
      await caughtUp()
      expect(await b.get('e:0')).toBeNull()
      expect(await b.exists('e:1')).toBe(0)
      // Overwrites that fill segments 1 and 2 (mostly dead) and part of 3: the cleaner (with --retain-bytes 0) takes
      // segment 0 on its own or when told (FRESHET.CLEAN; a segment is a candidate once the backup has it).
      const fill = 'f'.repeat(9000)
      for (let i = 0; i < 300; i++) await p.set(`f:${i % 40}`, fill)
      await waitFor(async () => {
        if (Number((await info(p, 'memory')).get('cleaner_expired_dropped')) >= 99) return true
        await p.call('FRESHET.CLEAN', '3')
        return false
      }, 15_000, 'the cleaner to take segment 0')
      // Each expired head left was deleted by the cleaner (the cycle is paused), none copied.
      expect(Number((await info(p, 'memory')).get('cleaner_expired_dropped'))).toBe(99)
      expect(Number((await info(p, 'stats')).get('expired_keys'))).toBe(100)
      expect(await p.dbsize()).toBe(91)
      await caughtUp()
      expect(await b.dbsize()).toBe(91)
      expect(await b.call('DEBUG', 'DIGEST')).toBe(await p.call('DEBUG', 'DIGEST'))
      // The deletes are in the log: a restarted primary (its clock no longer advanced) does not bring them back.
      disconnect(p)
      await cluster.stopPrimary()
      await cluster.restartPrimary()
      const p2 = cluster.primaryClient()
      expect(await p2.exists('e:0', 'e:99')).toBe(0)
      expect(await p2.dbsize()).toBe(91)
      disconnect(p2)
    } finally {
      disconnect(b)
    }
  }, 90_000)
})

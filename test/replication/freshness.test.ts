/**
 * Lag that means what it says, and the freshness contract of a read, on a backup held behind on purpose:
 * its link to the primary runs through a proxy that delays everything the primary sends by 300 ms while a
 * writer keeps writing. lag_ms then never reads 0, a read "at most 50 ms stale" is refused with -STALE
 * saying how far behind the backup is, a read of one's own write (MINLSN) waits for it, and a backup that
 * has lost its primary reports a lag that grows with the silence.
 */
import { afterAll, describe, expect, test } from 'vitest'
import { Cluster, cleanupClusters, disconnect, info, sleep, waitFor } from '../helpers/cluster.js'
import { errorCode } from '../helpers/clients.js'
import { DelayProxy } from '../helpers/delay_proxy.js'

const DELAY_MS = 300

afterAll(async () => {
  await cleanupClusters()
})

describe('a backup behind its primary', () => {
  test('lag_ms never reads 0 while behind; FRESHET.READ and FRESHET.FRESHNESS hold reads to their contract', async () => {
    // Backup 0 follows the primary directly; backup 1 through the delaying proxy.
    const cluster = await Cluster.start({ commit: 'local', workers: [1] })
    const proxy = await DelayProxy.start(cluster.primary.port, DELAY_MS)
    await cluster.addBackup({ workers: 1, primaryAddr: `127.0.0.1:${proxy.port}` })
    await cluster.waitConnectedBackups(2)
    const p = cluster.primaryClient()
    const direct = cluster.backupClient(0)
    const b = cluster.backupClient(1)
    const writer = cluster.primaryClient()
    let writing = true
    let n = 0
    const writes = (async () => { while (writing) { await writer.set('tick', String(n++)); await sleep(5) } })()
    try {
      await p.set('k', 'v0')
      await b.call('WAITLSN', String(await p.call('LSN')), '10000')
      await sleep(DELAY_MS * 2)
      // Sampled while the writer runs: the backup is about DELAY_MS behind the whole time, and says so.
      const lags: number[] = []
      for (let i = 0; i < 25; i++) {
        const r = await info(b, 'replication')
        lags.push(Number(r.get('lag_ms')))
        expect(Number(r.get('staleness_ms'))).toBeGreaterThan(DELAY_MS / 2)
        await sleep(17)
      }
      expect(lags.filter((l) => !(l > 100)), `lag_ms samples: ${lags.join(' ')}`).toEqual([])
      // At most 50 ms stale: refused at once, or after its wait budget, with how far behind the backup is.
      expect(await errorCode(b.call('FRESHET.READ', 'MAXLAG', '50', 'GET', 'k'))).toBe('STALE')
      const t0 = Date.now()
      expect(await errorCode(b.call('FRESHET.READ', 'MAXLAG', '50', 'WAIT', '200', 'GET', 'k'))).toBe('STALE')
      expect(Date.now() - t0).toBeGreaterThanOrEqual(190)
      // A looser bound is met.
      expect(await b.call('FRESHET.READ', 'MAXLAG', '5000', 'GET', 'k')).toBe('v0')
      // Read your own write: the backup waits until it has it (about DELAY_MS), or says it has not.
      await p.set('k', 'v1')
      const lsn = String(await p.call('LSN'))
      expect(await errorCode(b.call('FRESHET.READ', 'MINLSN', lsn, 'GET', 'k'))).toBe('STALE')
      expect(await b.call('FRESHET.READ', 'MINLSN', lsn, 'WAIT', '5000', 'GET', 'k')).toBe('v1')
      // The connection's own contract applies to every read (GET, MGET, SCAN, EXEC) until turned off; a pipeline stays in step.
      expect(await b.call('FRESHET.FRESHNESS', 'MAXLAG', '50')).toBe('OK')
      expect(await b.call('FRESHET.FRESHNESS')).toBe('MAXLAG 50 MINLSN 0 WAIT 0')
      expect(await errorCode(b.get('k'))).toBe('STALE')
      expect(await errorCode(b.mget('k', 'tick'))).toBe('STALE')
      expect(await errorCode(b.scan('0'))).toBe('STALE')
      const piped = await b.pipeline().get('k').ping().call('FRESHET.FRESHNESS', 'OFF').get('k').exec()
      expect(piped!.map(([err, v]) => err === null ? v : String((err as Error).message).split(' ')[0])).toEqual(['STALE', 'PONG', 'OK', 'v1'])
      expect(await b.call('FRESHET.FRESHNESS')).toBe('OFF')
      // Bad contracts are refused.
      expect(await errorCode(b.call('FRESHET.READ', 'MAXLAG', '-1', 'GET', 'k'))).toBe('ERR')
      expect(await errorCode(b.call('FRESHET.READ', 'WAIT', '10', 'GET', 'k'))).toBe('ERR')
      expect(await errorCode(b.call('FRESHET.READ', 'MAXLAG', '10'))).toBe('ERR')
      // On the primary every read is fresh.
      expect(await p.call('FRESHET.READ', 'MAXLAG', '0', 'GET', 'k')).toBe('v1')
      // The writer stops. The direct backup, caught up and told so by every heartbeat, reads 0 throughout;
      // the delayed one cannot know that nothing was written in the last DELAY_MS, and says no more than that.
      writing = false
      await writes
      await sleep(DELAY_MS * 2)
      const directLags: number[] = []
      const delayedLags: number[] = []
      for (let i = 0; i < 25; i++) {
        directLags.push(Number((await info(direct, 'replication')).get('lag_ms')))
        delayedLags.push(Number((await info(b, 'replication')).get('lag_ms')))
        await sleep(17)
      }
      expect(directLags.filter((l) => l !== 0), `direct lag_ms samples: ${directLags.join(' ')}`).toEqual([])
      expect(delayedLags.filter((l) => !(l < DELAY_MS + 100)), `delayed lag_ms samples: ${delayedLags.join(' ')}`).toEqual([])
      // The primary lost: the lag grows with the silence.
      proxy.cut()
      await waitFor(async () => (await info(b, 'replication')).get('link') === 'down', 10_000, 'the link to go down')
      const first = Number((await info(b, 'replication')).get('lag_ms'))
      await sleep(400)
      const later = Number((await info(b, 'replication')).get('lag_ms'))
      expect(later - first).toBeGreaterThanOrEqual(350)
      expect(await errorCode(b.call('FRESHET.READ', 'MAXLAG', '100', 'GET', 'k'))).toBe('STALE')
    } finally {
      writing = false
      await writes
      disconnect(p)
      disconnect(b)
      disconnect(direct)
      disconnect(writer)
      await proxy.close()
    }
  }, 60_000)
})

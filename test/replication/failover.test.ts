/**
 * Failover on real processes: the seeded Jepsen-style loop (a few cycles
 * here; 50 in `npm run bench:full`), the bounded wait for missing sync
 * backups (-NOREPLICAS), the async loss window (the old primary's tail is cut
 * and logged on rejoin), and fencing (a node that learns of a higher epoch
 * acknowledges nothing; a backup never follows a lower epoch).
 */
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, test } from 'vitest'
import { FailoverRing, type CycleResult } from '../../bench/lib/failover_cycle.js'
import { cleanupClusters, connect, disconnect, errorCode, info, seededRng, sleep, startBackupNode, startPrimaryNode, waitFor, withTimeout } from '../helpers/cluster.js'

const MAIN_JS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/src/cli/main.js')

afterAll(async () => {
  await cleanupClusters()
})

function expectClean(r: CycleResult, ring: FailoverRing): void {
  const what = `cycle ${r.cycle} (${r.crash}): ${JSON.stringify(r)}\n${ring.nodes.map((_, i) => ring.output(i)).join('\n---\n')}`
  expect(r.acked, what).toBeGreaterThan(0)
  expect(r.lost, what).toBe(0)
  expect(r.incrBackwards, what).toBe(0)
  expect(r.tornMulti, what).toBe(0)
  expect(r.ackedAfterFence, what).toBe(0)
  expect(r.digestsEqual, what).toBe(true)
}

describe('failover loop (remote-flush, 1 sync backup, 2 backups)', () => {
  test('kill -9 and SIGSTOP of the primary: nothing acknowledged is lost, the old primary rejoins, every node ends equal', async () => {
    const rng = seededRng('failover loop', 20261207)
    const ring = await FailoverRing.start({
      mainJs: MAIN_JS, commit: 'remote-flush', syncBackups: 1, backups: 2, seed: rng.seed, writers: rng.int(1, 4), depth: 8,
      loadMsMin: 200, loadMsMax: 700, preloadKeys: 2000, segmentSize: '1mb', syncTimeoutMs: 1000, log: () => {},
    })
    try {
      for (const [i, crash] of (['kill', 'kill', 'stop'] as const).entries()) expectClean(await ring.cycle(i, crash), ring)
    } finally {
      await ring.close()
    }
  }, 240_000)
})

describe('bounded waits for sync backups', () => {
  test('with its sync backup gone, a write gets -NOREPLICAS after --sync-timeout, then at once; writes succeed again once it is back', async () => {
    const primary = await startPrimaryNode({ commit: 'remote-flush', syncBackups: 1, args: ['--sync-timeout', '500'] })
    const backup = await startBackupNode(primary.port)
    const c = connect(primary.port)
    try {
      await waitFor(async () => (await info(c, 'replication')).get('connected_backups') === '1', 15_000, 'backup connected')
      expect(await c.set('k', '1')).toBe('OK')
      expect(await c.set('r', 'released')).toBe('OK')
      await backup.node.kill9()
      const t0 = Date.now()
      // The write is logged, waits for a sync backup that never comes, and gets an error instead of a hang.
      expect(await withTimeout(errorCode(c.set('k', '2')), 10_000, 'a held write to be answered')).toBe('NOREPLICAS')
      expect(Date.now() - t0).toBeGreaterThanOrEqual(400)
      const clients = await info(c, 'clients')
      expect(Number(clients.get('held_replies_expired_total'))).toBeGreaterThanOrEqual(1)
      // Missing for longer than the timeout: refused up front, nothing written. (The primary counts the time from when it
      // saw the backup go, which can be after the held write was made: wait until it says so rather than race it.)
      await waitFor(async () => Number((await info(c, 'replication')).get('sync_short_ms')) > 500, 10_000, 'the sync backups to be missing for --sync-timeout')
      const lsnBefore = Number((await info(c, 'replication')).get('commit_lsn'))
      expect(await errorCode(c.set('k', '3'))).toBe('NOREPLICAS')
      expect(Number((await info(c, 'replication')).get('commit_lsn'))).toBe(lsnBefore)
      expect(Number((await info(c, 'replication')).get('writes_refused_noreplicas_total'))).toBeGreaterThanOrEqual(1)
      // Reads of released data still answer at once; a read of k would observe the unreleased write, so it waits too.
      expect(await c.get('r')).toBe('released')
      expect(await errorCode(c.get('k'))).toBe('NOREPLICAS')
      const again = await startBackupNode(primary.port, { dir: backup.dir })
      await waitFor(async () => (await info(c, 'replication')).get('connected_backups') === '1', 15_000, 'backup back')
      expect(await c.set('k', '4')).toBe('OK')
      await again.node.kill9()
    } finally {
      disconnect(c)
    }
  }, 60_000)
})

describe('promotion, rejoin and fencing', () => {
  test('async: writes the promoted backup never received are cut from the old primary when it rejoins, and the cut is logged with its range', async () => {
    const primary = await startPrimaryNode({ commit: 'async' })
    const backup = await startBackupNode(primary.port)
    const p = connect(primary.port)
    const b = connect(backup.port)
    try {
      await waitFor(async () => (await info(p, 'replication')).get('connected_backups') === '1', 15_000, 'backup connected')
      for (let i = 0; i < 50; i++) await p.set(`shared:${i}`, String(i))
      const shared = Number((await info(p, 'replication')).get('commit_lsn'))
      await waitFor(async () => Number((await info(b, 'replication')).get('applied_lsn')) >= shared, 15_000, 'backup caught up')
      // The backup stops following (pointed at a port nobody serves); the primary goes on acknowledging (async).
      expect(await b.call('REPLICAOF', '127.0.0.1', '1')).toBe('OK')
      await waitFor(async () => (await info(p, 'replication')).get('connected_backups') === '0', 15_000, 'link gone')
      for (let i = 0; i < 30; i++) expect(await p.set(`lost:${i}`, 'x')).toBe('OK')
      const lost = Number((await info(p, 'replication')).get('commit_lsn'))
      expect(lost).toBeGreaterThan(shared)
      // Promote the backup: a new epoch that starts at what it holds.
      const promoted = await b.call('FRESHET.PROMOTE') as number[]
      expect(promoted[0]).toBe(2)
      expect(promoted[1]).toBe(shared)
      expect(await b.set('after', 'promotion')).toBe('OK')
      // The old primary rejoins at run time: its tail past LSN `shared` is cut (it had been visible: async's loss window).
      expect(await p.call('REPLICAOF', '127.0.0.1', String(backup.port))).toBe('OK')
      await waitFor(async () => (await info(p, 'replication')).get('link') === 'up', 20_000, 'old primary following')
      await waitFor(async () => await p.get('after') === 'promotion', 15_000, 'old primary has the new epoch\'s write')
      expect(await p.exists('lost:0', 'lost:29')).toBe(0)
      expect(await p.get('shared:49')).toBe('49')
      const r = await info(p, 'replication')
      expect(r.get('freshet_role')).toBe('backup')
      expect(r.get('epoch_history')).toBe(`1:0,2:${shared}`)
      expect(Number(r.get('failover_log_cuts_total'))).toBe(1)
      expect(primary.stderr()).toContain(`FAILOVER CUT: cut log LSN ${shared}..${lost}`)
      expect(await p.call('DEBUG', 'DIGEST')).toBe(await b.call('DEBUG', 'DIGEST'))
      expect(await errorCode(p.set('x', '1'))).toBe('READONLY')
    } finally {
      disconnect(p)
      disconnect(b)
    }
  }, 60_000)

  test('a primary that meets a backup of a higher epoch fences itself; a backup never follows a lower epoch', async () => {
    // Two independent primaries at epoch 1; a backup of the first is promoted (epoch 2), then pointed at the second.
    const a = await startPrimaryNode({ commit: 'local' })
    const other = await startPrimaryNode({ commit: 'local' })
    const backup = await startBackupNode(a.port)
    const b = connect(backup.port)
    const o = connect(other.port)
    try {
      await waitFor(async () => (await info(b, 'replication')).get('link') === 'up', 15_000, 'backup linked')
      expect(await b.call('REPLICAOF', 'NO', 'ONE')).toBe('OK')
      expect((await info(b, 'replication')).get('epoch')).toBe('2')
      expect(await o.set('k', 'v')).toBe('OK')
      // Promoted nodes follow again with REPLICAOF: the epoch-1 primary learns of epoch 2 in the handshake.
      expect(await b.call('REPLICAOF', '127.0.0.1', String(other.port))).toBe('OK')
      await waitFor(async () => (await info(o, 'replication')).get('fenced') === '1', 15_000, 'the lower-epoch primary fenced')
      expect(await errorCode(o.set('k', 'w'))).toBe('READONLY')
      const r = await info(b, 'replication')
      expect(r.get('link')).toBe('down')
      expect(r.get('link_error')).toMatch(/^EPOCH /)
      // FRESHET.FENCE with an epoch not above the primary's own is refused.
      const c = connect(a.port)
      expect(await errorCode(c.call('FRESHET.FENCE', '1'))).toBe('EPOCH')
      expect(await c.set('still', 'writable')).toBe('OK')
      disconnect(c)
    } finally {
      disconnect(b)
      disconnect(o)
    }
  }, 60_000)

  test('freshet failover refuses when no backup is a safe candidate, and changes nothing', async () => {
    const primary = await startPrimaryNode({ commit: 'local' })
    const { runToEnd } = await import('../../bench/lib/proc.js')
    const r = await runToEnd(process.execPath, [MAIN_JS, 'failover', `127.0.0.1:${primary.port}`, '--timeout', '300'], 30_000)
    expect(r.code).toBe(3)
    const c = connect(primary.port)
    expect((await info(c, 'replication')).get('fenced')).toBe('0')
    expect(await c.set('k', 'v')).toBe('OK')
    disconnect(c)
    await sleep(0)
  }, 60_000)
})

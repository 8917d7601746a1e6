/**
 * Primary restart: the primary is stopped cleanly (SIGTERM: it flushes its
 * log and closes) and started again on the same dir and the same port. The
 * backups notice the link is down, keep serving reads at what they applied,
 * reconnect by themselves (backoff 50 ms .. 1 s) from their log end, show
 * link:up again, and apply the writes made after the restart.
 */
import { afterAll, beforeAll, expect, test } from 'vitest'
import { Cluster, cleanupClusters, digest, disconnect, info, lsnOf, waitFor } from '../helpers/cluster.js'

let cluster: Cluster

beforeAll(async () => {
  cluster = await Cluster.start({ commit: 'local', workers: [1, 2] })
}, 60_000)

afterAll(async () => {
  await cleanupClusters()
})

async function linkOf(i: number): Promise<string | undefined> {
  const c = cluster.backupClient(i)
  try {
    return (await info(c, 'replication')).get('link')
  } finally {
    disconnect(c)
  }
}

test('backups reconnect to a restarted primary (same dir, same port) and follow new writes', async () => {
  const before = cluster.primaryClient()
  const p = before.pipeline()
  for (let i = 0; i < 300; i++) p.set(`before:${i}`, `v${i}`)
  for (let i = 0; i < 50; i++) p.incr('counter')
  await p.exec()
  const lsnBefore = await lsnOf(before)
  await cluster.waitAllApplied(lsnBefore)
  const epochBefore = (await info(before, 'replication')).get('epoch')
  const port = cluster.primary.port
  disconnect(before)

  expect(await cluster.stopPrimary(), 'clean exit code').toBe(0)
  expect(cluster.primary.stderr()).toMatch(/SIGTERM: flushing the log and closing/)

  // Backups see the link drop and still serve what they applied.
  for (const i of cluster.backups.keys()) {
    await waitFor(async () => (await linkOf(i)) === 'down', 10_000, `backup${i} link:down`)
    const c = cluster.backupClient(i)
    expect(await c.get('before:7')).toBe('v7')
    expect(await c.get('counter')).toBe('50')
    expect(await c.dbsize()).toBe(301)
    disconnect(c)
  }

  await cluster.restartPrimary()
  expect(cluster.primary.port).toBe(port)
  await cluster.waitConnectedBackups(cluster.backups.length)
  for (const i of cluster.backups.keys()) {
    await waitFor(async () => (await linkOf(i)) === 'up', 10_000, `backup${i} link:up`)
  }

  const after = cluster.primaryClient()
  const repl = await info(after, 'replication')
  expect(repl.get('epoch'), 'a restart is not a failover: same epoch').toBe(epochBefore)
  expect(Number(repl.get('commit_lsn')), 'the log survived the restart').toBeGreaterThanOrEqual(lsnBefore)
  expect(await after.get('before:299')).toBe('v299')

  const q = after.pipeline()
  for (let i = 0; i < 200; i++) q.set(`after:${i}`, `w${i}`)
  q.del('before:0')
  q.incr('counter')
  await q.exec()
  const lsnAfter = await lsnOf(after)
  expect(lsnAfter).toBeGreaterThan(lsnBefore)
  const applied = await cluster.waitAllApplied(lsnAfter)
  for (const a of applied) expect(a).toBeGreaterThanOrEqual(lsnAfter)

  const want = await digest(after)
  expect(want.size).toBe(500)
  for (const i of cluster.backups.keys()) {
    const c = cluster.backupClient(i)
    expect(await c.get('after:199')).toBe('w199')
    expect(await c.get('before:0')).toBeNull()
    expect(await c.get('counter')).toBe('51')
    expect(await c.dbsize()).toBe(500)
    expect(await digest(c), `backup${i} digest`).toEqual(want)
    // Each backup resumed from its log end, not from LSN 0.
    expect(cluster.backups[i].stderr()).toMatch(new RegExp(`link to primary 127\\.0\\.0\\.1:${port} up \\(epoch \\d+, from LSN [1-9]`))
  }
  expect(cluster.primary.stderr()).not.toMatch(/synced from LSN 0\b/)
}, 60_000)

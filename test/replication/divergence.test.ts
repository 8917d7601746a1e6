/**
 * A backup whose log holds blocks the restarted primary does not have
 * (deterministic: the primary's directory is put back to an earlier copy,
 * as a crash that lost its unsynced tail would leave it, and the primary
 * writes different blocks at the same LSNs).
 *
 * - The extra blocks are unconfirmed on the backup (its confirmed position,
 *   the one it may have made visible, is before them): it finds the last
 *   common block (FRESHET.CHECK), cuts its tail back to it (logged with the
 *   LSN range and op count, counted in INFO), rejoins, and ends with the
 *   primary's data.
 * - The extra blocks are confirmed (the backup may have shown them): it
 *   never continues silently; it refuses with DIVERGED naming both positions
 *   (log line, INFO link_error), keeps serving what it had, and retries.
 */
import fs from 'node:fs'
import path from 'node:path'
import { afterEach, expect, test } from 'vitest'
import { Cluster, cleanupClusters, digest, disconnect, info, lsnOf, makeTempDir, startBackupNode, waitApplied, waitFor } from '../helpers/cluster.js'

afterEach(async () => {
  await cleanupClusters()
})

async function writeKeys(cluster: Cluster, prefix: string, count: number): Promise<number> {
  const c = cluster.primaryClient()
  const p = c.pipeline()
  for (let i = 0; i < count; i++) p.set(`${prefix}:${i}`, `${prefix}-value-${i}`)
  const results = await p.exec()
  for (const [err] of results ?? []) expect(err).toBeNull()
  const lsn = await lsnOf(c)
  disconnect(c)
  return lsn
}

/**
 * Primary log A then X (the backup applied both), backup stopped; then the
 * primary's directory goes back to A only, and it writes Y at X's LSNs.
 */
async function divergedCluster(editBackupDir: (dir: string, lsnA: number) => void): Promise<{ cluster: Cluster, lsnA: number, lsnX: number, lsnY: number }> {
  const cluster = await Cluster.start({ commit: 'local', workers: [2] })
  const lsnA = await writeKeys(cluster, 'a', 100)
  await waitApplied(cluster.backups[0].port, lsnA)
  // A copy of the primary's log as it is now: the "durable" part a crash keeps.
  expect(await cluster.stopPrimary()).toBe(0)
  const snapshot = makeTempDir('freshet-snapshot-')
  fs.cpSync(cluster.primary.dir, snapshot, { recursive: true })
  await cluster.restartPrimary()
  await cluster.waitConnectedBackups(1)
  const lsnX = await writeKeys(cluster, 'x', 50)
  expect(await waitApplied(cluster.backups[0].port, lsnX)).toBeGreaterThanOrEqual(lsnX)
  const b = cluster.backups[0]
  // Clean stop: the backup persists its confirmed LSN (lsnX).
  await b.node.stop(10_000)
  expect(await cluster.stopPrimary()).toBe(0)
  fs.rmSync(cluster.primary.dir, { recursive: true, force: true })
  fs.cpSync(snapshot, cluster.primary.dir, { recursive: true })
  await cluster.restartPrimary()
  const c = cluster.primaryClient()
  expect(await c.exists('x:0'), 'the primary lost X').toBe(0)
  disconnect(c)
  // Different blocks at X's LSNs.
  const lsnY = await writeKeys(cluster, 'y', 30)
  expect(lsnY).toBeGreaterThan(lsnA)
  editBackupDir(b.dir, lsnA)
  cluster.backups[0] = await startBackupNode(cluster.primary.port, {
    dir: b.dir, primaryAuth: cluster.password ?? undefined, segmentSize: cluster.segmentSize, workers: b.workers,
  })
  return { cluster, lsnA, lsnX, lsnY }
}

test('a backup holding an unconfirmed tail the primary lost cuts it back to the last common block and rejoins', async () => {
  const { cluster, lsnA, lsnX, lsnY } = await divergedCluster((dir, lsnA) => {
    // An older confirmed position is always safe: X is now received-but-unconfirmed.
    fs.writeFileSync(path.join(dir, 'confirmed.json'), JSON.stringify({ confirmedLsn: lsnA }) + '\n')
  })
  const b = cluster.backups[0]
  expect(await waitApplied(b.port, lsnY)).toBeGreaterThanOrEqual(lsnY)
  expect(b.stderr()).toMatch(new RegExp(`DIVERGED: cut unconfirmed log LSN ${lsnA}\\.\\.${lsnX} \\(\\d+ blocks, 50 ops`))
  const bc = cluster.backupClient(0)
  const stats = await info(bc, 'stats')
  expect(stats.get('log_cuts_total')).toBe('1')
  expect(stats.get('log_cut_ops_total')).toBe('50')
  const repl = await info(bc, 'replication')
  expect(repl.get('link')).toBe('up')
  expect(repl.get('link_error')).toBe('')
  expect(await bc.exists('x:0', 'x:49')).toBe(0)
  expect(await bc.get('y:29')).toBe('y-value-29')
  expect(await bc.dbsize()).toBe(130)
  const pc = cluster.primaryClient()
  expect(await digest(bc)).toEqual(await digest(pc))
  // And it follows new writes.
  await pc.set('after', 'cut')
  expect(await waitApplied(b.port, await lsnOf(pc))).toBeGreaterThan(lsnY)
  expect(await bc.get('after')).toBe('cut')
}, 60_000)

test('a backup whose confirmed (visible) log disagrees with the primary refuses with DIVERGED, never silently', async () => {
  const { cluster, lsnX } = await divergedCluster(() => { /* X stays confirmed: the backup may have shown it */ })
  const b = cluster.backups[0]
  await waitFor(() => /DIVERGED: the primary's log disagrees with this backup's at its confirmed LSN/.test(b.stderr()), 15_000, 'the refusal in the log')
  expect(b.stderr()).toMatch(new RegExp(`confirmed LSN ${lsnX} \\(log end ${lsnX}\\)`))
  const bc = cluster.backupClient(0)
  const repl = await info(bc, 'replication')
  expect(repl.get('link')).toBe('down')
  expect(repl.get('link_error')?.split(' ')[0]).toBe('DIVERGED')
  // It keeps what it had (A and X), never mixes in the primary's other history.
  expect(await bc.get('x:49')).toBe('x-value-49')
  expect(await bc.exists('y:0')).toBe(0)
  expect(Number(repl.get('applied_lsn'))).toBe(lsnX)
  // It retries at a bounded interval, and keeps refusing.
  const refusals = (b.stderr().match(/DIVERGED: the primary's log disagrees/g) ?? []).length
  await waitFor(() => (b.stderr().match(/DIVERGED: the primary's log disagrees/g) ?? []).length > refusals, 10_000, 'a retried refusal')
  expect(await bc.exists('y:0')).toBe(0)
}, 60_000)

/**
 * `freshet lag` against a real primary and backups: one sample with --once
 * names every backup with its lag in ms and bytes and its applied LSN (and,
 * given a backup, each stage's lag over the last second), and a
 * wrong or missing password or an unreachable node is a clear error with
 * exit status 2, never a crash or a line of garbage.
 */
import { spawnSync } from 'node:child_process'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { MAIN_JS } from '../../src/cli/spawn.js'
import { Cluster, cleanupClusters, disconnect, info, lsnOf, sleep } from '../helpers/cluster.js'

let cluster: Cluster

beforeAll(async () => {
  cluster = await Cluster.start({ commit: 'async', workers: [1, 2] })
}, 60_000)

afterAll(async () => {
  await cleanupClusters()
})

function lag(args: string[]): { status: number | null, stdout: string, stderr: string } {
  const r = spawnSync(process.execPath, [MAIN_JS, 'lag', ...args], { encoding: 'utf8', timeout: 20_000 })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

test('lag --once shows every backup of a primary, and a backup\'s own link', async () => {
  const c = cluster.primaryClient()
  for (let i = 0; i < 100; i++) await c.set(`lag:${i}`, 'x')
  const lsn = await lsnOf(c)
  disconnect(c)
  await cluster.waitAllApplied(lsn)
  const password = cluster.password!
  // A backup has applied `lsn`; the primary learns it from the backup's next ack. Sample until the
  // primary shows it for both backups (bounded), instead of assuming the ack already arrived.
  let primary = lag([`127.0.0.1:${cluster.primary.port}`, '--once', '--password', password])
  const appliedAll = (stdout: string): boolean => {
    const applied = [...stdout.matchAll(/applied_lsn=(\d+)/g)].map((m) => Number(m[1]))
    return applied.length === 2 && applied.every((a) => a >= lsn)
  }
  for (let sample = 0; sample < 100 && primary.status === 0 && !appliedAll(primary.stdout); sample++) {
    await sleep(100)
    primary = lag([`127.0.0.1:${cluster.primary.port}`, '--once', '--password', password])
  }
  expect(primary.status).toBe(0)
  const lines = primary.stdout.trim().split('\n')
  expect(lines).toHaveLength(2)
  for (const line of lines) {
    expect(line).toMatch(/ backup\d+ 127\.0\.0\.1:\d+ lag_ms=\d+\.\d+ lag_bytes=\d+ applied_lsn=(\d+) applied_rate=-$/)
    expect(Number(/applied_lsn=(\d+)/.exec(line)![1])).toBeGreaterThanOrEqual(lsn)
  }
  const backup = lag([`127.0.0.1:${cluster.backups[0].port}`, '--once', '--password', password])
  expect(backup.status).toBe(0)
  // Every stage measured the blocks those writes came in (counts since start: the last second's window may be empty by now).
  const b = cluster.backupClient(0)
  const stats = await info(b, 'stats')
  disconnect(b)
  for (const stage of ['received_lag', 'flushed_lag', 'replay_lag']) expect(Number(stats.get(`${stage}_samples`)), stage).toBeGreaterThan(0)
  expect(backup.stdout).toMatch(/ backup link=up lag_ms=\d+\.\d+ lag_bytes=\d+ applied_lsn=\d+ applied_rate=- staleness_ms=\d+\.\d+ received_p50\/p99_ms=\d+\.\d+\/\d+\.\d+ flushed_p50\/p99_ms=\d+\.\d+\/\d+\.\d+ visible_p50\/p99_ms=\d+\.\d+\/\d+\.\d+$/m)
})

test('a missing or wrong password, or an unreachable node, is a clear error (exit 2)', () => {
  const missing = lag([`127.0.0.1:${cluster.primary.port}`, '--once'])
  expect(missing.status).toBe(2)
  expect(missing.stderr).toContain('error (AUTH_FAILED)')
  const wrong = lag([`127.0.0.1:${cluster.primary.port}`, '--once', '--password', 'not-it'])
  expect(wrong.status).toBe(2)
  expect(wrong.stderr).toContain('error (AUTH_FAILED)')
  const down = lag(['127.0.0.1:1', '--once'])
  expect(down.status).toBe(2)
  expect(down.stderr).toContain('error (LINK_DOWN)')
})

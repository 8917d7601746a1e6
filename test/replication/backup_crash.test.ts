/**
 * Backup crash under load: a writer pipelines SETs and INCRs to the primary;
 * backup0 is killed with SIGKILL mid-load, restarted on the same dir (it
 * recovers its own log, cutting any torn tail, and resumes the link from its
 * log end), killed again while it catches up, and restarted again. backup1
 * runs throughout as a control. At the end both backups hold exactly the
 * primary's data: same SCAN+MGET digest, same DBSIZE, and every INCR counter
 * equals the number of INCRs the writer sent (nothing lost, nothing doubled).
 */
import type { Redis } from 'ioredis'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { Cluster, cleanupClusters, digest, info, lsnOf, seededRng, sleep, waitFor, type Rng } from '../helpers/cluster.js'

const COUNTERS = 16
const KEYSPACE = 400
/** Commands per pipeline; a batch stays well under 64 KiB so it arrives as one read. */
const BATCH = 100

let cluster: Cluster
let rng: Rng

beforeAll(async () => {
  rng = seededRng('backup crash load', 0xbac0)
  cluster = await Cluster.start({ commit: 'async', workers: [2, 2] })
}, 60_000)

afterAll(async () => {
  await cleanupClusters()
})

/** Writes batches until `until()` holds; counts INCRs per counter into `incrs`. */
async function writeLoad(client: Redis, incrs: number[], until: () => boolean, batchesMax: number): Promise<number> {
  let batches = 0
  while (!until() && batches < batchesMax) {
    const p = client.pipeline()
    for (let i = 0; i < BATCH - 1; i++) {
      if (rng.int(0, 2) === 0) {
        const c = rng.int(0, COUNTERS - 1)
        p.incr(`ctr:${c}`)
        incrs[c]++
      } else {
        p.set(`key:${rng.int(0, KEYSPACE - 1)}`, `${batches}:${i}:${'v'.repeat(rng.int(0, 200))}`)
      }
    }
    // Each batch ends with a SET (see the segment-boundary test for why not an INCR).
    p.set('last-batch', String(batches))
    const replies = await p.exec()
    expect(replies?.every(([err]) => err === null), 'every write succeeded').toBe(true)
    batches++
  }
  return batches
}

test('a backup killed with SIGKILL under load catches up: nothing lost or doubled', async () => {
  const writer = cluster.primaryClient()
  const incrs = new Array<number>(COUNTERS).fill(0)
  let stop = false
  let batches = 0
  const load = (async () => {
    for (let round = 0; round < 1_000 && !stop; round++) {
      batches += await writeLoad(writer, incrs, () => stop, 5)
      await sleep(5) // pacing only: leaves the event loop to the waits below
    }
  })()
  // Each phase waits for the load to make progress, not for a time: on a slow machine it just takes longer.
  const loadProgress = async (batchesMore: number, what: string): Promise<void> => {
    const target = batches + batchesMore
    await waitFor(() => batches >= target, 30_000, `${batchesMore} more batches ${what}`)
  }
  const flushedLsn = async (client: Redis): Promise<number> => Number((await info(client, 'replication')).get('flushed_lsn'))

  // Load first, until backup0 has flushed some of it (so that its restart has blocks to recover).
  await loadProgress(5, 'before the first kill')
  const before = cluster.backupClient(0)
  await waitFor(async () => await flushedLsn(before) > 0, 10_000, 'backup0 to flush some blocks')
  await cluster.backups[0].node.kill9()
  // The load goes on while backup0 is down.
  await loadProgress(5, 'while backup0 is down')
  const firstRestart = await cluster.restartBackup(0)
  expect(firstRestart.stderr()).toMatch(/recovered [1-9]\d* blocks/)
  // Once it has flushed past what it recovered, kill it again while it catches
  // up, and bring it back once more.
  const probe = cluster.backupClient(0)
  const recovered = Number((await info(probe, 'persistence')).get('recovery_bytes'))
  expect(recovered).toBeGreaterThan(0)
  await waitFor(async () => await flushedLsn(probe) > recovered, 10_000, 'the restarted backup to flush new blocks')
  await cluster.restartBackup(0)
  // The load goes on while it catches up a second time.
  await loadProgress(5, 'after the second restart')
  stop = true
  await load

  expect(batches).toBeGreaterThan(10)
  const lsn = await lsnOf(writer)
  const applied = await cluster.waitAllApplied(lsn)
  for (const a of applied) expect(a).toBeGreaterThanOrEqual(lsn)

  const want = await digest(writer)
  const wantSize = await writer.dbsize()
  expect(want.size).toBe(wantSize)
  for (let c = 0; c < COUNTERS; c++) expect(want.get(`ctr:${c}`), `ctr:${c} on the primary`).toBe(Buffer.from(String(incrs[c])).toString('hex'))

  for (const [i, b] of cluster.backups.entries()) {
    const client = cluster.backupClient(i)
    expect(await client.dbsize(), `backup${i} DBSIZE`).toBe(wantSize)
    const got = await digest(client)
    expect(got.size, `backup${i} key count`).toBe(want.size)
    expect(got, `backup${i} digest`).toEqual(want)
    const counters = await client.mget(...Array.from({ length: COUNTERS }, (_, c) => `ctr:${c}`))
    expect(counters, `backup${i} counters`).toEqual(incrs.map(String))
    const repl = await info(client, 'replication')
    expect(repl.get('link'), `backup${i} link`).toBe('up')
    expect(Number(repl.get('applied_lsn')), `backup${i} applied_lsn`).toBeGreaterThanOrEqual(lsn)
    expect(b.node.proc.exitCode, `backup${i} still running`).toBeNull()
  }
  // The restarted backup resumed from its own log, not from LSN 0.
  const resumed = [...cluster.primary.stderr().matchAll(/synced from LSN (\d+)/g)].map((m) => Number(m[1]))
  expect(resumed.length, `resume points ${resumed.join(', ')}`).toBeGreaterThanOrEqual(4)
  expect(resumed[2], `resume points ${resumed.join(', ')}`).toBe(recovered)
  expect(resumed[resumed.length - 1], `resume points ${resumed.join(', ')}`).toBeGreaterThan(recovered)
}, 90_000)

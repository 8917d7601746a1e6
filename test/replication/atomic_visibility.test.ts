/**
 * Atomic visibility on backups: a writer sets ten keys to the same value i
 * with MSET, or with MULTI { SET × 10 } EXEC, over and over on the primary,
 * while readers on each backup (1 and 3 replay workers; the ten keys fall in
 * partitions of every lane) read all ten keys in a tight loop with MGET and
 * with a read-only MULTI of GETs. Every reply must hold ten equal values
 * (never part of an MSET or a transaction), and what a reader sees never goes
 * back in time.
 */
import type { Redis } from 'ioredis'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { keyHash } from '../../src/codec/hash.js'
import { PARTITION_BITS } from '../../src/constants.js'
import { Cluster, cleanupClusters, lsnOf } from '../helpers/cluster.js'

const KEYS = Array.from({ length: 10 }, (_, i) => `atom:${i + 1}`)
/** The writer goes on until every reader has seen enough (below), at least WRITES_MIN, at most WRITES_MAX. */
const WRITES_MIN = 3_000
const WRITES_MAX = 20_000
const READS_MIN = 50
const DISTINCT_MIN = 5
/** After the last write is applied everywhere, a reader that does not see it within this bound fails. */
const FINAL_READ_TIMEOUT_MS = 15_000
/** Commands the writer pipelines per round trip (one block holds several atomic writes). */
const PIPELINE_DEPTH = 4
const PADDING = 'p'.repeat(120)

let cluster: Cluster

beforeAll(async () => {
  cluster = await Cluster.start({ commit: 'async', workers: [1, 3] })
}, 60_000)

afterAll(async () => {
  await cleanupClusters()
})

function valueOf(i: number): string {
  return `${i}:${PADDING}`
}

interface ReaderResult {
  reads: number
  distinct: number
  torn: string[]
  backwards: string[]
  lastSeen: number
}

function newReaderResult(): ReaderResult {
  return { reads: 0, distinct: 0, torn: [], backwards: [], lastSeen: 0 }
}

/** Reads all keys into `r` (updated live) until `done(r)`; MGET and MULTI/GET×10/EXEC alternate. */
async function readLoop(client: Redis, r: ReaderResult, done: (r: ReaderResult) => boolean): Promise<ReaderResult> {
  const seen = new Set<string>()
  for (let n = 0; !done(r) && n < 1_000_000; n++) {
    let values: Array<string | null>
    if (n % 4 === 3) {
      const multi = client.multi()
      for (const k of KEYS) multi.get(k)
      const replies = await multi.exec()
      values = (replies ?? []).map(([err, v]) => (err !== null ? `error ${String(err)}` : (v as string | null)))
    } else {
      values = await client.mget(...KEYS)
    }
    r.reads++
    if (values.length !== KEYS.length || values.some((v) => v !== values[0])) {
      if (r.torn.length < 5) r.torn.push(JSON.stringify(values.map((v) => v?.split(':')[0] ?? null)))
      continue
    }
    if (values[0] === null) continue
    const i = Number(values[0].split(':')[0])
    seen.add(values[0])
    r.distinct = seen.size
    if (i < r.lastSeen && r.backwards.length < 5) r.backwards.push(`${r.lastSeen} then ${i}`)
    r.lastSeen = Math.max(r.lastSeen, i)
  }
  return r
}

test('the ten keys fall in partitions of every lane of a 3-worker backup (precondition)', () => {
  const lanes = new Set<number>()
  for (const k of KEYS) {
    const b = Buffer.from(k)
    lanes.add((keyHash(b, 0, b.length) >>> (32 - PARTITION_BITS)) % 3)
  }
  expect(lanes.size).toBe(3)
})

test('readers on every backup never see part of an MSET or a MULTI', async () => {
  const writer = cluster.primaryClient()
  // Once the last write is applied everywhere: its number, and a bound for readers to see it.
  let final: { i: number, deadlineMs: number } | null = null
  const progress = cluster.backups.map(() => newReaderResult())
  // A reader stops once it has seen the final state (or the bound passed: the assertions below then fail).
  const readers = cluster.backups.map((_, b) => readLoop(cluster.backupClient(b), progress[b],
    (r) => final !== null && (r.lastSeen >= final.i || Date.now() > final.deadlineMs)))
  // The writer goes on until every reader has done and seen enough: a count, not a time.
  const readersSatisfied = (): boolean => progress.every((r) => r.reads > READS_MIN && r.distinct > DISTINCT_MIN)

  let i = 0
  while (i < WRITES_MAX && (i < WRITES_MIN || !readersSatisfied())) {
    const p = writer.pipeline()
    for (let d = 0; d < PIPELINE_DEPTH; d++) {
      i++
      const v = valueOf(i)
      if (i % 2 === 0) {
        p.mset(...KEYS.flatMap((k) => [k, v]))
      } else {
        // A pipeline queues MULTI/EXEC like any command; ioredis's pipeline type leaves multi() out.
        const tx = p as unknown as { multi(): void, exec(): void }
        tx.multi()
        for (const k of KEYS) p.set(k, v)
        tx.exec()
      }
    }
    const replies = await p.exec()
    expect(replies?.every(([err]) => err === null), 'writes succeeded').toBe(true)
  }
  const lastLsn = await lsnOf(writer)
  // Readers keep going until they have seen the last write, which every backup has applied.
  await cluster.waitAllApplied(lastLsn)
  final = { i, deadlineMs: Date.now() + FINAL_READ_TIMEOUT_MS }
  const results = await Promise.all(readers)

  for (const [b, r] of results.entries()) {
    const label = `backup${b} (workers ${cluster.backups[b].workers})`
    expect(r.torn, `${label}: replies with unequal values`).toEqual([])
    expect(r.backwards, `${label}: reads went back in time`).toEqual([])
    expect(r.reads, `${label}: reads done`).toBeGreaterThan(READS_MIN)
    expect(r.distinct, `${label}: distinct states observed while writes went on`).toBeGreaterThan(DISTINCT_MIN)
    expect(r.lastSeen, `${label}: final state`).toBe(i)
  }
  for (const b of cluster.backups.keys()) {
    const final = await cluster.backupClient(b).mget(...KEYS)
    expect(final).toEqual(KEYS.map(() => valueOf(i)))
  }
}, 60_000)

/**
 * Segment boundaries, end to end. A block never straddles two segments: when
 * the primary opens a block whose reservation does not fit the rest of the
 * current segment, the block starts the next segment. The backup must put
 * every block exactly where the primary put it.
 *
 * Here segment 0 is filled until exactly 80 bytes are left, then a write
 * command that reserves more than it writes opens the next block:
 *
 *   - INCR of a new key reserves align8(16 + key + 20) = 40 bytes for a
 *     1-byte value (writes 24): 48 + 40 > 80, so the primary starts the
 *     block at segment 1, although the 72-byte block it seals would fit;
 *   - DEL of an absent key reserves room for a tombstone and writes nothing,
 *     and a SET pipelined behind it (same event-loop turn) lands in the block
 *     that DEL opened at segment 1.
 *
 * The backup must apply that block (WAITLSN on its LSN).
 */
import type { Redis } from 'ioredis'
import { afterEach, expect, test } from 'vitest'
import { Cluster, cleanupClusters, lsnOf, waitApplied } from '../helpers/cluster.js'

const SEGMENT_BYTES = 1 << 20
const BLOCK_HEADER_BYTES = 48
const OP_HEADER_BYTES = 16

afterEach(async () => {
  await cleanupClusters()
})

const align8 = (n: number): number => Math.ceil(n / 8) * 8

/** SETs, one block each, until exactly `remaining` bytes are left in segment 0. Returns the LSN. */
async function fillSegmentTail(c: Redis, remaining: number): Promise<number> {
  let end = 0
  for (let i = 0; i < 100 && SEGMENT_BYTES - end > 300_000; i++) {
    await c.set(`fill:${i}`, 'x'.repeat(200_000))
    end = await lsnOf(c)
  }
  const key = 'fill:last'
  const opBytes = SEGMENT_BYTES - remaining - end - BLOCK_HEADER_BYTES
  await c.set(key, 'y'.repeat(opBytes - OP_HEADER_BYTES - key.length))
  end = await lsnOf(c)
  expect(end, 'segment 0 filled to the planned tail').toBe(SEGMENT_BYTES - remaining)
  return end
}

async function expectApplied(cluster: Cluster, lsn: number): Promise<void> {
  let applied = -1
  let failure = ''
  try {
    applied = await waitApplied(cluster.backups[0].port, lsn, 15_000)
  } catch (err) {
    const lines = cluster.backups[0].stderr().split('\n').filter((l) => /closing link/.test(l))
    failure = `WAITLSN: ${String((err as Error).message).slice(0, 120)}; backup log (${lines.length} lines like it): ${lines[0] ?? 'none'}`
  }
  if (failure !== '') expect.fail(`the backup never applied the block ending at LSN ${lsn}. ${failure}`)
  expect(applied).toBeGreaterThanOrEqual(lsn)
}

test('INCR of a new key that opens the next segment replicates', async () => {
  const cluster = await Cluster.start({ commit: 'async', workers: [2] })
  const c = cluster.primaryClient()
  await fillSegmentTail(c, 80)
  expect(await c.incr('counter')).toBe(1)
  const lsn = await lsnOf(c)
  // The primary started the INCR's block at segment 1: reservation 48 + 40 > 80.
  expect(lsn).toBe(SEGMENT_BYTES + BLOCK_HEADER_BYTES + align8(OP_HEADER_BYTES + 'counter'.length + 1))
  await expectApplied(cluster, lsn)
  expect(await cluster.backupClient(0).get('counter')).toBe('1')
}, 60_000)

test('a SET pipelined behind a DEL of an absent key, at a segment tail, replicates', async () => {
  const cluster = await Cluster.start({ commit: 'async', workers: [2] })
  const c = cluster.primaryClient()
  await fillSegmentTail(c, 80)
  const absent = 'absent:' + 'k'.repeat(100)
  const replies = await c.pipeline().del(absent).set('s', 'v').exec()
  expect(replies?.map(([err, v]) => (err === null ? v : String(err)))).toEqual([0, 'OK'])
  const lsn = await lsnOf(c)
  expect(lsn, 'the SET went into the block DEL opened at segment 1').toBe(SEGMENT_BYTES + BLOCK_HEADER_BYTES + align8(OP_HEADER_BYTES + 2))
  await expectApplied(cluster, lsn)
  expect(await cluster.backupClient(0).get('s')).toBe('v')
}, 60_000)

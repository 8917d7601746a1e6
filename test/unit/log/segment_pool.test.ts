/**
 * Released segment buffers are reused, not left to the GC (a SharedArrayBuffer
 * goes only once every isolate that saw it has collected it): a backup's burst
 * of releases fits the pool and the next new segments take those buffers; a
 * burst's leftovers under steady churn are trimmed back to the pool's floor
 * within one trim window; the counters say what was allocated and dropped.
 */
import { expect, test } from 'vitest'
import { POOL_TRIM_WINDOW, SEGMENT_POOL_KEEP, SEGMENT_POOL_MAX, SegmentStore } from '../../../src/log/segment_store.js'

const S = 64 * 1024

test('a burst of released segments as large as the pool is reused by the next new segments', () => {
  const store = new SegmentStore(S)
  store.segmentFor(9 * S + 1)
  expect(store.buffersAllocated).toBe(10)
  // A backup releases a burst: segments 0..SEGMENT_POOL_MAX-1 at once.
  expect(store.releaseBelow(SEGMENT_POOL_MAX)).toBe(SEGMENT_POOL_MAX)
  expect(store.pooledBytes()).toBe(SEGMENT_POOL_MAX * S)
  expect(store.buffersDropped).toBe(0)
  // The tail takes them back: no new buffer.
  store.segmentFor((9 + SEGMENT_POOL_MAX) * S + 1)
  expect(store.buffersAllocated).toBe(10)
  expect(store.pooledBytes()).toBe(0)
  // One more than the pool holds: that one goes to the GC (and is counted).
  expect(store.releaseBelow(2 * SEGMENT_POOL_MAX + 1)).toBe(SEGMENT_POOL_MAX + 1)
  expect(store.buffersDropped).toBe(1)
  expect(store.pooledBytes()).toBe(SEGMENT_POOL_MAX * S)
})

test('under steady churn a burst\'s leftovers are trimmed to the floor within a trim window', () => {
  const store = new SegmentStore(S)
  store.segmentFor(9 * S + 1)
  store.releaseBelow(5)
  expect(store.pooledBytes()).toBe(5 * S)
  // Steady churn: each new segment comes with one released (the pool never runs dry).
  let newest = 9
  let oldest = 5
  for (let i = 0; i < 2 * POOL_TRIM_WINDOW; i++) {
    store.releaseBelow(++oldest)
    store.segmentFor(++newest * S + 1)
  }
  expect(store.pooledBytes()).toBe(SEGMENT_POOL_KEEP * S)
  // Trimmed ones were dropped once; no new buffer was needed.
  expect(store.buffersDropped).toBe(5 - SEGMENT_POOL_KEEP)
  expect(store.buffersAllocated).toBe(10)
})

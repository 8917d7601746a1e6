/**
 * Released segment buffers are reused, not left to the GC (a SharedArrayBuffer
 * goes only once every isolate that saw it has collected it): a backup's burst
 * of releases fits the pool and the next new segments take those buffers;
 * the counters say what was allocated and what was dropped.
 */
import { expect, test } from 'vitest'
import { SEGMENT_POOL_MAX, SegmentStore } from '../../../src/log/segment_store.js'

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

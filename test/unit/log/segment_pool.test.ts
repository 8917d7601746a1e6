/**
 * Released segment buffers are reused, not left to the GC (a SharedArrayBuffer
 * goes only once every isolate that saw it has collected it): a burst of
 * releases fits the pool and the next new segments take those buffers; the
 * pool stays within the room the node gives it (its memory limit) and lets a
 * buffer unused for POOL_IDLE_MS go; the counters say what was allocated and
 * what was dropped. Pooled buffers are not retained log.
 */
import { expect, test } from 'vitest'
import { advanceClock } from '../../../src/io/clock.js'
import { POOL_IDLE_MS, SEGMENT_POOL_MAX, SegmentStore } from '../../../src/log/segment_store.js'

const S = 64 * 1024

test('a burst of released segments is reused by the next new segments, up to the pool count', () => {
  const n = SEGMENT_POOL_MAX + 1
  const store = new SegmentStore(S)
  store.segmentFor((n + 3) * S + 1)
  expect(store.buffersAllocated).toBe(n + 4)
  // A burst: segments 0..SEGMENT_POOL_MAX-1 at once.
  expect(store.releaseBelow(SEGMENT_POOL_MAX)).toBe(SEGMENT_POOL_MAX)
  expect(store.pooledBytes()).toBe(SEGMENT_POOL_MAX * S)
  expect(store.retainedBytes()).toBe(4 * S + S)
  expect(store.buffersDropped).toBe(0)
  // The tail takes them back: no new buffer.
  store.segmentFor((n + 3 + SEGMENT_POOL_MAX) * S + 1)
  expect(store.buffersAllocated).toBe(n + 4)
  expect(store.pooledBytes()).toBe(0)
  // One more than the pool holds: that one goes to the GC (and is counted).
  expect(store.releaseBelow(2 * SEGMENT_POOL_MAX + 1)).toBe(SEGMENT_POOL_MAX + 1)
  expect(store.buffersDropped).toBe(1)
  expect(store.pooledBytes()).toBe(SEGMENT_POOL_MAX * S)
})

test('the pool holds no more than the room the node gives it', () => {
  const store = new SegmentStore(S)
  store.poolRoomBytes = () => 3 * S
  store.segmentFor(9 * S + 1)
  expect(store.releaseBelow(5)).toBe(5)
  expect(store.pooledBytes()).toBe(3 * S)
  expect(store.buffersDropped).toBe(2)
  // No room at all (the node is at its limit): a release drops its buffer.
  store.poolRoomBytes = () => 0
  expect(store.releaseBelow(6)).toBe(1)
  expect(store.pooledBytes()).toBe(3 * S)
  expect(store.buffersDropped).toBe(3)
})

test('a pooled buffer unused for POOL_IDLE_MS goes at the next release or new segment', () => {
  const store = new SegmentStore(S)
  store.segmentFor(5 * S + 1)
  expect(store.releaseBelow(3)).toBe(3)
  expect(store.pooledBytes()).toBe(3 * S)
  advanceClock(POOL_IDLE_MS / 2)
  expect(store.releaseBelow(4)).toBe(1)
  expect(store.pooledBytes()).toBe(4 * S)
  expect(store.buffersDropped).toBe(0)
  // The first three have waited past POOL_IDLE_MS, the fourth not yet.
  advanceClock(POOL_IDLE_MS / 2 + 1)
  store.segmentFor(6 * S + 1)
  expect(store.buffersDropped).toBe(3)
  expect(store.pooledBytes()).toBe(0)
  expect(store.buffersAllocated).toBe(6)
})

test('the last buffer released is the first reused, so a burst beyond what churn needs idles at the bottom and goes', () => {
  const store = new SegmentStore(S)
  store.segmentFor(9 * S + 1)
  // A burst of 4, then steady churn: one released, one taken, for longer than POOL_IDLE_MS.
  expect(store.releaseBelow(4)).toBe(4)
  let tail = 10
  let oldest = 4
  for (let t = 0; t < 8; t++) {
    advanceClock(POOL_IDLE_MS / 4)
    expect(store.releaseBelow(++oldest)).toBe(1)
    store.segmentFor(tail++ * S + 1)
  }
  // The burst's 4 went after POOL_IDLE_MS unused (the churn took the top buffer every time); none was allocated anew.
  expect(store.buffersDropped).toBe(4)
  expect(store.pooledBytes()).toBe(0)
  expect(store.buffersAllocated).toBe(10)
})

test('a buffer the node may not reuse yet (its bytes may still be on their way to a backup) is passed over', () => {
  const store = new SegmentStore(S)
  store.segmentFor(5 * S + 1)
  let floor = 0
  store.reusable = (releasedAt) => floor >= releasedAt
  store.endLsn = 3 * S
  expect(store.releaseBelow(1)).toBe(1)
  store.endLsn = 4 * S
  expect(store.releaseBelow(2)).toBe(1)
  floor = 3 * S
  // The newest release (at log end 4S) may not be reused yet; the one before it may.
  store.segmentFor(6 * S + 1)
  expect(store.buffersAllocated).toBe(6)
  expect(store.pooledBytes()).toBe(S)
  floor = 0
  store.segmentFor(7 * S + 1)
  expect(store.buffersAllocated).toBe(7)
})

/**
 * The INFO memory lines a primary and a backup share: what the log and the
 * index hold, computed the same way on both roles (a backup's live bytes come
 * from what its replay installs, the primary's from what it writes).
 */
import type { Index } from '../index/indirection.js'
import type { SegmentStore } from '../log/segment_store.js'
import type { InfoLines } from '../node.js'
import { snapshotInfo } from '../view/snapshot.js'

export interface MemoryFigures {
  usedBytes: number
  maxMemoryBytes: number
  /** Bytes of every key's newest version (tombstones that must stay included). */
  liveBytes: number
  /** Log bytes a snapshot keeps from release. */
  pinnedBytes: number
}

export function memoryInfo(store: SegmentStore, index: Index, m: MemoryFigures): InfoLines {
  const held = store.retainedBytes()
  return [
    ['used_memory', m.usedBytes], ['maxmemory', m.maxMemoryBytes],
    ['live_bytes', m.liveBytes], ['log_bytes', held], ['segment_pool_bytes', store.pooledBytes()],
    ['segment_buffers_allocated', store.buffersAllocated], ['segment_buffers_dropped', store.buffersDropped],
    ['index_bytes', index.memoryBytes()], ['index_keys', index.slotsUsed()],
    // Of the log held, the share that is live (the cleaner's measure; 0 with nothing held).
    ['utilisation', held > 0 ? (m.liveBytes / held).toFixed(3) : '0'],
    ...snapshotInfo(store), ['pinned_bytes', m.pinnedBytes],
  ]
}

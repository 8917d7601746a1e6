/**
 * Figures a primary and a backup both report: the INFO memory lines (what
 * the log and the index hold, computed the same way on both roles: a
 * backup's live bytes come from what its replay installs, the primary's from
 * what it writes) and the Metrics of lines both roles show.
 */
import type { Index } from '../index/indirection.js'
import type { SegmentStore } from '../log/segment_store.js'
import type { InfoLines } from '../node.js'
import { snapshotInfo } from '../view/snapshot.js'
import { counter, gauge } from './metric.js'

export interface MemoryFigures {
  usedBytes: number
  maxMemoryBytes: number
  /** Bytes of every key's newest version (tombstones that must stay included). */
  liveBytes: number
  /** Log bytes a snapshot keeps from release. */
  pinnedBytes: number
}

const M = {
  used: gauge('freshet_memory_used_bytes', 'Log segments held plus the index (what --max-memory bounds)', 'bytes'),
  max: gauge('freshet_memory_max_bytes', '--max-memory', 'bytes'),
  live: gauge('freshet_memory_live_bytes', 'Bytes of the newest versions of live keys (and tombstones that must stay)', 'bytes'),
  log: gauge('freshet_memory_log_bytes', 'Bytes of the retained log', 'bytes'),
  pool: gauge('freshet_memory_segment_pool_bytes', 'Bytes of free segment buffers kept for reuse (not in used)', 'bytes'),
  dropped: counter('freshet_memory_segment_buffers_dropped_total', 'Released segment buffers left to the garbage collector'),
  index: gauge('freshet_memory_index_bytes', 'Bytes of the index tables', 'bytes'),
  keys: gauge('freshet_index_keys', 'Index slots in use (live keys and tombstones not yet dropped)'),
  pinned: gauge('freshet_memory_pinned_bytes', 'Bytes held only for open snapshots', 'bytes'),
}

/** Lines both roles show. */
export const EPOCH = gauge('freshet_epoch', 'The epoch this node is in')
export const LOG_DISK_BYTES = gauge('freshet_log_disk_bytes', 'Bytes of the log\'s segment files', 'bytes')
export const FSYNCS = counter('freshet_log_fsyncs_total', 'fdatasyncs of the log')

export function memoryInfo(store: SegmentStore, index: Index, m: MemoryFigures): InfoLines {
  const held = store.retainedBytes()
  return [
    ['used_memory', m.usedBytes, M.used], ['maxmemory', m.maxMemoryBytes, M.max],
    ['live_bytes', m.liveBytes, M.live], ['log_bytes', held, M.log], ['segment_pool_bytes', store.pooledBytes(), M.pool],
    ['segment_buffers_allocated', store.buffersAllocated], ['segment_buffers_dropped', store.buffersDropped, M.dropped],
    ['index_bytes', index.memoryBytes(), M.index], ['index_keys', index.slotsUsed(), M.keys],
    // Of the log held, the share that is live (the cleaner's measure; 0 with nothing held).
    ['utilisation', held > 0 ? (m.liveBytes / held).toFixed(3) : '0'],
    ...snapshotInfo(store), ['pinned_bytes', m.pinnedBytes, M.pinned],
  ]
}

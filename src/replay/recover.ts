/**
 * Recovery of a node's state from its durable log, shared by both roles: the
 * log files are read and checked (log/recover.ts decides torn tail or
 * damage), then the index is rebuilt with the same applyRange() replay
 * workers run, on the replay pool for a large log.
 */
import { Index } from '../index/indirection.js'
import type { LogFiles, RecoveryResult } from '../log/log_file.js'
import { blockStartEndingAt, type SegmentStore } from '../log/segment_store.js'
import { applyRange } from './apply.js'
import { ReplayScheduler } from './scheduler.js'

export interface RecoveryReport extends RecoveryResult {
  replayMs: number
  readMs: number
  opsInstalled: number
}

/** Logs at least this large are recovered on the worker pool; smaller ones inline (starting the pool costs about 0.1-0.2 s, what inline recovery of ~64 MB takes). */
export const PARALLEL_RECOVERY_BYTES_MIN = 64 * 1024 * 1024

export interface Recovered {
  index: Index
  report: RecoveryReport
  /** The pool that recovered the log (parallel recovery only), replayed up to `replayedLsn`. */
  scheduler: ReplayScheduler | null
  /** The index holds the log up to here (a block end): min(log end, replayToLsn). */
  replayedLsn: number
  /** Bytes of the index's heads (HeadBytes). */
  headBytes: number
}

/**
 * Recovers the log into `store` and rebuilds the index with the replay code:
 * a large log is scanned (read + checksums) segment by segment in parallel on
 * a replay pool of `workers` threads and indexed on its lanes; a small one
 * inline, where starting threads would cost more than it saves.
 *
 * Only the log up to `replayToLsn` (a block end of the log, or past its end)
 * is installed: a backup installs only what its primary confirmed durable;
 * the rest of its log stays received-but-unconfirmed.
 */
export async function recoverInto(files: LogFiles, store: SegmentStore, workers: number, replayToLsn = Number.MAX_SAFE_INTEGER): Promise<Recovered> {
  const t0 = performance.now()
  if (workers > 1 && files.bytesOnDisk() >= PARALLEL_RECOVERY_BYTES_MIN) {
    const index = new Index()
    const scheduler = new ReplayScheduler({
      workers, store, index, onVisible: () => {}, onError: (err) => { throw err },
    }, 0)
    const result = await files.recover(store, (jobs) => scheduler.scan(jobs))
    // The log starts at its horizon (the segments below it were released).
    await scheduler.resetTo(store.horizonLsn())
    const t1 = performance.now()
    index.presize(result.keyCount)
    const replayedLsn = replayLimit(store, result.endLsn, replayToLsn)
    await scheduler.replayTo(replayedLsn)
    const t2 = performance.now()
    return { index, scheduler, headBytes: scheduler.heads.bytes, replayedLsn, report: { ...result, readMs: t1 - t0, replayMs: t2 - t1, opsInstalled: scheduler.installedTotal } }
  }
  const result = await files.recover(store)
  const t1 = performance.now()
  const replayedLsn = replayLimit(store, result.endLsn, replayToLsn)
  const index = Index.withCapacity(result.keyCount)
  let ops = 0
  const heads = { bytes: 0 }
  for (const segment of store.segments) {
    const committed = Math.min(segment.committedBytes(), replayedLsn - segment.baseLsn)
    if (committed > 0) ops += applyRange(store, segment.id, 0, committed, index.tables, 0, 1, heads)
  }
  const t2 = performance.now()
  // applyRange swapped grown tables in place; a new Index recounts their bytes.
  return { index: new Index(index.tables), scheduler: null, headBytes: heads.bytes, replayedLsn, report: { ...result, readMs: t1 - t0, replayMs: t2 - t1, opsInstalled: ops } }
}

/** min(log end, replayToLsn) if that is a block end of the recovered log; else its horizon (install nothing: always safe). */
function replayLimit(store: SegmentStore, endLsn: number, replayToLsn: number): number {
  if (replayToLsn >= endLsn) return endLsn
  return blockStartEndingAt(store, replayToLsn) >= 0 ? replayToLsn : store.horizonLsn()
}

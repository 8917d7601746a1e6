/**
 * The replay task descriptor: what the scheduler posts to a worker. It holds
 * LSN offsets and SharedArrayBuffer handles only (shared, never copied): the
 * log bytes stay in the segments, the index in its partition tables.
 */
import type { ScanJob } from '../log/segment_scan.js'

export interface ReplayTask {
  /** Install the ranges' ops. */
  type: 'replay'
  segmentBytes: number
  /** Every retained segment's slot and buffer (keys of older versions may live in any of them). */
  slots: number[]
  buffers: SharedArrayBuffer[]
  /** Ranges of whole blocks, in LSN order: (segmentId, start offset, end offset) triples. */
  ranges: number[]
  lane: number
  laneCount: number
  /** Partition tables by partition; only this lane's partitions are written. */
  tables: SharedArrayBuffer[]
  /** SegmentStore.dropSignal's buffer: segment buffers the main thread has dropped, counted. */
  dropSignal: SharedArrayBuffer
}

/** Recovery: read one segment file into its SAB and validate its blocks. */
export interface ScanTask {
  type: 'scan'
  job: ScanJob
}

export type WorkerTask = ReplayTask | ScanTask

export interface ReplayResult {
  installed: number
  /** Head bytes installed less those replaced (HeadBytes). */
  headBytes: number
  /** Partitions whose table grew, with the new table. */
  grownPartitions: number[]
  grownTables: SharedArrayBuffer[]
  cpuMs: number
}

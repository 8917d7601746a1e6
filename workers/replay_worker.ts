/**
 * Piscina entry for replay workers: turns a task descriptor into views (made
 * per task, kept by no one after it) and runs the shared apply code over the range;
 * at recovery it also scans segment files (read + validate) in parallel.
 * The worker owns the partitions of its task's lane for the task's duration:
 * the scheduler never runs two tasks of one lane at once.
 */
import { applyRange } from '../src/replay/apply.js'
import { initHash } from '../src/codec/hash.js'
import type { LogSegments } from '../src/index/indirection.js'
import { scanSegment, type ScanResult } from '../src/log/segment_scan.js'
import type { ReplayResult, ReplayTask, WorkerTask } from '../src/replay/task.js'

// Checksums (recovery scans) need the wasm hasher; load it once per worker.
await initHash()

/**
 * Views of the task's segments by slot, made for this task only: a worker
 * keeps no segment's buffer between tasks, so a segment the main thread
 * released (and dropped) is not held alive here until this isolate's next
 * full GC (which, in a worker that allocates little, may be minutes away).
 * A few dozen small objects per task, none per record.
 */
function viewSegments(task: ReplayTask): LogSegments {
  const log: LogSegments = { segmentBytes: task.segmentBytes, u8: [], dv: [] }
  for (let i = 0; i < task.slots.length; i++) {
    const sab = task.buffers[i]
    log.u8[task.slots[i]] = new Uint8Array(sab)
    log.dv[task.slots[i]] = new DataView(sab)
  }
  return log
}

export default function run(task: WorkerTask): ReplayResult | ScanResult {
  return task.type === 'scan' ? scanSegment(task.job) : replay(task)
}

function replay(task: ReplayTask): ReplayResult {
  const t0 = performance.now()
  const log = viewSegments(task)
  const tables: Int32Array[] = []
  const before: Int32Array[] = []
  for (let p = 0; p < task.tables.length; p++) {
    const t = new Int32Array(task.tables[p])
    tables.push(t)
    before.push(t)
  }
  let installed = 0
  const heads = { bytes: 0 }
  for (let i = 0; i < task.ranges.length; i += 3) {
    installed += applyRange(log, task.ranges[i], task.ranges[i + 1], task.ranges[i + 2], tables, task.lane, task.laneCount, heads)
  }
  const grownPartitions: number[] = []
  const grownTables: SharedArrayBuffer[] = []
  for (let p = 0; p < tables.length; p++) {
    if (tables[p] !== before[p]) {
      grownPartitions.push(p)
      grownTables.push(tables[p].buffer as SharedArrayBuffer)
    }
  }
  return { installed, headBytes: heads.bytes, grownPartitions, grownTables, cpuMs: performance.now() - t0 }
}

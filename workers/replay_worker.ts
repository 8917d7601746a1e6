/**
 * Piscina entry for replay workers: turns a task descriptor into views (made
 * per task, kept by no one after it) and runs the shared apply code over the range;
 * at recovery it also scans segment files (read + validate) in parallel.
 * The worker owns the partitions of its task's lane for the task's duration:
 * the scheduler never runs two tasks of one lane at once.
 */
import v8 from 'node:v8'
import vm from 'node:vm'
import { applyRange } from '../src/replay/apply.js'
import { initHash } from '../src/codec/hash.js'
import type { LogSegments } from '../src/index/indirection.js'
import { scanSegment, type ScanResult } from '../src/log/segment_scan.js'
import type { ReplayResult, ReplayTask, WorkerTask } from '../src/replay/task.js'

// Checksums (recovery scans) need the wasm hasher; load it once per worker.
await initHash()

/**
 * A full collection of this worker's heap, run when the main thread has
 * dropped segment buffers since the last one (ReplayTask.dropSignal). A
 * SharedArrayBuffer's memory goes only once every isolate that held a handle
 * to it has collected that handle, and the handles this worker's past tasks
 * made are garbage it may not collect for minutes (it allocates little):
 * the soak showed each dropped 1 MiB buffer staying in a backup's RSS.
 * A worker's heap is small (a few ms), it runs off the main thread, and
 * drops are rare (a burst's spare buffers once they idle).
 */
v8.setFlagsFromString('--expose-gc')
const collect = vm.runInNewContext('gc') as () => void
let dropsSeen = 0

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
  // Acquire: pairs with the main thread's add at each drop (an older count only delays the collection to a later task).
  const drops = Atomics.load(new Int32Array(task.dropSignal), 0)
  if (drops !== dropsSeen) {
    dropsSeen = drops
    // This task's views and tables go out of scope with it; those of past tasks are what this frees.
    collect()
  }
  return { installed, headBytes: heads.bytes, grownPartitions, grownTables, cpuMs: performance.now() - t0 }
}

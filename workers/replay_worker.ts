/**
 * Piscina entry for replay workers: turns a task descriptor into views (cached
 * per segment, created once) and runs the shared apply code over the range;
 * at recovery it also scans segment files (read + validate) in parallel.
 * The worker owns the partitions of its task's lane for the task's duration:
 * the scheduler never runs two tasks of one lane at once.
 */
import { applyRange } from '../src/replay/apply.js'
import { initHash } from '../src/codec/hash.js'
import type { LogSegments } from '../src/index/indirection.js'
import { scanSegment, type ScanResult } from '../src/log/log_file.js'
import type { ReplayResult, ReplayTask, WorkerTask } from '../src/replay/task.js'

// Checksums (recovery scans) need the wasm hasher; load it once per worker.
await initHash()

const log: LogSegments = { segmentBytes: 0, u8: [], dv: [] }
/** Buffers by slot, as last viewed; a released segment's buffer is dropped here so its memory can go. */
const buffers: Array<SharedArrayBuffer | undefined> = []
let viewedStoreId = 0
let viewedLayout = -1

/** Views of the task's segments by slot, created once per segment; views of released segments dropped. */
function viewSegments(task: ReplayTask): void {
  if (viewedStoreId !== task.storeId) {
    viewedStoreId = task.storeId
    viewedLayout = -1
    log.segmentBytes = task.segmentBytes
    log.u8.length = 0
    log.dv.length = 0
    buffers.length = 0
  }
  if (viewedLayout === task.layoutVersion) return
  viewedLayout = task.layoutVersion
  const keep = new Set<number>()
  for (let i = 0; i < task.slots.length; i++) {
    const slot = task.slots[i]
    const sab = task.buffers[i]
    keep.add(slot)
    if (buffers[slot] === sab) continue
    buffers[slot] = sab
    log.u8[slot] = new Uint8Array(sab)
    log.dv[slot] = new DataView(sab)
  }
  for (let slot = 0; slot < buffers.length; slot++) {
    if (buffers[slot] === undefined || keep.has(slot)) continue
    buffers[slot] = undefined
    delete log.u8[slot]
    delete log.dv[slot]
  }
}

export default function run(task: WorkerTask): ReplayResult | ScanResult {
  return task.type === 'scan' ? scanSegment(task.job) : replay(task)
}

function replay(task: ReplayTask): ReplayResult {
  const t0 = performance.now()
  viewSegments(task)
  const tables: Int32Array[] = []
  const before: Int32Array[] = []
  for (let p = 0; p < task.tables.length; p++) {
    const t = new Int32Array(task.tables[p])
    tables.push(t)
    before.push(t)
  }
  let installed = 0
  for (let i = 0; i < task.ranges.length; i += 3) {
    installed += applyRange(log, task.ranges[i], task.ranges[i + 1], task.ranges[i + 2], tables, task.lane, task.laneCount)
  }
  const grownPartitions: number[] = []
  const grownTables: SharedArrayBuffer[] = []
  for (let p = 0; p < tables.length; p++) {
    if (tables[p] !== before[p]) {
      grownPartitions.push(p)
      grownTables.push(tables[p].buffer as SharedArrayBuffer)
    }
  }
  return { installed, grownPartitions, grownTables, cpuMs: performance.now() - t0 }
}

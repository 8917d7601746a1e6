/**
 * Replay scheduler (backup control plane): runs the log through the piscina
 * worker pool. Work is split by key-hash partition into `laneCount` lanes
 * (lane l owns partitions p with p % laneCount === l), so every partition
 * table has exactly one writer and no two tasks race on a slot. Each lane
 * independently chases the received LSN: when its previous task finishes it
 * takes everything received since (up to TASK_BYTES_MAX, across segments) as
 * one coarse task (batches grow under load, stay small when idle).
 *
 * A trickle (a small range while every lane is idle) is applied on the
 * calling thread instead, for latency; batches under load go to the pool.
 *
 * The visible LSN is the minimum over lanes of what each has applied; it is
 * always a block end, so a block (and any MULTI or MSET inside it) becomes
 * visible all at once. Grown tables come back in task results and are swapped
 * into the index before the lane's progress counts as applied.
 */
import { pathToFileURL } from 'node:url'
import { Piscina } from 'piscina'
import { compiledPath } from '../dist_path.js'
import { assert } from '../assert.js'
import { YOUNG_SEMI_SPACE_MB } from '../constants.js'
import type { HeadBytes, Index } from '../index/indirection.js'
import type { SegmentStore } from '../log/segment_store.js'
import type { ReplayResult, ReplayTask, ScanTask } from './task.js'
import { applyRange, sweepRange } from './apply.js'

/** Ranges up to this size, arriving while every lane is idle, are applied inline (about 0.2 ms of work). */
export const INLINE_REPLAY_BYTES_MAX = 64 * 1024
/** A lane task covers at most this much log, so progress (visibility) stays granular in bulk. */
const TASK_BYTES_MAX = 256 * 1024 * 1024
import type { ScanJob, ScanResult } from '../log/segment_scan.js'

export interface SchedulerOptions {
  workers: number
  store: SegmentStore
  index: Index
  /** Called when the visible LSN advances. */
  onVisible: (visibleLsn: number) => void
  onError: (err: unknown) => void
  /** An existing pool of `workers` threads to run on (kept open by close()); default: a new one. */
  pool?: Piscina
}

export function createReplayPool(workers: number): Piscina {
  return new Piscina({
    filename: pathToFileURL(compiledPath('../../workers/replay_worker.js', import.meta.url)).href,
    minThreads: workers,
    maxThreads: workers,
    // Lanes never have more than one task each in flight.
    maxQueue: workers * 2,
    idleTimeout: 2 ** 31 - 1,
    // V8's young generation is three semi-spaces' worth (two halves and the
    // large-object space beside them): the same cap as the main thread's.
    resourceLimits: { maxYoungGenerationSizeMb: 3 * YOUNG_SEMI_SPACE_MB },
  })
}


export class ReplayScheduler {
  readonly laneCount: number
  readonly pool: Piscina
  private readonly ownsPool: boolean
  /** Per lane: LSN up to which the lane's partitions are installed. */
  readonly laneApplied: number[]
  private readonly laneBusy: boolean[]
  private readonly store: SegmentStore
  private readonly index: Index
  /** Replaceable: recovery runs the pool before the backup takes it over. */
  onVisible: (lsn: number) => void
  onError: (err: unknown) => void
  private visibleWaiters: Array<{ lsn: number, resolve: () => void }>
  /** Whole blocks received up to here may be replayed. */
  private targetLsn: number
  visibleLsn: number
  tasksTotal: number
  /** Small ranges applied on the calling thread while every lane was idle. */
  inlineBatchesTotal: number
  installedTotal: number
  /**
   * Bytes of the index's heads (live_bytes: every key's newest version,
   * tombstones included), kept from what replay installs and sweeps drop.
   */
  readonly heads: HeadBytes
  workerCpuMs: number
  closed: boolean
  /** Holders of the partition tables (a sweep, a reset): while any, no lane task starts. */
  private holds: number
  private idleWaiters: Array<() => void>

  constructor(o: SchedulerOptions, startLsn: number) {
    assert(o.workers >= 1, 'at least one worker')
    this.laneCount = o.workers
    this.ownsPool = o.pool === undefined
    this.pool = o.pool ?? createReplayPool(o.workers)
    this.laneApplied = new Array<number>(o.workers).fill(startLsn)
    this.laneBusy = new Array<boolean>(o.workers).fill(false)
    this.store = o.store
    this.index = o.index
    this.onVisible = o.onVisible
    this.onError = o.onError
    this.visibleWaiters = []
    this.targetLsn = startLsn
    this.visibleLsn = startLsn
    this.tasksTotal = 0
    this.inlineBatchesTotal = 0
    this.installedTotal = 0
    this.heads = { bytes: 0 }
    this.workerCpuMs = 0
    this.closed = false
    this.holds = 0
    this.idleWaiters = []
  }

  private allIdle(): boolean {
    for (let lane = 0; lane < this.laneCount; lane++) if (this.laneBusy[lane]) return false
    return true
  }

  /**
   * Resolves once no lane holds a partition; until it does, no new lane task
   * starts. The caller then owns every partition table until it returns from
   * its (synchronous) work and calls resume().
   */
  private quiesce(): Promise<void> {
    this.holds++
    if (this.allIdle()) return Promise.resolve()
    return new Promise((resolve) => this.idleWaiters.push(resolve))
  }

  private resume(): void {
    this.holds--
    if (this.holds > 0) return
    for (let lane = 0; lane < this.laneCount; lane++) this.startLane(lane)
  }

  /**
   * Before segments `ids` are released: drops from the index every head they
   * still hold (tombstones whose previous version lies below `horizonLsn`;
   * sweepRange), on this thread while the lanes are quiet. Resolves to the
   * ids that may go: a segment with a head that must stay is left out. Only
   * tombstones are probed: the relocations that moved every live set were
   * replayed before (the caller waits until they are visible).
   */
  async sweep(ids: readonly number[], horizonLsn: number): Promise<number[]> {
    await this.quiesce()
    const store = this.store
    const tables = this.index.tables.slice()
    const swept: number[] = []
    for (const id of ids) {
      const segment = store.segment(id)
      if (segment !== undefined && sweepRange(store, id, segment.committedBytes(), tables, 0, 1, horizonLsn, this.heads, false) >= 0) swept.push(id)
    }
    this.resume()
    return swept
  }

  /** Backup full resync: forgets all progress; the log restarts empty at `lsn` (lanes are idle: see reset callers). */
  async resetTo(lsn: number): Promise<void> {
    await this.quiesce()
    this.laneApplied.fill(lsn)
    this.heads.bytes = 0
    this.targetLsn = lsn
    this.visibleLsn = lsn
    this.resume()
  }

  /** Whole blocks up to `lsn` are in the segments (published): replay them. */
  advance(lsn: number): void {
    if (lsn <= this.targetLsn) return
    this.targetLsn = lsn
    if (this.holds > 0) return
    if (lsn - this.visibleLsn <= INLINE_REPLAY_BYTES_MAX && this.allLanesIdleAt(this.visibleLsn)) {
      this.replayInline(lsn)
      return
    }
    for (let lane = 0; lane < this.laneCount; lane++) this.startLane(lane)
  }

  private allLanesIdleAt(lsn: number): boolean {
    for (let lane = 0; lane < this.laneCount; lane++) {
      if (this.laneBusy[lane] || this.laneApplied[lane] !== lsn) return false
    }
    return true
  }

  /**
   * A trickle (every lane idle, a small range): the calling thread applies it
   * to all partitions at once, saving two thread hops per block. Safe because
   * no worker holds a partition while every lane is idle.
   */
  private replayInline(lsn: number): void {
    const store = this.store
    const tables = this.index.tables.slice()
    let from = this.visibleLsn
    while (from < lsn) {
      from = store.skipGap(from)
      const segment = store.segmentAt(from)
      if (segment === undefined || from >= lsn) break
      const start = from - segment.baseLsn
      const end = Math.min(segment.committedBytes(), lsn - segment.baseLsn)
      this.installedTotal += applyRange(store, segment.id, start, end, tables, 0, 1, this.heads)
      from = segment.baseLsn + end
    }
    for (let p = 0; p < tables.length; p++) if (tables[p] !== this.index.tables[p]) this.index.replaceTable(p, tables[p])
    this.inlineBatchesTotal++
    for (let lane = 0; lane < this.laneCount; lane++) this.laneApplied[lane] = lsn
    this.publishVisible(lsn)
  }

  private startLane(lane: number): void {
    if (this.laneBusy[lane] || this.closed || this.holds > 0) return
    const store = this.store
    // Everything received since the lane's last task, as whole-block ranges per segment (bounded).
    const ranges: number[] = []
    let from = this.laneApplied[lane]
    let endLsn = from
    let bytes = 0
    while (from < this.targetLsn && bytes < TASK_BYTES_MAX) {
      from = store.skipGap(from)
      const segment = store.segmentAt(from)
      if (segment === undefined || from >= this.targetLsn) break
      const start = from - segment.baseLsn
      const end = Math.min(segment.committedBytes(), this.targetLsn - segment.baseLsn)
      if (end <= start) break
      ranges.push(segment.id, start, end)
      bytes += end - start
      from = segment.baseLsn + end
      endLsn = from
    }
    if (ranges.length === 0) return
    const tables: SharedArrayBuffer[] = []
    for (const t of this.index.tables) tables.push(t.buffer as SharedArrayBuffer)
    const slots: number[] = []
    const buffers: SharedArrayBuffer[] = []
    for (const s of store.segments) {
      slots.push(store.slotOf(s.id))
      buffers.push(s.data)
    }
    const task: ReplayTask = {
      type: 'replay', segmentBytes: store.segmentBytes, slots, buffers, ranges,
      lane, laneCount: this.laneCount, tables, dropSignal: store.dropSignal.buffer as SharedArrayBuffer,
    }
    this.laneBusy[lane] = true
    this.tasksTotal++
    this.pool.run(task).then((result: ReplayResult) => this.laneDone(lane, endLsn, result), (err: unknown) => {
      this.laneBusy[lane] = false
      if (!this.closed) this.onError(err)
    })
  }

  private laneDone(lane: number, endLsn: number, result: ReplayResult): void {
    this.laneBusy[lane] = false
    for (let i = 0; i < result.grownPartitions.length; i++) {
      this.index.replaceTable(result.grownPartitions[i], new Int32Array(result.grownTables[i]))
    }
    this.installedTotal += result.installed
    this.heads.bytes += result.headBytes
    this.workerCpuMs += result.cpuMs
    this.laneApplied[lane] = endLsn
    if (this.idleWaiters.length > 0 && this.allIdle()) {
      const waiters = this.idleWaiters
      this.idleWaiters = []
      for (const w of waiters) w()
    }
    let visible = Number.MAX_SAFE_INTEGER
    for (const v of this.laneApplied) if (v < visible) visible = v
    this.publishVisible(visible)
    this.startLane(lane)
  }

  private publishVisible(visible: number): void {
    if (visible > this.visibleLsn) {
      this.visibleLsn = visible
      this.onVisible(visible)
      if (this.visibleWaiters.length > 0) {
        const ready = this.visibleWaiters.filter((w) => w.lsn <= visible)
        this.visibleWaiters = this.visibleWaiters.filter((w) => w.lsn > visible)
        for (const w of ready) w.resolve()
      }
    }
  }

  /** Replays up to `lsn` (whole blocks already published) and resolves once it is visible. */
  replayTo(lsn: number): Promise<void> {
    if (lsn <= this.visibleLsn) return Promise.resolve()
    const done = new Promise<void>((resolve) => this.visibleWaiters.push({ lsn, resolve }))
    this.advance(lsn)
    return done
  }

  /** Recovery: scans segment files on the pool, at most one per worker at a time. */
  async scan(jobs: ScanJob[]): Promise<ScanResult[]> {
    const results: ScanResult[] = new Array<ScanResult>(jobs.length)
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < jobs.length) {
        const i = next++
        const task: ScanTask = { type: 'scan', job: jobs[i] }
        results[i] = await this.pool.run(task) as ScanResult
      }
    }
    await Promise.all(Array.from({ length: Math.min(this.laneCount, jobs.length) }, worker))
    return results
  }

  async close(): Promise<void> {
    this.closed = true
    if (this.ownsPool) await this.pool.destroy()
  }
}

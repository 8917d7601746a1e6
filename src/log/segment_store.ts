/**
 * Segment store: the retained segments of one node's log, oldest to newest.
 * An LSN maps to (segment id, offset) by division: lsn = id * sizeBytes +
 * offset. Segment `id` lives in slot id mod slotCount (index/ref.ts): the
 * views by slot (`u8`, `dv`) are what refs address. The store owns the log
 * tail (`endLsn`: just past the last whole block) and the horizon (the first
 * retained segment); it allocates segments lazily as the tail reaches them and
 * releases a segment when the cleaner has moved everything live out of it:
 * the oldest (the horizon moves), or one above it, which leaves a hole (a
 * released id between the horizon and the tail; the cleaner picks victims by
 * cost-benefit, primary/cleaner.ts). A hole is never created again: blocks,
 * recovery and replay skip it (skipGap). It knows nothing about block
 * contents or disks.
 */
import { assert } from '../assert.js'
import { BLOCK_HEADER_BYTES } from '../constants.js'
import { blockLength } from '../codec/record.js'
import { dbError } from '../errors.js'
import { nowMs } from '../io/clock.js'
import { REF_SPAN_BYTES, REF_WINDOW_BYTES } from '../index/ref.js'
import { Segment } from './segment.js'
import type { LogSegments } from '../index/indirection.js'

/**
 * Released segment buffers are kept for reuse (the pool) rather than left to
 * the GC. A dropped buffer is not returned soon: a SharedArrayBuffer goes
 * only once every isolate that saw it (replay workers too) has collected its
 * handle, and a worker that allocates little collects rarely, so every drop
 * under churn is RSS that stays (the soak measured backups' RSS climbing by
 * about a dropped buffer per drop). Under steady churn the tail takes a new
 * segment about as often as the cleaner releases one, so a pool that may hold
 * a whole burst of releases (the cleaner's batches; a backup's holes, which
 * become releasable together) never drops anything. Its bound is the room
 * left under the node's memory limit (`poolRoomBytes`), at most
 * SEGMENT_POOL_MAX buffers; a buffer unused for POOL_IDLE_MS goes (memory
 * follows live data after a large delete). Like an allocator's retained free
 * pages, pooled buffers are not in used_memory: INFO shows them as
 * segment_pool_bytes (and they are in RSS).
 */
export const SEGMENT_POOL_MAX = 64
export const POOL_IDLE_MS = 30_000

export class SegmentStore implements LogSegments {
  readonly segmentBytes: number
  readonly slotCount: number
  /** Segments by slot (undefined: free). */
  readonly bySlot: Array<Segment | undefined>
  /** Views by slot, for the apply and lookup code (LogSegments). */
  readonly u8: Uint8Array[]
  readonly dv: DataView[]
  /** Just past the last whole block appended (or received). */
  endLsn: number
  /** Id of the oldest retained segment (the horizon is its base LSN). */
  oldestId: number
  /** Id of the newest segment created; oldestId - 1 when none is. */
  newestId: number
  /**
   * Released ids above the horizon (holes), never created again. A backup in
   * a full resync also learns holes past its newest segment (the stream skips them).
   */
  readonly holes: Set<number>
  /** Segments held (retained, not holes). */
  private retainedCount: number
  /** Called when a segment is created. */
  onSegmentCreated: ((segment: Segment) => void) | null
  /**
   * May a buffer released at log end `releasedAt` be reused now? (A primary's
   * shipping may still have its bytes queued on a socket.) Default: yes.
   */
  reusable: (releasedAt: number) => boolean
  private retainedCache: Segment[] | null
  /** Snapshot LSNs that pin the log (count per LSN): nothing a view at them can reach is released. */
  private readonly pins: Map<number, number>
  /** Called when the last pin at an LSN goes (the cleaner may release what it held). */
  onUnpinned: (() => void) | null
  /** Released segments' buffers, oldest release first, with the log end and the time at their release. */
  private readonly pool: Array<{ segment: Segment, releasedAt: number, releasedMs: number }>
  /** Bytes the pool may hold now (the node's room under its memory limit). Default: no limit but the count. */
  poolRoomBytes: () => number
  /** Segment buffers allocated since the store opened (not taken from the pool). */
  buffersAllocated: number
  /** Released segment buffers left to the GC (the pool was full, or a buffer idled in it). */
  buffersDropped: number
  /**
   * buffersDropped, shared with the replay workers (index 0): a worker that
   * sees it move collects its garbage (workers/replay_worker.ts), so the
   * handles its past tasks made of a dropped buffer do not keep it alive.
   */
  readonly dropSignal: Int32Array

  constructor(segmentBytes: number, startLsn = 0) {
    assert(Number.isInteger(Math.log2(segmentBytes)) && segmentBytes <= REF_SPAN_BYTES, 'segment size is a power of two within the ref ring')
    assert(startLsn % segmentBytes === 0, 'a log starts at a segment boundary')
    this.segmentBytes = segmentBytes
    this.slotCount = REF_SPAN_BYTES / segmentBytes
    // Filled by slot as segments are created (sparse: tiny test segments mean millions of slots).
    this.bySlot = []
    this.u8 = []
    this.dv = []
    this.endLsn = startLsn
    this.oldestId = startLsn / segmentBytes
    this.newestId = this.oldestId - 1
    this.holes = new Set()
    this.retainedCount = 0
    this.onSegmentCreated = null
    this.reusable = () => true
    this.retainedCache = null
    this.pins = new Map()
    this.onUnpinned = null
    this.pool = []
    this.poolRoomBytes = () => Number.MAX_SAFE_INTEGER
    this.buffersAllocated = 0
    this.buffersDropped = 0
    this.dropSignal = new Int32Array(new SharedArrayBuffer(4))
  }

  /** Pins the log for a snapshot at `lsn` (ref-counted; see view/snapshot.ts). */
  pin(lsn: number): void {
    this.pins.set(lsn, (this.pins.get(lsn) ?? 0) + 1)
  }

  unpin(lsn: number): void {
    const n = this.pins.get(lsn)
    assert(n !== undefined && n > 0, 'an unpin matches a pin')
    if (n > 1) { this.pins.set(lsn, n - 1); return }
    this.pins.delete(lsn)
    if (this.onUnpinned !== null) this.onUnpinned()
  }

  /** The oldest pinned snapshot LSN, or Number.MAX_SAFE_INTEGER when nothing is pinned. */
  oldestPin(): number {
    let oldest = Number.MAX_SAFE_INTEGER
    for (const lsn of this.pins.keys()) if (lsn < oldest) oldest = lsn
    return oldest
  }

  /** Open snapshots (pins, counted). */
  pinCount(): number {
    let n = 0
    for (const c of this.pins.values()) n += c
    return n
  }

  /** The base LSN of the oldest retained segment. */
  horizonLsn(): number {
    return this.oldestId * this.segmentBytes
  }

  /** Retained segments, oldest first (holes left out). Cached until the layout changes. */
  get segments(): Segment[] {
    if (this.retainedCache === null) {
      const list: Segment[] = []
      for (let id = this.oldestId; id <= this.newestId; id++) {
        const s = this.segment(id)
        if (s !== undefined) list.push(s)
      }
      this.retainedCache = list
    }
    return this.retainedCache
  }

  segmentId(lsn: number): number {
    return Math.floor(lsn / this.segmentBytes)
  }

  offsetOf(lsn: number): number {
    return lsn - this.segmentId(lsn) * this.segmentBytes
  }

  slotOf(id: number): number {
    return id % this.slotCount
  }

  /** Segment `id` if it is retained. */
  segment(id: number): Segment | undefined {
    const s = this.bySlot[id % this.slotCount]
    return s !== undefined && s.id === id ? s : undefined
  }

  /** The retained segment holding `lsn`, if any. */
  segmentAt(lsn: number): Segment | undefined {
    return this.segment(this.segmentId(lsn))
  }

  /** The segment holding `lsn`, created (zeroed) with any before it if it does not exist yet. */
  segmentFor(lsn: number): Segment {
    const id = this.segmentId(lsn)
    const existing = this.segment(id)
    if (existing !== undefined) return existing
    assert(id >= this.oldestId, 'segments below the horizon are never recreated')
    if (!Number.isSafeInteger(lsn + this.segmentBytes)) throw dbError('LOG_FULL', `log position ${lsn} is past the largest LSN`)
    if ((id + 1 - this.oldestId) * this.segmentBytes > REF_WINDOW_BYTES) {
      throw dbError('LOG_FULL', `the retained log would span more than ${REF_WINDOW_BYTES} bytes (oldest segment ${this.oldestId}); the cleaner has fallen behind`)
    }
    assert(!this.holes.has(id), 'a released segment is never recreated')
    for (let i = this.newestId + 1; i <= id; i++) {
      if (this.holes.has(i)) continue
      assert(this.bySlot[i % this.slotCount] === undefined, 'a slot is free before it is reused')
      this.install(this.newSegment(i))
    }
    return this.segment(id)!
  }

  /** A zeroed segment `id`: a pooled buffer if one may be reused, else a new one. */
  private newSegment(id: number): Segment {
    this.trimPool(nowMs())
    const pooled = this.takePooled()
    if (pooled === null) {
      this.buffersAllocated++
      return Segment.create(id, this.segmentBytes)
    }
    pooled.u8.fill(0)
    const segment = new Segment({ id, sizeBytes: this.segmentBytes, data: pooled.data, ctrl: pooled.ctrlBuffer })
    // Nothing reads this buffer now (released, then taken off the pool): a plain reset of its control word.
    segment.publish(0)
    return segment
  }

  /** Bytes of released segment buffers kept for reuse. */
  pooledBytes(): number {
    return this.pool.length * this.segmentBytes
  }

  private install(segment: Segment): void {
    const slot = segment.id % this.slotCount
    this.bySlot[slot] = segment
    this.u8[slot] = segment.u8
    this.dv[slot] = segment.dv
    this.newestId = Math.max(this.newestId, segment.id)
    this.retainedCount++
    this.retainedCache = null
    if (this.onSegmentCreated !== null) this.onSegmentCreated(segment)
  }

  /**
   * Releases every segment below `id` (the new horizon segment): their slots
   * become free and their memory is returned once nothing else references
   * the buffers. The caller has made sure nothing reachable points there.
   */
  releaseBelow(id: number): number {
    let released = 0
    while (this.oldestId < id) {
      if (this.drop(this.oldestId)) released++
      this.holes.delete(this.oldestId)
      this.oldestId++
    }
    this.skipLeadingHoles()
    return released
  }

  /**
   * Releases retained segments above the horizon (the cleaner's victims that
   * are not the oldest): each becomes a hole. Ids past the newest segment
   * (a backup in a full resync, told by its primary) are only recorded.
   * Returns how many segments were freed.
   */
  releaseHoles(ids: readonly number[]): number {
    let released = 0
    for (const id of ids) {
      if (id < this.oldestId || this.holes.has(id)) continue
      if (this.drop(id)) released++
      this.holes.add(id)
    }
    this.skipLeadingHoles()
    return released
  }

  /** Is segment `id` released (below the horizon, or a hole)? */
  released(id: number): boolean {
    return id < this.oldestId || this.holes.has(id)
  }

  /** The first id at or after `id` that is not a hole. */
  nextHeldId(id: number): number {
    while (this.holes.has(id)) id++
    return id
  }

  /**
   * The LSN from which the retained log is one contiguous run to the tail:
   * past the newest hole (the horizon when there is none). A backup whose log
   * ends below it cannot resume by streaming.
   */
  contiguousFromLsn(): number {
    let newest = this.oldestId - 1
    for (const id of this.holes) if (id > newest && id <= this.newestId) newest = id
    return (newest + 1) * this.segmentBytes
  }

  /** Frees segment `id`'s slot (buffer to the pool); false if it was not held. */
  private drop(id: number): boolean {
    const slot = id % this.slotCount
    const s = this.bySlot[slot]
    if (s === undefined || s.id !== id) return false
    this.bySlot[slot] = undefined
    delete this.u8[slot]
    delete this.dv[slot]
    this.retainedCount--
    const now = nowMs()
    this.trimPool(now)
    if (this.pool.length < SEGMENT_POOL_MAX && this.pooledBytes() + this.segmentBytes <= this.poolRoomBytes()) {
      this.pool.push({ segment: s, releasedAt: this.endLsn, releasedMs: now })
    } else {
      this.dropped()
    }
    return true
  }

  private dropped(): void {
    this.buffersDropped++
    // Release: a worker's load after its next task sees the count move (it only needs to see it eventually).
    Atomics.add(this.dropSignal, 0, 1)
  }

  /**
   * The most recently released buffer that may be reused (last in, first
   * out: the buffers a steady churn needs cycle at the top, so those a burst
   * left beyond that sit unused at the bottom until trimPool lets them go).
   * Reusability only grows with age (a log end the shipping has passed), so
   * the scan stops at the first from the top that may be; at most
   * SEGMENT_POOL_MAX steps.
   */
  private takePooled(): Segment | null {
    for (let i = this.pool.length - 1; i >= 0; i--) {
      if (this.reusable(this.pool[i].releasedAt)) return this.pool.splice(i, 1)[0].segment
    }
    return null
  }

  /** Drops pooled buffers unused for POOL_IDLE_MS (the oldest releases first). */
  private trimPool(now: number): void {
    while (this.pool.length > 0 && now - this.pool[0].releasedMs > POOL_IDLE_MS) {
      this.pool.shift()
      this.dropped()
    }
  }

  /** The horizon never sits on a hole: it moves past holes at the oldest end. */
  private skipLeadingHoles(): void {
    while (this.holes.has(this.oldestId)) {
      this.holes.delete(this.oldestId)
      this.oldestId++
    }
    if (this.newestId < this.oldestId - 1) this.newestId = this.oldestId - 1
    if (this.endLsn < this.horizonLsn()) this.endLsn = this.horizonLsn()
    this.retainedCache = null
  }

  /**
   * Forgets everything: a backup starting a full resync at `lsn` (a segment
   * boundary) holds no segment until the stream fills them.
   */
  resetTo(lsn: number): void {
    assert(lsn % this.segmentBytes === 0, 'a log restarts at a segment boundary')
    for (let id = this.oldestId; id <= this.newestId; id++) {
      const slot = id % this.slotCount
      this.bySlot[slot] = undefined
      delete this.u8[slot]
      delete this.dv[slot]
    }
    this.oldestId = lsn / this.segmentBytes
    this.newestId = this.oldestId - 1
    this.holes.clear()
    this.retainedCount = 0
    this.endLsn = lsn
    this.retainedCache = null
  }

  /** The segment for `lsn` if it exists. */
  peek(lsn: number): Segment | undefined {
    return this.segmentAt(lsn)
  }

  /** Where a block of `bytes` starting at or after `lsn` goes: `lsn`, or the next segment's start. */
  placeBlock(lsn: number, bytes: number): number {
    assert(bytes <= this.segmentBytes, 'a block fits in one segment')
    const offset = this.offsetOf(lsn)
    if (offset + bytes <= this.segmentBytes) return lsn
    return (this.segmentId(lsn) + 1) * this.segmentBytes
  }

  /**
   * Where the next block at or after `lsn` starts: `lsn` itself if its
   * segment holds a published block there, else the start of the next
   * segment that is not a hole (past a segment's last block lies only the
   * unused tail a block skipped).
   */
  skipGap(lsn: number): number {
    const segment = this.segmentAt(lsn)
    if (segment !== undefined && lsn - segment.baseLsn < segment.committedBytes()) return lsn
    return this.nextHeldId(this.segmentId(lsn) + 1) * this.segmentBytes
  }

  /**
   * Backup only: cuts the log back to `lsn` (a block end), forgetting every
   * block after it (the received-but-unconfirmed tail the primary does not
   * have). Segments stay allocated; the receiver refills them.
   */
  cutTail(lsn: number): void {
    assert(lsn >= this.horizonLsn() && lsn <= this.endLsn, 'cut within the retained log')
    const keepId = this.segmentId(lsn)
    for (let i = this.newestId; i >= keepId; i--) {
      const segment = this.segment(i)
      if (segment === undefined) continue
      segment.cut(i === keepId ? lsn - segment.baseLsn : 0)
    }
    this.endLsn = lsn
  }

  /** Bytes of the retained log (whole segments, horizon to tail, holes left out). */
  retainedBytes(): number {
    return this.retainedCount * this.segmentBytes
  }

  /** Bytes from the horizon to the end of the newest segment, holes included (what refs must span). */
  spanBytes(): number {
    return (this.newestId - this.oldestId + 1) * this.segmentBytes
  }
}

/** Start LSN of the block ending exactly at `lsn` in `store`, or -1 if `lsn` is not a block end. */
export function blockStartEndingAt(store: SegmentStore, lsn: number): number {
  if (!Number.isSafeInteger(lsn) || lsn <= store.horizonLsn() || lsn > store.endLsn) return -1
  let id = store.segmentId(lsn)
  let offset = lsn - id * store.segmentBytes
  // A block that fills its segment exactly ends at the next segment's base LSN.
  if (offset === 0) { id -= 1; offset = store.segmentBytes }
  const segment = store.segment(id)
  if (segment === undefined || offset > segment.committedBytes()) return -1
  let at = 0
  // Bounded: every step moves forward by at least a block header.
  while (at < offset) {
    const length = blockLength(segment.dv, at)
    if (length < BLOCK_HEADER_BYTES) return -1
    if (at + length === offset) return segment.baseLsn + at
    at += length
  }
  return -1
}

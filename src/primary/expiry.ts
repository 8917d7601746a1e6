/**
 * Keys with a time to live, on the primary, and the active expiry cycle.
 *
 * Reads never see an expired version (view/read_view.ts hides a version
 * whose expiry time is at or before the view's time); only the primary
 * removes one, by logging a delete, so backups replay expiry like any write
 * and a backup never expires anything itself. It does so lazily, after a
 * command that met the expired key (Primary.afterCommand, as Redis deletes
 * an expired key a command touches), and actively. The cycle runs every
 * CYCLE_INTERVAL_MS with a budget of CYCLE_BUDGET_MS (a quarter of a core at
 * most, as Redis's active expiry). Keys are filed by expiry time in buckets
 * of BUCKET_MS (a timing wheel over absolute time): the cycle visits only the
 * buckets wholly in the past, in order, so its cost is the keys that are due,
 * not every key with a TTL, and a key is removed at most one bucket and one
 * cycle after it expires. The registry holds one entry per key with a TTL
 * (its name as a latin1 string and its current expiry time) and one bucket
 * entry per filing; a write that renews or drops a TTL leaves its old filing
 * behind, skipped when met, and once those outnumber the live filings the
 * wheel is filed anew from the registry (amortised O(1) per write). Keys
 * without a TTL cost nothing.
 */
import { OP_TYPE_DELETE, REF_NONE } from '../constants.js'
import { opBytes } from '../codec/record.js'
import { nowMs } from '../io/clock.js'
import type { ReadView } from '../view/read_view.js'

export const CYCLE_INTERVAL_MS = 100
export const CYCLE_BUDGET_MS = 25
/** The timing wheel's bucket: a key is removed at most this long (plus one cycle) after it expires. */
export const BUCKET_MS = 100
/** Filings beyond twice the keys (and this slack) make the wheel be filed anew. */
const FILINGS_SLACK = 1024
/** The budget is checked every this many + 1 visits. */
const BUDGET_CHECK_MASK = 63

/** What expire() did. */
export const EXPIRED = 1
export const NOT_EXPIRED = 0
export const REFUSED = -1

/** What the cycle needs of the primary. */
export interface ExpiringLog {
  readonly view: ReadView
  readonly fenced: string | null
  beginWrite(boundBytes: number, checkMemory?: boolean): void
  endWrite(): void
  /** The key's head, without noting it for lazy expiry (this is the expiry). */
  probeQuiet(key: Uint8Array, keyStart: number, keyLength: number): number
  writeProbed(
    type: number, key: Uint8Array, keyStart: number, keyLength: number,
    v1: Uint8Array | null, v1Start: number, v1Length: number,
    v2: Uint8Array | null, v2Start: number, v2Length: number,
  ): number
  endTurn(): void
}

export class Expiry {
  /** Keys expired (INFO stats expired_keys): by the cycle, or by the cleaner through expire(). */
  expiredTotal: number
  cycleMsTotal: number
  cyclesTotal: number
  /** Each key with a TTL: its current expiry time. */
  private readonly keys: Map<string, number>
  /** Bucket (expiry time / BUCKET_MS) -> the keys filed there; an entry whose key's time is now elsewhere is stale. */
  private readonly wheel: Map<number, string[]>
  private filings: number
  /** The next bucket to visit, and how far into it the last cycle got. */
  private cursor: number
  private cursorAt: number
  private readonly log: ExpiringLog
  private timer: NodeJS.Timeout | null

  constructor(log: ExpiringLog) {
    this.expiredTotal = 0
    this.cycleMsTotal = 0
    this.cyclesTotal = 0
    this.keys = new Map()
    this.wheel = new Map()
    this.filings = 0
    this.cursor = Math.floor(nowMs() / BUCKET_MS)
    this.cursorAt = 0
    this.log = log
    this.timer = null
  }

  get size(): number {
    return this.keys.size
  }

  /** Bucket entries held, stale ones included (bounded by twice the keys plus a slack). */
  filingCount(): number {
    return this.filings
  }

  /** Starts the active cycle. */
  start(): void {
    if (this.timer !== null) return
    this.timer = setInterval(() => this.cycle(nowMs()), CYCLE_INTERVAL_MS)
    this.timer.unref()
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
  }

  track(key: Uint8Array, keyStart: number, keyLength: number, expireAtMs: number): void {
    const name = Buffer.from(key.buffer, key.byteOffset + keyStart, keyLength).toString('latin1')
    const was = this.keys.get(name)
    this.keys.set(name, expireAtMs)
    if (was !== undefined && this.bucketOf(was) === this.bucketOf(expireAtMs)) return // its filing stands
    this.file(name, expireAtMs)
    if (this.filings > 2 * this.keys.size + FILINGS_SLACK) this.refile()
  }

  untrack(key: Uint8Array, keyStart: number, keyLength: number): void {
    if (this.keys.size === 0) return
    this.keys.delete(Buffer.from(key.buffer, key.byteOffset + keyStart, keyLength).toString('latin1'))
  }

  /** The bucket a key expiring at `at` is visited in: its own, or the next to visit if that one has passed. */
  private bucketOf(at: number): number {
    return Math.max(Math.floor(at / BUCKET_MS), this.cursor)
  }

  private file(name: string, at: number): void {
    const b = this.bucketOf(at)
    const list = this.wheel.get(b)
    if (list === undefined) this.wheel.set(b, [name])
    else list.push(name)
    this.filings++
  }

  /** Files every key anew (the stale filings outnumber the live ones). */
  private refile(): void {
    this.wheel.clear()
    this.filings = 0
    this.cursorAt = 0
    for (const [name, at] of this.keys) this.file(name, at)
  }

  /**
   * Deletes the key at key[keyStart, +keyLength) if its newest version is a
   * set that expired at or before `now` (logged like any delete, so backups
   * replay it and WATCH sees a change). Returns EXPIRED, NOT_EXPIRED (a write
   * since renewed or removed it), or REFUSED when the node takes no writes now
   * (fenced, or its sync backups are missing). The caller seals the block.
   */
  expire(key: Uint8Array, keyStart: number, keyLength: number, now: number): number {
    const log = this.log
    try {
      log.beginWrite(opBytes(keyLength, 0), false)
    } catch {
      return REFUSED
    }
    try {
      const head = log.probeQuiet(key, keyStart, keyLength)
      const v = log.view
      if (head === REF_NONE || !v.isSetOp(head) || v.expiryOf(head) <= 0 || v.expiryOf(head) > now) return NOT_EXPIRED
      log.writeProbed(OP_TYPE_DELETE, key, keyStart, keyLength, null, 0, 0, null, 0, 0)
      this.expiredTotal++
      return EXPIRED
    } finally {
      log.endWrite()
    }
  }

  /** One pass of the active cycle at `now`, within the budget; returns the keys it expired. */
  cycle(now: number): number {
    const log = this.log
    if (log.fenced !== null) return 0
    const started = performance.now()
    let expired = 0
    // Buckets below `due` hold only times before `now`.
    const due = Math.floor(now / BUCKET_MS)
    let walked = 0
    visiting: while (this.cursor < due) {
      const list = this.wheel.get(this.cursor)
      if (list === undefined) {
        // Empty time: across a long gap (a node idle for hours, a test's clock moved ahead) go to the first filed bucket at once.
        if (this.wheel.size === 0) { this.cursor = due; break }
        if (due - this.cursor > this.wheel.size) {
          let first = due
          for (const b of this.wheel.keys()) if (b < first) first = b
          this.cursor = Math.min(Math.max(first, this.cursor + 1), due)
          this.cursorAt = 0
          continue
        }
        if ((++walked & BUDGET_CHECK_MASK) === 0 && performance.now() - started > CYCLE_BUDGET_MS) break
      } else {
        for (; this.cursorAt < list.length; this.cursorAt++) {
          if ((this.cursorAt & BUDGET_CHECK_MASK) === 0 && performance.now() - started > CYCLE_BUDGET_MS) break visiting
          const name = list[this.cursorAt]
          const at = this.keys.get(name)
          // Renewed into another bucket, or no longer expiring: a stale filing.
          if (at === undefined || this.bucketOf(at) !== this.cursor) continue
          const key = Buffer.from(name, 'latin1')
          const result = this.expire(key, 0, key.length, now)
          if (result === REFUSED) break visiting // the node takes no writes now: from here, later
          if (result === EXPIRED) expired++
          else this.keys.delete(name) // the registry was behind the log: nothing to expire
        }
        this.filings -= list.length
        this.wheel.delete(this.cursor)
      }
      this.cursor++
      this.cursorAt = 0
    }
    if (expired > 0) log.endTurn()
    this.cyclesTotal++
    this.cycleMsTotal += performance.now() - started
    return expired
  }
}

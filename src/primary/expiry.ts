/**
 * Keys with a time to live, on the primary, and the active expiry cycle.
 *
 * Reads never see an expired version (view/read_view.ts hides a version
 * whose expiry time is at or before the view's time); only the primary
 * removes one, by logging a delete, so backups replay expiry like any write
 * and a backup never expires anything itself. The cycle runs every
 * CYCLE_INTERVAL_MS with a budget of CYCLE_BUDGET_MS (a quarter of a core at
 * most, as Redis's active expiry), visiting tracked keys round-robin: an
 * expired one is deleted (WATCH sees the delete as a change), a live one goes
 * to the back of the queue. A write that replaces a key drops or renews its
 * entry. The registry holds one entry per key with a TTL (its name as a
 * latin1 string and its expiry time); keys without one cost nothing.
 */
import { OP_TYPE_DELETE, REF_NONE } from '../constants.js'
import { opBytes } from '../codec/record.js'
import { nowMs } from '../io/clock.js'
import type { ReadView } from '../view/read_view.js'

export const CYCLE_INTERVAL_MS = 100
export const CYCLE_BUDGET_MS = 25

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
  probe(key: Uint8Array, keyStart: number, keyLength: number): number
  writeProbed(
    type: number, key: Uint8Array, keyStart: number, keyLength: number,
    v1: Uint8Array | null, v1Start: number, v1Length: number,
    v2: Uint8Array | null, v2Start: number, v2Length: number,
  ): number
  endTurn(): void
}

export class Expiry {
  /** Keys expired by the cycle (INFO stats expired_keys). */
  expiredTotal: number
  cycleMsTotal: number
  cyclesTotal: number
  private readonly keys: Map<string, number>
  private readonly log: ExpiringLog
  private timer: NodeJS.Timeout | null

  constructor(log: ExpiringLog) {
    this.expiredTotal = 0
    this.cycleMsTotal = 0
    this.cyclesTotal = 0
    this.keys = new Map()
    this.log = log
    this.timer = null
  }

  get size(): number {
    return this.keys.size
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
    this.keys.delete(name)
    this.keys.set(name, expireAtMs)
  }

  untrack(key: Uint8Array, keyStart: number, keyLength: number): void {
    if (this.keys.size === 0) return
    this.keys.delete(Buffer.from(key.buffer, key.byteOffset + keyStart, keyLength).toString('latin1'))
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
      const head = log.probe(key, keyStart, keyLength)
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
    if (this.keys.size === 0 || log.fenced !== null) return 0
    const started = performance.now()
    let expired = 0
    let visited = 0
    const visits = this.keys.size
    for (const [name, at] of this.keys) {
      if (visited++ >= visits || performance.now() - started > CYCLE_BUDGET_MS) break
      if (at > now) {
        // Still live: to the back of the queue.
        this.keys.delete(name)
        this.keys.set(name, at)
        continue
      }
      const key = Buffer.from(name, 'latin1')
      const result = this.expire(key, 0, key.length, now)
      if (result === REFUSED) break // later
      if (result === EXPIRED) expired++
      // The delete untracked it; a version renewed since was tracked again under its new time.
      else if (this.keys.get(name) === at) this.keys.delete(name)
    }
    if (expired > 0) log.endTurn()
    this.cyclesTotal++
    this.cycleMsTotal += performance.now() - started
    return expired
  }
}

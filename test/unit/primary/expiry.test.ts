/**
 * The active expiry cycle's timing wheel against a model log (what Expiry needs of the primary): keys go when
 * their bucket has passed and not before, renewals move them, churn keeps the wheel's filings bounded, a long
 * gap costs no walk over empty time, and a node that refuses writes is resumed where it stopped.
 */
import { describe, expect, test } from 'vitest'
import { BUCKET_MS, Expiry, type ExpiringLog } from '../../../src/primary/expiry.js'
import { OP_TYPE_DELETE, REF_NONE } from '../../../src/constants.js'
import type { ReadView } from '../../../src/view/read_view.js'
import { nowMs } from '../../../src/io/clock.js'

/** A bucket's start some way past the node's clock. */
const future = (): number => (Math.ceil(nowMs() / BUCKET_MS) + 10) * BUCKET_MS

/** A log of one version per key: its expiry time (0: none), or deleted. */
class ModelLog implements ExpiringLog {
  readonly heads = new Map<string, number>()
  readonly names: string[] = [''] // ref 0 is REF_NONE
  deletes: string[] = []
  refuse = false
  fenced: string | null = null
  private probed = ''
  readonly view = {
    isSetOp: (ref: number) => this.heads.has(this.names[ref]),
    expiryOf: (ref: number) => this.heads.get(this.names[ref]) ?? 0,
  } as unknown as ReadView

  /** The registry the primary keeps in step with its writes (a delete of an expiring key untracks it). */
  expiry: Expiry | null = null

  set(expiry: Expiry, name: string, at: number): void {
    this.expiry = expiry
    this.heads.set(name, at)
    const k = Buffer.from(name, 'latin1')
    if (at > 0) expiry.track(k, 0, k.length, at)
    else expiry.untrack(k, 0, k.length)
  }

  beginWrite(): void { if (this.refuse) throw new Error('refused') }
  endWrite(): void {}
  endTurn(): void {}
  probeQuiet(key: Uint8Array, keyStart: number, keyLength: number): number {
    this.probed = Buffer.from(key.buffer, key.byteOffset + keyStart, keyLength).toString('latin1')
    if (!this.heads.has(this.probed)) return REF_NONE
    this.names.push(this.probed)
    return this.names.length - 1
  }

  writeProbed(type: number): number {
    expect(type).toBe(OP_TYPE_DELETE)
    this.heads.delete(this.probed)
    this.deletes.push(this.probed)
    const k = Buffer.from(this.probed, 'latin1')
    this.expiry!.untrack(k, 0, k.length)
    return 0
  }
}

describe('the active expiry cycle', () => {
  test('expires a key once its bucket has passed, never before; a renewed key goes at its new time', () => {
    const log = new ModelLog()
    const e = new Expiry(log)
    const t = future()
    log.set(e, 'a', t + 5)
    log.set(e, 'b', t + 5)
    log.set(e, 'c', t + 50 * BUCKET_MS)
    expect(e.cycle(t + 4)).toBe(0)
    expect(e.cycle(t + BUCKET_MS - 1)).toBe(0) // a's bucket is not wholly past yet
    log.set(e, 'b', t + 20 * BUCKET_MS) // renewed
    expect(e.cycle(t + BUCKET_MS)).toBe(1)
    expect(log.deletes).toEqual(['a'])
    expect(e.cycle(t + 20 * BUCKET_MS)).toBe(0)
    expect(e.cycle(t + 21 * BUCKET_MS)).toBe(1)
    log.set(e, 'c', 0) // PERSIST
    expect(e.cycle(t + 100 * BUCKET_MS)).toBe(0)
    expect(log.deletes).toEqual(['a', 'b'])
    expect(e.size).toBe(0)
    expect(e.expiredTotal).toBe(2)
  })

  test('renewing keys again and again keeps the filings within a bound, and each key goes once, at its last time', () => {
    const log = new ModelLog()
    const e = new Expiry(log)
    const t = future()
    for (let round = 1; round <= 200; round++) for (let k = 0; k < 100; k++) log.set(e, `k${k}`, t + round * BUCKET_MS * 10 + k)
    expect(e.filingCount()).toBeLessThanOrEqual(2 * 100 + 1024 + 1)
    expect(e.cycle(t + 200 * BUCKET_MS * 10)).toBe(0)
    expect(e.cycle(t + 201 * BUCKET_MS * 10)).toBe(100)
    expect(new Set(log.deletes).size).toBe(100)
    expect(e.filingCount()).toBe(0)
  })

  test('a gap of years visits only filed buckets; a refusing node is resumed where the cycle stopped', () => {
    const log = new ModelLog()
    const e = new Expiry(log)
    const t = future()
    for (let k = 0; k < 10; k++) log.set(e, `k${k}`, t + k * 3_600_000)
    log.refuse = true
    const years = t + 10 * 365 * 86_400_000
    expect(e.cycle(years)).toBe(0)
    expect(log.deletes).toEqual([])
    log.refuse = false
    const started = performance.now()
    expect(e.cycle(years)).toBe(10)
    expect(performance.now() - started).toBeLessThan(1000) // no walk over 10^9 empty buckets
    expect(log.deletes).toEqual(Array.from({ length: 10 }, (_, k) => `k${k}`))
  })
})

/**
 * The soak bench's write load: `clients` pipelining connections send SETs of
 * fixed-size values and DELs (a fixed share) over a keyspace of `keys` keys,
 * chosen uniformly or by a Zipf law (YCSB's skew 0.99), at `rate` ops/s
 * (0 = as fast as the bounded in-flight window allows). Every choice comes
 * from a seeded PRNG. Replies are counted: acknowledged, and errors by code
 * (an -OOM here is what the soak must never see). Another bench may supply
 * its own commands at the same pacing (the expiry bench).
 */
import { RespClient, RespErrorReply, type Reply } from '../../src/client/client.js'
import { Prng } from './common.js'

const TICK_MS = 5
const BATCH_MAX = 2000
const KEY_DIGITS = 8

export type KeyDistribution = 'uniform' | 'zipf'

/** Zipf skew of the hot-key phase (as YCSB's zipfian request distribution). */
export const ZIPF_THETA = 0.99

export function soakKey(i: number): string {
  return `soak:${String(i).padStart(KEY_DIGITS, '0')}`
}

/**
 * Key indices in [0, keys): uniform, or Zipf(theta) by the rejection-free
 * method of Gray et al. ("Quickly generating billion-record synthetic
 * databases", SIGMOD 1994), with zeta(n) computed once (O(n)). Rank 0 is the
 * hottest key; ranks map to key indices unchanged (freshet hashes key names,
 * so adjacent ranks do not share a partition).
 */
export class KeyChooser {
  private readonly prng: Prng
  private readonly zetaN: number
  private readonly alpha: number
  private readonly eta: number
  private readonly halfPowTheta: number

  constructor(readonly keys: number, readonly distribution: KeyDistribution, seed: number) {
    this.prng = new Prng(seed)
    this.zetaN = 0
    this.alpha = 0
    this.eta = 0
    this.halfPowTheta = 0
    if (distribution === 'zipf') {
      let zeta = 0
      for (let i = 1; i <= keys; i++) zeta += 1 / i ** ZIPF_THETA
      const zeta2 = 1 + 1 / 2 ** ZIPF_THETA
      this.zetaN = zeta
      this.alpha = 1 / (1 - ZIPF_THETA)
      this.eta = (1 - (2 / keys) ** (1 - ZIPF_THETA)) / (1 - zeta2 / zeta)
      this.halfPowTheta = 0.5 ** ZIPF_THETA
    }
  }

  /** A uniform number in [0, 1). */
  unit(): number {
    return this.prng.nextU32() / 0x1_0000_0000
  }

  next(): number {
    if (this.distribution === 'uniform') return this.prng.below(this.keys)
    const u = this.unit()
    const uz = u * this.zetaN
    if (uz < 1) return 0
    if (uz < 1 + this.halfPowTheta) return 1
    const k = Math.floor(this.keys * (this.eta * u - this.eta + 1) ** this.alpha)
    return Math.min(k, this.keys - 1)
  }
}

export interface SoakLoadOptions {
  host: string
  port: number
  clients: number
  /** ops/s; 0 = as fast as the in-flight window allows (a peak measurement). */
  rate: number
  valueBytes: number
  keys: number
  distribution: KeyDistribution
  /** Share of operations that are DELs, in [0, 1). */
  deleteShare: number
  /** Commands in flight per client at most. */
  inflightPerClientMax: number
  seed: number
  /** Makes each command instead of the SET/DEL mix (another bench's load at the same pacing); `keys`, `distribution` and `deleteShare` then go unused. */
  command?: () => Array<string | Buffer>
}

export class SoakLoad {
  sent: number
  acked: number
  deletesSent: number
  readonly errorsByCode: Map<string, number>
  private readonly writers: RespClient[]
  private readonly o: SoakLoadOptions
  private readonly chooser: KeyChooser
  private readonly value: Buffer
  private timer: NodeJS.Timeout | null
  private startedMs: number

  private constructor(o: SoakLoadOptions, writers: RespClient[]) {
    this.sent = 0
    this.acked = 0
    this.deletesSent = 0
    this.errorsByCode = new Map()
    this.writers = writers
    this.o = o
    this.chooser = new KeyChooser(o.keys, o.distribution, o.seed)
    this.value = Buffer.alloc(o.valueBytes, 'v')
    this.timer = null
    this.startedMs = 0
  }

  static async connect(o: SoakLoadOptions): Promise<SoakLoad> {
    if (!(o.deleteShare >= 0 && o.deleteShare < 1)) throw new Error(`deleteShare must be in [0, 1), got ${o.deleteShare}`)
    const writers = await Promise.all(Array.from({ length: o.clients }, () => RespClient.connect(o.host, o.port)))
    return new SoakLoad(o, writers)
  }

  errors(): number {
    let n = 0
    for (const v of this.errorsByCode.values()) n += v
    return n
  }

  start(): void {
    this.startedMs = Date.now()
    this.timer = setInterval(() => this.tick(), TICK_MS)
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
  }

  inFlight(): number {
    let n = 0
    for (const w of this.writers) n += w.inFlight()
    return n
  }

  close(): void {
    this.stop()
    for (const w of this.writers) w.close()
  }

  private countReplies(replies: Reply[]): void {
    for (const r of replies) {
      if (r instanceof RespErrorReply) this.errorsByCode.set(r.code, (this.errorsByCode.get(r.code) ?? 0) + 1)
      else this.acked++
    }
  }

  private tick(): void {
    const o = this.o
    const due = o.rate > 0 ? Math.floor(((Date.now() - this.startedMs) / 1000) * o.rate) - this.sent : Number.MAX_SAFE_INTEGER
    if (due <= 0) return
    for (let c = 0; c < this.writers.length; c++) {
      const w = this.writers[c]
      const room = o.inflightPerClientMax - w.inFlight()
      let n = o.rate > 0 ? Math.floor(due / this.writers.length) + (c < due % this.writers.length ? 1 : 0) : room
      n = Math.min(n, room, BATCH_MAX)
      if (n <= 0) continue
      const cmds: Array<Array<string | Buffer>> = []
      for (let i = 0; i < n; i++) {
        if (o.command !== undefined) { cmds.push(o.command()); continue }
        const key = soakKey(this.chooser.next())
        if (this.chooser.unit() < o.deleteShare) {
          cmds.push(['DEL', key])
          this.deletesSent++
        } else {
          cmds.push(['SET', key, this.value])
        }
      }
      this.sent += n
      w.pipeline(cmds).then((replies) => this.countReplies(replies), () => {
        this.errorsByCode.set('CLOSED', (this.errorsByCode.get('CLOSED') ?? 0) + n)
      })
    }
  }
}

/** Writes every key once (SET, pipelined in batches on one connection): the live set a load then overwrites. */
export async function preloadKeys(host: string, port: number, keys: number, valueBytes: number, name: (i: number) => string = soakKey): Promise<void> {
  const c = await RespClient.connect(host, port)
  try {
    const value = Buffer.alloc(valueBytes, 'v')
    for (let at = 0; at < keys; at += BATCH_MAX) {
      const cmds: Array<Array<string | Buffer>> = []
      for (let i = at; i < Math.min(keys, at + BATCH_MAX); i++) cmds.push(['SET', name(i), value])
      const replies = await c.pipeline(cmds)
      const bad = replies.find((r) => r instanceof RespErrorReply)
      if (bad !== undefined) throw new Error(`preload: ${(bad as RespErrorReply).text}`)
    }
  } finally {
    c.close()
  }
}

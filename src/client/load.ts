/**
 * A rate-controlled write load: `clients` pipelining connections send SETs of
 * fixed-size values over a keyspace at `rate` ops/s (0 = as fast as the
 * bounded in-flight window allows). Used by the demo and the benchmarks.
 */
import { RespClient, RespErrorReply } from './client.js'
import { nowMs } from '../io/clock.js'

const TICK_MS = 5
const INFLIGHT_PER_CLIENT_MAX = 20000
const BATCH_MAX = 2000

export interface LoadOptions {
  host: string
  port: number
  clients: number
  rate: number
  valueBytes: number
  keyspace: number
  keyPrefix?: string
}

export class RateLoad {
  sent: number
  acked: number
  errors: number
  private readonly writers: RespClient[]
  private readonly o: LoadOptions
  private readonly value: Buffer
  private timer: NodeJS.Timeout | null
  private started: number

  private constructor(o: LoadOptions, writers: RespClient[]) {
    this.o = o
    this.writers = writers
    this.value = Buffer.alloc(o.valueBytes, 'v')
    this.sent = 0
    this.acked = 0
    this.errors = 0
    this.timer = null
    this.started = 0
  }

  static async connect(o: LoadOptions): Promise<RateLoad> {
    const writers = await Promise.all(Array.from({ length: o.clients }, () => RespClient.connect(o.host, o.port)))
    return new RateLoad(o, writers)
  }

  start(): void {
    this.started = nowMs()
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

  private tick(): void {
    const o = this.o
    const due = o.rate > 0 ? Math.floor(((nowMs() - this.started) / 1000) * o.rate) - this.sent : Number.MAX_SAFE_INTEGER
    if (due <= 0) return
    for (let c = 0; c < this.writers.length; c++) {
      const w = this.writers[c]
      const room = INFLIGHT_PER_CLIENT_MAX - w.inFlight()
      let n = o.rate > 0 ? Math.floor(due / this.writers.length) + (c < due % this.writers.length ? 1 : 0) : room
      n = Math.min(n, room, BATCH_MAX)
      if (n <= 0) continue
      const cmds: Array<Array<string | Buffer>> = []
      const prefix = o.keyPrefix ?? 'key:'
      for (let i = 0; i < n; i++) cmds.push(['SET', `${prefix}${String((this.sent + i) % o.keyspace).padStart(8, '0')}`, this.value])
      this.sent += n
      w.pipeline(cmds).then((replies) => {
        for (const r of replies) { if (r instanceof RespErrorReply) this.errors++; else this.acked++ }
      }, () => { this.errors += n })
    }
  }

  close(): void {
    this.stop()
    for (const w of this.writers) w.close()
  }
}

/**
 * INFO instantaneous_ops_per_sec: commands per second averaged over the last
 * SAMPLES sampling periods, as Redis reports it. Fixed memory, sampled by a
 * timer (never per command).
 */
const SAMPLES = 16
export const OPS_SAMPLE_INTERVAL_MS = 100

export class OpsRate {
  private readonly samples: Float64Array
  private at: number
  private lastCount: number
  private lastMs: number

  constructor(nowMs: number) {
    this.samples = new Float64Array(SAMPLES)
    this.at = 0
    this.lastCount = 0
    this.lastMs = nowMs
  }

  /** One sample: `count` is the running total of commands. */
  sample(count: number, nowMs: number): void {
    const elapsedMs = Math.max(1, nowMs - this.lastMs)
    this.samples[this.at] = ((count - this.lastCount) * 1000) / elapsedMs
    this.at = (this.at + 1) % SAMPLES
    this.lastCount = count
    this.lastMs = nowMs
  }

  perSecond(): number {
    let sum = 0
    for (const v of this.samples) sum += v
    return Math.round(sum / SAMPLES)
  }
}

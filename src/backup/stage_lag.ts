/**
 * A backup's lag samples for one stage of a block's way here, each the time
 * from the block's commit on the primary to that stage: received (its bytes
 * arrived), flushed (fsynced here) and visible (readable here: PostgreSQL's
 * replay_lag). Per stage: one histogram since start (or CONFIG RESETSTAT),
 * one window rotated by the backup's tick whose percentiles INFO shows until
 * the next rotation, and the stage's Prometheus histogram. Samples are
 * microseconds (at least 1), read back as milliseconds; one per block, none
 * per record.
 */
import { createHistogram, type RecordableHistogram } from 'node:perf_hooks'
import type { Histogram } from 'prom-client'
import type { InfoLines } from '../node.js'

interface WindowSummary { p50Ms: number, p99Ms: number, maxMs: number, count: number }

const EMPTY: WindowSummary = { p50Ms: 0, p99Ms: 0, maxMs: 0, count: 0 }

export class StageLag {
  /** The newest sample, ms. */
  lastMs: number
  private total: RecordableHistogram
  private window: RecordableHistogram
  private lastWindow: WindowSummary

  /** `prefix` names the INFO lines (`<prefix>_p50_ms`, `<prefix>_window_p99_ms`, ...). */
  constructor(private readonly prefix: string, private readonly metric: Histogram) {
    this.lastMs = 0
    this.total = createHistogram()
    this.window = createHistogram()
    this.lastWindow = EMPTY
  }

  record(lagMs: number): void {
    this.lastMs = lagMs
    const us = Math.max(1, Math.round(lagMs * 1000))
    this.total.record(us)
    this.window.record(us)
    this.metric.observe(lagMs / 1000)
  }

  /** Closes the current window (its summary is what INFO shows) and opens the next. */
  rotate(): void {
    const w = this.window
    this.lastWindow = w.count > 0 ? { p50Ms: w.percentile(50) / 1000, p99Ms: w.percentile(99) / 1000, maxMs: w.max / 1000, count: w.count } : EMPTY
    this.window = createHistogram()
  }

  reset(): void {
    this.total = createHistogram()
    this.window = createHistogram()
  }

  infoLines(): InfoLines {
    const h = this.total
    const count = h.count
    const w = this.lastWindow
    const p = this.prefix
    return [
      [`${p}_samples`, count],
      [`${p}_p50_ms`, count > 0 ? (h.percentile(50) / 1000).toFixed(3) : '0'],
      [`${p}_p99_ms`, count > 0 ? (h.percentile(99) / 1000).toFixed(3) : '0'],
      [`${p}_max_ms`, count > 0 ? (h.max / 1000).toFixed(3) : '0'],
      [`${p}_window_p50_ms`, w.p50Ms.toFixed(3)],
      [`${p}_window_p99_ms`, w.p99Ms.toFixed(3)],
      [`${p}_window_max_ms`, w.maxMs.toFixed(3)],
      [`${p}_window_samples`, w.count],
    ]
  }
}

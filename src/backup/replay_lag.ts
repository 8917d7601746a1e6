/**
 * A backup's replay lag samples (PostgreSQL's replay_lag: for each block made
 * visible, the time from its commit on the primary to its visibility here):
 * one histogram since start (or CONFIG RESETSTAT) and one window, rotated by
 * the backup's tick, whose percentiles INFO shows until the next rotation.
 * Samples are microseconds (at least 1), read back as milliseconds.
 */
import { createHistogram, type RecordableHistogram } from 'node:perf_hooks'
import type { InfoLines } from '../node.js'
import { LAG_HISTOGRAMS } from '../metrics/lag_histograms.js'

interface WindowSummary { p50Ms: number, p99Ms: number, maxMs: number, count: number }

const EMPTY: WindowSummary = { p50Ms: 0, p99Ms: 0, maxMs: 0, count: 0 }

export class ReplayLag {
  /** The newest sample, ms. */
  lastMs: number
  private total: RecordableHistogram
  private window: RecordableHistogram
  private lastWindow: WindowSummary

  constructor() {
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
    LAG_HISTOGRAMS.visible.observe(lagMs / 1000)
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
    return [
      ['replay_lag_samples', count],
      ['replay_lag_p50_ms', count > 0 ? (h.percentile(50) / 1000).toFixed(3) : '0'],
      ['replay_lag_p99_ms', count > 0 ? (h.percentile(99) / 1000).toFixed(3) : '0'],
      ['replay_lag_max_ms', count > 0 ? (h.max / 1000).toFixed(3) : '0'],
      ['replay_lag_window_p50_ms', w.p50Ms.toFixed(3)],
      ['replay_lag_window_p99_ms', w.p99Ms.toFixed(3)],
      ['replay_lag_window_max_ms', w.maxMs.toFixed(3)],
      ['replay_lag_window_samples', w.count],
    ]
  }
}

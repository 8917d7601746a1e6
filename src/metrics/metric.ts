/**
 * The one typed description of a figure a node reports: an INFO line may
 * carry a Metric as its third element (node.ts InfoLine), and /metrics
 * renders exactly the lines that do (metrics.ts), so each figure is named,
 * typed and given its unit once, where its value is produced. INFO shows the
 * value in its own unit (bytes, milliseconds, LSNs, counts); /metrics in the
 * Prometheus base unit (seconds for `ms`). Names follow Prometheus's
 * conventions, checked when a Metric is made: `freshet_` first, `_bytes` for
 * bytes, `_seconds` for times, `_total` last on counters.
 */
import { assert } from '../assert.js'

export type MetricKind = 'gauge' | 'counter'
/** The unit of the INFO value: `ms` is rendered in seconds on /metrics. */
export type MetricUnit = 'count' | 'bytes' | 'ms' | 'lsn' | 'timestamp_s'

export interface Metric {
  readonly name: string
  readonly help: string
  readonly kind: MetricKind
  readonly unit: MetricUnit
}

function metric(kind: MetricKind, name: string, help: string, unit: MetricUnit): Metric {
  const base = kind === 'counter' ? name.replace(/_total$/, '') : name
  assert(name.startsWith('freshet_'), 'a metric name starts with freshet_')
  assert(kind !== 'counter' || name.endsWith('_total'), 'a counter\'s name ends in _total')
  assert(unit !== 'bytes' || base.endsWith('_bytes'), 'a metric in bytes is named _bytes')
  assert(unit !== 'ms' || base.endsWith('_seconds'), 'a time is named _seconds (rendered in seconds)')
  assert(unit !== 'timestamp_s' || base.endsWith('_timestamp_seconds'), 'a time of day is named _timestamp_seconds')
  return { name, help, kind, unit }
}

export function gauge(name: string, help: string, unit: MetricUnit = 'count'): Metric {
  return metric('gauge', name, help, unit)
}

export function counter(name: string, help: string, unit: MetricUnit = 'count'): Metric {
  return metric('counter', name, help, unit)
}

/** An INFO value as /metrics shows it (NaN where it is not a number). */
export function metricValue(m: Metric, v: string | number): number {
  const n = typeof v === 'number' ? v : (v === '' ? NaN : Number(v))
  return m.unit === 'ms' ? n / 1000 : n
}

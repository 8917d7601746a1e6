/**
 * A Metric is a figure's one typed description (INFO shows the value, /metrics
 * the metric): names follow Prometheus's conventions or the Metric is not
 * made, and values in milliseconds are shown in seconds.
 */
import { expect, test } from 'vitest'
import { counter, gauge, metricValue } from '../../../src/metrics/metric.js'

test('names follow the conventions: freshet_ prefix, _bytes, _seconds, _total on counters', () => {
  expect(gauge('freshet_memory_used_bytes', 'h', 'bytes').kind).toBe('gauge')
  expect(counter('freshet_cleaner_scanned_bytes_total', 'h', 'bytes').kind).toBe('counter')
  expect(counter('freshet_cleaner_seconds_total', 'h', 'ms').unit).toBe('ms')
  expect(() => gauge('memory_used_bytes', 'h', 'bytes')).toThrow()
  expect(() => counter('freshet_commands', 'h')).toThrow()
  expect(() => gauge('freshet_memory_used', 'h', 'bytes')).toThrow()
  expect(() => gauge('freshet_lag_ms', 'h', 'ms')).toThrow()
  expect(() => gauge('freshet_last_save_seconds', 'h', 'timestamp_s')).toThrow()
})

test('an INFO value is shown in the base unit; text that is not a number is NaN', () => {
  const lag = gauge('freshet_replication_lag_seconds', 'h', 'ms')
  expect(metricValue(lag, '12.500')).toBe(0.0125)
  expect(metricValue(lag, 250)).toBe(0.25)
  const bytes = gauge('freshet_memory_log_bytes', 'h', 'bytes')
  expect(metricValue(bytes, 4096)).toBe(4096)
  expect(metricValue(bytes, '')).toBeNaN()
  expect(metricValue(bytes, 'up')).toBeNaN()
})

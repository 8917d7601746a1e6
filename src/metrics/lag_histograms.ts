/**
 * The replication lag histograms /metrics exposes (prom-client), one per
 * stage of a block on a backup: received (commit on the primary -> copied
 * here), flushed (commit -> fsynced here) and visible (commit -> readable here). Seconds, with buckets from
 * 50 µs so sub-millisecond tails show. One per process: a process serves one
 * node, and the histograms outlive its role changes.
 */
import { Histogram } from 'prom-client'

/** Bucket bounds, seconds. */
export const LAG_BUCKETS_SECONDS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]

function histogram(name: string, help: string): Histogram {
  return new Histogram({ name, help, buckets: LAG_BUCKETS_SECONDS, registers: [] })
}

export const LAG_HISTOGRAMS = {
  received: histogram('freshet_replication_received_lag_seconds', 'Backup: time from a block\'s commit on the primary to its arrival here'),
  flushed: histogram('freshet_replication_flushed_lag_seconds', 'Backup: time from a block\'s commit on the primary to its fsync here'),
  visible: histogram('freshet_replication_visible_lag_seconds', 'Backup: time from a block\'s commit on the primary to its visibility here (replay lag)'),
}

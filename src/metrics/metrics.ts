/**
 * /metrics in Prometheus's text format (prom-client), on 127.0.0.1 (the RESP
 * host) at --metrics-port. Each scrape reads the same figures INFO shows
 * (the INFO sections, read once per scrape) through the typed table below,
 * which names each one the Prometheus way (`_bytes`, `_seconds`, `_total`)
 * with its type and unit, and adds what INFO has only as text: commands and
 * error replies by command, each backup's lag on the primary (labelled by
 * backup address), and the lag histograms of a backup. A figure this node's
 * role does not have is absent, never 0. The scrape is bounded: one small
 * response per request, computed from O(1) counters and the index's sizes.
 */
import http from 'node:http'
import { Counter, Gauge, Registry } from 'prom-client'
import type { RespServer } from '../server/server.js'
import { parseFields } from '../client/client.js'
import { sectionLines } from '../server/admin_commands.js'
import { LAG_HISTOGRAMS } from './lag_histograms.js'

type Kind = 'gauge' | 'counter'

/** [INFO section, field, metric name, help, kind, scale to the metric's unit]. */
type Field = readonly [string, string, string, string, Kind, number]

const MS = 1 / 1000

const FIELDS: readonly Field[] = [
  ['clients', 'connected_clients', 'freshet_connected_clients', 'Client connections', 'gauge', 1],
  ['clients', 'blocked_clients', 'freshet_blocked_clients', 'Connections parked by a blocking command', 'gauge', 1],
  ['clients', 'held_clients', 'freshet_held_clients', 'Connections whose replies wait for their commit', 'gauge', 1],
  ['clients', 'held_replies_expired_total', 'freshet_held_replies_expired_total', 'Held replies answered -NOREPLICAS', 'counter', 1],
  ['stats', 'total_connections_received', 'freshet_connections_received_total', 'Connections accepted', 'counter', 1],
  ['stats', 'total_commands_processed', 'freshet_commands_processed_total', 'Commands run', 'counter', 1],
  ['stats', 'rejected_connections', 'freshet_connections_rejected_total', 'Connections refused (max clients)', 'counter', 1],
  ['stats', 'internal_errors', 'freshet_internal_errors_total', 'Bugs input reached (logged with a stack)', 'counter', 1],
  ['stats', 'expired_keys', 'freshet_expired_keys_total', 'Keys removed by expiry', 'counter', 1],
  ['stats', 'expire_cycle_cpu_milliseconds', 'freshet_expire_cycle_seconds_total', 'Time the active expiry cycle ran', 'counter', MS],
  ['memory', 'used_memory', 'freshet_memory_used_bytes', 'Log segments held plus the index', 'gauge', 1],
  ['memory', 'used_memory_rss', 'freshet_memory_rss_bytes', 'Resident set size of the process', 'gauge', 1],
  ['memory', 'maxmemory', 'freshet_memory_max_bytes', '--max-memory', 'gauge', 1],
  ['memory', 'live_bytes', 'freshet_memory_live_bytes', 'Bytes of the newest versions of live keys (and tombstones that must stay)', 'gauge', 1],
  ['memory', 'log_bytes', 'freshet_memory_log_bytes', 'Bytes of the retained log', 'gauge', 1],
  ['memory', 'index_bytes', 'freshet_memory_index_bytes', 'Bytes of the index tables', 'gauge', 1],
  ['memory', 'segment_pool_bytes', 'freshet_memory_segment_pool_bytes', 'Bytes of free segment buffers kept for reuse', 'gauge', 1],
  ['memory', 'pinned_bytes', 'freshet_memory_pinned_bytes', 'Bytes held only for open snapshots', 'gauge', 1],
  ['memory', 'process_heap_used', 'freshet_memory_heap_used_bytes', 'JS heap in use', 'gauge', 1],
  ['memory', 'cleaner_segments_cleaned', 'freshet_cleaner_segments_cleaned_total', 'Segments the cleaner released', 'counter', 1],
  ['memory', 'cleaner_bytes_scanned', 'freshet_cleaner_scanned_bytes_total', 'Bytes the cleaner scanned', 'counter', 1],
  ['memory', 'cleaner_bytes_relocated', 'freshet_cleaner_relocated_bytes_total', 'Bytes the cleaner copied to the tail', 'counter', 1],
  ['memory', 'cleaner_tombstone_bytes_dropped', 'freshet_cleaner_tombstone_dropped_bytes_total', 'Tombstone bytes the cleaner dropped', 'counter', 1],
  ['memory', 'cleaner_expired_dropped', 'freshet_cleaner_expired_dropped_total', 'Expired heads the cleaner deleted instead of copying', 'counter', 1],
  ['memory', 'cleaner_holes_created', 'freshet_cleaner_holes_created_total', 'Segments released above the horizon', 'counter', 1],
  ['memory', 'cleaner_ms', 'freshet_cleaner_seconds_total', 'Time the cleaner ran', 'counter', MS],
  ['replication', 'epoch', 'freshet_epoch', 'The epoch this node is in', 'gauge', 1],
  ['replication', 'commit_lsn', 'freshet_commit_lsn', 'Primary: the end of the committed log', 'gauge', 1],
  ['replication', 'durable_lsn', 'freshet_durable_lsn', 'Primary: the end of the fsynced log', 'gauge', 1],
  ['replication', 'released_lsn', 'freshet_released_lsn', 'Primary: replies of writes below this have been sent', 'gauge', 1],
  ['replication', 'connected_backups', 'freshet_connected_backups', 'Primary: backups connected', 'gauge', 1],
  ['replication', 'writes_refused_noreplicas_total', 'freshet_writes_refused_noreplicas_total', 'Primary: writes refused for missing sync backups', 'counter', 1],
  ['replication', 'received_lsn', 'freshet_received_lsn', 'Backup: the end of the log received', 'gauge', 1],
  ['replication', 'flushed_lsn', 'freshet_flushed_lsn', 'Backup: the end of the log fsynced here', 'gauge', 1],
  ['replication', 'applied_lsn', 'freshet_visible_lsn', 'Backup: reads run at this LSN', 'gauge', 1],
  ['replication', 'primary_commit_lsn', 'freshet_primary_commit_lsn', 'Backup: the primary\'s commit LSN as last heard', 'gauge', 1],
  ['replication', 'lag_bytes', 'freshet_replication_lag_bytes', 'Backup: the primary\'s commit LSN minus the visible LSN', 'gauge', 1],
  ['replication', 'lag_ms', 'freshet_replication_lag_seconds', 'Backup: the age of the oldest write not yet visible (0 when caught up)', 'gauge', MS],
  ['replication', 'staleness_ms', 'freshet_replication_staleness_seconds', 'Backup: every write committed longer ago than this is visible (an upper bound)', 'gauge', MS],
  ['persistence', 'rdb_bgsave_in_progress', 'freshet_rdb_save_in_progress', 'An RDB snapshot is being written', 'gauge', 1],
  ['persistence', 'rdb_last_save_time', 'freshet_rdb_last_save_timestamp_seconds', 'When the last RDB snapshot completed', 'gauge', 1],
]

/** The primary's `backupN` line fields, per backup. */
const BACKUP_FIELDS: ReadonlyArray<readonly [string, string, string, number]> = [
  ['flushed_lsn', 'freshet_backup_flushed_lsn', 'Primary: a backup\'s fsynced LSN, as it acknowledged', 1],
  ['applied_lsn', 'freshet_backup_visible_lsn', 'Primary: a backup\'s visible LSN, as it acknowledged', 1],
  ['lag_bytes', 'freshet_backup_lag_bytes', 'Primary: the commit LSN minus a backup\'s visible LSN', 1],
  ['lag_ms', 'freshet_backup_lag_seconds', 'Primary: a backup\'s lag as it last acknowledged (its lag_ms)', MS],
]

/** The scrape's text, from the node `server` serves now. */
export async function renderMetrics(server: RespServer): Promise<{ contentType: string, text: string }> {
  const reg = new Registry()
  const sections = new Map<string, Map<string, string>>()
  const section = (name: string): Map<string, string> => {
    let m = sections.get(name)
    if (m === undefined) {
      m = new Map((sectionLines(server, name) ?? []).map(([k, v]) => [k, String(v)]))
      sections.set(name, m)
    }
    return m
  }
  for (const [sec, field, name, help, kind, scale] of FIELDS) {
    const raw = section(sec).get(field)
    const v = raw === undefined || raw === '' ? NaN : Number(raw)
    if (!Number.isFinite(v) || v < 0) continue
    if (kind === 'gauge') new Gauge({ name, help, registers: [reg] }).set(v * scale)
    else new Counter({ name, help, registers: [reg] }).inc(v * scale)
  }
  const backups = [...section('replication')].filter(([k]) => /^backup\d+$/.test(k)).map(([, v]) => parseFields(v))
  if (backups.length > 0) {
    for (const [field, name, help, scale] of BACKUP_FIELDS) {
      const g = new Gauge({ name, help, labelNames: ['backup'], registers: [reg] })
      for (const b of backups) {
        const v = Number(b.get(field))
        if (Number.isFinite(v)) g.set({ backup: b.get('addr') ?? '' }, v * scale)
      }
    }
  }
  const calls = new Counter({ name: 'freshet_command_calls_total', help: 'Commands run, by command', labelNames: ['command'], registers: [reg] })
  const failed = new Counter({ name: 'freshet_command_errors_total', help: 'Error replies, by command', labelNames: ['command'], registers: [reg] })
  for (const spec of server.commands.all()) {
    if ((spec.calls ?? 0) > 0) calls.inc({ command: spec.name }, spec.calls)
    if ((spec.failed ?? 0) > 0) failed.inc({ command: spec.name }, spec.failed)
  }
  if (server.node.role === 'backup') for (const h of Object.values(LAG_HISTOGRAMS)) reg.registerMetric(h)
  return { contentType: reg.contentType, text: await reg.metrics() }
}

/** The /metrics endpoint: GET /metrics only; bound to `host`. Resolves once listening. */
export async function serveMetrics(server: RespServer, host: string, port: number, log: (line: string) => void): Promise<http.Server> {
  const http_ = http.createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('only GET /metrics is served here\n')
      return
    }
    renderMetrics(server).then(({ contentType, text }) => {
      res.writeHead(200, { 'content-type': contentType }).end(text)
    }, (err: unknown) => {
      log(`metrics: scrape failed: ${String(err)}`)
      res.writeHead(500, { 'content-type': 'text/plain' }).end('scrape failed\n')
    })
  })
  // A scraper that stalls holds one socket, never the node.
  http_.requestTimeout = 10_000
  http_.maxConnections = 64
  await new Promise<void>((resolve, reject) => {
    http_.once('error', reject)
    http_.listen(port, host, () => { http_.off('error', reject); resolve() })
  })
  const addr = http_.address()
  log(`metrics on http://${host}:${typeof addr === 'object' && addr !== null ? addr.port : port}/metrics`)
  return http_
}

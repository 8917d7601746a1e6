/**
 * /metrics in Prometheus's text format (prom-client), on 127.0.0.1 (the RESP
 * host) at --metrics-port. Each scrape reads the same figures INFO shows
 * (the INFO sections, read once per scrape): every INFO line that carries a
 * Metric (metric.ts: its Prometheus name, type and unit, declared once where
 * the figure is produced) becomes one, and this adds what INFO has only as text: commands and
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
import { metricValue, type Metric } from './metric.js'
import { BACKUP_METRICS } from '../ship/sender.js'
import type { InfoLines } from '../node.js'

/** The INFO sections whose lines may carry a Metric. */
const SECTIONS = ['clients', 'stats', 'memory', 'replication', 'persistence']

function register(reg: Registry, m: Metric, labelNames: string[] = []): Gauge | Counter {
  const existing = reg.getSingleMetric(m.name)
  if (existing !== undefined) return existing as Gauge | Counter
  return m.kind === 'gauge'
    ? new Gauge({ name: m.name, help: m.help, labelNames, registers: [reg] })
    : new Counter({ name: m.name, help: m.help, labelNames, registers: [reg] })
}

function set(metric: Gauge | Counter, v: number, labels?: Record<string, string>): void {
  if (metric instanceof Gauge) {
    if (labels === undefined) metric.set(v)
    else metric.set(labels, v)
  } else if (labels === undefined) {
    metric.inc(v)
  } else {
    metric.inc(labels, v)
  }
}

/** The scrape's text, from the node `server` serves now. */
export async function renderMetrics(server: RespServer): Promise<{ contentType: string, text: string }> {
  const reg = new Registry()
  let replication: InfoLines = []
  for (const name of SECTIONS) {
    const lines = sectionLines(server, name) ?? []
    if (name === 'replication') replication = lines
    for (const [, raw, m] of lines) {
      if (m === undefined) continue
      const v = metricValue(m, raw)
      // A figure this role has no value for yet (-1, empty) is absent, never 0.
      if (!Number.isFinite(v) || v < 0) continue
      set(register(reg, m), v)
    }
  }
  const backups = replication.filter(([k]) => /^backup\d+$/.test(k)).map(([, v]) => parseFields(String(v)))
  if (backups.length > 0) {
    for (const [field, m] of BACKUP_METRICS) {
      const metric = register(reg, m, ['backup'])
      for (const b of backups) {
        const v = metricValue(m, b.get(field) ?? '')
        if (Number.isFinite(v) && v >= 0) set(metric, v, { backup: b.get('addr') ?? '' })
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

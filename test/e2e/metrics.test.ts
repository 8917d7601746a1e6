/**
 * /metrics (--metrics-port) on a real primary and backup, scraped over HTTP and read with a real
 * Prometheus text-format parser: names and types follow Prometheus's conventions, the figures are the
 * node's own (commands and errors by command, memory, LSNs, each backup's lag on the primary, the lag
 * histograms on the backup), a figure a role does not have is absent, and nothing but GET /metrics is served.
 */
import { afterAll, describe, expect, test } from 'vitest'
import parse from 'parse-prometheus-text-format'
import { Cluster, cleanupClusters, disconnect, info, waitFor } from '../helpers/cluster.js'
import { errorCode } from '../helpers/clients.js'

afterAll(async () => {
  await cleanupClusters()
})

const METRICS_RE = /metrics on http:\/\/127\.0\.0\.1:(\d+)\/metrics/

async function scrape(port: number): Promise<Map<string, ReturnType<typeof parse>[number]>> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`)
  expect(res.status).toBe(200)
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/)
  return new Map(parse(await res.text()).map((f) => [f.name, f]))
}

function value(families: Map<string, ReturnType<typeof parse>[number]>, name: string, labels: Record<string, string> = {}): number {
  const f = families.get(name)
  if (f === undefined) throw new Error(`no metric ${name}`)
  const m = f.metrics.find((s) => Object.entries(labels).every(([k, v]) => s.labels?.[k] === v))
  if (m === undefined) throw new Error(`no ${name} with ${JSON.stringify(labels)}`)
  return Number(m.value)
}

describe('/metrics', () => {
  test('a primary and a backup expose their own figures in Prometheus text format', async () => {
    const cluster = await Cluster.start({ commit: 'local', workers: [], args: ['--metrics-port', '0'] })
    const b = await cluster.addBackup({ workers: 1, args: ['--metrics-port', '0'] })
    await cluster.waitConnectedBackups(1)
    const pm = Number(METRICS_RE.exec(cluster.primary.stderr())![1])
    await waitFor(() => METRICS_RE.test(b.stderr()), 10_000, 'the backup to serve /metrics')
    const bm = Number(METRICS_RE.exec(b.stderr())![1])
    const p = cluster.primaryClient()
    const bc = cluster.backupClient(0)
    try {
      for (let i = 0; i < 20; i++) await p.set(`m:${i}`, 'x'.repeat(100))
      expect(await errorCode(p.incr('m:0'))).toBe('ERR')
      const lsn = Number(await p.call('LSN'))
      await bc.call('WAITLSN', String(lsn), '10000')
      await bc.get('m:1')

      const pf = await scrape(pm)
      for (const [name, f] of pf) {
        expect(name).toMatch(/^freshet_[a-z_]+$/)
        if (f.type === 'COUNTER') expect(name).toMatch(/_total$/)
      }
      expect(value(pf, 'freshet_command_calls_total', { command: 'set' })).toBeGreaterThanOrEqual(20)
      expect(value(pf, 'freshet_command_errors_total', { command: 'incr' })).toBe(1)
      expect(pf.get('freshet_command_errors_total')!.metrics.some((m) => m.labels?.command === 'set')).toBe(false)
      expect(value(pf, 'freshet_commit_lsn')).toBeGreaterThanOrEqual(lsn)
      expect(value(pf, 'freshet_memory_used_bytes')).toBeGreaterThan(0)
      expect(value(pf, 'freshet_memory_live_bytes')).toBeGreaterThan(20 * 100)
      expect(value(pf, 'freshet_connected_backups')).toBe(1)
      const backupLag = pf.get('freshet_backup_lag_bytes')!
      expect(backupLag.type).toBe('GAUGE')
      expect(backupLag.metrics).toHaveLength(1)
      expect(backupLag.metrics[0].labels?.backup).toMatch(/^127\.0\.0\.1:\d+$/)
      expect(value(pf, 'freshet_backup_visible_lsn', { backup: backupLag.metrics[0].labels!.backup })).toBeGreaterThan(0)
      // A primary has no visible LSN of its own to report, nor replay histograms.
      expect(pf.has('freshet_visible_lsn')).toBe(false)
      expect(pf.has('freshet_replication_visible_lag_seconds')).toBe(false)

      const bf = await scrape(bm)
      expect(value(bf, 'freshet_visible_lsn')).toBeGreaterThanOrEqual(lsn)
      expect(value(bf, 'freshet_command_calls_total', { command: 'get' })).toBe(1)
      expect(bf.has('freshet_commit_lsn')).toBe(false)
      expect(value(bf, 'freshet_replication_staleness_seconds')).toBeGreaterThanOrEqual(0)
      for (const name of ['freshet_replication_visible_lag_seconds', 'freshet_replication_received_lag_seconds', 'freshet_replication_flushed_lag_seconds']) {
        const h = bf.get(name)!
        expect(h.type).toBe('HISTOGRAM')
        expect(Number(h.metrics[0].count)).toBeGreaterThan(0)
        // Sub-millisecond buckets.
        expect(Object.keys(h.metrics[0].buckets!).map(Number).filter((le) => le < 0.001).length).toBeGreaterThanOrEqual(3)
      }
      // The figures agree with INFO's (each is declared once, with the INFO line it renders).
      expect(value(bf, 'freshet_memory_used_bytes')).toBe(Number((await info(bc, 'memory')).get('used_memory')))
      // A backup's live data is its own count, equal to the primary's here (nothing cleaned yet).
      expect(value(bf, 'freshet_memory_live_bytes')).toBe(value(pf, 'freshet_memory_live_bytes'))
      for (const f of [pf, bf]) {
        expect(value(f, 'freshet_log_disk_bytes')).toBeGreaterThan(0)
        expect(f.get('freshet_log_fsyncs_total')!.type).toBe('COUNTER')
        expect(value(f, 'freshet_rdb_saves_total')).toBe(0)
      }

      expect((await fetch(`http://127.0.0.1:${pm}/`)).status).toBe(404)
      expect((await fetch(`http://127.0.0.1:${pm}/metrics`, { method: 'POST' })).status).toBe(404)
    } finally {
      disconnect(p)
      disconnect(bc)
    }
  }, 60_000)
})

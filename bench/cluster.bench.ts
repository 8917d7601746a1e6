/**
 * Questions (issue 3 b-d), all with real processes on loopback:
 *   (b) lag under load: primary + 2 backups; write load at 25, 50 and 100 %
 *       of the primary's peak (measured first, same cluster); per backup
 *       p50/p99/max lag over the phase (CONFIG RESETSTAT between phases), the
 *       trend (slope of per-second p50 lag over the phase), and the drain
 *       time after the load stops;
 *   (c) primary throughput (redis-benchmark SET -P16) with 0, 1, 2 backups,
 *       in async and remote-flush modes, as ratios to standalone;
 *   (d) GET throughput on a backup (redis-benchmark -t get -P16) while the
 *       primary takes a write load at 50 % of its peak.
 * (c) and (d) need redis-benchmark and are skipped without it.
 */
import path from 'node:path'
import { RespClient, parseInfo } from '../src/client/client.js'
import { RateLoad } from '../src/client/load.js'
import { startNode, type NodeProcess } from '../src/cli/spawn.js'
import { makeTempDir, param, processCpuMs, removeDir, type BenchContext, type BenchReport } from './lib/common.js'
import { runToEnd, which } from './lib/proc.js'
import { parseQuiet } from './redis_benchmark.js'

const VALUE_BYTES = 64
const KEYSPACE = 1_000_000
const LOAD_CLIENTS = 8
const DRAIN_TIMEOUT_MS = 60_000

interface Cluster {
  dir: string
  primary: NodeProcess
  backups: NodeProcess[]
  admin: RespClient
  backupClients: RespClient[]
}

async function startCluster(name: string, backups: number, commit: string, workers: number): Promise<Cluster> {
  const dir = makeTempDir(`cluster-${name}`)
  const primary = await startNode('primary', ['--port', '0', '--dir', path.join(dir, 'p'), '--commit', commit, '--sync-backups', '1'])
  const bs: NodeProcess[] = []
  for (let i = 0; i < backups; i++) {
    bs.push(await startNode('backup', ['--primary', `127.0.0.1:${primary.port}`, '--port', '0', '--dir', path.join(dir, `b${i}`), '--workers', String(workers)]))
  }
  const admin = await RespClient.connect('127.0.0.1', primary.port)
  const backupClients = await Promise.all(bs.map((b) => RespClient.connect('127.0.0.1', b.port)))
  const deadline = Date.now() + 20_000
  while (Number(parseInfo(await admin.call('INFO', 'replication')).get('connected_backups')) < backups) {
    if (Date.now() > deadline) throw new Error('backups did not connect')
    await sleep(20)
  }
  return { dir, primary, backups: bs, admin, backupClients }
}

async function stopCluster(c: Cluster): Promise<void> {
  c.admin.close()
  for (const b of c.backupClients) b.close()
  await Promise.all([...c.backups, c.primary].map((n) => n.stop()))
  removeDir(c.dir)
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** Least-squares slope of ys over xs. */
function slope(xs: number[], ys: number[]): number {
  const n = xs.length
  if (n < 2) return 0
  const mx = xs.reduce((a, b) => a + b, 0) / n
  const my = ys.reduce((a, b) => a + b, 0) / n
  let num = 0
  let den = 0
  for (let i = 0; i < n; i++) { num += (xs[i] - mx) * (ys[i] - my); den += (xs[i] - mx) ** 2 }
  return den === 0 ? 0 : num / den
}

async function loadFor(c: Cluster, rate: number, seconds: number, onSecond?: (s: number) => Promise<void>): Promise<{ acked: number, seconds: number, load: RateLoad }> {
  const load = await RateLoad.connect({ host: '127.0.0.1', port: c.primary.port, clients: LOAD_CLIENTS, rate, valueBytes: VALUE_BYTES, keyspace: KEYSPACE })
  const t0 = Date.now()
  load.start()
  for (let s = 1; s <= seconds; s++) {
    await sleep(t0 + s * 1000 - Date.now())
    if (onSecond !== undefined) await onSecond(s)
  }
  load.stop()
  const elapsed = (Date.now() - t0) / 1000
  const deadline = Date.now() + DRAIN_TIMEOUT_MS
  while (load.inFlight() > 0 && Date.now() < deadline) await sleep(5)
  return { acked: load.acked, seconds: elapsed, load }
}

async function drainMs(c: Cluster): Promise<number> {
  const t0 = Date.now()
  const commit = Number(parseInfo(await c.admin.call('INFO', 'replication')).get('commit_lsn'))
  for (const b of c.backupClients) {
    const r = await b.call('WAITLSN', commit, DRAIN_TIMEOUT_MS)
    if (typeof r !== 'number') throw new Error(`backup did not catch up: ${String(r)}`)
  }
  return Date.now() - t0
}

/**
 * Lag under load at 25/50/100% of the primary's peak. In `local` mode a
 * backup shows a block only once the primary has made it durable (its safe
 * LSN), so lag includes the primary's fsync; in `async` it does not.
 */
export async function runLag(ctx: BenchContext, figures: BenchReport['figures'], commit: 'async' | 'local'): Promise<string> {
  const seconds = param(ctx.mode, 2, 60)
  const workers = 2
  const key = commit === 'async' ? 'lag' : `lag.${commit}`
  const c = await startCluster(`lag-${commit}`, 2, commit, workers)
  try {
    const peak = await loadFor(c, 0, param(ctx.mode, 1, 10))
    peak.load.close()
    const peakRate = Math.round(peak.acked / peak.seconds)
    await drainMs(c)
    ctx.log(`lag: primary + 2 backups (${workers} workers each), ${commit} commit, ${VALUE_BYTES}-byte SETs from ${LOAD_CLIENTS} clients; primary peak with backups attached ${peakRate} SET/s`)
    figures[`${key}.peak_set_per_s`] = peakRate
    for (const pct of [25, 50, 100]) {
      const rate = Math.max(1, Math.round(peakRate * pct / 100))
      for (const b of c.backupClients) await b.call('CONFIG', 'RESETSTAT')
      const secs: number[] = []
      const p50s: number[][] = c.backupClients.map(() => [])
      const run = await loadFor(c, rate, seconds, async (s) => {
        secs.push(s)
        for (let i = 0; i < c.backupClients.length; i++) {
          const info = parseInfo(await c.backupClients[i].call('INFO', 'stats'))
          p50s[i].push(Number(info.get('replay_lag_window_p50_ms')))
        }
      })
      run.load.close()
      const drain = await drainMs(c)
      const achieved = Math.round(run.acked / run.seconds)
      for (let i = 0; i < c.backupClients.length; i++) {
        const info = parseInfo(await c.backupClients[i].call('INFO', 'stats'))
        const p50 = Number(info.get('replay_lag_p50_ms'))
        const p99 = Number(info.get('replay_lag_p99_ms'))
        const max = Number(info.get('replay_lag_max_ms'))
        const trend = slope(secs, p50s[i])
        figures[`${key}.${pct}pct.b${i + 1}.p50_ms`] = p50
        figures[`${key}.${pct}pct.b${i + 1}.p99_ms`] = p99
        figures[`${key}.${pct}pct.b${i + 1}.max_ms`] = max
        figures[`${key}.${pct}pct.b${i + 1}.trend_ms_per_s`] = Number(trend.toFixed(4))
        ctx.log(`  ${String(pct).padStart(3)}% (${rate} SET/s target, ${achieved} achieved) backup${i + 1}: lag p50 ${p50.toFixed(3)} ms, p99 ${p99.toFixed(3)} ms, max ${max.toFixed(3)} ms over ${info.get('replay_lag_samples')} blocks; p50 trend ${trend >= 0 ? '+' : ''}${trend.toFixed(4)} ms/s`)
      }
      figures[`${key}.${pct}pct.drain_ms`] = drain
      ctx.log(`  ${String(pct).padStart(3)}% drain after the load stopped: ${drain} ms`)
    }
    const commitLsn = String(parseInfo(await c.admin.call('INFO', 'replication')).get('commit_lsn'))
    return commitLsn
  } finally {
    await stopCluster(c)
  }
}

async function redisBench(port: number, args: string[]): Promise<number> {
  const r = await runToEnd('redis-benchmark', ['-p', String(port), '-q', ...args], 600_000)
  const m = parseQuiet(r.stdout)
  const first = [...m.values()][0]
  if (first === undefined) throw new Error(`redis-benchmark printed no result: ${r.stdout.slice(-400)} ${r.stderr.slice(-400)}`)
  return first.rps
}

export async function runBackupsThroughput(ctx: BenchContext, figures: BenchReport['figures']): Promise<string> {
  const n = param(ctx.mode, 100_000, 1_000_000)
  const rounds = param(ctx.mode, 1, 3)
  const results = new Map<string, number[]>()
  // SETs per CPU-second of the primary process: what shipping costs the primary, apart from
  // the backups and redis-benchmark competing with it for this machine's two cores.
  const perCpu = new Map<string, number[]>()
  for (let r = 0; r < rounds; r++) {
    for (const commit of ['async', 'remote-flush']) {
      for (const backups of [0, 1, 2]) {
        if (commit === 'remote-flush' && backups === 0) continue
        const c = await startCluster(`tp-${commit}-${backups}`, backups, commit, 2)
        try {
          const cpu0 = processCpuMs(c.primary.proc.pid!)
          const rps = await redisBench(c.primary.port, ['-t', 'set', '-n', String(n), '-r', String(KEYSPACE), '-d', String(VALUE_BYTES), '-P', '16', '-c', '50'])
          const cpuS = (processCpuMs(c.primary.proc.pid!) - cpu0) / 1000
          const key = `${commit}/${backups}`
          if (!results.has(key)) { results.set(key, []); perCpu.set(key, []) }
          results.get(key)!.push(rps)
          perCpu.get(key)!.push(n / cpuS)
        } finally {
          await stopCluster(c)
        }
      }
    }
  }
  const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]
  const base = med(results.get('async/0')!)
  ctx.log(`backups: redis-benchmark -t set -n ${n} -r ${KEYSPACE} -d ${VALUE_BYTES} -P 16 -c 50 against the primary, medians of ${rounds}`)
  const baseCpu = med(perCpu.get('async/0')!)
  for (const [key, xs] of results) {
    const m = med(xs)
    const c = med(perCpu.get(key)!)
    figures[`throughput.${key}.set_per_s`] = Math.round(m)
    figures[`throughput.${key}.ratio`] = Number((m / base).toFixed(3))
    figures[`throughput.${key}.set_per_primary_cpu_s`] = Math.round(c)
    figures[`throughput.${key}.cpu_ratio`] = Number((c / baseCpu).toFixed(3))
    ctx.log(`  ${key.padEnd(16)} ${Math.round(m)} SET/s = ${(m / base).toFixed(2)}x standalone async (runs ${xs.map((x) => Math.round(x)).join(', ')}); ${Math.round(c)} SET per primary CPU-second = ${(c / baseCpu).toFixed(2)}x`)
  }
  return String(Math.round(base))
}

export async function runBackupGets(ctx: BenchContext, figures: BenchReport['figures']): Promise<string> {
  const n = param(ctx.mode, 200_000, 2_000_000)
  const keys = param(ctx.mode, 100_000, 1_000_000)
  const c = await startCluster('gets', 1, 'async', 2)
  try {
    await redisBench(c.primary.port, ['-t', 'set', '-n', String(keys), '-r', String(keys), '-d', String(VALUE_BYTES), '-P', '16', '-c', '50'])
    await drainMs(c)
    const idle = await redisBench(c.backups[0].port, ['-t', 'get', '-n', String(n), '-r', String(keys), '-P', '16', '-c', '50'])
    const peak = await loadFor(c, 0, 2)
    peak.load.close()
    const rate = Math.round(peak.acked / peak.seconds / 2)
    const load = await RateLoad.connect({ host: '127.0.0.1', port: c.primary.port, clients: LOAD_CLIENTS, rate, valueBytes: VALUE_BYTES, keyspace: keys })
    load.start()
    const t0 = Date.now()
    const loaded = await redisBench(c.backups[0].port, ['-t', 'get', '-n', String(n), '-r', String(keys), '-P', '16', '-c', '50'])
    load.stop()
    const writesDuring = Math.round(load.acked / ((Date.now() - t0) / 1000))
    load.close()
    figures['backup_get.idle_per_s'] = Math.round(idle)
    figures['backup_get.loaded_per_s'] = Math.round(loaded)
    figures['backup_get.primary_writes_per_s'] = writesDuring
    ctx.log(`backup GET: redis-benchmark -t get -n ${n} -r ${keys} -P 16 -c 50 on a backup: ${Math.round(idle)} GET/s idle, ${Math.round(loaded)} GET/s while the primary takes ${writesDuring} SET/s (target 50% of its peak, ${rate})`)
    return String(Math.round(loaded))
  } finally {
    await stopCluster(c)
  }
}

export async function run(ctx: BenchContext): Promise<BenchReport> {
  const figures: BenchReport['figures'] = {}
  const hashes: string[] = []
  hashes.push(await runLag(ctx, figures, 'async'))
  hashes.push(await runLag(ctx, figures, 'local'))
  if (which('redis-benchmark') === null) {
    ctx.log('backups / backup GET: skipped (redis-benchmark not installed: apt-get install redis-tools)')
    return { name: 'cluster', skipped: null, figures, hash: hashes.join('/') }
  }
  hashes.push(await runBackupsThroughput(ctx, figures))
  hashes.push(await runBackupGets(ctx, figures))
  return { name: 'cluster', skipped: null, figures, hash: hashes.join('/') }
}

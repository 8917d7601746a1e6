/**
 * Question (issue 7, Benchmarks, "Soak"): does freshet run on a fixed working
 * set with memory and disk bounded by live data, on the primary and on every
 * backup, without costing foreground throughput or backup lag?
 *
 * Real processes on loopback: a primary and 2 backups, started with the CLI
 * (`node dist/src/cli/main.js primary|backup ...`), 1 MB segments. The load
 * (bench/lib/soak_load.ts): 64-byte values, 10 % DELs, keys chosen uniformly
 * in one phase and Zipf-0.99 in the next, at a fixed target rate. Two
 * clusters, one after the other, take the same load:
 *   baseline  reclamation never needed: --max-memory and --retain-bytes far
 *             above what the run writes, so the cleaner never triggers
 *             (checked: cleaner_segments_cleaned stays 0);
 *   reclaim   --max-memory small and --retain-bytes 1 MB: the cleaner runs.
 * The baseline keeps every write, so where the whole run would not fit in
 * its memory budget (15 % of RAM per node) its phases are cut short (full
 * mode on a small machine); the figures it gives (throughput at the target
 * rate, lag) do not grow with time, and the cut is printed.
 * Each cluster: preload every key once, measure the primary's peak (the same
 * mix, as fast as the in-flight window allows), then the uniform phase and the
 * Zipf phase at the target rate: 50 % of the baseline's peak, so both
 * clusters are offered the same load. All through, every sample interval, the
 * bench reads on each node INFO used_memory, used_memory_rss, log_bytes,
 * index_bytes (live_bytes on the primary), the bytes of its segment-*.log
 * files, the backups' lag, and the load's acknowledged ops.
 *
 * Figures: per phase, achieved throughput and backup lag p50/p99 (CONFIG
 * RESETSTAT at the phase's start); steady state = the second half of a phase:
 * each node's median used memory, RSS and disk against (live + index); the
 * issue's ratios (memory <= 1.5x (live + index), throughput >= 0.85x and lag
 * p99 <= 2x of the baseline) are reported, never asserted: quick mode is too
 * short and this machine too noisy to judge them (CI runs quick mode).
 * Output: a markdown table on stdout, bench/results/soak-<mode>.json, and a
 * PNG chart of memory and disk over time per cluster (soak-<mode>.png for
 * the reclaim cluster, soak-<mode>-baseline.png).
 *
 * FRESHET_SOAK_PHASE_S overrides the phase length in seconds (full mode:
 * 600, the issue's 10 minutes; quick: 8).
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { RespClient, parseInfo } from '../src/client/client.js'
import { startNode, type NodeProcess } from '../src/cli/spawn.js'
import { writeLineChart, type Rgb, type Series } from './lib/chart.js'
import { makeTempDir, param, removeDir, type BenchContext, type BenchReport } from './lib/common.js'
import { SoakLoad, preloadKeys, type KeyDistribution } from './lib/soak_load.js'

const VALUE_BYTES = 64
const DELETE_SHARE = 0.1
const LOAD_CLIENTS = 4
const WORKERS = 1
const SEGMENT_SIZE = '1mb'
const RECLAIM_RETAIN = '1mb'
const PEAK_INFLIGHT_PER_CLIENT_MAX = 4000
const RATE_INFLIGHT_PER_CLIENT_MAX = 20000
const DRAIN_TIMEOUT_MS = 120_000
const CONNECT_TIMEOUT_MS = 20_000
const SEED = 0x50a4
const TARGET_SHARE_OF_PEAK = 0.5
/** Per node, the share of RAM the baseline may fill (three nodes on one machine). */
const BASELINE_RAM_SHARE = 0.15
/** The share of the baseline's --max-memory its log may reach by the end of the run. */
const BASELINE_MEMORY_USE_MAX = 0.7
const TARGET_MEMORY_RATIO_MAX = 1.5
const TARGET_THROUGHPUT_RATIO_MIN = 0.85
const TARGET_LAG_P99_RATIO_MAX = 2
const MB = 1e6
const NODE_NAMES = ['primary', 'backup1', 'backup2'] as const
const DISTRIBUTIONS: readonly KeyDistribution[] = ['uniform', 'zipf']
const SEGMENT_FILE_RE = /^segment-\d+\.log$/

/** bench/results in the source tree (this file runs as dist/bench/soak.bench.js). */
const RESULTS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bench/results')

type RunKind = 'baseline' | 'reclaim'

interface Params {
  keys: number
  peakSeconds: number
  phaseSeconds: number
  sampleMs: number
  reclaimMaxMemory: string
  baselineMemoryBytes: number
}

interface NodeSample {
  usedMemoryBytes: number
  rssBytes: number
  logBytes: number
  indexBytes: number
  /** Primary only (NaN on backups). */
  liveBytes: number
  diskBytes: number
  logDiskBytes: number
  /** Backups: INFO replication lag_ms and the last window's replay lag p50/p99 (NaN on the primary). */
  lagMs: number
  lagWindowP50Ms: number
  lagWindowP99Ms: number
}

interface Sample {
  tS: number
  phase: string
  opsPerS: number
  cleanerSegmentsCleaned: number
  nodes: NodeSample[]
}

interface PhaseResult {
  distribution: KeyDistribution
  targetPerS: number
  achievedPerS: number
  seconds: number
  acked: number
  deletesSent: number
  errorsByCode: Record<string, number>
  /** Per backup, from replay_lag_* after CONFIG RESETSTAT at the phase's start. */
  lag: Array<{ p50Ms: number, p99Ms: number, maxMs: number, samples: number }>
  drainMs: number
  cleanerSegmentsCleaned: number
  /** Medians over the phase's second half, per node. */
  steady: Array<{ usedMemoryBytes: number, rssBytes: number, diskBytes: number, indexBytes: number, liveBytes: number, usedOverLiveIndex: number, rssOverLiveIndex: number, diskOverLive: number }>
}

interface RunResult {
  kind: RunKind
  nodeArgs: { primary: string[], backup: string[] }
  phaseSeconds: number
  idleRssBytes: number[]
  peakPerS: number
  phases: PhaseResult[]
  cleanerSegmentsCleaned: number
  writeAmplification: string
  fullResyncs: number[]
  dbsize: number[]
  samples: Sample[]
  markers: Array<{ tS: number, label: string }>
}

interface Cluster {
  dir: string
  dirs: string[]
  nodes: NodeProcess[]
  clients: RespClient[]
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)))
}

function median(xs: number[]): number {
  const s = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b)
  if (s.length === 0) return NaN
  const mid = s.length >> 1
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2
}

function num(info: Map<string, string>, key: string): number {
  const v = info.get(key)
  return v === undefined ? NaN : Number(v)
}

function sizeArg(bytes: number): string {
  return `${Math.floor(bytes / 2 ** 20)}mb`
}

/** Bytes of a node's segment files (what its log holds on disk). */
function segmentFileBytes(dir: string): number {
  let n = 0
  let names: string[]
  try {
    names = fs.readdirSync(dir)
  } catch {
    return NaN
  }
  for (const name of names) {
    if (!SEGMENT_FILE_RE.test(name)) continue
    try {
      n += fs.statSync(path.join(dir, name)).size
    } catch {
      // released between readdir and stat
    }
  }
  return n
}

/** VmRSS of a process from /proc, in bytes (NaN where unreadable): used where INFO gives no used_memory_rss. */
function procRssBytes(pid: number | undefined): number {
  if (pid === undefined) return NaN
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'latin1'))
    return m === null ? NaN : Number(m[1]) * 1024
  } catch {
    return NaN
  }
}

async function startCluster(kind: RunKind, p: Params): Promise<{ cluster: Cluster, nodeArgs: RunResult['nodeArgs'] }> {
  const dir = makeTempDir(`soak-${kind}`)
  const dirs = [path.join(dir, 'p'), path.join(dir, 'b1'), path.join(dir, 'b2')]
  const memory = kind === 'reclaim'
    ? ['--max-memory', p.reclaimMaxMemory]
    : ['--max-memory', sizeArg(p.baselineMemoryBytes)]
  const retain = kind === 'reclaim' ? RECLAIM_RETAIN : sizeArg(p.baselineMemoryBytes)
  const primaryArgs = ['--port', '0', '--segment-size', SEGMENT_SIZE, '--retain-bytes', retain, ...memory, '--commit', 'local']
  const backupArgs = ['--port', '0', '--segment-size', SEGMENT_SIZE, ...memory, '--workers', String(WORKERS)]
  const nodes: NodeProcess[] = []
  const clients: RespClient[] = []
  const cluster: Cluster = { dir, dirs, nodes, clients }
  try {
    nodes.push(await startNode('primary', [...primaryArgs, '--dir', dirs[0]]))
    for (let i = 1; i <= 2; i++) {
      nodes.push(await startNode('backup', ['--primary', `127.0.0.1:${nodes[0].port}`, ...backupArgs, '--dir', dirs[i]]))
    }
    for (const n of nodes) clients.push(await RespClient.connect('127.0.0.1', n.port))
    const deadline = Date.now() + CONNECT_TIMEOUT_MS
    while (num(parseInfo(await clients[0].call('INFO', 'replication')), 'connected_backups') < 2) {
      if (Date.now() > deadline) throw new Error('soak: backups did not connect')
      await sleep(20)
    }
  } catch (err) {
    await stopCluster(cluster)
    throw err
  }
  return { cluster, nodeArgs: { primary: primaryArgs, backup: backupArgs } }
}

async function stopCluster(c: Cluster): Promise<void> {
  for (const client of c.clients) client.close()
  await Promise.all(c.nodes.map((n) => n.stop()))
  removeDir(c.dir)
}

/** Waits until both backups have applied the primary's commit LSN; returns the wait in ms. */
async function drain(c: Cluster): Promise<number> {
  const t0 = Date.now()
  const commit = num(parseInfo(await c.clients[0].call('INFO', 'replication')), 'commit_lsn')
  for (const b of c.clients.slice(1)) {
    const r = await b.call('WAITLSN', commit, DRAIN_TIMEOUT_MS)
    if (typeof r !== 'number') throw new Error(`soak: a backup did not catch up with LSN ${commit}: ${String(r)}`)
  }
  return Date.now() - t0
}

async function waitLoadIdle(load: SoakLoad): Promise<void> {
  const deadline = Date.now() + DRAIN_TIMEOUT_MS
  while (load.inFlight() > 0 && Date.now() < deadline) await sleep(5)
}

/**
 * Samples every node on a fixed interval (skipping a tick while the previous
 * sample is still out), labelled with the current phase, with the ops/s the
 * current load had acknowledged since the previous sample.
 */
class Sampler {
  readonly samples: Sample[]
  readonly markers: Array<{ tS: number, label: string }>
  phase: string
  load: SoakLoad | null
  private readonly t0Ms: number
  private timer: NodeJS.Timeout | null
  private busy: Promise<void> | null
  private lastAcked: number
  private lastMs: number
  private lastLoad: SoakLoad | null

  constructor(private readonly c: Cluster, private readonly intervalMs: number) {
    this.samples = []
    this.markers = []
    this.phase = 'start'
    this.load = null
    this.t0Ms = Date.now()
    this.timer = null
    this.busy = null
    this.lastAcked = 0
    this.lastMs = this.t0Ms
    this.lastLoad = null
  }

  nowS(): number {
    return (Date.now() - this.t0Ms) / 1000
  }

  start(): void {
    this.timer = setInterval(() => {
      if (this.busy !== null) return
      this.busy = this.take().then(() => {}, () => {}).finally(() => { this.busy = null })
    }, this.intervalMs)
  }

  async stop(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
    if (this.busy !== null) await this.busy
  }

  enter(phase: string, load: SoakLoad | null): void {
    this.phase = phase
    this.load = load
    this.markers.push({ tS: this.nowS(), label: phase })
  }

  async take(): Promise<Sample> {
    const nowMs = Date.now()
    const load = this.load
    const acked = load === null ? 0 : load.acked
    const base = load !== null && load === this.lastLoad ? this.lastAcked : 0
    const opsPerS = load === null ? 0 : (acked - base) / Math.max(1e-3, (nowMs - this.lastMs) / 1000)
    this.lastAcked = acked
    this.lastLoad = load
    this.lastMs = nowMs
    const infos = await Promise.all(this.c.clients.map((cl) => cl.call('INFO', 'memory', 'persistence', 'replication', 'stats')))
    const nodes: NodeSample[] = infos.map((reply, i) => {
      const info = parseInfo(reply)
      const rssInfo = num(info, 'used_memory_rss')
      return {
        usedMemoryBytes: num(info, 'used_memory'),
        rssBytes: Number.isNaN(rssInfo) ? procRssBytes(this.c.nodes[i].proc.pid) : rssInfo,
        logBytes: num(info, 'log_bytes'),
        indexBytes: num(info, 'index_bytes'),
        liveBytes: i === 0 ? num(info, 'live_bytes') : NaN,
        diskBytes: segmentFileBytes(this.c.dirs[i]),
        logDiskBytes: num(info, 'log_disk_bytes'),
        lagMs: i === 0 ? NaN : num(info, 'lag_ms'),
        lagWindowP50Ms: i === 0 ? NaN : num(info, 'replay_lag_window_p50_ms'),
        lagWindowP99Ms: i === 0 ? NaN : num(info, 'replay_lag_window_p99_ms'),
      }
    })
    const sample: Sample = {
      tS: Number(((nowMs - this.t0Ms) / 1000).toFixed(3)),
      phase: this.phase,
      opsPerS: Math.round(opsPerS),
      cleanerSegmentsCleaned: num(parseInfo(infos[0]), 'cleaner_segments_cleaned'),
      nodes,
    }
    this.samples.push(sample)
    return sample
  }
}

function steadyOf(samples: Sample[], phase: string, fromS: number): PhaseResult['steady'] {
  const steady = samples.filter((s) => s.phase === phase && s.tS >= fromS)
  return NODE_NAMES.map((_, i) => {
    const live = median(steady.map((s) => s.nodes[0].liveBytes))
    const index = median(steady.map((s) => s.nodes[i].indexBytes))
    const used = median(steady.map((s) => s.nodes[i].usedMemoryBytes))
    const rss = median(steady.map((s) => s.nodes[i].rssBytes))
    const disk = median(steady.map((s) => s.nodes[i].diskBytes))
    return {
      usedMemoryBytes: used,
      rssBytes: rss,
      diskBytes: disk,
      indexBytes: index,
      liveBytes: live,
      usedOverLiveIndex: Number((used / (live + index)).toFixed(3)),
      rssOverLiveIndex: Number((rss / (live + index)).toFixed(3)),
      diskOverLive: Number((disk / live).toFixed(3)),
    }
  })
}

async function runPhase(c: Cluster, sampler: Sampler, p: Params, distribution: KeyDistribution, rate: number, phaseSeconds: number, seed: number): Promise<PhaseResult> {
  for (const b of c.clients.slice(1)) await b.call('CONFIG', 'RESETSTAT')
  const cleaned0 = num(parseInfo(await c.clients[0].call('INFO', 'memory')), 'cleaner_segments_cleaned')
  const load = await SoakLoad.connect({
    host: '127.0.0.1', port: c.nodes[0].port, clients: LOAD_CLIENTS, rate, valueBytes: VALUE_BYTES, keys: p.keys,
    distribution, deleteShare: DELETE_SHARE, inflightPerClientMax: RATE_INFLIGHT_PER_CLIENT_MAX, seed,
  })
  try {
    sampler.enter(distribution, load)
    const t0 = Date.now()
    const steadyFromS = sampler.nowS() + phaseSeconds / 2
    load.start()
    await sleep(phaseSeconds * 1000)
    load.stop()
    const seconds = (Date.now() - t0) / 1000
    await waitLoadIdle(load)
    const lag = []
    for (const b of c.clients.slice(1)) {
      const info = parseInfo(await b.call('INFO', 'stats'))
      lag.push({ p50Ms: num(info, 'replay_lag_p50_ms'), p99Ms: num(info, 'replay_lag_p99_ms'), maxMs: num(info, 'replay_lag_max_ms'), samples: num(info, 'replay_lag_samples') })
    }
    sampler.enter(`${distribution} drain`, null)
    const drainMs = await drain(c)
    const cleaned1 = num(parseInfo(await c.clients[0].call('INFO', 'memory')), 'cleaner_segments_cleaned')
    return {
      distribution,
      targetPerS: rate,
      achievedPerS: Math.round(load.acked / seconds),
      seconds: Number(seconds.toFixed(2)),
      acked: load.acked,
      deletesSent: load.deletesSent,
      errorsByCode: Object.fromEntries(load.errorsByCode),
      lag,
      drainMs,
      cleanerSegmentsCleaned: cleaned1 - cleaned0,
      steady: steadyOf(sampler.samples, distribution, steadyFromS),
    }
  } finally {
    load.close()
  }
}

/** One cluster through preload, peak and both phases. `targetPerS` null: this run's peak sets the target. */
async function runCluster(ctx: BenchContext, kind: RunKind, p: Params, targetPerS: number | null): Promise<RunResult> {
  const { cluster: c, nodeArgs } = await startCluster(kind, p)
  const sampler = new Sampler(c, p.sampleMs)
  try {
    const idle = await sampler.take()
    sampler.start()
    sampler.enter('preload', null)
    await preloadKeys('127.0.0.1', c.nodes[0].port, p.keys, VALUE_BYTES)
    await drain(c)
    const peakLoad = await SoakLoad.connect({
      host: '127.0.0.1', port: c.nodes[0].port, clients: LOAD_CLIENTS, rate: 0, valueBytes: VALUE_BYTES, keys: p.keys,
      distribution: 'uniform', deleteShare: DELETE_SHARE, inflightPerClientMax: PEAK_INFLIGHT_PER_CLIENT_MAX, seed: SEED,
    })
    let peakPerS: number
    const logBytes0 = num(parseInfo(await c.clients[0].call('INFO', 'memory')), 'log_bytes')
    try {
      sampler.enter('peak', peakLoad)
      const t0 = Date.now()
      peakLoad.start()
      await sleep(p.peakSeconds * 1000)
      peakLoad.stop()
      peakPerS = Math.round(peakLoad.acked / ((Date.now() - t0) / 1000))
      await waitLoadIdle(peakLoad)
    } finally {
      peakLoad.close()
    }
    sampler.enter('peak drain', null)
    await drain(c)
    const logBytesPerOp = (num(parseInfo(await c.clients[0].call('INFO', 'memory')), 'log_bytes') - logBytes0) / Math.max(1, peakLoad.acked)
    const rate = targetPerS ?? Math.max(1, Math.round(peakPerS * TARGET_SHARE_OF_PEAK))
    // The baseline keeps every write: its phases are cut short where the whole
    // run would otherwise outgrow its memory (the cleaner would then have to run).
    const fitSeconds = Math.floor(p.baselineMemoryBytes * BASELINE_MEMORY_USE_MAX / (DISTRIBUTIONS.length * rate * logBytesPerOp))
    const phaseSeconds = kind === 'baseline' && fitSeconds < p.phaseSeconds ? Math.max(1, fitSeconds) : p.phaseSeconds
    ctx.log(`soak ${kind}: peak ${peakPerS} ops/s (uniform, ${DELETE_SHARE * 100}% DEL${kind === 'baseline' ? `, ${logBytesPerOp.toFixed(0)} log bytes per op` : ''}); phases at ${rate} ops/s for ${phaseSeconds} s each${phaseSeconds < p.phaseSeconds ? ` (cut from ${p.phaseSeconds} s so that the reclamation-free log fits in ${sizeArg(p.baselineMemoryBytes)})` : ''}`)
    const phases: PhaseResult[] = []
    for (let d = 0; d < DISTRIBUTIONS.length; d++) phases.push(await runPhase(c, sampler, p, DISTRIBUTIONS[d], rate, phaseSeconds, SEED + 1 + d))
    sampler.enter('end', null)
    await sampler.stop()
    await sampler.take()
    const mem = parseInfo(await c.clients[0].call('INFO', 'memory'))
    const fullResyncs: number[] = []
    const dbsize: number[] = []
    for (let i = 0; i < c.clients.length; i++) {
      fullResyncs.push(i === 0 ? 0 : num(parseInfo(await c.clients[i].call('INFO', 'persistence')), 'full_resyncs_total'))
      dbsize.push(Number(await c.clients[i].call('DBSIZE')))
    }
    return {
      kind,
      nodeArgs,
      phaseSeconds,
      idleRssBytes: idle.nodes.map((n) => n.rssBytes),
      peakPerS,
      phases,
      cleanerSegmentsCleaned: num(mem, 'cleaner_segments_cleaned'),
      writeAmplification: mem.get('write_amplification') ?? '',
      fullResyncs,
      dbsize,
      samples: sampler.samples,
      markers: sampler.markers.filter((m) => !m.label.endsWith('drain')),
    }
  } finally {
    await sampler.stop()
    await stopCluster(c)
  }
}

const NODE_COLORS: readonly Rgb[] = [[31, 119, 180], [230, 110, 0], [44, 160, 44]]

export function chartRun(file: string, mode: string, r: RunResult): void {
  const memory: Series[] = []
  const rss: Series[] = []
  const mb = (x: number): number => x / MB
  for (let i = 0; i < NODE_NAMES.length; i++) {
    const pts = (f: (n: NodeSample) => number): Array<[number, number]> => r.samples.filter((s) => !Number.isNaN(f(s.nodes[i]))).map((s) => [s.tS, mb(f(s.nodes[i]))])
    memory.push({ name: `${NODE_NAMES[i]} used_memory`, color: NODE_COLORS[i], style: 'solid', width: 3, points: pts((n) => n.usedMemoryBytes) })
    memory.push({ name: `${NODE_NAMES[i]} disk (segment files)`, color: NODE_COLORS[i], style: 'dotted', width: 3, points: pts((n) => n.diskBytes) })
    rss.push({ name: `${NODE_NAMES[i]} RSS`, color: NODE_COLORS[i], style: 'solid', width: 2, points: pts((n) => n.rssBytes) })
  }
  const liveIndex = r.samples.filter((s) => !Number.isNaN(s.nodes[0].liveBytes)).map((s) => [s.tS, mb(s.nodes[0].liveBytes + s.nodes[0].indexBytes)] as [number, number])
  memory.push({ name: 'primary live + index', color: [0, 0, 0], style: 'solid', width: 1, points: liveIndex })
  memory.push({ name: `${TARGET_MEMORY_RATIO_MAX}x (live + index)`, color: [0, 0, 0], style: 'dashed', width: 1, points: liveIndex.map(([t, y]) => [t, y * TARGET_MEMORY_RATIO_MAX]) })
  const title = r.kind === 'reclaim'
    ? `freshet soak (${mode}), cleaner on: memory and disk of each node`
    : `freshet soak (${mode}), baseline (no reclamation needed): memory and disk of each node`
  writeLineChart(file, {
    title,
    subtitle: `primary ${r.nodeArgs.primary.filter((a) => a !== '0' && a !== '--port').join(' ')}; ${r.samples.length} samples`,
    xLabel: 'seconds since the cluster started',
    panels: [
      { yLabel: 'used memory and disk, MB', series: memory },
      { yLabel: 'RSS, MB', series: rss },
    ],
    markers: r.markers.map((m) => ({ x: m.tS, label: m.label })), widthPx: 1600, panelHeightPx: 420,
  })
}

function fmtMb(x: number): string {
  return Number.isNaN(x) ? 'n/a' : (x / MB).toFixed(1)
}

function fmtRatio(x: number): string {
  return Number.isFinite(x) ? `${x.toFixed(2)}x` : 'n/a'
}

function maxP99(ph: PhaseResult): number {
  return Math.max(...ph.lag.map((l) => l.p99Ms))
}

function report(ctx: BenchContext, runs: RunResult[], figures: BenchReport['figures']): void {
  ctx.log('')
  ctx.log('| run | phase | target ops/s | achieved ops/s | errors | lag p50 b1/b2 ms | lag p99 b1/b2 ms | cleaned segs | used MB p/b1/b2 | RSS MB p/b1/b2 | disk MB p/b1/b2 | live+index MB | used/(live+index) max |')
  ctx.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|')
  for (const r of runs) {
    for (const ph of r.phases) {
      const errs = Object.entries(ph.errorsByCode).map(([k, v]) => `${k} ${v}`).join(', ') || '0'
      const st = ph.steady
      const worst = Math.max(...st.map((s) => s.usedOverLiveIndex))
      ctx.log(`| ${r.kind} | ${ph.distribution} | ${ph.targetPerS} | ${ph.achievedPerS} | ${errs} | ${ph.lag.map((l) => l.p50Ms.toFixed(2)).join(' / ')} | ${ph.lag.map((l) => l.p99Ms.toFixed(2)).join(' / ')} | ${ph.cleanerSegmentsCleaned} | ${st.map((s) => fmtMb(s.usedMemoryBytes)).join(' / ')} | ${st.map((s) => fmtMb(s.rssBytes)).join(' / ')} | ${st.map((s) => fmtMb(s.diskBytes)).join(' / ')} | ${fmtMb(st[0].liveBytes + st[0].indexBytes)} | ${fmtRatio(worst)} |`)
      const key = `${r.kind}.${ph.distribution}`
      figures[`${key}.target_per_s`] = ph.targetPerS
      figures[`${key}.achieved_per_s`] = ph.achievedPerS
      figures[`${key}.errors`] = Object.values(ph.errorsByCode).reduce((a, b) => a + b, 0)
      figures[`${key}.lag_p99_ms_max`] = maxP99(ph)
      figures[`${key}.used_over_live_index_max`] = worst
      figures[`${key}.cleaner_segments_cleaned`] = ph.cleanerSegmentsCleaned
    }
  }
  const base = runs.find((r) => r.kind === 'baseline')!
  const reclaim = runs.find((r) => r.kind === 'reclaim')!
  ctx.log('')
  ctx.log(`Steady state = the second half of each phase (medians). Memory is used_memory (log + index); RSS includes the Node.js runtime (idle RSS at start: ${base.idleRssBytes.map(fmtMb).join(' / ')} MB).`)
  ctx.log(`Baseline check: cleaner_segments_cleaned = ${base.cleanerSegmentsCleaned} (${base.cleanerSegmentsCleaned === 0 ? 'no reclamation, as intended' : 'THE CLEANER RAN: the baseline is not reclamation-free'}); reclaim run: ${reclaim.cleanerSegmentsCleaned} segments cleaned, write amplification ${reclaim.writeAmplification}, full resyncs b1/b2 ${reclaim.fullResyncs.slice(1).join('/')}.`)
  ctx.log(`DBSIZE after drain p/b1/b2: baseline ${base.dbsize.join('/')}, reclaim ${reclaim.dbsize.join('/')}.`)
  ctx.log('')
  ctx.log('| issue 7 target | phase | measured | target | within? |')
  ctx.log('|---|---|---|---|---|')
  const peakRatio = reclaim.peakPerS / base.peakPerS
  ctx.log(`| peak throughput, reclaim / baseline (informative) | uniform | ${fmtRatio(peakRatio)} (${reclaim.peakPerS} / ${base.peakPerS} ops/s) | - | - |`)
  figures['peak.baseline_per_s'] = base.peakPerS
  figures['peak.reclaim_per_s'] = reclaim.peakPerS
  figures['peak.ratio'] = Number(peakRatio.toFixed(3))
  for (let d = 0; d < DISTRIBUTIONS.length; d++) {
    const b = base.phases[d]
    const r = reclaim.phases[d]
    const tp = r.achievedPerS / b.achievedPerS
    const lag = maxP99(r) / maxP99(b)
    const mem = Math.max(...r.steady.map((s) => s.usedOverLiveIndex))
    const rss = Math.max(...r.steady.map((s) => s.rssOverLiveIndex))
    const dist = r.distribution
    ctx.log(`| throughput at ${r.targetPerS} ops/s offered, reclaim / baseline | ${dist} | ${fmtRatio(tp)} | >= ${TARGET_THROUGHPUT_RATIO_MIN}x | ${tp >= TARGET_THROUGHPUT_RATIO_MIN ? 'yes' : 'no'} |`)
    ctx.log(`| lag p99 (worse backup), reclaim / baseline | ${dist} | ${fmtRatio(lag)} (${maxP99(r).toFixed(2)} / ${maxP99(b).toFixed(2)} ms) | <= ${TARGET_LAG_P99_RATIO_MAX}x | ${lag <= TARGET_LAG_P99_RATIO_MAX ? 'yes' : 'no'} |`)
    ctx.log(`| used_memory / (live + index), worst node | ${dist} | ${fmtRatio(mem)} | <= ${TARGET_MEMORY_RATIO_MAX}x | ${mem <= TARGET_MEMORY_RATIO_MAX ? 'yes' : 'no'} |`)
    ctx.log(`| RSS / (live + index), worst node (informative) | ${dist} | ${fmtRatio(rss)} | - | - |`)
    figures[`ratio.${dist}.throughput`] = Number(tp.toFixed(3))
    figures[`ratio.${dist}.lag_p99`] = Number(lag.toFixed(3))
    figures[`ratio.${dist}.memory_worst_node`] = mem
    figures[`ratio.${dist}.rss_worst_node`] = rss
  }
  ctx.log('')
}

export async function run(ctx: BenchContext): Promise<BenchReport> {
  const phaseOverride = Number(process.env.FRESHET_SOAK_PHASE_S ?? '')
  const p: Params = {
    keys: param(ctx.mode, 20_000, 100_000),
    peakSeconds: param(ctx.mode, 2, 10),
    phaseSeconds: Number.isFinite(phaseOverride) && phaseOverride > 0 ? phaseOverride : param(ctx.mode, 8, 600),
    sampleMs: param(ctx.mode, 1000, 5000),
    reclaimMaxMemory: param(ctx.mode, '32mb', '64mb'),
    // The baseline must never need reclamation: room for everything a run writes, per node.
    baselineMemoryBytes: Math.max(256 * 2 ** 20, Math.floor(os.totalmem() * BASELINE_RAM_SHARE)),
  }
  ctx.log(`soak: primary + 2 backups (${WORKERS} replay worker each), --segment-size ${SEGMENT_SIZE}, ${p.keys} keys, ${VALUE_BYTES}-byte values, ${DELETE_SHARE * 100}% DEL, ${LOAD_CLIENTS} pipelining clients; reclaim: --max-memory ${p.reclaimMaxMemory} --retain-bytes ${RECLAIM_RETAIN}; baseline: --max-memory ${sizeArg(p.baselineMemoryBytes)} --retain-bytes ${sizeArg(p.baselineMemoryBytes)}; sample every ${p.sampleMs} ms`)
  const baseline = await runCluster(ctx, 'baseline', p, null)
  const target = Math.max(1, Math.round(baseline.peakPerS * TARGET_SHARE_OF_PEAK))
  const reclaim = await runCluster(ctx, 'reclaim', p, target)
  const runs = [baseline, reclaim]
  const figures: BenchReport['figures'] = {}
  report(ctx, runs, figures)
  fs.mkdirSync(RESULTS_DIR, { recursive: true })
  const base = path.join(RESULTS_DIR, `soak-${ctx.mode}`)
  fs.writeFileSync(`${base}.json`, JSON.stringify({ bench: 'soak', mode: ctx.mode, date: new Date().toISOString(), params: p, valueBytes: VALUE_BYTES, deleteShare: DELETE_SHARE, figures, runs }, null, 1) + '\n')
  chartRun(`${base}.png`, ctx.mode, reclaim)
  chartRun(`${base}-baseline.png`, ctx.mode, baseline)
  ctx.log(`soak: wrote ${path.relative(process.cwd(), base)}.json, .png (reclaim) and -baseline.png`)
  return { name: 'soak', skipped: null, figures, hash: `${reclaim.dbsize.join('/')}` }
}

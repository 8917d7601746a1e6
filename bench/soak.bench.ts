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
 * index_bytes, live_bytes, segment_pool_bytes, the bytes of its segment-*.log
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
import { makeTempDir, param, removeDir, type BenchContext, type BenchReport } from './lib/common.js'
import { SoakLoad, preloadKeys, type KeyDistribution } from './lib/soak_load.js'
import { DISTRIBUTIONS, chartSoakRun, reportSoak, steadyOf, type NodeSample, type PhaseResult, type RunKind, type RunResult, type Sample } from './lib/soak_report.js'

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
const SEGMENT_FILE_RE = /^segment-\d+\.log$/

/** bench/results in the source tree (this file runs as dist/bench/soak.bench.js). */
const RESULTS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bench/results')

interface Params {
  keys: number
  peakSeconds: number
  phaseSeconds: number
  sampleMs: number
  reclaimMaxMemory: string
  baselineMemoryBytes: number
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
        heapTotalBytes: num(info, 'process_heap_total'),
        arrayBuffersBytes: num(info, 'process_array_buffers'),
        logBytes: num(info, 'log_bytes'),
        indexBytes: num(info, 'index_bytes'),
        liveBytes: num(info, 'live_bytes'),
        poolBytes: num(info, 'segment_pool_bytes'),
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
    const mems = await Promise.all(c.clients.map(async (cl) => parseInfo(await cl.call('INFO', 'memory'))))
    const mem = mems[0]
    const fullResyncs: number[] = []
    const dbsize: number[] = []
    const buffersDropped = mems.map((m) => num(m, 'segment_buffers_dropped'))
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
      buffersDropped,
      dbsize,
      samples: sampler.samples,
      markers: sampler.markers.filter((m) => !m.label.endsWith('drain')),
    }
  } finally {
    await sampler.stop()
    await stopCluster(c)
  }
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
  reportSoak(ctx, runs, figures)
  fs.mkdirSync(RESULTS_DIR, { recursive: true })
  const base = path.join(RESULTS_DIR, `soak-${ctx.mode}`)
  fs.writeFileSync(`${base}.json`, JSON.stringify({ bench: 'soak', mode: ctx.mode, date: new Date().toISOString(), params: p, valueBytes: VALUE_BYTES, deleteShare: DELETE_SHARE, figures, runs }, null, 1) + '\n')
  chartSoakRun(`${base}.png`, ctx.mode, reclaim)
  chartSoakRun(`${base}-baseline.png`, ctx.mode, baseline)
  ctx.log(`soak: wrote ${path.relative(process.cwd(), base)}.json, .png (reclaim) and -baseline.png`)
  return { name: 'soak', skipped: null, figures, hash: `${reclaim.dbsize.join('/')}` }
}

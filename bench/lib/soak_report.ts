/**
 * The soak bench's results (bench/soak.bench.ts): the shapes of its samples
 * and phases, the steady-state medians, the markdown tables with the issue's
 * ratios (reported, never asserted), and the PNG chart of one cluster's
 * memory and disk over time.
 */
import { writeLineChart, type Rgb, type Series } from './chart.js'
import type { BenchContext, BenchReport } from './common.js'
import type { KeyDistribution } from './soak_load.js'

export type RunKind = 'baseline' | 'reclaim'

export const NODE_NAMES = ['primary', 'backup1', 'backup2'] as const
export const DISTRIBUTIONS: readonly KeyDistribution[] = ['uniform', 'zipf']
const TARGET_MEMORY_RATIO_MAX = 1.5
const TARGET_THROUGHPUT_RATIO_MIN = 0.85
const TARGET_LAG_P99_RATIO_MAX = 2
const MB = 1e6

export interface NodeSample {
  usedMemoryBytes: number
  rssBytes: number
  /** INFO memory process_heap_total and process_array_buffers: where RSS beyond used_memory goes (NaN where absent). */
  heapTotalBytes: number
  arrayBuffersBytes: number
  logBytes: number
  indexBytes: number
  /** The node's own live_bytes (a backup counts what its replay installed; NaN where a node reports none). */
  liveBytes: number
  /** Released segment buffers kept for reuse (segment_pool_bytes: in RSS, not in used_memory). */
  poolBytes: number
  diskBytes: number
  logDiskBytes: number
  /** Backups: INFO replication lag_ms and the last window's replay lag p50/p99 (NaN on the primary). */
  lagMs: number
  lagWindowP50Ms: number
  lagWindowP99Ms: number
}

export interface Sample {
  tS: number
  phase: string
  opsPerS: number
  cleanerSegmentsCleaned: number
  nodes: NodeSample[]
}

export interface PhaseResult {
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
  steady: Array<{ usedMemoryBytes: number, poolBytes: number, rssBytes: number, diskBytes: number, indexBytes: number, liveBytes: number, usedOverLiveIndex: number, usedPoolOverLiveIndex: number, rssOverLiveIndex: number, diskOverLive: number }>
}

export interface RunResult {
  kind: RunKind
  nodeArgs: { primary: string[], backup: string[] }
  phaseSeconds: number
  idleRssBytes: number[]
  peakPerS: number
  phases: PhaseResult[]
  cleanerSegmentsCleaned: number
  writeAmplification: string
  fullResyncs: number[]
  /** Released segment buffers each node left to the GC (its pool was full), p/b1/b2. */
  buffersDropped: number[]
  dbsize: number[]
  samples: Sample[]
  markers: Array<{ tS: number, label: string }>
}

function median(xs: number[]): number {
  const s = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b)
  if (s.length === 0) return NaN
  const mid = s.length >> 1
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2
}

export function steadyOf(samples: Sample[], phase: string, fromS: number): PhaseResult['steady'] {
  const steady = samples.filter((s) => s.phase === phase && s.tS >= fromS)
  return NODE_NAMES.map((_, i) => {
    // Each node against its own live data (older result files: backups reported none, so the primary's).
    const own = median(steady.map((s) => s.nodes[i].liveBytes))
    const live = Number.isNaN(own) ? median(steady.map((s) => s.nodes[0].liveBytes)) : own
    const index = median(steady.map((s) => s.nodes[i].indexBytes))
    const used = median(steady.map((s) => s.nodes[i].usedMemoryBytes))
    const pool = median(steady.map((s) => s.nodes[i].poolBytes))
    const rss = median(steady.map((s) => s.nodes[i].rssBytes))
    const disk = median(steady.map((s) => s.nodes[i].diskBytes))
    return {
      usedMemoryBytes: used,
      poolBytes: pool,
      rssBytes: rss,
      diskBytes: disk,
      indexBytes: index,
      liveBytes: live,
      usedOverLiveIndex: Number((used / (live + index)).toFixed(3)),
      usedPoolOverLiveIndex: Number(((used + pool) / (live + index)).toFixed(3)),
      rssOverLiveIndex: Number((rss / (live + index)).toFixed(3)),
      diskOverLive: Number((disk / live).toFixed(3)),
    }
  })
}

const NODE_COLORS: readonly Rgb[] = [[31, 119, 180], [230, 110, 0], [44, 160, 44]]

export function chartSoakRun(file: string, mode: string, r: RunResult): void {
  const memory: Series[] = []
  const rss: Series[] = []
  const mb = (x: number): number => x / MB
  const lag: Series[] = []
  for (let i = 0; i < NODE_NAMES.length; i++) {
    const raw = (f: (n: NodeSample) => number): Array<[number, number]> => r.samples.filter((s) => !Number.isNaN(f(s.nodes[i]))).map((s) => [s.tS, f(s.nodes[i])])
    const pts = (f: (n: NodeSample) => number): Array<[number, number]> => raw(f).map(([t, y]) => [t, mb(y)])
    if (i > 0) {
      lag.push({ name: `${NODE_NAMES[i]} replay lag p99 (last window)`, color: NODE_COLORS[i], style: 'solid', width: 2, points: raw((n) => n.lagWindowP99Ms) })
      lag.push({ name: `${NODE_NAMES[i]} lag_ms (sampled)`, color: NODE_COLORS[i], style: 'dotted', width: 2, points: raw((n) => n.lagMs) })
    }
    memory.push({ name: `${NODE_NAMES[i]} used_memory`, color: NODE_COLORS[i], style: 'solid', width: 3, points: pts((n) => n.usedMemoryBytes) })
    memory.push({ name: `${NODE_NAMES[i]} disk (segment files)`, color: NODE_COLORS[i], style: 'dotted', width: 3, points: pts((n) => n.diskBytes) })
    rss.push({ name: `${NODE_NAMES[i]} RSS`, color: NODE_COLORS[i], style: 'solid', width: 2, points: pts((n) => n.rssBytes) })
  }
  const liveIndex = r.samples.filter((s) => !Number.isNaN(s.nodes[0].liveBytes)).map((s) => [s.tS, mb(s.nodes[0].liveBytes + s.nodes[0].indexBytes)] as [number, number])
  memory.push({ name: 'primary live + index', color: [0, 0, 0], style: 'solid', width: 1, points: liveIndex })
  memory.push({ name: `${TARGET_MEMORY_RATIO_MAX}x (live + index)`, color: [0, 0, 0], style: 'dashed', width: 1, points: liveIndex.map(([t, y]) => [t, y * TARGET_MEMORY_RATIO_MAX]) })
  const title = r.kind === 'reclaim'
    ? `freshet soak (${mode}), cleaner on: memory, disk, RSS and lag of each node`
    : `freshet soak (${mode}), baseline (no reclamation needed): memory, disk, RSS and lag of each node`
  writeLineChart(file, {
    title,
    subtitle: `primary ${r.nodeArgs.primary.filter((a) => a !== '0' && a !== '--port').join(' ')}; ${r.samples.length} samples`,
    xLabel: 'seconds since the cluster started',
    panels: [
      { yLabel: 'used memory and disk, MB', series: memory },
      { yLabel: 'RSS, MB', series: rss },
      { yLabel: 'backup lag, ms', series: lag },
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

/** RSS growth is judged over the run's last RSS_GROWTH_WINDOW_S seconds (the issue: under 5 % over the last 10 minutes). */
const RSS_GROWTH_WINDOW_S = 600
const TARGET_RSS_GROWTH_MAX = 0.05

/**
 * Per node: RSS growth over the last RSS_GROWTH_WINDOW_S seconds of load
 * (the run's whole loaded time if shorter): the median of the window's last
 * tenth of samples over the median of its first tenth, less 1 (medians, so
 * one sample taken mid-GC does not decide it). Returns the window's length too.
 */
export function rssGrowthOf(samples: Sample[]): { windowS: number, growth: number[] } {
  const loaded = samples.filter((s) => s.phase === 'uniform' || s.phase === 'zipf')
  if (loaded.length < 2) return { windowS: 0, growth: NODE_NAMES.map(() => NaN) }
  const endS = loaded[loaded.length - 1].tS
  const window = loaded.filter((s) => s.tS >= endS - RSS_GROWTH_WINDOW_S)
  const k = Math.max(1, Math.floor(window.length / 10))
  const head = window.slice(0, k)
  const tail = window.slice(-k)
  return {
    windowS: endS - window[0].tS,
    growth: NODE_NAMES.map((_, i) => median(tail.map((s) => s.nodes[i].rssBytes)) / median(head.map((s) => s.nodes[i].rssBytes)) - 1),
  }
}

/** Per node: RSS, JS heap total and array buffers at the first and the last sample. */
function rssGrowth(samples: Sample[]): string {
  if (samples.length === 0) return '-'
  const first = samples[0].nodes
  const last = samples[samples.length - 1].nodes
  return first.map((n, i) => `${fmtMb(n.rssBytes)} -> ${fmtMb(last[i].rssBytes)} (${fmtMb(n.heapTotalBytes)} -> ${fmtMb(last[i].heapTotalBytes)}; ` +
    `${fmtMb(n.arrayBuffersBytes)} -> ${fmtMb(last[i].arrayBuffersBytes)})`).join(' / ')
}

export function reportSoak(ctx: BenchContext, runs: RunResult[], figures: BenchReport['figures']): void {
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
  ctx.log(`Steady state = the second half of each phase (medians). Memory is used_memory (log held + index; pooled segment buffers are reported apart, as an allocator's free pages would be); RSS includes the Node.js runtime (idle RSS at start: ${base.idleRssBytes.map(fmtMb).join(' / ')} MB).`)
  ctx.log(`Baseline check: cleaner_segments_cleaned = ${base.cleanerSegmentsCleaned} (${base.cleanerSegmentsCleaned === 0 ? 'no reclamation, as intended' : 'THE CLEANER RAN: the baseline is not reclamation-free'}); reclaim run: ${reclaim.cleanerSegmentsCleaned} segments cleaned, write amplification ${reclaim.writeAmplification}, full resyncs b1/b2 ${reclaim.fullResyncs.slice(1).join('/')}, segment buffers left to the GC p/b1/b2 ${reclaim.buffersDropped.join('/')}.`)
  ctx.log(`DBSIZE after drain p/b1/b2: baseline ${base.dbsize.join('/')}, reclaim ${reclaim.dbsize.join('/')}.`)
  ctx.log(`RSS over the reclaim run, first -> last sample, MB (JS heap total; array buffers) p/b1/b2: ${rssGrowth(reclaim.samples)}.`)
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
    const withPool = Math.max(...r.steady.map((s) => s.usedPoolOverLiveIndex))
    ctx.log(`| (used_memory + segment pool) / (live + index), worst node (informative) | ${dist} | ${fmtRatio(withPool)} | - | - |`)
    figures[`ratio.${dist}.memory_with_pool_worst_node`] = withPool
    ctx.log(`| used_memory / (live + index) per node p/b1/b2 | ${dist} | ${r.steady.map((s) => fmtRatio(s.usedOverLiveIndex)).join(' / ')} | <= ${TARGET_MEMORY_RATIO_MAX}x | ${r.steady.every((s) => s.usedOverLiveIndex <= TARGET_MEMORY_RATIO_MAX) ? 'yes' : 'no'} |`)
  }
  const g = rssGrowthOf(reclaim.samples)
  const worstGrowth = Math.max(...g.growth)
  ctx.log(`| RSS growth over the last ${Math.round(g.windowS)} s of load, per node p/b1/b2 | both | ${g.growth.map((x) => `${(x * 100).toFixed(1)} %`).join(' / ')} | < ${TARGET_RSS_GROWTH_MAX * 100} % | ${worstGrowth < TARGET_RSS_GROWTH_MAX ? 'yes' : 'no'} |`)
  figures['rss_growth.window_s'] = Math.round(g.windowS)
  g.growth.forEach((x, i) => { figures[`rss_growth.${NODE_NAMES[i]}`] = Number(x.toFixed(4)) })
  ctx.log('')
}

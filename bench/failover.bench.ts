/**
 * Failover (issue 14), on real processes with the CLI an operator runs:
 *
 *   rto     kill -9 of the primary (remote-flush, 1 sync backup, 2 backups,
 *           a preloaded index: 1M keys in full mode) to the first write the
 *           new primary accepts, with `freshet failover` run at once; parts:
 *           the tool's own survey/promote/writable, and the first write.
 *           Target: under 1 s.
 *   rpo     the seeded Jepsen-style loop (bench/lib/failover_cycle.ts): per
 *           commit mode, acknowledged writes missing (or older) on the new
 *           primary after each cycle. Target: 0 in remote-flush over every
 *           cycle (50 in full mode, kill -9 and SIGSTOP alternating).
 *   rejoin  the old primary cutting its tail and catching up, against a new
 *           empty backup catching up with the same primary (a resync of it).
 */
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { FailoverRing, type CycleResult, type RingOptions } from './lib/failover_cycle.js'
import { writeLineChart, type Rgb, type Series } from './lib/chart.js'
import { figure, param, showFigure, type BenchContext, type BenchReport } from './lib/common.js'
import { CLI_PATH } from './lib/proc.js'

/** bench/results/ in the source tree (this file runs from dist/bench/). */
const RESULTS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bench/results')
const COLORS: Record<Mode, Rgb> = { 'remote-flush': [31, 119, 180], 'remote-apply': [44, 160, 44], local: [255, 127, 14], async: [214, 39, 40] }

type Mode = RingOptions['commit']

function ringOptions(commit: Mode, seed: number, preloadKeys: number, log: (line: string) => void): RingOptions {
  return {
    mainJs: CLI_PATH, commit, syncBackups: 1, backups: 2, seed, writers: 1 + (seed % 4), depth: 16,
    loadMsMin: 200, loadMsMax: 1500, preloadKeys, segmentSize: '8mb', syncTimeoutMs: 1000, log,
  }
}

async function loop(commit: Mode, cycles: number, seed: number, preloadKeys: number, ctx: BenchContext, stopEvery: number, fresh: number[] | null = null): Promise<CycleResult[]> {
  const ring = await FailoverRing.start(ringOptions(commit, seed, preloadKeys, ctx.log))
  const results: CycleResult[] = []
  try {
    if (fresh !== null) fresh.push(await ring.freshBackupMs())
    for (let i = 0; i < cycles; i++) {
      const r = await ring.cycle(i, stopEvery > 0 && i % stopEvery === stopEvery - 1 ? 'stop' : 'kill')
      results.push(r)
      if (fresh !== null) fresh.push(await ring.freshBackupMs())
      if (r.lost > 0 || !r.digestsEqual || r.tornMulti > 0 || r.ackedAfterFence > 0) {
        ctx.log(`  ${commit} cycle ${i} (${r.crash}): acked ${r.acked}, lost ${r.lost}, incr back ${r.incrBackwards}, torn ${r.tornMulti}, after fence ${r.ackedAfterFence}, digests ${r.digestsEqual ? 'equal' : 'DIFFER'} ${r.lostExamples.join(' ')}`)
      }
    }
  } finally {
    await ring.close()
  }
  return results
}

export async function run(ctx: BenchContext): Promise<BenchReport> {
  const figures: BenchReport['figures'] = {}
  // RTO: a large index, a few kill -9 cycles.
  const keys = param(ctx.mode, 20_000, 1_000_000)
  const rtoCycles = param(ctx.mode, 2, 7)
  const fresh: number[] = []
  const rto = await loop('remote-flush', rtoCycles, 14, keys, ctx, 0, fresh)
  figures.new_backup_catch_up_ms = figure(fresh, 'ms')
  const rtoMs = figure(rto.map((r) => r.rtoMs), 'ms')
  figures.rto_ms = rtoMs
  figures.rto_tool_ms = figure(rto.map((r) => r.failoverToolMs), 'ms')
  figures.rto_to_promoted_ms = figure(rto.map((r) => r.detectToPromotedMs), 'ms')
  figures.rto_first_write_ms = figure(rto.map((r) => r.promotedToWriteMs), 'ms')
  figures.rejoin_ms = figure(rto.map((r) => r.rejoinMs), 'ms')
  figures.rto_keys = keys
  ctx.log(`failover rto (${keys} keys, remote-flush, kill -9, freshet failover at once): ${showFigure(rtoMs, 0)} (target < 1000); ` +
    `kill -> tool done ${showFigure(figures.rto_to_promoted_ms as ReturnType<typeof figure>, 0)} of which the tool itself ${showFigure(figures.rto_tool_ms as ReturnType<typeof figure>, 0)}, ` +
    `then first write ${showFigure(figures.rto_first_write_ms as ReturnType<typeof figure>, 1)}`)
  ctx.log(`failover rejoin (old primary restarted with --primary, cut + catch up): ${showFigure(figures.rejoin_ms as ReturnType<typeof figure>, 0)}; ` +
    `a new empty backup of the same primary: ${showFigure(figures.new_backup_catch_up_ms as ReturnType<typeof figure>, 0)}`)
  // RPO per mode over the loop.
  const cycles: Record<Mode, number> = {
    'remote-flush': param(ctx.mode, 3, 50), 'remote-apply': param(ctx.mode, 1, 10), local: param(ctx.mode, 1, 10), async: param(ctx.mode, 1, 10),
  }
  let hash = 0
  const byMode = new Map<Mode, CycleResult[]>()
  for (const mode of ['remote-flush', 'remote-apply', 'local', 'async'] as const) {
    const rs = await loop(mode, cycles[mode], 100 + cycles[mode], 0, ctx, 2)
    byMode.set(mode, rs)
    figures[`rpo_${mode}_lost_per_cycle`] = rs.map((r) => r.lost).join(',')
    const acked = rs.reduce((n, r) => n + r.acked, 0)
    const lost = rs.reduce((n, r) => n + r.lost, 0)
    const cyclesLosing = rs.filter((r) => r.lost > 0).length
    const equal = rs.every((r) => r.digestsEqual)
    figures[`rpo_${mode}_cycles`] = rs.length
    figures[`rpo_${mode}_acked`] = acked
    figures[`rpo_${mode}_lost`] = lost
    figures[`rpo_${mode}_cycles_losing`] = cyclesLosing
    figures[`rpo_${mode}_torn_multi`] = rs.reduce((n, r) => n + r.tornMulti, 0)
    figures[`rpo_${mode}_acked_after_fence`] = rs.reduce((n, r) => n + r.ackedAfterFence, 0)
    figures[`rpo_${mode}_acked_on_resume`] = rs.reduce((n, r) => n + r.ackedOnResume, 0)
    figures[`rpo_${mode}_digests_equal`] = equal
    figures[`rpo_${mode}_rto_ms`] = figure(rs.map((r) => r.rtoMs), 'ms')
    hash = (hash * 31 + lost * 7 + (equal ? 1 : 0)) >>> 0
    ctx.log(`failover rpo ${mode}: ${rs.length} cycles (kill -9 and SIGSTOP alternating), ${acked} acknowledged writes, ${lost} lost in ${cyclesLosing} cycles` +
      `${mode === 'remote-flush' || mode === 'remote-apply' ? ' (target 0)' : ''}; torn MULTI ${figures[`rpo_${mode}_torn_multi`]}; ` +
      `a stopped old primary, resumed: ${figures[`rpo_${mode}_acked_on_resume`]} acknowledged before its fence ran (ACKs sent before the failover), ` +
      `${figures[`rpo_${mode}_acked_after_fence`]} after; digests equal after rejoin: ${equal}; RTO ${showFigure(figures[`rpo_${mode}_rto_ms`] as ReturnType<typeof figure>, 0)}`)
  }
  const file = path.join(RESULTS_DIR, `failover-${ctx.mode}.png`)
  chartLoop(file, ctx.mode, byMode)
  ctx.log(`failover: wrote ${path.relative(process.cwd(), file)}`)
  return { name: 'failover', skipped: null, figures, hash: hash.toString(16) }
}

/** RTO and acknowledged writes lost, per cycle of each mode's loop (kill -9 on even cycles, SIGSTOP on odd ones). */
function chartLoop(file: string, mode: string, byMode: Map<Mode, CycleResult[]>): void {
  const rto: Series[] = []
  const lost: Series[] = []
  for (const [m, rs] of byMode) {
    rto.push({ name: m, color: COLORS[m], style: 'solid', width: 2, points: rs.map((r) => [r.cycle, r.rtoMs] as const) })
    lost.push({ name: m, color: COLORS[m], style: m === 'remote-flush' ? 'solid' : 'dashed', width: 2, points: rs.map((r) => [r.cycle, r.lost] as const) })
  }
  writeLineChart(file, {
    title: `freshet failover loop (${mode}): kill -9 (even cycles) and SIGSTOP (odd), freshet failover at once`,
    subtitle: 'primary + 2 backups, --sync-backups 1, pipelined writers; RTO: crash to the first write accepted',
    xLabel: 'cycle',
    panels: [
      { yLabel: 'RTO, ms', series: rto },
      { yLabel: 'acknowledged writes lost', series: lost },
    ],
    markers: [], widthPx: 1600, panelHeightPx: 380,
  })
}

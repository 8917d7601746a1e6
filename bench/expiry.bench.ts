/**
 * Question (issue 15, Benchmarks, "Expiry"): with half of all SETs carrying a
 * 1-10 s TTL, does memory stay bounded without any client touching expired
 * keys, what share of a core does the active expiry cycle take, and how many
 * of the keys in memory are expired but not yet removed (stale)?
 *
 * Real processes on loopback, freshet and Redis one after the other on the
 * same load (a primary and one backup/replica each): preload PERM_KEYS keys,
 * then for the phase's length (full mode: 600 s, the 10 minutes) a
 * paced pipelined load (bench/lib/soak_load.ts's pacing) where each SET is,
 * with even odds, an overwrite of a permanent key (no TTL) or a new session
 * key `ttl:<n>` with `PX` uniform in [1, 10] s that is never read, written or
 * deleted again. Only expiry can remove the session keys: without it memory
 * grows by the phase's whole write volume.
 *
 * Every SAMPLE_MS: used memory and RSS of both nodes, the primary's key count
 * (DBSIZE counts an expired key until it is removed, on both systems), its
 * expired_keys and expire_cycle_cpu_milliseconds, and its process CPU. The
 * load keeps the exact model: permanent keys written so far and how many
 * session keys are still within their TTL at each instant (per 100 ms
 * bucket of expiry time), so stale = DBSIZE - permanent - live sessions, and
 * the stale fraction = stale / (stale + live sessions), counting the sessions
 * still in flight as not yet written (the error is the in-flight window's
 * share, a few hundred keys in tens of thousands) (Redis estimates the
 * same share as expired_stale_perc, reported beside it). Steady state: the
 * second half of the phase. Figures: median used memory of the second and
 * last quarters and their ratio (bounded memory: ~1), the cycle's CPU share of
 * one core, the stale fraction (median and max), the primary's total CPU
 * share, and a PNG chart of memory and stale fraction over time for both.
 *
 * FRESHET_EXPIRY_PHASE_S overrides the phase length in seconds.
 */
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { RespClient, parseInfo } from '../src/client/client.js'
import { writeLineChart, type Series } from './lib/chart.js'
import { MB, Prng, makeTempDir, param, processCpuMs, removeDir, type BenchContext, type BenchReport } from './lib/common.js'
import { CLI_ARGV, freePort, startUntilReady, stop, which, type Started } from './lib/proc.js'
import { SoakLoad, preloadKeys } from './lib/soak_load.js'

const VALUE_BYTES = 100
const PERM_KEYS = 100_000
const TTL_MIN_MS = 1000
const TTL_MAX_MS = 10_000
const TTL_SHARE = 0.5
const LOAD_CLIENTS = 4
const INFLIGHT_PER_CLIENT_MAX = 20_000
const SAMPLE_MS = 1000
/** The model's resolution of expiry instants (its error: the keys that expire within one bucket). */
const BUCKET_MS = 10
const READY_TIMEOUT_MS = 60_000
const DRAIN_TIMEOUT_MS = 60_000
const SEED = 0xe991

/** bench/results in the source tree (this file runs as dist/bench/expiry.bench.js). */
const RESULTS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bench/results')

type System = 'freshet' | 'redis'

interface Node { port: number, started: Started, dir: string }

interface Sample {
  tS: number
  primaryUsed: number
  primaryRss: number
  replicaUsed: number
  replicaRss: number
  dbsize: number
  liveSessions: number
  perm: number
  staleFraction: number
  /** DBSIZE - permanent - live sessions, unclamped (negative: the model's error). */
  staleKeys: number
  redisStalePerc: number
  expiredKeys: number
  cycleMs: number
  cpuMs: number
}

/**
 * The load's commands and its exact model of what is live: which permanent
 * keys exist, and per BUCKET_MS bucket of expiry time how many session keys
 * expire then (so the live sessions at any instant are a running sum).
 */
class SessionLoad {
  readonly prng: Prng
  readonly value: Buffer
  readonly permWritten: Uint8Array
  perm: number
  sessions: number
  private readonly t0: number
  private readonly expiring: Int32Array
  private expiredUpTo: number
  private expiredSessions: number

  constructor(t0: number, phaseMs: number) {
    this.prng = new Prng(SEED)
    this.value = Buffer.alloc(VALUE_BYTES, 's')
    this.permWritten = new Uint8Array(PERM_KEYS)
    this.perm = 0
    this.sessions = 0
    this.t0 = t0
    this.expiring = new Int32Array(Math.ceil((phaseMs + DRAIN_TIMEOUT_MS + TTL_MAX_MS) / BUCKET_MS) + 1)
    this.expiredUpTo = 0
    this.expiredSessions = 0
  }

  preloaded(): void {
    this.permWritten.fill(1)
    this.perm = PERM_KEYS
  }

  command(): Array<string | Buffer> {
    if (this.prng.below(1_000_000) < TTL_SHARE * 1_000_000) {
      const ttl = TTL_MIN_MS + this.prng.below(TTL_MAX_MS - TTL_MIN_MS + 1)
      // Counted as expired once its bucket has wholly passed (the server's clock reads a little later than this one).
      const bucket = Math.floor((performance.now() + ttl - this.t0) / BUCKET_MS) + 1
      this.expiring[Math.min(bucket, this.expiring.length - 1)]++
      return ['SET', `ttl:${this.sessions++}`, this.value, 'PX', String(ttl)]
    }
    const k = this.prng.below(PERM_KEYS)
    if (this.permWritten[k] === 0) { this.permWritten[k] = 1; this.perm++ }
    return ['SET', `perm:${k}`, this.value]
  }

  /** Session keys still within their TTL now. */
  liveSessions(): number {
    const upTo = Math.min(Math.floor((performance.now() - this.t0) / BUCKET_MS), this.expiring.length)
    for (; this.expiredUpTo < upTo; this.expiredUpTo++) this.expiredSessions += this.expiring[this.expiredUpTo]
    return this.sessions - this.expiredSessions
  }
}

async function infoOf(c: RespClient, section: string): Promise<Map<string, string>> {
  return parseInfo(await c.call('INFO', section) as string)
}

function num(m: Map<string, string>, key: string): number {
  const v = m.get(key)
  return v === undefined ? NaN : Number(v)
}

function median(xs: number[]): number {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 === 1 ? s[s.length >> 1] : (s[(s.length >> 1) - 1] + s[s.length >> 1]) / 2
}

async function startPair(system: System, redisServer: string): Promise<Node[]> {
  const nodes: Node[] = []
  if (system === 'freshet') {
    for (const role of ['primary', 'backup'] as const) {
      const dir = makeTempDir(`expiry-freshet-${role}`)
      const args = [...CLI_ARGV, role, '--port', '0', '--dir', dir, '--commit', 'local', '--max-memory', '1gb']
      if (role === 'backup') args.push('--primary', `127.0.0.1:${nodes[0].port}`, '--workers', '1')
      const started = await startUntilReady(process.execPath, args, / listening on [^\s:]+:(\d+)/, READY_TIMEOUT_MS)
      nodes.push({ port: Number(started.match[1]), started, dir })
    }
  } else {
    for (let i = 0; i < 2; i++) {
      const dir = makeTempDir('expiry-redis')
      const port = await freePort()
      const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no']
      if (i === 1) args.push('--replicaof', '127.0.0.1', String(nodes[0].port))
      const started = await startUntilReady(redisServer, args, /Ready to accept connections/, READY_TIMEOUT_MS)
      nodes.push({ port, started, dir })
    }
  }
  return nodes
}

interface RunResult {
  system: System
  samples: Sample[]
  sent: number
  acked: number
  errors: number
}

async function runSystem(system: System, redisServer: string, rate: number, phaseMs: number, log: (line: string) => void): Promise<RunResult> {
  const nodes = await startPair(system, redisServer)
  const clients: RespClient[] = []
  let load: SoakLoad | null = null
  try {
    for (const n of nodes) clients.push(await RespClient.connect('127.0.0.1', n.port))
    const [p, r] = clients
    const t0 = performance.now()
    const model = new SessionLoad(t0, phaseMs)
    await preloadKeys('127.0.0.1', nodes[0].port, PERM_KEYS, VALUE_BYTES, (i) => `perm:${i}`)
    model.preloaded()
    load = await SoakLoad.connect({
      host: '127.0.0.1', port: nodes[0].port, clients: LOAD_CLIENTS, rate, valueBytes: VALUE_BYTES, keys: PERM_KEYS,
      distribution: 'uniform', deleteShare: 0, inflightPerClientMax: INFLIGHT_PER_CLIENT_MAX, seed: SEED, command: () => model.command(),
    })
    const samples: Sample[] = []
    const start = performance.now()
    load.start()
    const pid = nodes[0].started.child.pid!
    while (performance.now() - start < phaseMs) {
      await new Promise((res) => setTimeout(res, SAMPLE_MS - ((performance.now() - start) % SAMPLE_MS)))
      const [pm, ps, rm] = [await infoOf(p, 'memory'), await infoOf(p, 'stats'), await infoOf(r, 'memory')]
      // Sessions sent but not yet applied are in the model, not in DBSIZE: about TTL_SHARE of what is in flight.
      const inFlightSessions = load.inFlight() * TTL_SHARE
      const dbsize = Number(await p.call('DBSIZE'))
      const live = model.liveSessions()
      const staleRaw = dbsize - model.perm - (live - inFlightSessions)
      const stale = Math.max(0, staleRaw)
      samples.push({
        tS: (performance.now() - start) / 1000,
        primaryUsed: num(pm, 'used_memory'), primaryRss: num(pm, 'used_memory_rss'),
        replicaUsed: num(rm, 'used_memory'), replicaRss: num(rm, 'used_memory_rss'),
        dbsize, liveSessions: live, perm: model.perm, staleFraction: stale + live > 0 ? stale / (stale + live) : 0, staleKeys: staleRaw,
        redisStalePerc: num(ps, 'expired_stale_perc'), expiredKeys: num(ps, 'expired_keys'),
        cycleMs: num(ps, 'expire_cycle_cpu_milliseconds'), cpuMs: processCpuMs(pid),
      })
    }
    load.stop()
    const drainUntil = Date.now() + DRAIN_TIMEOUT_MS
    while (load.inFlight() > 0 && Date.now() < drainUntil) await new Promise((res) => setTimeout(res, 50))
    const last = samples[samples.length - 1]
    log(`expiry ${system}: ${load.acked} SETs acknowledged of ${load.sent} sent, ${load.errors()} errors; at the end ${last.dbsize} keys (${last.perm} permanent, ${last.liveSessions} live sessions), ${last.expiredKeys} expired`)
    return { system, samples, sent: load.sent, acked: load.acked, errors: load.errors() }
  } finally {
    load?.close()
    for (const c of clients) c.close()
    for (const n of nodes.reverse()) { await stop(n.started.child); removeDir(n.dir) }
  }
}

interface Steady {
  usedSecondQuarterMb: number
  usedLastQuarterMb: number
  usedGrowth: number
  replicaUsedLastQuarterMb: number
  rssLastQuarterMb: number
  cycleCpuShare: number
  processCpuShare: number
  staleMedian: number
  staleMax: number
  staleKeysMedian: number
  liveSessionsMedian: number
  redisStalePercMedian: number
  writtenSessionMb: number
}

function steadyOf(r: RunResult): Steady {
  const s = r.samples
  const end = s[s.length - 1].tS
  const within = (lo: number, hi: number): Sample[] => s.filter((x) => x.tS > end * lo && x.tS <= end * hi)
  const q2 = within(0.25, 0.5)
  const q4 = within(0.75, 1)
  const half = within(0.5, 1)
  const a = half[0]
  const b = half[half.length - 1]
  const wallMs = (b.tS - a.tS) * 1000
  const used2 = median(q2.map((x) => x.primaryUsed))
  const used4 = median(q4.map((x) => x.primaryUsed))
  return {
    usedSecondQuarterMb: used2 / MB,
    usedLastQuarterMb: used4 / MB,
    usedGrowth: used4 / used2,
    replicaUsedLastQuarterMb: median(q4.map((x) => x.replicaUsed)) / MB,
    rssLastQuarterMb: median(q4.map((x) => x.primaryRss)) / MB,
    cycleCpuShare: (b.cycleMs - a.cycleMs) / wallMs,
    processCpuShare: (b.cpuMs - a.cpuMs) / wallMs,
    staleMedian: median(half.map((x) => x.staleFraction)),
    staleMax: Math.max(...half.map((x) => x.staleFraction)),
    staleKeysMedian: median(half.map((x) => x.staleKeys)),
    liveSessionsMedian: median(half.map((x) => x.liveSessions)),
    redisStalePercMedian: median(half.map((x) => x.redisStalePerc)),
    writtenSessionMb: (s[s.length - 1].expiredKeys + s[s.length - 1].liveSessions) * (VALUE_BYTES + 16) / MB,
  }
}

function chart(file: string, mode: string, runs: RunResult[], rate: number): void {
  const colors = { freshet: [31, 119, 180], redis: [214, 39, 40] } as const
  const memory: Series[] = []
  const stale: Series[] = []
  for (const r of runs) {
    const c = colors[r.system]
    memory.push({ name: `${r.system} primary used_memory`, color: c, style: 'solid', width: 3, points: r.samples.map((x) => [x.tS, x.primaryUsed / MB]) })
    memory.push({ name: `${r.system} ${r.system === 'freshet' ? 'backup' : 'replica'} used_memory`, color: c, style: 'dashed', width: 2, points: r.samples.map((x) => [x.tS, x.replicaUsed / MB]) })
    stale.push({ name: `${r.system} stale keys, % of keys with a TTL`, color: c, style: 'solid', width: 2, points: r.samples.map((x) => [x.tS, x.staleFraction * 100]) })
  }
  writeLineChart(file, {
    title: `key expiry (${mode}): ${rate} SET/s, half with a 1-10 s TTL on new keys, half overwriting ${PERM_KEYS} permanent keys`,
    subtitle: 'freshet and Redis one after the other, a primary and one backup/replica each; nothing reads or deletes the session keys',
    xLabel: 'seconds since the load started',
    panels: [
      { yLabel: 'used memory, MB', series: memory },
      { yLabel: 'stale (expired, not yet removed), %', series: stale },
    ],
    markers: [], widthPx: 1600, panelHeightPx: 420,
  })
}

export async function run(ctx: BenchContext): Promise<BenchReport> {
  const redisServer = which('redis-server')
  if (redisServer === null) return { name: 'expiry', skipped: 'redis-server not found on PATH (apt-get install -y redis-server)', figures: {}, hash: '' }
  const envPhase = Number(process.env.FRESHET_EXPIRY_PHASE_S ?? '')
  const phaseMs = (Number.isFinite(envPhase) && envPhase > 0 ? envPhase : param(ctx.mode, 12, 600)) * 1000
  const rate = param(ctx.mode, 5000, 20_000)
  ctx.log(`expiry: ${rate} SET/s for ${phaseMs / 1000} s, ${TTL_SHARE * 100} % with a ${TTL_MIN_MS / 1000}-${TTL_MAX_MS / 1000} s TTL on new keys, the rest overwriting ${PERM_KEYS} permanent keys; freshet, then Redis`)
  const runs: RunResult[] = []
  for (const system of ['freshet', 'redis'] as const) runs.push(await runSystem(system, redisServer, rate, phaseMs, ctx.log))
  const figures: BenchReport['figures'] = { rate, phase_s: phaseMs / 1000 }
  for (const r of runs) {
    const st = steadyOf(r)
    for (const [k, v] of Object.entries(st)) figures[`${r.system}_${k}`] = Number(v.toFixed(4))
    figures[`${r.system}_acked`] = r.acked
    figures[`${r.system}_errors`] = r.errors
    ctx.log(`expiry ${r.system}: primary used memory ${st.usedSecondQuarterMb.toFixed(1)} MB (2nd quarter) -> ${st.usedLastQuarterMb.toFixed(1)} MB (last quarter), ${st.usedGrowth.toFixed(3)}x, ` +
      `${r.system === 'freshet' ? 'backup' : 'replica'} ${st.replicaUsedLastQuarterMb.toFixed(1)} MB, RSS ${st.rssLastQuarterMb.toFixed(1)} MB (session values written: ${st.writtenSessionMb.toFixed(0)} MB); ` +
      `active expiry ${(st.cycleCpuShare * 100).toFixed(2)} % of a core (process ${(st.processCpuShare * 100).toFixed(1)} %); stale ${(st.staleMedian * 100).toFixed(2)} % median, ${(st.staleMax * 100).toFixed(2)} % max (${st.staleKeysMedian.toFixed(0)} keys of ${st.liveSessionsMedian.toFixed(0)} live sessions, median)` +
      (r.system === 'redis' ? ` (Redis's own estimate expired_stale_perc: ${st.redisStalePercMedian.toFixed(2)} % median)` : ''))
  }
  fs.mkdirSync(RESULTS_DIR, { recursive: true })
  const png = path.join(RESULTS_DIR, `expiry-${ctx.mode}.png`)
  chart(png, ctx.mode, runs, rate)
  ctx.log(`expiry: chart ${path.relative(process.cwd(), png)}`)
  return { name: 'expiry', skipped: null, figures, hash: runs.map((r) => r.acked).join(',') }
}

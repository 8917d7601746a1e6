/**
 * Question: how fast is a real freshet primary over the network, and how does
 * it compare with Redis on the same machine? (Issue target: SET -P16 with
 * --commit async >= 0.5x Redis without persistence.)
 *
 * Drives the real `redis-benchmark` against `node dist/src/cli/main.js
 * primary` child processes, for both commit modes, pipelined (-P 16) and not
 * (-P 1). Side by side, when `redis-server` is installed, the same against
 * Redis: `--save '' --appendonly no` opposite --commit async, and
 * `--appendonly yes --appendfsync always` opposite --commit local (fsync
 * before the reply). Each server is a fresh process on a fresh directory;
 * freshet and Redis runs alternate so machine noise hits both alike. SET
 * and GET run as two invocations (`-t set`, then `-t get` on the same
 * server: what `-t set,get` does) so that each test's server CPU time can be
 * read from /proc: requests per server CPU-second is the figure that time
 * spent descheduled on a shared machine does not distort.
 * Skipped, with a message, where redis-benchmark is missing (CI).
 */
import { figure, makeTempDir, param, processCpuMs, removeDir, showFigure, type BenchContext, type BenchReport, type Figure } from './lib/common.js'
import { CLI_ARGV, freePort, runToEnd, startUntilReady, stop, which, type Started } from './lib/proc.js'

const KEYSPACE = 1_000_000
const VALUE_BYTES = 64
const CLIENTS = 50
const TESTS = ['SET', 'GET'] as const
const MODES = ['async', 'local'] as const
const TARGET_RATIO_SET_P16_ASYNC = 0.5
const READY_TIMEOUT_MS = 60_000
const BENCH_TIMEOUT_MS = 600_000

type Test = typeof TESTS[number]
type Mode = typeof MODES[number]
type ServerKind = 'freshet' | 'redis'

interface Pipeline {
  depth: number
  requests: number
}

/** One redis-benchmark result line: `SET: 123456.79 requests per second, p50=0.303 msec`. */
const RESULT_RE = /^\s*([A-Z]+): ([\d.]+) requests per second(?:, p50=([\d.]+) msec)?/
const FRESHET_READY_RE = /primary listening on [^\s:]+:(\d+)/
const REDIS_READY_RE = /Ready to accept connections/

interface Measured {
  rps: number
  p50Ms: number
}

/** Parses redis-benchmark -q output (progress lines are \r-separated; the last line per test wins). */
export function parseQuiet(output: string): Map<string, Measured> {
  const out = new Map<string, Measured>()
  for (const line of output.split(/\r\n|\r|\n/)) {
    const m = RESULT_RE.exec(line)
    if (m !== null) out.set(m[1], { rps: Number(m[2]), p50Ms: m[3] !== undefined ? Number(m[3]) : NaN })
  }
  return out
}

interface Server {
  port: number
  started: Started
  dir: string
}

async function startFreshet(mode: Mode): Promise<Server> {
  const dir = makeTempDir(`rb-freshet-${mode}`)
  const started = await startUntilReady(process.execPath, [...CLI_ARGV, 'primary', '--port', '0', '--dir', dir, '--commit', mode], FRESHET_READY_RE, READY_TIMEOUT_MS)
  return { port: Number(started.match[1]), started, dir }
}

async function startRedis(redisServer: string, mode: Mode): Promise<Server> {
  const dir = makeTempDir(`rb-redis-${mode}`)
  const port = await freePort()
  const persistence = mode === 'async'
    ? ['--save', '', '--appendonly', 'no']
    : ['--save', '', '--appendonly', 'yes', '--appendfsync', 'always']
  const started = await startUntilReady(redisServer, ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, ...persistence], REDIS_READY_RE, READY_TIMEOUT_MS)
  return { port, started, dir }
}

async function dbsize(redisCli: string | null, port: number): Promise<number> {
  if (redisCli === null) return NaN
  const r = await runToEnd(redisCli, ['-p', String(port), 'DBSIZE'], 10_000)
  return Number(r.stdout.trim())
}

function benchArgs(port: number, p: Pipeline, test: Test): string[] {
  return ['-p', String(port), '-t', test.toLowerCase(), '-n', String(p.requests), '-r', String(KEYSPACE), '-d', String(VALUE_BYTES), '-P', String(p.depth), '-c', String(CLIENTS), '-q']
}

export async function run(ctx: BenchContext): Promise<BenchReport> {
  const redisBenchmark = which('redis-benchmark')
  if (redisBenchmark === null) {
    return { name: 'redis', skipped: 'redis-benchmark not found on PATH (apt-get install -y redis-tools redis-server)', figures: {}, hash: '' }
  }
  const redisServer = which('redis-server')
  const redisCli = which('redis-cli')
  const pipelines: Pipeline[] = [
    { depth: 16, requests: param(ctx.mode, 50_000, 2_000_000) },
    { depth: 1, requests: param(ctx.mode, 5_000, 300_000) },
  ]
  const reps = param(ctx.mode, 1, 3)
  const kinds: ServerKind[] = redisServer !== null ? ['freshet', 'redis'] : ['freshet']
  ctx.log(`redis: redis-benchmark -t set, then -t get, -r ${KEYSPACE} -d ${VALUE_BYTES} -c ${CLIENTS} -q; ${pipelines.map((p) => `-P ${p.depth} -n ${p.requests}`).join(' and ')}; commit ${MODES.join(', ')}; ${reps} rep(s); vs ${redisServer !== null ? 'redis-server' : '(redis-server missing: freshet only)'}`)

  const rps = new Map<string, number[]>()
  const p50 = new Map<string, number[]>()
  const perCpu = new Map<string, number[]>()
  const sizes: string[] = []
  const push = (m: Map<string, number[]>, key: string, x: number): void => {
    const list = m.get(key)
    if (list === undefined) m.set(key, [x])
    else list.push(x)
  }
  for (let rep = 0; rep < reps; rep++) {
    for (const mode of MODES) {
      for (const p of pipelines) {
        for (const kind of kinds) {
          const server = kind === 'freshet' ? await startFreshet(mode) : await startRedis(redisServer!, mode)
          try {
            for (const test of TESTS) {
              const pid = server.started.child.pid!
              const cpu0 = processCpuMs(pid)
              const r = await runToEnd(redisBenchmark, benchArgs(server.port, p, test), BENCH_TIMEOUT_MS)
              const serverCpuMs = processCpuMs(pid) - cpu0
              const m = parseQuiet(r.stdout).get(test)
              if (r.code !== 0 || m === undefined) throw new Error(`redis-benchmark against ${kind} (${mode}, -P ${p.depth}) gave no ${test} result (exit ${r.code}):\n${r.stdout.slice(-1000)}\n${r.stderr.slice(-1000)}\n${kind} server (exit ${server.started.child.exitCode ?? server.started.child.signalCode ?? 'running'}) last output:\n${server.started.lines.join('\n')}`)
              push(rps, `${kind}/${mode}/P${p.depth}/${test}`, m.rps)
              push(p50, `${kind}/${mode}/P${p.depth}/${test}`, m.p50Ms)
              push(perCpu, `${kind}/${mode}/P${p.depth}/${test}`, p.requests / (serverCpuMs / 1e3))
            }
            if (rep === 0) sizes.push(`${kind}/${mode}/P${p.depth}=${await dbsize(redisCli, server.port)}`)
          } finally {
            await stop(server.started.child)
            removeDir(server.dir)
          }
        }
      }
    }
  }

  const figures: Record<string, Figure | number | string | boolean> = {}
  for (const [key, list] of rps) figures[`${key}/rps`] = figure(list, 'req/s')
  for (const [key, list] of p50) figures[`${key}/p50`] = figure(list, 'ms')
  for (const [key, list] of perCpu) figures[`${key}/perCpuS`] = figure(list, 'req/CPU-s')
  const two = kinds.length > 1
  ctx.log(`redis:   mode  -P  test  ${'freshet req/s (p50 ms)'.padEnd(44)}${two ? `${'redis req/s (p50 ms)'.padEnd(44)}freshet/redis  per server CPU-s: freshet  redis  ratio` : 'per server CPU-s'}`)
  for (const mode of MODES) {
    for (const p of pipelines) {
      for (const test of TESTS) {
        const key = `${mode}/P${p.depth}/${test}`
        const f = figures[`freshet/${key}/rps`] as Figure
        const fp = figures[`freshet/${key}/p50`] as Figure
        const fc = figures[`freshet/${key}/perCpuS`] as Figure
        let line = `redis:   ${mode.padEnd(5)} ${String(p.depth).padStart(3)}  ${test}   ${`${showFigure(f, 0, 1, '')} (${fp.median.toFixed(3)})`.padEnd(44)}`
        if (two) {
          const rf = figures[`redis/${key}/rps`] as Figure
          const rp = figures[`redis/${key}/p50`] as Figure
          const rc = figures[`redis/${key}/perCpuS`] as Figure
          const ratio = f.median / rf.median
          const cpuRatio = fc.median / rc.median
          figures[`ratio/${key}`] = ratio
          figures[`cpuRatio/${key}`] = cpuRatio
          line += `${`${showFigure(rf, 0, 1, '')} (${rp.median.toFixed(3)})`.padEnd(44)}${`${ratio.toFixed(2)}x`.padEnd(32)}${fc.median.toFixed(0).padStart(7)} ${rc.median.toFixed(0).padStart(7)}  ${cpuRatio.toFixed(2)}x`
        } else {
          line += fc.median.toFixed(0)
        }
        ctx.log(line)
      }
    }
  }
  if (kinds.length > 1) {
    const ratio = figures['ratio/async/P16/SET'] as number
    const met = ratio >= TARGET_RATIO_SET_P16_ASYNC
    figures.targetRatioSetP16Async = TARGET_RATIO_SET_P16_ASYNC
    figures.targetMet = met
    ctx.log(`redis: SET -P 16 async freshet/redis ${ratio.toFixed(2)}x; target >= ${TARGET_RATIO_SET_P16_ASYNC}x: ${met ? 'MET' : 'MISSED'}`)
  }
  return { name: 'redis', skipped: null, figures, hash: `dbsize ${sizes.join(' ')}` }
}

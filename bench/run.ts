/**
 * Bench entry: `node dist/bench/run.js --quick|--full [--only a,b] [--json FILE]`.
 *
 *   --quick   small parameters, all benches in under a minute (CI: keeps benches from rotting)
 *   --full    the real numbers (minutes)
 *   --only    a comma-separated subset of: append, redis, recovery, replay, cluster, resync, history, soak, failover, rdb, expiry, metrics
 *   --json    also write every figure, the machine and the hashes to FILE
 *
 * Prints the machine, then one short summary and a result hash per bench.
 */
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import v8 from 'node:v8'
import { runInNewContext } from 'node:vm'
import { calibrate, machineInfo, type BenchContext, type BenchMode, type BenchReport } from './lib/common.js'
import { killAll } from './lib/proc.js'
import * as append from './append.bench.js'
import * as redis from './redis_benchmark.js'
import * as recovery from './recovery.bench.js'
import * as replay from './replay.bench.js'
import * as cluster from './cluster.bench.js'
import * as resync from './resync.bench.js'
import * as history from './history.bench.js'
import * as soak from './soak.bench.js'
import * as failover from './failover.bench.js'
import * as rdb from './rdb.bench.js'
import * as expiry from './expiry.bench.js'
import * as metrics from './metrics.bench.js'

const BENCHES: ReadonlyArray<{ name: string, run: (ctx: BenchContext) => Promise<BenchReport> }> = [
  { name: 'append', run: append.run },
  { name: 'redis', run: redis.run },
  { name: 'recovery', run: recovery.run },
  { name: 'replay', run: replay.run },
  { name: 'cluster', run: cluster.run },
  { name: 'resync', run: resync.run },
  { name: 'history', run: history.run },
  { name: 'soak', run: soak.run },
  { name: 'failover', run: failover.run },
  { name: 'rdb', run: rdb.run },
  { name: 'expiry', run: expiry.run },
  { name: 'metrics', run: metrics.run },
]

interface Cli {
  mode: BenchMode
  only: Set<string> | null
  json: string | null
}

function usage(message: string): never {
  process.stderr.write(`${message}\nusage: node dist/bench/run.js --quick|--full [--only ${BENCHES.map((b) => b.name).join(',')}] [--json FILE]\n`)
  process.exit(2)
}

function parseCli(argv: string[]): Cli {
  const cli: Cli = { mode: 'quick', only: null, json: null }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--quick') cli.mode = 'quick'
    else if (a === '--full') cli.mode = 'full'
    else if (a === '--only' && i + 1 < argv.length) cli.only = new Set(argv[++i].split(','))
    else if (a === '--json' && i + 1 < argv.length) cli.json = argv[++i]
    else usage(`unknown argument '${a}'`)
  }
  if (cli.only !== null) {
    for (const name of cli.only) if (!BENCHES.some((b) => b.name === name)) usage(`unknown bench '${name}'`)
  }
  return cli
}

/** The commit measured, and whether src/ had uncommitted changes when built (figures then describe no commit). */
function sourceVersion(): string {
  // Set when benches run from an exported copy of a commit (no .git there).
  const pinned = process.env.FRESHET_BENCH_SOURCE
  if (pinned !== undefined && pinned !== '') return pinned
  const head = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' })
  if (head.status !== 0) return 'unknown (not a git checkout)'
  const dirty = spawnSync('git', ['status', '--porcelain', '--', 'src', 'workers'], { encoding: 'utf8' })
  const changed = dirty.stdout.split('\n').filter((l) => l.trim() !== '').length
  return `${head.stdout.trim()}${changed > 0 ? ` + ${changed} uncommitted file(s) in src/ or workers/` : ''}`
}

/** A full GC between runs; --expose-gc is set at runtime so that `npm run bench` needs no node flags. */
function makeGc(): () => void {
  v8.setFlagsFromString('--expose-gc')
  const gc = runInNewContext('gc') as (() => void) | undefined
  return typeof gc === 'function' ? gc : () => {}
}

async function main(): Promise<void> {
  const cli = parseCli(process.argv.slice(2))
  const machine = machineInfo()
  const log = (line: string): void => { process.stdout.write(`${line}\n`) }
  log(`freshet bench (${cli.mode}) ${new Date().toISOString()}`)
  const version = sourceVersion()
  log(`source: ${version}`)
  log(`machine: ${machine.cpus} x ${machine.cpuModel}, ${(machine.totalMemoryBytes / 2 ** 30).toFixed(1)} GiB, node ${machine.node}, ${machine.platform}, load ${machine.loadAverage.map((x) => x.toFixed(2)).join(' ')}`)
  const calStart = calibrate()
  log(`calibration: byte-sum loop ${calStart.cpuNsPerByte.toFixed(2)} CPU-ns/byte, ${calStart.wallNsPerByte.toFixed(2)} ns/byte elapsed`)
  const ctx: BenchContext = { mode: cli.mode, gc: makeGc(), log }
  const reports: BenchReport[] = []
  const t0 = process.hrtime.bigint()
  for (const bench of BENCHES) {
    if (cli.only !== null && !cli.only.has(bench.name)) continue
    const tb = process.hrtime.bigint()
    const report = await bench.run(ctx)
    reports.push(report)
    const secs = Number(process.hrtime.bigint() - tb) / 1e9
    if (report.skipped !== null) log(`${bench.name}: SKIPPED: ${report.skipped}`)
    else log(`${bench.name}: hash ${report.hash} (${secs.toFixed(1)} s)`)
    ctx.gc()
  }
  const total = Number(process.hrtime.bigint() - t0) / 1e9
  const calEnd = calibrate()
  log(`calibration: byte-sum loop ${calEnd.cpuNsPerByte.toFixed(2)} CPU-ns/byte, ${calEnd.wallNsPerByte.toFixed(2)} ns/byte elapsed; load ${machineInfo().loadAverage.map((x) => x.toFixed(2)).join(' ')}`)
  log(`done in ${total.toFixed(1)} s`)
  if (cli.json !== null) {
    fs.writeFileSync(cli.json, JSON.stringify({ mode: cli.mode, date: new Date().toISOString(), source: version, machine, calibration: { start: calStart, end: calEnd }, totalSeconds: total, reports }, null, 2) + '\n')
  }
}

process.once('exit', killAll)
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    killAll()
    process.exit(130)
  })
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`)
  killAll()
  process.exit(1)
})

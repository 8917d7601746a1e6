/**
 * RDB snapshots and restore (issue 15), freshet and Redis side by side on
 * the same data in one run:
 *
 *   bgsave   N string keys (64-byte values; 5M in full mode) on a primary
 *            and one backup/replica; while the primary takes a steady
 *            pipelined SET load, BGSAVE on the backup/replica. Measured: the
 *            save's time and MB/s, the saving node's main-thread stall
 *            (freshet: the writer's longest step; both: the slowest PING
 *            answered by the saving node, pinged back to back), Redis's fork
 *            time and copy-on-write, freshet's extra memory (pinned_bytes)
 *            and the backup's replay lag during the save.
 *   restore  Redis's own dump of those keys: `freshet restore` (process start
 *            to exit) against redis-server loading it (start to ready).
 */
import fs from 'node:fs'
import path from 'node:path'
import { RespClient, parseInfo } from '../src/client/client.js'
import { figure, makeTempDir, param, removeDir, showFigure, type BenchContext, type BenchReport } from './lib/common.js'
import { CLI_ARGV, freePort, runToEnd, startUntilReady, stop, which, type Started } from './lib/proc.js'
import { preloadKeys } from './lib/soak_load.js'

const VALUE = 'v'.repeat(64)
const READY_TIMEOUT_MS = 120_000
const SAVE_TIMEOUT_MS = 600_000

interface Proc { port: number, started: Started, dir: string }

async function info(port: number, section: string): Promise<Map<string, string>> {
  const c = await RespClient.connect('127.0.0.1', port)
  try { return parseInfo(await c.call('INFO', section)) } finally { c.close() }
}

/** A pipelined SET load at about `perSecond`, until stopped. */
function load(port: number, keys: number, perSecond: number): { stop: () => Promise<number> } {
  let stopped = false
  let sent = 0
  const done = (async () => {
    const c = await RespClient.connect('127.0.0.1', port)
    const t0 = performance.now()
    try {
      for (let round = 0; !stopped && round < 10_000_000; round++) {
        const cmds: Array<Array<string | number>> = []
        for (let i = 0; i < 100; i++) cmds.push(['SET', `key:${(round * 7919 + i * 104729) % keys}`, `w${round}`])
        await c.pipeline(cmds)
        sent += 100
        const ahead = sent / perSecond * 1000 - (performance.now() - t0)
        if (ahead > 0) await new Promise((r) => setTimeout(r, ahead))
      }
    } finally {
      c.close()
    }
    return sent
  })()
  return { stop: async () => { stopped = true; return done } }
}

/** Pings `port` back to back until stopped; the slowest answer, ms. */
function pinger(port: number): { stop: () => Promise<number> } {
  let stopped = false
  const done = (async () => {
    const c = await RespClient.connect('127.0.0.1', port)
    let max = 0
    try {
      while (!stopped) {
        const t = performance.now()
        await c.call('PING')
        max = Math.max(max, performance.now() - t)
      }
    } finally {
      c.close()
    }
    return max
  })()
  return { stop: async () => { stopped = true; return done } }
}

async function startFreshet(role: 'primary' | 'backup', primaryPort: number | null): Promise<Proc> {
  const dir = makeTempDir(`rdb-freshet-${role}`)
  const args = [...CLI_ARGV, role, '--port', '0', '--dir', dir, '--commit', 'async', '--workers', '2']
  if (primaryPort !== null) args.push('--primary', `127.0.0.1:${primaryPort}`)
  const started = await startUntilReady(process.execPath, args, / listening on [^\s:]+:(\d+)/, READY_TIMEOUT_MS)
  return { port: Number(started.match[1]), started, dir }
}

async function startRedis(redisServer: string, replicaOf: number | null, dbfilename = 'dump.rdb', dir = makeTempDir('rdb-redis')): Promise<Proc> {
  const port = await freePort()
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--dbfilename', dbfilename, '--save', '', '--appendonly', 'no']
  if (replicaOf !== null) args.push('--replicaof', '127.0.0.1', String(replicaOf))
  const started = await startUntilReady(redisServer, args, /Ready to accept connections/, READY_TIMEOUT_MS)
  return { port, started, dir }
}

async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + SAVE_TIMEOUT_MS
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`rdb bench: timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

interface SaveRun { ms: number, bytes: number, stallMs: number, pingMaxMs: number, pingBaselineMs: number, preemptedPerS: number, preemptedBaselinePerS: number, extra: Record<string, number> }

/**
 * How often the OS has taken the CPU from process `pid`'s main thread so far
 * (Linux: nonvoluntary_ctxt_switches of its first task; NaN elsewhere). On
 * these 2 cores a step of the writer is wall time, and each preemption in it
 * adds the time other threads ran.
 */
function preemptions(pid: number | undefined): number {
  try {
    const m = /nonvoluntary_ctxt_switches:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/task/${pid}/status`, 'utf8'))
    return m === null ? NaN : Number(m[1])
  } catch {
    return NaN
  }
}

/** BGSAVE on `saver` while `primary` takes the load; samples `sample` during the save. */
async function timedBgsave(primary: number, saver: number, saverPid: number | undefined, keys: number, rate: number, sample: () => Promise<Record<string, number>>, done: () => Promise<boolean>): Promise<{ ms: number, pingMaxMs: number, pingBaselineMs: number, preemptedPerS: number, preemptedBaselinePerS: number, samples: Array<Record<string, number>> }> {
  const l = load(primary, keys, rate)
  await new Promise((r) => setTimeout(r, 500))
  // The same load without a save first: the slowest PING a loaded node answers anyway.
  const baseline = pinger(saver)
  const b0 = preemptions(saverPid)
  const tb = performance.now()
  await new Promise((r) => setTimeout(r, 1000))
  const preemptedBaselinePerS = (preemptions(saverPid) - b0) / ((performance.now() - tb) / 1000)
  const pingBaselineMs = await baseline.stop()
  const ping = pinger(saver)
  const s0 = preemptions(saverPid)
  const c = await RespClient.connect('127.0.0.1', saver)
  const samples: Array<Record<string, number>> = []
  const t0 = performance.now()
  try {
    const r = await c.call('BGSAVE')
    if (typeof r !== 'string' || !r.startsWith('Background saving started')) throw new Error(`BGSAVE: ${String(r)}`)
    await until('the save', async () => {
      samples.push(await sample())
      return done()
    })
  } finally {
    c.close()
  }
  const ms = performance.now() - t0
  const preemptedPerS = (preemptions(saverPid) - s0) / (ms / 1000)
  const pingMaxMs = await ping.stop()
  await l.stop()
  return { ms, pingMaxMs, pingBaselineMs, preemptedPerS, preemptedBaselinePerS, samples }
}

export async function run(ctx: BenchContext): Promise<BenchReport> {
  const redisServer = which('redis-server')
  if (redisServer === null) return { name: 'rdb', skipped: 'redis-server not found on PATH (apt-get install -y redis-server)', figures: {}, hash: '' }
  const keys = param(ctx.mode, 200_000, 5_000_000)
  const rate = param(ctx.mode, 10_000, 20_000)
  ctx.log(`rdb: ${keys} keys of ${VALUE.length} bytes on a primary + 1 backup/replica; BGSAVE on the backup/replica while the primary takes ${rate} SET/s`)
  const figures: BenchReport['figures'] = {}
  const runs: Record<'freshet' | 'redis', SaveRun> = {} as Record<'freshet' | 'redis', SaveRun>
  let redisDump = ''
  for (const kind of ['freshet', 'redis'] as const) {
    const procs: Proc[] = []
    try {
      if (kind === 'freshet') {
        const p = await startFreshet('primary', null)
        procs.push(p)
        const b = await startFreshet('backup', p.port)
        procs.push(b)
        await preloadKeys('127.0.0.1', p.port, keys, VALUE.length, (i) => `key:${i}`)
        const commit = Number((await info(p.port, 'replication')).get('commit_lsn'))
        await until('the backup to catch up', async () => Number((await info(b.port, 'replication')).get('applied_lsn')) >= commit)
        const t = await timedBgsave(p.port, b.port, b.started.child.pid, keys, rate, async () => {
          const [m, r] = [await info(b.port, 'memory'), await info(b.port, 'replication')]
          return { pinned: Number(m.get('pinned_bytes')), used: Number(m.get('used_memory')), lagMs: Number(r.get('lag_ms')) }
        }, async () => (await info(b.port, 'persistence')).get('rdb_bgsave_in_progress') === '0')
        const pers = await info(b.port, 'persistence')
        runs.freshet = {
          ms: Number(pers.get('rdb_last_ms')), bytes: Number(pers.get('rdb_last_bytes')), stallMs: Number(pers.get('rdb_last_max_step_ms')), pingMaxMs: t.pingMaxMs, pingBaselineMs: t.pingBaselineMs,
          preemptedPerS: t.preemptedPerS, preemptedBaselinePerS: t.preemptedBaselinePerS,
          extra: {
            pinned_bytes_max: Math.max(...t.samples.map((s) => s.pinned)), used_memory_max: Math.max(...t.samples.map((s) => s.used)),
            replay_lag_ms_max: Math.max(...t.samples.map((s) => s.lagMs)), keys: Number(pers.get('rdb_last_keys')),
            steps: Number(pers.get('rdb_last_steps')), long_steps: Number(pers.get('rdb_last_long_steps')),
          },
        }
      } else {
        const p = await startRedis(redisServer, null)
        procs.push(p)
        const r = await startRedis(redisServer, p.port)
        procs.push(r)
        await preloadKeys('127.0.0.1', p.port, keys, VALUE.length, (i) => `key:${i}`)
        await until('the replica to catch up', async () => {
          const [pi, ri] = [await info(p.port, 'replication'), await info(r.port, 'replication')]
          return ri.get('master_link_status') === 'up' && ri.get('slave_repl_offset') === pi.get('master_repl_offset')
        })
        const t = await timedBgsave(p.port, r.port, r.started.child.pid, keys, rate, async () => ({}), async () => (await info(r.port, 'persistence')).get('rdb_bgsave_in_progress') === '0')
        const pers = await info(r.port, 'persistence')
        const stats = await info(r.port, 'stats')
        const file = path.join(r.dir, 'dump.rdb')
        runs.redis = {
          ms: t.ms, bytes: fs.statSync(file).size, stallMs: Number(stats.get('latest_fork_usec')) / 1000, pingMaxMs: t.pingMaxMs, pingBaselineMs: t.pingBaselineMs,
          preemptedPerS: t.preemptedPerS, preemptedBaselinePerS: t.preemptedBaselinePerS,
          extra: { cow_bytes: Number(pers.get('rdb_last_cow_size')) },
        }
        redisDump = path.join(makeTempDir('rdb-dump'), 'redis.rdb')
        fs.copyFileSync(file, redisDump)
      }
    } finally {
      for (const p of procs.reverse()) { await stop(p.started.child); removeDir(p.dir) }
    }
  }
  const f = runs.freshet
  const r = runs.redis
  ctx.log(`rdb bgsave: freshet ${f.ms.toFixed(0)} ms (${(f.bytes / 1e6 / (f.ms / 1000)).toFixed(0)} MB/s, ${(f.bytes / 1e6).toFixed(0)} MB), longest main-thread step ${f.stallMs.toFixed(2)} ms (${f.extra.long_steps} of ${f.extra.steps} steps over 2 ms), slowest PING ${f.pingMaxMs.toFixed(2)} ms (${f.pingBaselineMs.toFixed(2)} ms under the same load without a save), ` +
    `main thread preempted ${f.preemptedPerS.toFixed(0)}/s (${f.preemptedBaselinePerS.toFixed(0)}/s without a save), ` +
    `pinned ${(f.extra.pinned_bytes_max / 1e6).toFixed(1)} MB max, replay lag ${f.extra.replay_lag_ms_max.toFixed(1)} ms max`)
  ctx.log(`rdb bgsave: Redis ${r.ms.toFixed(0)} ms (${(r.bytes / 1e6 / (r.ms / 1000)).toFixed(0)} MB/s, ${(r.bytes / 1e6).toFixed(0)} MB), fork ${r.stallMs.toFixed(2)} ms, slowest PING ${r.pingMaxMs.toFixed(2)} ms (${r.pingBaselineMs.toFixed(2)} ms without a save), main thread preempted ${r.preemptedPerS.toFixed(0)}/s (${r.preemptedBaselinePerS.toFixed(0)}/s without), copy-on-write ${(r.extra.cow_bytes / 1e6).toFixed(1)} MB`)
  figures.keys = keys
  figures.freshet_bgsave_ms = f.ms
  figures.freshet_bgsave_bytes = f.bytes
  figures.freshet_max_step_ms = f.stallMs
  figures.freshet_preempted_per_s = f.preemptedPerS
  figures.freshet_preempted_baseline_per_s = f.preemptedBaselinePerS
  figures.redis_preempted_per_s = r.preemptedPerS
  figures.freshet_steps = f.extra.steps
  figures.freshet_long_steps = f.extra.long_steps
  figures.freshet_ping_max_ms = f.pingMaxMs
  figures.freshet_ping_baseline_max_ms = f.pingBaselineMs
  figures.freshet_pinned_bytes_max = f.extra.pinned_bytes_max
  figures.freshet_replay_lag_ms_max = f.extra.replay_lag_ms_max
  figures.redis_bgsave_ms = r.ms
  figures.redis_bgsave_bytes = r.bytes
  figures.redis_fork_ms = r.stallMs
  figures.redis_ping_max_ms = r.pingMaxMs
  figures.redis_ping_baseline_max_ms = r.pingBaselineMs
  figures.redis_cow_bytes = r.extra.cow_bytes
  // Restore: Redis's own dump, freshet restore against redis-server loading it, alternating.
  const reps = param(ctx.mode, 1, 3)
  const freshetMs: number[] = []
  const redisMs: number[] = []
  for (let rep = 0; rep < reps; rep++) {
    const target = path.join(makeTempDir('rdb-restore'), 'log')
    const t = await runToEnd(process.execPath, [...CLI_ARGV, 'restore', redisDump, '--dir', target], SAVE_TIMEOUT_MS)
    if (t.code !== 0) throw new Error(`freshet restore failed: ${t.stderr.slice(-500)}`)
    freshetMs.push(t.ms)
    removeDir(path.dirname(target))
    const dir = makeTempDir('rdb-redis-load')
    fs.copyFileSync(redisDump, path.join(dir, 'dump.rdb'))
    const t0 = performance.now()
    const loaded = await startRedis(redisServer, null, 'dump.rdb', dir)
    redisMs.push(performance.now() - t0)
    const n = Number((await info(loaded.port, 'keyspace')).get('db0')?.split(',')[0].split('=')[1])
    if (n !== keys) throw new Error(`redis-server loaded ${n} keys, expected ${keys}`)
    await stop(loaded.started.child)
    removeDir(dir)
  }
  removeDir(path.dirname(redisDump))
  const fr = figure(freshetMs, 'ms')
  const rr = figure(redisMs, 'ms')
  figures.restore_freshet_ms = fr
  figures.restore_redis_ms = rr
  figures.restore_ratio = fr.median / rr.median
  ctx.log(`rdb restore of Redis's dump (${keys} keys): freshet restore ${showFigure(fr, 0)}, redis-server load ${showFigure(rr, 0)}: ratio ${(fr.median / rr.median).toFixed(2)} (target <= 1)`)
  return { name: 'rdb', skipped: null, figures, hash: `${f.extra.keys}` }
}

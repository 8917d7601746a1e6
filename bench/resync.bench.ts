/**
 * Full resync of a new backup vs a new Redis replica, side by side in one run
 * (issue 7): the same data is loaded into a freshet primary and a Redis
 * primary with `redis-benchmark -t set -n N -r R -d 64 -P 16`, then a new
 * backup / replica is started and timed from its spawn until it serves the
 * whole dataset:
 *
 *   freshet: INFO persistence loading:0 after its full resync, and applied_lsn
 *            at the primary's commit LSN (the cleaner has compacted the log:
 *            what ships is the retained log, about the live data, not history)
 *   redis:   INFO replication master_link_status:up and
 *            master_sync_in_progress:0 (primary: repl-diskless-sync yes,
 *            repl-diskless-sync-delay 0; replica: repl-diskless-load
 *            on-empty-db, no persistence)
 *
 * Runs alternate freshet / redis; the figure is the ratio of the medians
 * (target: at most 0.25). Both replicas end with the primary's DBSIZE.
 */
import { RespClient, parseInfo, type Reply } from '../src/client/client.js'
import { figure, makeTempDir, param, removeDir, showFigure, type BenchContext, type BenchReport } from './lib/common.js'
import { CLI_ARGV, freePort, runToEnd, startUntilReady, stop, which, type Started } from './lib/proc.js'

const VALUE_BYTES = 64
const READY_TIMEOUT_MS = 60_000
const LOAD_TIMEOUT_MS = 900_000
const SYNC_TIMEOUT_MS = 600_000
const POLL_MS = 10
const TARGET_RATIO = 0.25

interface Node { port: number, started: Started, dir: string }

async function infoOf(c: RespClient, section: string): Promise<Map<string, string>> {
  const r: Reply = await c.call('INFO', section)
  return parseInfo(r)
}

async function waitUntil(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await check()) return
    if (Date.now() > deadline) throw new Error(`resync bench: timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, POLL_MS))
  }
}

async function startFreshetPrimary(): Promise<Node> {
  const dir = makeTempDir('resync-freshet-p')
  const started = await startUntilReady(process.execPath, [...CLI_ARGV, 'primary', '--port', '0', '--dir', dir, '--commit', 'async'], /primary listening on [^\s:]+:(\d+)/, READY_TIMEOUT_MS)
  return { port: Number(started.match[1]), started, dir }
}

async function startRedisPrimary(redisServer: string): Promise<Node> {
  const dir = makeTempDir('resync-redis-p')
  const port = await freePort()
  const started = await startUntilReady(redisServer, [
    '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no',
    '--repl-diskless-sync', 'yes', '--repl-diskless-sync-delay', '0',
  ], /Ready to accept connections/, READY_TIMEOUT_MS)
  return { port, started, dir }
}

async function dbsize(port: number): Promise<number> {
  const c = await RespClient.connect('127.0.0.1', port)
  try { return Number(await c.call('DBSIZE')) } finally { c.close() }
}

/** freshet: waits until the cleaner has stopped shrinking the primary's log; returns its commit LSN and held log bytes. */
async function settleFreshet(port: number): Promise<{ commitLsn: number, logBytes: number }> {
  const c = await RespClient.connect('127.0.0.1', port)
  try {
    let last = -1
    let stable = 0
    for (let i = 0; i < 600 && stable < 5; i++) {
      const held = Number((await infoOf(c, 'memory')).get('log_bytes'))
      stable = held === last ? stable + 1 : 0
      last = held
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
    return { commitLsn: Number((await infoOf(c, 'replication')).get('commit_lsn')), logBytes: last }
  } finally {
    c.close()
  }
}

/** Spawn to "serves the whole dataset", in ms. */
async function timeFreshetBackup(primaryPort: number, commitLsn: number): Promise<{ ms: number, node: Node }> {
  const dir = makeTempDir('resync-freshet-b')
  const t0 = performance.now()
  const started = await startUntilReady(process.execPath, [...CLI_ARGV, 'backup', '--primary', `127.0.0.1:${primaryPort}`, '--port', '0', '--dir', dir], /backup listening on [^\s:]+:(\d+)/, READY_TIMEOUT_MS)
  const port = Number(started.match[1])
  const c = await RespClient.connect('127.0.0.1', port)
  try {
    await waitUntil('the freshet backup to load', SYNC_TIMEOUT_MS, async () => {
      const p = await infoOf(c, 'persistence')
      // (A log the cleaner has not released yet syncs from LSN 0 without a full resync.)
      if (p.get('loading') !== '0') return false
      return Number((await infoOf(c, 'replication')).get('applied_lsn')) >= commitLsn
    })
  } finally {
    c.close()
  }
  return { ms: performance.now() - t0, node: { port, started, dir } }
}

async function timeRedisReplica(redisServer: string, primaryPort: number): Promise<{ ms: number, node: Node }> {
  const dir = makeTempDir('resync-redis-r')
  const port = await freePort()
  const t0 = performance.now()
  const started = await startUntilReady(redisServer, [
    '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no',
    '--replicaof', '127.0.0.1', String(primaryPort), '--repl-diskless-load', 'on-empty-db',
  ], /Ready to accept connections/, READY_TIMEOUT_MS)
  const c = await RespClient.connect('127.0.0.1', port)
  try {
    await waitUntil('the Redis replica to sync', SYNC_TIMEOUT_MS, async () => {
      const r = await infoOf(c, 'replication')
      return r.get('master_link_status') === 'up' && r.get('master_sync_in_progress') === '0'
    })
  } finally {
    c.close()
  }
  return { ms: performance.now() - t0, node: { port, started, dir } }
}

async function stopNode(n: Node): Promise<void> {
  await stop(n.started.child)
  removeDir(n.dir)
}

export async function run(ctx: BenchContext): Promise<BenchReport> {
  const redisBenchmark = which('redis-benchmark')
  const redisServer = which('redis-server')
  if (redisBenchmark === null || redisServer === null) {
    return { name: 'resync', skipped: 'redis-benchmark or redis-server not found on PATH (apt-get install -y redis-tools redis-server)', figures: {}, hash: '' }
  }
  const requests = param(ctx.mode, 200_000, 2_000_000)
  const keyspace = param(ctx.mode, 100_000, 1_000_000)
  const reps = param(ctx.mode, 1, 3)
  ctx.log(`resync: load redis-benchmark -t set -n ${requests} -r ${keyspace} -d ${VALUE_BYTES} -P 16, then time a new backup (freshet) / replica (Redis, diskless); ${reps} rep(s), alternating`)
  const freshetMs: number[] = []
  const redisMs: number[] = []
  const sizes: string[] = []
  let shippedBytes = 0
  for (let rep = 0; rep < reps; rep++) {
    for (const kind of ['freshet', 'redis'] as const) {
      const primary = kind === 'freshet' ? await startFreshetPrimary() : await startRedisPrimary(redisServer)
      const nodes: Node[] = [primary]
      try {
        const load = await runToEnd(redisBenchmark, ['-p', String(primary.port), '-t', 'set', '-n', String(requests), '-r', String(keyspace), '-d', String(VALUE_BYTES), '-P', '16', '-q'], LOAD_TIMEOUT_MS)
        if (load.code !== 0) throw new Error(`redis-benchmark load of ${kind} failed: ${load.stderr.slice(-500)}`)
        const keys = await dbsize(primary.port)
        let timed: { ms: number, node: Node }
        if (kind === 'freshet') {
          const { commitLsn, logBytes } = await settleFreshet(primary.port)
          shippedBytes = logBytes
          timed = await timeFreshetBackup(primary.port, commitLsn)
          freshetMs.push(timed.ms)
          ctx.log(`resync: freshet backup serving ${keys} keys after ${timed.ms.toFixed(0)} ms (retained log ${(logBytes / 1e6).toFixed(1)} MB of ${(commitLsn / 1e6).toFixed(1)} MB written)`)
          if (rep === 0 && logBytes >= commitLsn) ctx.log('resync: nothing was released (the log is within the cleaner\'s slack): the backup synced the whole history')
        } else {
          timed = await timeRedisReplica(redisServer, primary.port)
          redisMs.push(timed.ms)
          ctx.log(`resync: Redis replica serving ${keys} keys after ${timed.ms.toFixed(0)} ms`)
        }
        nodes.push(timed.node)
        const replicaKeys = await dbsize(timed.node.port)
        if (replicaKeys !== keys) throw new Error(`resync bench: the ${kind} replica holds ${replicaKeys} keys, the primary ${keys}`)
        if (rep === 0) sizes.push(`${kind}=${keys}`)
      } finally {
        for (const n of nodes.reverse()) await stopNode(n)
      }
    }
  }
  const f = figure(freshetMs, 'ms')
  const r = figure(redisMs, 'ms')
  const ratio = f.median / r.median
  ctx.log(`resync: freshet ${showFigure(f, 0)}, Redis ${showFigure(r, 0)}: ratio ${ratio.toFixed(2)} (target <= ${TARGET_RATIO})`)
  return {
    name: 'resync',
    skipped: null,
    figures: { freshet_ms: f, redis_ms: r, ratio, target_ratio: TARGET_RATIO, shipped_log_bytes: shippedBytes, requests, keyspace },
    hash: sizes.join(','),
  }
}

#!/usr/bin/env -S MALLOC_MMAP_THRESHOLD_=131072 node --max-semi-space-size=2
/**
 * The freshet CLI: commander wiring only. Each subcommand validates its flags
 * (cli/options.ts) and hands off to a runner.
 */
import { Command, Option } from 'commander'
import { CLIENTS_MAX_DEFAULT, HOST_DEFAULT, PORT_DEFAULT } from '../constants.js'
import { DbError } from '../errors.js'
import { COMMIT_MODES, type CommitMode } from '../primary/primary.js'
import { backupRequirepass, defaultDir, defaultMaxMemory, parseBytes, parseCount, parseFileName, parseHostPort, parsePort, parseSegmentBytes, valueBytesMaxFor } from './options.js'
import { RunningNode, type NodeRunOptions } from './run_node.js'
import { runFailover } from './failover.js'
import { describeRestore, restoreRdb } from './restore.js'
import { SYNC_TIMEOUT_MS_DEFAULT } from '../primary/primary.js'
import os from 'node:os'
import { runDemo } from './demo.js'
import { runLag } from './lag.js'
import { NODE_ENV_VARS, NODE_FLAGS } from './spawn.js'

function log(line: string): void {
  process.stderr.write(`[${new Date().toISOString()}] ${line}\n`)
}

/**
 * A node started as `node main.js …` instead of `freshet …` runs without the
 * shebang's NODE_FLAGS and NODE_ENV_VARS; it works, but its RSS steps up under
 * load (see YOUNG_SEMI_SPACE_MB and MALLOC_MMAP_THRESHOLD_BYTES), so it says so
 * once at start.
 */
function noteMissingNodeFlags(): void {
  const given = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)]
  const missing = NODE_FLAGS.filter((f) => !given.some((g) => g.split('=')[0] === f.split('=')[0]))
  for (const [name, value] of Object.entries(NODE_ENV_VARS)) if (process.env[name] === undefined) missing.push(`${name}=${value}`)
  if (missing.length > 0) log(`note (NODE_FLAGS): node was started without ${missing.join(' ')} (the freshet command passes them); RSS can step up under load (README, decisions)`)
}

function onSignals(stop: () => Promise<void>): void {
  let count = 0
  const handler = (signal: string): void => {
    count++
    if (count > 1) process.exit(130)
    log(`${signal}: flushing the log and closing`)
    stop().then(() => process.exit(0), (err) => { log(`shutdown failed: ${String(err)}`); process.exit(1) })
  }
  process.on('SIGINT', () => handler('SIGINT'))
  process.on('SIGTERM', () => handler('SIGTERM'))
}

/** A boolean flag from commander's options object (typed here as strings). */
function flag(o: Record<string, unknown>, name: string): boolean {
  return o[name] === true
}

const program = new Command()
program.name('freshet').description('a replicated in-memory key-value database: the log is the database').version('0.1.0')

/** Flags of both roles: a node runs as either, and changes role at run time (REPLICAOF). */
function nodeFlags(c: Command): Command {
  return c
    .option('--host <host>', 'address to bind', HOST_DEFAULT)
    .option('--dir <dir>', 'log directory (default: ./freshet-<port>)')
    .option('--requirepass <password>', 'password clients must AUTH with')
    .option('--segment-size <size>', 'log segment size (a power of two; the same on every node)', '8mb')
    .option('--max-memory <size>', 'memory for log + index: the cleaner keeps the log within it; writes get -OOM only when the live data does not fit (default: 75% of RAM)')
    .option('--max-clients <n>', 'maximum client connections', String(CLIENTS_MAX_DEFAULT))
    .option('--accept-log-damage', 'start even if the log is damaged: cut it at the first damage and log exactly what was cut (default: refuse to start, LOG_DAMAGED)')
    .addOption(new Option('--commit <mode>', 'when a write is acknowledged (as a primary, or once promoted)').choices(COMMIT_MODES as string[]).default('local'))
    .option('--sync-backups <n>', 'backups that must flush/apply a write in remote-* modes', '1')
    .option('--sync-timeout <ms>', 'remote-* modes: a write waits at most this long for its sync backups, then gets -NOREPLICAS; writes are refused at once while they have been missing that long', String(SYNC_TIMEOUT_MS_DEFAULT))
    .option('--retain-bytes <size>', 'log kept behind the tail for backups that reconnect; one further behind gets a full resync', '8mb')
    .option('--workers <n>', 'replay worker threads (as a backup; default: min(4, cores))')
    .option('--primaryauth <password>', 'the password of the primary it follows')
    .option('--dbfilename <name>', 'RDB snapshots (SAVE, BGSAVE) are written to <dir>/<name>', 'dump.rdb')
    .option('--metrics-port <port>', 'serve Prometheus metrics at http://<host>:<port>/metrics (default: off)')
    .addOption(new Option('--initial-lsn <lsn>', 'a new log directory starts at this LSN (a segment boundary; for tests)').hideHelp())
}

function nodeOptions(o: Record<string, string | undefined>, port: number, requirepass: string | null): NodeRunOptions {
  const segmentBytes = parseSegmentBytes(o.segmentSize!)
  return {
    host: o.host!, port, dir: o.dir ?? defaultDir(port), requirepass, segmentBytes,
    maxMemoryBytes: o.maxMemory !== undefined ? parseBytes(o.maxMemory, '--max-memory') : defaultMaxMemory(),
    maxClients: parseCount(o.maxClients!, '--max-clients', 1, 1_000_000),
    valueBytesMax: valueBytesMaxFor(segmentBytes), acceptLogDamage: flag(o, 'acceptLogDamage'),
    commit: o.commit as CommitMode, syncBackups: parseCount(o.syncBackups!, '--sync-backups', 0, 64),
    syncTimeoutMs: parseCount(o.syncTimeout!, '--sync-timeout', 1, 3_600_000),
    retainBytes: parseBytes(o.retainBytes!, '--retain-bytes', true),
    initialLsn: o.initialLsn !== undefined ? parseCount(o.initialLsn, '--initial-lsn', 0, 2 ** 52) : 0,
    workers: o.workers !== undefined ? parseCount(o.workers, '--workers', 1, 256) : Math.min(4, os.cpus().length),
    primaryAuth: o.primaryauth ?? null, dbfilename: parseFileName(o.dbfilename!, '--dbfilename'),
    metricsPort: o.metricsPort !== undefined ? parseCount(o.metricsPort, '--metrics-port', 0, 65535) : null, log,
  }
}

nodeFlags(program.command('primary')
  .description('run a primary')
  .option('--port <port>', 'port for clients and backups', String(PORT_DEFAULT))
  .option('--load-rdb <file>', 'first load this RDB file into the (empty or new) --dir, as `freshet restore` does')
  .option('--skip-unsupported', 'with --load-rdb: skip (and count) keys freshet cannot hold instead of refusing the file'))
  .action(async (o: Record<string, string | undefined>) => {
    const port = parsePort(o.port!)
    const node = nodeOptions(o, port, o.requirepass ?? null)
    noteMissingNodeFlags()
    if (o.loadRdb !== undefined) await restore(o.loadRdb, node.dir, node.segmentBytes, node.maxMemoryBytes, flag(o, 'skipUnsupported'))
    const running = await RunningNode.start(node, null)
    onSignals(() => running.stop())
  })

program.command('restore')
  .description('load an RDB file (strings) into a new primary log directory')
  .argument('<file>', 'the RDB file (redis-cli --rdb, SAVE or BGSAVE of Redis or freshet)')
  .requiredOption('--dir <dir>', 'the new log directory (absent or empty)')
  .option('--segment-size <size>', 'log segment size (the nodes that will serve it must use the same)', '8mb')
  .option('--max-memory <size>', 'memory for log + index while loading (default: 75% of RAM)')
  .option('--skip-unsupported', 'skip (and count) keys freshet cannot hold (other types, other databases, keys with a time to live) instead of refusing the file')
  .action(async (file: string, o: Record<string, string | undefined>) => {
    const segmentBytes = parseSegmentBytes(o.segmentSize!)
    await restore(file, o.dir!, segmentBytes, o.maxMemory !== undefined ? parseBytes(o.maxMemory, '--max-memory') : defaultMaxMemory(), flag(o, 'skipUnsupported'))
    process.exit(0)
  })

async function restore(file: string, dir: string, segmentBytes: number, maxMemoryBytes: number, skipUnsupported: boolean): Promise<void> {
  const o = { file, dir, segmentBytes, maxMemoryBytes, valueBytesMax: valueBytesMaxFor(segmentBytes), skipUnsupported, log }
  const r = await restoreRdb(o)
  log(describeRestore(o, r))
}

nodeFlags(program.command('backup')
  .description('run a backup that follows a primary and serves reads (REPLICAOF NO ONE promotes it)')
  .requiredOption('--primary <host:port>', 'the primary to follow')
  .option('--port <port>', 'port for clients', String(PORT_DEFAULT + 1)))
  .action(async (o: Record<string, string | undefined>) => {
    const port = parsePort(o.port!)
    const primary = parseHostPort(o.primary!, '--primary')
    noteMissingNodeFlags()
    const running = await RunningNode.start(nodeOptions(o, port, backupRequirepass(o.requirepass, o.primaryauth)), primary)
    onSignals(() => running.stop())
  })

program.command('failover')
  .description('promote the most advanced backup, fence the old primary, repoint the other nodes')
  .argument('<addresses...>', 'HOST:PORT of every node (the old primary too, if it may still run)')
  .option('--password <password>', 'AUTH password')
  .option('--max-lag-bytes <size>', 'refuse a candidate further behind the newest commit LSN than this', '64mb')
  .option('--timeout <ms>', 'how long each node has to answer', '1000')
  .option('--writable-timeout <ms>', 'how long to wait for the new primary\'s sync backups', '10000')
  .option('--json', 'print the result as one JSON line at the end')
  .action(async (addresses: string[], o: Record<string, string | boolean | undefined>) => {
    const result = await runFailover({
      addresses, password: typeof o.password === 'string' ? o.password : null,
      maxLagBytes: parseBytes(String(o.maxLagBytes), '--max-lag-bytes', true),
      timeoutMs: parseCount(String(o.timeout), '--timeout', 1, 600_000),
      writableTimeoutMs: parseCount(String(o.writableTimeout), '--writable-timeout', 0, 600_000),
      out: (line) => process.stdout.write(line + '\n'),
    }).catch((err: unknown) => {
      if (err instanceof DbError && err.code === 'NOT_PRIMARY') {
        log(`failover refused: ${err.message}`)
        process.exit(3)
      }
      throw err
    })
    if (o.json === true) process.stdout.write(JSON.stringify(result) + '\n')
    process.exit(0)
  })

program.command('lag')
  .description('watch the replication lag of a primary\'s backups (or of backups directly)')
  .argument('<addresses...>', 'HOST:PORT of a primary or backup')
  .option('--once', 'print one sample and exit')
  .option('--password <password>', 'AUTH password')
  .action(async (addresses: string[], o: { once?: boolean, password?: string }) => {
    await runLag(addresses, o.once === true, o.password ?? null, (line) => process.stdout.write(line + '\n'))
  })

program.command('demo', { isDefault: false })
  .description('a primary and backups on loopback, a write load, live replay lag, a summary')
  .option('--duration <s>', 'seconds of write load', '15')
  .option('--backups <n>', 'number of backups', '2')
  .option('--workers <n>', 'replay workers per backup (default: min(4, cores))')
  .option('--rate <ops>', 'SET commands per second', '20000')
  .option('--clients <n>', 'pipelining write clients', '4')
  .option('--value-size <bytes>', 'value size', '64')
  .option('--keyspace <n>', 'distinct keys', '100000')
  .addOption(new Option('--commit <mode>', 'primary commit mode').choices(['async', 'local']).default('local'))
  .action(async (o: Record<string, string>) => {
    const ok = await runDemo({
      durationS: parseCount(o.duration, '--duration', 1, 3600), backups: parseCount(o.backups, '--backups', 0, 8),
      workers: o.workers !== undefined ? parseCount(o.workers, '--workers', 1, 256) : Math.min(4, os.cpus().length),
      rate: parseCount(o.rate, '--rate', 1, 10_000_000), clients: parseCount(o.clients, '--clients', 1, 256),
      valueBytes: parseCount(o.valueSize, '--value-size', 0, 1024 * 1024), keyspace: parseCount(o.keyspace, '--keyspace', 1, 100_000_000),
      commit: o.commit, out: (line) => process.stdout.write(line + '\n'),
    })
    process.exit(ok ? 0 : 1)
  })

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof DbError) {
    log(`error (${err.code}): ${err.message}`)
    process.exit(2)
  }
  log(`fatal: ${err instanceof Error ? err.stack : String(err)}`)
  process.exit(1)
})

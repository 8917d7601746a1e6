/**
 * Real replicated clusters for replication tests: a primary and K backups as
 * child processes (the product's startNode() from dist/, so `npm run build`
 * first), each on its own temp dir, plus ioredis clients, seeded randomness
 * and bounded waits.
 *
 * Everything made here (processes, dirs, clients) is put in a registry that
 * cleanupClusters() empties: an afterAll hook registered by this module calls
 * it, files may also call it from afterEach, and a process 'exit' hook
 * SIGKILLs any node still running if the test worker itself goes away. Every
 * wait is bounded; nothing here retries forever.
 */
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import type { ChildProcess } from 'node:child_process'
import { Redis, type RedisOptions } from 'ioredis'
import { afterAll } from 'vitest'
import type { NodeProcess } from '../../src/cli/spawn.js'
import { errorCode } from './clients.js'

// spawn.ts finds main.js next to itself, so it must be the compiled module
// (dist/src/cli/spawn.js spawns dist/src/cli/main.js); loaded from src/ under
// vitest it would look for src/cli/main.js, which does not exist.
const { startNode } = (await import('../../dist/src/cli/spawn.js')) as typeof import('../../src/cli/spawn.js')

export type CommitMode = 'async' | 'local' | 'remote-flush' | 'remote-apply'

export const PASSWORD_DEFAULT = 'cluster-secret'
export const SEGMENT_SIZE_DEFAULT = '1mb'
const START_TIMEOUT_MS = 20_000
const STOP_TIMEOUT_MS = 10_000
const CONNECTED_TIMEOUT_MS = 15_000
const WAIT_APPLIED_TIMEOUT_MS = 15_000
const CLIENT_TIMEOUT_MS = 10_000
const COMMAND_TIMEOUT_MS = 30_000

// ---------------------------------------------------------------- registry

const liveNodes = new Set<NodeProcess>()
const liveProcs = new Set<ChildProcess>()
const liveClients = new Set<Redis>()
const tempDirs = new Set<string>()

process.on('exit', () => {
  for (const proc of liveProcs) {
    try { proc.kill('SIGKILL') } catch { /* already exited: nothing left to kill */ }
  }
})

afterAll(async () => {
  await cleanupClusters()
})

/** Closes every client, SIGKILLs every node still running, removes every temp dir. */
export async function cleanupClusters(): Promise<void> {
  for (const c of liveClients) c.disconnect()
  liveClients.clear()
  await Promise.all([...liveNodes].map((n) => withTimeout(n.kill9(), STOP_TIMEOUT_MS, `${n.role} ${n.port} to exit`)))
  liveNodes.clear()
  for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true })
  tempDirs.clear()
}

export function makeTempDir(prefix = 'freshet-repl-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
  tempDirs.add(dir)
  return dir
}

function track(node: NodeProcess): NodeProcess {
  liveNodes.add(node)
  liveProcs.add(node.proc)
  node.proc.once('exit', () => {
    liveNodes.delete(node)
    liveProcs.delete(node.proc)
  })
  return node
}

// ---------------------------------------------------------------- small utilities

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

export function withTimeout<T>(p: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms: ${what}`)), timeoutMs)
  })
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer))
}

/** Polls `cond` until it holds; throws after timeoutMs with `what` and the last detail. */
export async function waitFor(
  cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string, intervalMs = 20,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    // A condition that itself hangs (a reply that never comes) is bounded too.
    const left = Math.max(1, deadline - Date.now())
    if (await withTimeout(Promise.resolve(cond()), left, `waiting for ${what}`)) return
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(intervalMs)
  }
}

export { errorCode }

/** INFO text -> key -> value. */
export function parseInfo(text: string): Map<string, string> {
  const out = new Map<string, string>()
  for (const line of text.split(/\r?\n/)) {
    if (line === '' || line.startsWith('#')) continue
    const i = line.indexOf(':')
    if (i > 0) out.set(line.slice(0, i), line.slice(i + 1))
  }
  return out
}

/** `k=v,k=v` (a primary's backupN line) -> key -> value. */
export function parseFields(text: string): Map<string, string> {
  const out = new Map<string, string>()
  for (const part of text.split(',')) {
    const i = part.indexOf('=')
    if (i > 0) out.set(part.slice(0, i), part.slice(i + 1))
  }
  return out
}

/** INFO <section>, bounded: a reply that does not come within timeoutMs fails the caller. */
export async function info(client: Redis, section: string, timeoutMs = CLIENT_TIMEOUT_MS): Promise<Map<string, string>> {
  return parseInfo(await withTimeout(client.info(section), timeoutMs, `INFO ${section}`))
}

/** The primary's backupN lines, parsed, in order. */
export function backupLines(replication: Map<string, string>): Array<Map<string, string>> {
  const out: Array<Map<string, string>> = []
  for (let i = 0; i < 1024; i++) {
    const line = replication.get(`backup${i}`)
    if (line === undefined) break
    out.push(parseFields(line))
  }
  return out
}

// ---------------------------------------------------------------- seeded randomness

/** mulberry32 over a seed; SEED=<n> in the environment overrides the default. The seed is logged. */
export interface Rng {
  readonly seed: number
  next(): number
  /** Uniform integer in [min, max], both inclusive. */
  int(min: number, max: number): number
  pick<T>(items: readonly T[]): T
  bytes(count: number): Buffer
}

export function seededRng(label: string, defaultSeed: number): Rng {
  const fromEnv = process.env.SEED
  const seed = fromEnv !== undefined && fromEnv !== '' ? Number(fromEnv) >>> 0 : defaultSeed >>> 0
  process.stderr.write(`[seed] ${label}: SEED=${seed}\n`)
  let a = seed
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  return {
    seed,
    next,
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    pick: (items) => items[Math.floor(next() * items.length)],
    bytes: (count) => {
      const out = Buffer.allocUnsafe(count)
      for (let i = 0; i < count; i++) out[i] = Math.floor(next() * 256)
      return out
    },
  }
}

// ---------------------------------------------------------------- clients

/**
 * An ioredis client on loopback, closed by cleanupClusters(). `reconnect`
 * false (default) makes a dead server fail commands instead of retrying.
 */
export function connect(port: number, o: { password?: string, reconnect?: boolean, extra?: Partial<RedisOptions> } = {}): Redis {
  const password = o.password ?? nodePasswords.get(port)
  const client = new Redis({
    // No ready check and no CLIENT SETINFO on connect: ioredis waits for their
    // replies before sending anything, and a remote-* primary may hold every
    // reply until enough backups connect (see commit_modes.test.ts).
    host: '127.0.0.1', port, password, lazyConnect: false, enableReadyCheck: false, disableClientInfo: true,
    maxRetriesPerRequest: o.reconnect === true ? 20 : 1,
    retryStrategy: o.reconnect === true ? (times: number) => (times > 200 ? null : 50) : () => null,
    // Bounds every command; the longest waits here (WAITLSN, held replies) are shorter.
    connectTimeout: CLIENT_TIMEOUT_MS, commandTimeout: COMMAND_TIMEOUT_MS, ...o.extra,
  })
  client.on('error', () => { /* failed commands reject; connection errors are expected when a test kills a node */ })
  liveClients.add(client)
  return client
}

export function disconnect(client: Redis): void {
  liveClients.delete(client)
  client.disconnect()
}

// ---------------------------------------------------------------- nodes and clusters

/** Ports for restartable primaries: below Linux's ephemeral range (32768-60999). */
const LOW_PORT_MIN = 20000
const LOW_PORT_SPAN = 12000
let lowPortAttempt = 0

/** A free port below the ephemeral range; candidates spread by process id, so test workers do not collide. */
async function freeLowPort(): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const port = LOW_PORT_MIN + ((process.pid * 7919 + lowPortAttempt++ * 104729) % LOW_PORT_SPAN)
    const free = await new Promise<boolean>((resolve) => {
      const s = net.createServer()
      s.once('error', () => resolve(false))
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)))
    })
    if (free) return port
  }
  throw new Error('no free port below the ephemeral range')
}

/**
 * The password each node started here requires (by port): a backup of a
 * protected primary requires the password it follows with, so clients of
 * either role connect with it unless a test passes its own.
 */
const nodePasswords = new Map<number, string>()

export interface PrimaryConfig {
  commit?: CommitMode
  syncBackups?: number
  password?: string | null
  segmentSize?: string
  port?: number
  dir?: string
  /** Extra CLI arguments of the primary, appended last (a repeated option takes the last value). */
  args?: string[]
}

export interface BackupConfig {
  workers?: number
  dir?: string
  port?: number
  /** Defaults to the cluster's password. */
  primaryAuth?: string | null
  segmentSize?: string
  /** Follow this host:port instead of the cluster's primary (a fake primary). */
  primaryAddr?: string
  /** Extra CLI arguments, appended last. */
  args?: string[]
}

export interface NodeHandle {
  readonly role: 'primary' | 'backup'
  readonly dir: string
  readonly node: NodeProcess
  readonly port: number
  /** Replay workers (backups only; 0 for a primary). */
  readonly workers: number
  stderr(): string
}

export async function startPrimaryNode(c: PrimaryConfig = {}): Promise<NodeHandle> {
  const dir = c.dir ?? makeTempDir('freshet-primary-')
  const args = [
    '--port', String(c.port ?? 0), '--dir', dir, '--commit', c.commit ?? 'async',
    '--sync-backups', String(c.syncBackups ?? 1), '--segment-size', c.segmentSize ?? SEGMENT_SIZE_DEFAULT,
    '--max-memory', '512mb',
  ]
  if (c.password !== null && c.password !== undefined) args.push('--requirepass', c.password)
  if (c.args !== undefined) args.push(...c.args)
  const node = track(await startNode('primary', args, START_TIMEOUT_MS))
  if (c.password !== null && c.password !== undefined) nodePasswords.set(node.port, c.password)
  else nodePasswords.delete(node.port)
  return { role: 'primary', dir, node, port: node.port, workers: 0, stderr: () => node.stderr() }
}

export async function startBackupNode(primaryPort: number, c: BackupConfig = {}): Promise<NodeHandle> {
  const dir = c.dir ?? makeTempDir('freshet-backup-')
  const workers = c.workers ?? 2
  const args = [
    '--primary', c.primaryAddr ?? `127.0.0.1:${primaryPort}`, '--port', String(c.port ?? 0), '--dir', dir,
    '--workers', String(workers), '--segment-size', c.segmentSize ?? SEGMENT_SIZE_DEFAULT,
  ]
  if (c.primaryAuth !== null && c.primaryAuth !== undefined) args.push('--primaryauth', c.primaryAuth)
  if (c.args !== undefined) args.push(...c.args)
  const node = track(await startNode('backup', args, START_TIMEOUT_MS))
  if (c.primaryAuth !== null && c.primaryAuth !== undefined && c.primaryAuth !== '') nodePasswords.set(node.port, c.primaryAuth)
  else nodePasswords.delete(node.port)
  return { role: 'backup', dir, node, port: node.port, workers, stderr: () => node.stderr() }
}

export interface ClusterConfig extends PrimaryConfig {
  /** Replay workers of each backup; its length is the number of backups. */
  workers?: number[]
  /** Wait for every backup to be connected before returning (default true). */
  waitConnected?: boolean
}

/** Applied LSN a backup reports after WAITLSN (or a TIMEOUT error). */
export async function waitApplied(backupPort: number, lsn: number, timeoutMs = WAIT_APPLIED_TIMEOUT_MS): Promise<number> {
  const client = connect(backupPort)
  try {
    const reply = await withTimeout(client.call('WAITLSN', String(lsn), String(timeoutMs)), timeoutMs + 5_000, `WAITLSN ${lsn} on ${backupPort}`)
    return Number(reply)
  } finally {
    disconnect(client)
  }
}

export class Cluster {
  readonly password: string | null
  readonly segmentSize: string
  readonly config: ClusterConfig
  primary: NodeHandle
  readonly backups: NodeHandle[]

  private constructor(config: ClusterConfig, primary: NodeHandle) {
    this.config = config
    this.password = config.password === undefined ? PASSWORD_DEFAULT : config.password
    this.segmentSize = config.segmentSize ?? SEGMENT_SIZE_DEFAULT
    this.primary = primary
    this.backups = []
  }

  /** A primary and one backup per entry of `workers`, connected (bounded wait). */
  static async start(config: ClusterConfig = {}): Promise<Cluster> {
    const password = config.password === undefined ? PASSWORD_DEFAULT : config.password
    // A primary may be restarted on its port (backups follow host:port): one below the ephemeral range, so
    // no client socket or `--port 0` server can take it while the primary is down.
    const port = config.port ?? await freeLowPort()
    const primary = await startPrimaryNode({ ...config, password, port })
    const cluster = new Cluster(config, primary)
    const workers = config.workers ?? [2]
    // Started in parallel, kept in the order of `workers`.
    const started = await Promise.all(workers.map((w) => cluster.spawnBackup({ workers: w })))
    cluster.backups.push(...started)
    if (config.waitConnected !== false) await cluster.waitConnectedBackups(workers.length)
    return cluster
  }

  /** Starts another backup following this cluster's primary (not waited for). */
  async addBackup(c: BackupConfig = {}): Promise<NodeHandle> {
    const b = await this.spawnBackup(c)
    this.backups.push(b)
    return b
  }

  private spawnBackup(c: BackupConfig): Promise<NodeHandle> {
    return startBackupNode(this.primary.port, { primaryAuth: this.password ?? undefined, segmentSize: this.segmentSize, ...c })
  }

  /**
   * Stops backup i (SIGKILL by default; a no-op if it already exited) and
   * starts it again on the same dir and worker count (new port); replaces it
   * in `backups`.
   */
  async restartBackup(i: number, signal: 'SIGKILL' | 'SIGTERM' = 'SIGKILL', whileStopped?: () => Promise<void>): Promise<NodeHandle> {
    const old = this.backups[i]
    if (signal === 'SIGKILL') await withTimeout(old.node.kill9(), STOP_TIMEOUT_MS, `backup${i} to exit`)
    else await withTimeout(old.node.stop(STOP_TIMEOUT_MS), STOP_TIMEOUT_MS + 5_000, `backup${i} to stop`)
    if (whileStopped !== undefined) await whileStopped()
    const b = await startBackupNode(this.primary.port, {
      dir: old.dir, primaryAuth: this.password ?? undefined, segmentSize: this.segmentSize, workers: old.workers,
    })
    this.backups[i] = b
    return b
  }

  /** SIGTERMs the primary (clean shutdown), bounded. */
  async stopPrimary(): Promise<number | null> {
    return withTimeout(this.primary.node.stop(STOP_TIMEOUT_MS), STOP_TIMEOUT_MS + 5_000, 'primary to stop')
  }

  /** SIGKILLs the primary (a crash: what it had not written to its files is lost), bounded. */
  async killPrimary(): Promise<void> {
    await withTimeout(this.primary.node.kill9(), STOP_TIMEOUT_MS, 'primary to exit')
  }

  /** Starts the primary again on the same dir and the same port. */
  async restartPrimary(): Promise<NodeHandle> {
    const port = this.primary.port
    const dir = this.primary.dir
    let lastErr: unknown = null
    // The port was just released (clean shutdown or kill); a few bounded tries cover a slow close.
    for (let attempt = 0; attempt < 10; attempt++) {
      try {
        this.primary = await startPrimaryNode({ ...this.config, password: this.password, dir, port })
        return this.primary
      } catch (err) {
        lastErr = err
        await sleep(200)
      }
    }
    throw new Error(`primary did not restart on port ${port}: ${String(lastErr)}`)
  }

  primaryClient(o: { reconnect?: boolean } = {}): Redis {
    return connect(this.primary.port, { password: this.password ?? undefined, ...o })
  }

  backupClient(i: number, o: { reconnect?: boolean } = {}): Redis {
    return connect(this.backups[i].port, o)
  }

  /** Primary INFO replication. */
  async primaryReplication(): Promise<Map<string, string>> {
    const c = this.primaryClient()
    try {
      return await info(c, 'replication')
    } finally {
      disconnect(c)
    }
  }

  /** Waits (bounded) until the primary shows `count` connected backups. */
  async waitConnectedBackups(count: number, timeoutMs = CONNECTED_TIMEOUT_MS): Promise<void> {
    const c = this.primaryClient()
    let last = ''
    try {
      await waitFor(async () => {
        last = (await info(c, 'replication')).get('connected_backups') ?? ''
        return last === String(count)
      }, timeoutMs, `${count} connected backups (last connected_backups: ${last})`, 25)
    } finally {
      disconnect(c)
    }
  }

  /** Waits (bounded) until every backup has applied `lsn` (WAITLSN); returns their applied LSNs. */
  async waitAllApplied(lsn: number, timeoutMs = WAIT_APPLIED_TIMEOUT_MS): Promise<number[]> {
    return Promise.all(this.backups.map((b) => waitApplied(b.port, lsn, timeoutMs)))
  }
}

// ---------------------------------------------------------------- digests

/** Every key SCAN returns (bounded iteration), sorted. */
export async function scanAll(client: Redis, count = 50): Promise<string[]> {
  const keys = new Set<string>()
  let cursor = '0'
  for (let i = 0; i < 1_000_000; i++) {
    const [next, batch] = await client.scan(cursor, 'COUNT', count)
    for (const k of batch) keys.add(k)
    cursor = next
    if (cursor === '0') return [...keys].sort()
  }
  throw new Error('SCAN did not finish')
}

/** key -> value (hex) of everything SCAN finds, read with MGET in batches. */
export async function digest(client: Redis): Promise<Map<string, string | null>> {
  const keys = await scanAll(client)
  const out = new Map<string, string | null>()
  for (let i = 0; i < keys.length; i += 200) {
    const batch = keys.slice(i, i + 200)
    const values = await client.mgetBuffer(...batch)
    batch.forEach((k, j) => out.set(k, values[j] === null ? null : values[j]!.toString('hex')))
  }
  return out
}

/** The primary's LSN for this connection's last write. */
export async function lsnOf(client: Redis): Promise<number> {
  return Number(await client.call('LSN'))
}

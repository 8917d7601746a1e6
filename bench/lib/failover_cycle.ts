/**
 * A Jepsen-style failover loop on real processes, shared by the failover
 * test (a few seeded cycles in CI) and the failover bench (50 cycles, RTO):
 *
 *   1. a primary and its backups (every node started with the same
 *      --commit / --sync-backups, so whichever is promoted keeps the mode);
 *   2. W writers pipeline a mixed load at the primary: unique keys, overwrites
 *      of a few keys with rising values, INCR counters, MULTI blocks that set
 *      three keys to one value; every acknowledged reply is recorded;
 *   3. at a seeded moment the primary is killed (kill -9), or stopped
 *      (SIGSTOP: the link stops, the process lives on);
 *   4. `freshet failover` (the CLI) promotes the most advanced backup,
 *      fences the old primary and repoints the rest; a first write on the
 *      new primary closes the RTO measurement;
 *   5. checks on the new primary: every acknowledged write is there with its
 *      acknowledged value or a later one; no INCR went backwards; no MULTI is
 *      torn; a stopped primary, resumed, acknowledges nothing more;
 *   6. the old primary rejoins as a backup (restarted with --primary, or
 *      REPLICAOF when it was stopped), and every node ends with one digest.
 *
 * All randomness comes from the seed; every wait is bounded.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { RespClient, RespErrorReply, parseInfo, type Reply } from '../../src/client/client.js'
import { Prng } from './common.js'
import { freePort, runToEnd, startUntilReady } from './proc.js'
import { NODE_FLAGS } from '../../src/cli/spawn.js'

export interface RingOptions {
  /** dist/src/cli/main.js */
  mainJs: string
  commit: 'async' | 'local' | 'remote-flush' | 'remote-apply'
  syncBackups: number
  backups: number
  seed: number
  /** Writers (pipelining connections), 1 to 8. */
  writers: number
  /** Commands in flight per writer. */
  depth: number
  /** Load before the crash: a seeded time in [min, max) ms. */
  loadMsMin: number
  loadMsMax: number
  /** Keys written before the first cycle (RTO with a large index). */
  preloadKeys: number
  segmentSize: string
  syncTimeoutMs: number
  log: (line: string) => void
}

export interface CycleResult {
  cycle: number
  crash: 'kill' | 'stop'
  acked: number
  /** Acknowledged writes missing or older on the new primary (target 0 in remote-flush). */
  lost: number
  incrBackwards: number
  tornMulti: number
  /**
   * Writes a stopped old primary acknowledged once resumed, before its fence
   * ran: only ACKs its backups had sent before the failover (so those writes
   * are on the new primary too; `lost` counts them like every other).
   */
  ackedOnResume: number
  /** Writes it acknowledged once fenced (must be 0). */
  ackedAfterFence: number
  detectToPromotedMs: number
  promotedToWriteMs: number
  rtoMs: number
  failoverToolMs: number
  rejoinMs: number
  digestsEqual: boolean
  lostExamples: string[]
}

interface RingNode {
  port: number
  dir: string
  child: ChildProcess | null
  lines: string[]
}

const START_TIMEOUT_MS = 30_000
const CALL_TIMEOUT_MS = 20_000

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | null = null
  const t = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms) })
  return Promise.race([p, t]).finally(() => { if (timer !== null) clearTimeout(timer) })
}

async function call(port: number, ...args: Array<string | number>): Promise<Reply> {
  const c = await RespClient.connect('127.0.0.1', port, 5000)
  try {
    return await withTimeout(c.call(...args), CALL_TIMEOUT_MS, `${String(args[0])} on ${port}`)
  } finally {
    c.close()
  }
}

async function info(port: number): Promise<Map<string, string>> {
  return parseInfo(await call(port, 'INFO', 'replication'))
}

async function waitUntil(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      if (await check()) return
    } catch { /* a node still starting: asked again below, bounded by the deadline */ }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

/** What one writer saw acknowledged. */
class Writer {
  readonly id: number
  readonly client: RespClient
  /** unique key index -> acknowledged */
  uniqueAcked: number[]
  readonly overwriteMax: Map<string, number>
  readonly counterMax: Map<string, number>
  multiMax: number
  acked: number
  stopped: boolean
  private seq: number
  private readonly rng: Prng

  constructor(id: number, client: RespClient, seed: number) {
    this.id = id
    this.client = client
    this.uniqueAcked = []
    this.overwriteMax = new Map()
    this.counterMax = new Map()
    this.multiMax = 0
    this.acked = 0
    this.stopped = false
    this.seq = 0
    this.rng = new Prng(seed)
  }

  /** One command (or one MULTI block) with its ack bookkeeping; resolves when answered or the link died. */
  private async one(): Promise<void> {
    const n = ++this.seq
    const w = this.id
    const pick = this.rng.below(10)
    try {
      if (pick < 4) {
        const r = await this.client.call('SET', `u:${w}:${n}`, String(n))
        if (r === 'OK') { this.uniqueAcked.push(n); this.acked++ }
      } else if (pick < 6) {
        const key = `o:${w}:${this.rng.below(8)}`
        const r = await this.client.call('SET', key, String(n))
        if (r === 'OK') { this.overwriteMax.set(key, Math.max(this.overwriteMax.get(key) ?? 0, n)); this.acked++ }
      } else if (pick < 8) {
        const key = `c:${w}:${this.rng.below(4)}`
        const r = await this.client.call('INCR', key)
        if (typeof r === 'number') { this.counterMax.set(key, Math.max(this.counterMax.get(key) ?? 0, r)); this.acked++ }
      } else {
        const r = await this.client.pipeline([['MULTI'], ['SET', `m:${w}:a`, String(n)], ['SET', `m:${w}:b`, String(n)], ['SET', `m:${w}:c`, String(n)], ['EXEC']])
        const exec = r[4]
        if (Array.isArray(exec) && exec.every((x) => x === 'OK')) { this.multiMax = Math.max(this.multiMax, n); this.acked++ }
      }
    } catch {
      this.stopped = true // the link died (the primary was killed): this writer is done
    }
  }

  /** Runs `depth` loops until stopped. */
  async run(depth: number): Promise<void> {
    await Promise.all(Array.from({ length: depth }, async () => {
      while (!this.stopped) await this.one()
    }))
  }
}

export class FailoverRing {
  readonly o: RingOptions
  readonly nodes: RingNode[]
  primary: number
  private readonly rng: Prng
  private readonly root: string

  private constructor(o: RingOptions, nodes: RingNode[], root: string) {
    this.o = o
    this.nodes = nodes
    this.primary = 0
    this.rng = new Prng(o.seed)
    this.root = root
  }

  static async start(o: RingOptions): Promise<FailoverRing> {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'freshet-failover-'))
    const nodes: RingNode[] = []
    for (let i = 0; i <= o.backups; i++) nodes.push({ port: await freePort(), dir: path.join(root, `n${i}`), child: null, lines: [] })
    const ring = new FailoverRing(o, nodes, root)
    await ring.startNode(0, null)
    for (let i = 1; i <= o.backups; i++) await ring.startNode(i, nodes[0].port)
    await waitUntil('every backup connected', START_TIMEOUT_MS, async () => Number((await info(nodes[0].port)).get('connected_backups')) === o.backups)
    if (o.preloadKeys > 0) await ring.preload(o.preloadKeys)
    return ring
  }

  private async startNode(i: number, follow: number | null): Promise<void> {
    const n = this.nodes[i]
    const o = this.o
    const args = [...NODE_FLAGS, o.mainJs, follow === null ? 'primary' : 'backup', '--port', String(n.port), '--dir', n.dir,
      '--commit', o.commit, '--sync-backups', String(o.syncBackups), '--sync-timeout', String(o.syncTimeoutMs),
      '--segment-size', o.segmentSize, '--max-memory', '2gb', '--workers', '2']
    if (follow !== null) args.push('--primary', `127.0.0.1:${follow}`)
    const s = await startUntilReady(process.execPath, args, / listening on /, START_TIMEOUT_MS)
    n.child = s.child
    n.lines = s.lines
  }

  private async preload(keys: number): Promise<void> {
    const c = await RespClient.connect('127.0.0.1', this.nodes[0].port)
    try {
      const batch = 1000
      const value = 'v'.repeat(32)
      for (let i = 0; i < keys; i += batch) {
        const cmds: Array<Array<string | number>> = []
        for (let k = i; k < Math.min(keys, i + batch); k++) cmds.push(['SET', `pre:${k}`, value])
        await c.pipeline(cmds)
      }
    } finally {
      c.close()
    }
  }

  /** One cycle: load, crash the primary, fail over, check, rejoin, compare digests. */
  async cycle(index: number, crash: 'kill' | 'stop'): Promise<CycleResult> {
    const o = this.o
    const old = this.primary
    const oldNode = this.nodes[old]
    const writers: Writer[] = []
    for (let w = 0; w < o.writers; w++) writers.push(new Writer(w + index * 16, await RespClient.connect('127.0.0.1', oldNode.port), o.seed * 1000 + index * 16 + w))
    const running = writers.map((w) => w.run(o.depth))
    await new Promise((r) => setTimeout(r, o.loadMsMin + this.rng.below(Math.max(1, o.loadMsMax - o.loadMsMin))))
    const crashAt = performance.now()
    oldNode.child!.kill(crash === 'kill' ? 'SIGKILL' : 'SIGSTOP')
    // Failover (the CLI, as an operator runs it); a stopped node never answers: a short per-node bound.
    const addrs = this.nodes.map((n) => `127.0.0.1:${n.port}`)
    const tool = await runToEnd(process.execPath, [o.mainJs, 'failover', ...addrs, '--timeout', '300', '--json'], 60_000)
    if (tool.code !== 0) throw new Error(`freshet failover exited ${tool.code}: ${tool.stdout}\n${tool.stderr}`)
    const result = JSON.parse(tool.stdout.trim().split('\n').pop()!) as { promoted: string, totalMs: number }
    const promotedAt = performance.now()
    const next = this.nodes.findIndex((n) => `127.0.0.1:${n.port}` === result.promoted)
    if (next < 0 || next === old) throw new Error(`failover promoted ${result.promoted}`)
    const newPort = this.nodes[next].port
    // First write accepted by the new primary (retried: a remote-* primary answers once its sync backup is back).
    let wrote = false
    for (let i = 0; i < 200 && !wrote; i++) {
      const r = await call(newPort, 'SET', `failover:${index}`, String(index))
      wrote = r === 'OK'
      if (!wrote) await new Promise((resolve) => setTimeout(resolve, 10))
    }
    if (!wrote) throw new Error('the new primary accepted no write')
    const writeAt = performance.now()
    let ackedOnResume = 0
    let ackedAfterFence = 0
    if (crash === 'stop') {
      // Resumed, the old primary runs the queued fence and acknowledges nothing more: pending commands get errors.
      const ackedNow = (): number => writers.reduce((n, w) => n + w.acked, 0)
      const before = ackedNow()
      oldNode.child!.kill('SIGCONT')
      await waitUntil('the resumed old primary fenced', 20_000, async () => (await info(oldNode.port)).get('fenced') === '1')
      // Replies released before the fence (in the turn it ran) are on their way: let them arrive.
      await new Promise((r) => setTimeout(r, 100))
      const fencedAt = ackedNow()
      ackedOnResume = fencedAt - before
      await new Promise((r) => setTimeout(r, o.syncTimeoutMs + 300))
      for (const w of writers) w.stopped = true
      await withTimeout(Promise.all(running), 30_000, 'writers to finish')
      ackedAfterFence = ackedNow() - fencedAt
    } else {
      for (const w of writers) w.stopped = true
      await withTimeout(Promise.all(running), 30_000, 'writers to finish')
    }
    for (const w of writers) w.client.close()
    const check = await this.verify(newPort, writers)
    // The old primary rejoins as a backup of the new one.
    const rejoinStart = performance.now()
    if (crash === 'kill') {
      await this.startNode(old, newPort)
    } else {
      const r = await call(oldNode.port, 'REPLICAOF', '127.0.0.1', newPort)
      if (r !== 'OK') throw new Error(`REPLICAOF on the old primary: ${r instanceof RespErrorReply ? r.text : String(r)}`)
    }
    const commit = Number((await info(newPort)).get('commit_lsn'))
    await waitUntil('every node caught up', 60_000, async () => {
      for (let i = 0; i < this.nodes.length; i++) {
        if (i === next) continue
        const r = await info(this.nodes[i].port)
        if (r.get('link') !== 'up' || Number(r.get('applied_lsn')) < commit) return false
      }
      return true
    })
    const rejoinMs = performance.now() - rejoinStart
    const digests = await Promise.all(this.nodes.map((n) => call(n.port, 'DEBUG', 'DIGEST')))
    const digestsEqual = digests.every((d) => String(d) === String(digests[0]))
    this.primary = next
    const acked = writers.reduce((n, w) => n + w.acked, 0)
    return {
      cycle: index, crash, acked, ...check, ackedOnResume, ackedAfterFence,
      detectToPromotedMs: promotedAt - crashAt, promotedToWriteMs: writeAt - promotedAt, rtoMs: writeAt - crashAt,
      failoverToolMs: result.totalMs, rejoinMs, digestsEqual,
    }
  }

  /** Every acknowledged write against the new primary's state. */
  private async verify(port: number, writers: Writer[]): Promise<{ lost: number, incrBackwards: number, tornMulti: number, lostExamples: string[] }> {
    const c = await RespClient.connect('127.0.0.1', port)
    let lost = 0
    let incrBackwards = 0
    let tornMulti = 0
    const lostExamples: string[] = []
    const miss = (what: string): void => { lost++; if (lostExamples.length < 5) lostExamples.push(what) }
    try {
      for (const w of writers) {
        const unique = w.uniqueAcked.map((n) => `u:${w.id}:${n}`)
        for (let i = 0; i < unique.length; i += 500) {
          const got = await c.call('MGET', ...unique.slice(i, i + 500)) as Reply[]
          got.forEach((v, j) => { if (v === null || String(v) !== unique[i + j].split(':')[2]) miss(`${unique[i + j]}=${String(v)}`) })
        }
        for (const [key, n] of w.overwriteMax) {
          const v = await c.call('GET', key)
          if (v === null || Number(String(v)) < n) miss(`${key}=${String(v)} (acked ${n})`)
        }
        for (const [key, n] of w.counterMax) {
          const v = await c.call('GET', key)
          if (v === null || Number(String(v)) < n) { incrBackwards++; miss(`${key}=${String(v)} (INCR acked ${n})`) }
        }
        const m = await c.call('MGET', `m:${w.id}:a`, `m:${w.id}:b`, `m:${w.id}:c`) as Reply[]
        if (!(String(m[0]) === String(m[1]) && String(m[1]) === String(m[2]))) tornMulti++
        if (w.multiMax > 0 && (m[0] === null || Number(String(m[0])) < w.multiMax)) miss(`m:${w.id}=${String(m[0])} (MULTI acked ${w.multiMax})`)
      }
    } finally {
      c.close()
    }
    return { lost, incrBackwards, tornMulti, lostExamples }
  }

  /** A new, empty backup of the current primary: ms from its start until it has caught up (the rejoin's alternative). */
  async freshBackupMs(): Promise<number> {
    const primaryPort = this.nodes[this.primary].port
    const n: RingNode = { port: await freePort(), dir: path.join(this.root, `fresh-${Date.now()}`), child: null, lines: [] }
    this.nodes.push(n)
    const i = this.nodes.length - 1
    const started = performance.now()
    try {
      await this.startNode(i, primaryPort)
      const commit = Number((await info(primaryPort)).get('commit_lsn'))
      await waitUntil('the new backup caught up', 300_000, async () => {
        const r = await info(n.port)
        return r.get('link') === 'up' && Number(r.get('applied_lsn')) >= commit
      })
      return performance.now() - started
    } finally {
      n.child?.kill('SIGKILL')
      if (n.child !== null && n.child.exitCode === null) await new Promise((r) => n.child!.once('exit', r))
      this.nodes.pop()
      fs.rmSync(n.dir, { recursive: true, force: true })
    }
  }

  /** A node's recent output (for failure messages). */
  output(i: number): string {
    return this.nodes[i].lines.join('\n')
  }

  async close(): Promise<void> {
    for (const n of this.nodes) {
      const c = n.child
      if (c !== null && c.exitCode === null && c.signalCode === null) {
        c.kill('SIGCONT')
        c.kill('SIGKILL')
        await new Promise((r) => c.once('exit', r))
      }
    }
    fs.rmSync(this.root, { recursive: true, force: true })
  }
}

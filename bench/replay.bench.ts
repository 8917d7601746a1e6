/**
 * Replay alone (issue 3a): a pre-generated log replayed by
 *   - serial:    applyRange on one thread (what a restart does)
 *   - pool W:    the backup's ReplayScheduler with W piscina workers (lanes),
 *                warmed on a small scratch log first (a running backup's pool is warm)
 *   - dual-copy: serial replay that also materialises every version into a
 *                separate store (a Map of key -> value copy), as a classic
 *                standby (Redis replica, PostgreSQL redo into pages) does
 * Reports records/s, GB/s of log, CPU-seconds per GB (process-wide CPU, all
 * threads), ratios, and a digest of the resulting state per mode (all must match).
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { BLOCK_HEADER_BYTES, BLOCK_LENGTH_OFFSET, BLOCK_OP_COUNT_OFFSET, OP_HEADER_BYTES, OP_KEY_LENGTH_OFFSET, OP_TYPE_SET, OP_VALUE_LENGTH_OFFSET, alignUp } from '../src/constants.js'
import { opBytes } from '../src/codec/record.js'
import { Index, UNCOUNTED, tableSlotCount, TABLE_HEADER_WORDS } from '../src/index/indirection.js'
import { Primary } from '../src/primary/primary.js'
import { applyRange } from '../src/replay/apply.js'
import { ReplayScheduler, createReplayPool } from '../src/replay/scheduler.js'
import { SegmentStore } from '../src/log/segment_store.js'
import { param, type BenchContext, type BenchReport } from './lib/common.js'

export interface ReplayBenchOptions {
  logBytes: number
  keyspace: number
  valueBytes: number
  workers: number[]
  rounds: number
  out: (line: string) => void
}

interface Result { mode: string, seconds: number, cpuSeconds: number, ops: number, digest: number }

export async function generateLog(o: { logBytes: number, keyspace: number, valueBytes: number, dir: string }): Promise<Primary> {
  const primary = await Primary.open({
    dir: o.dir, segmentBytes: 64 * 1024 * 1024, commit: 'async', maxMemoryBytes: Number.MAX_SAFE_INTEGER,
    valueBytesMax: 1024 * 1024, log: () => {},
  })
  const key = Buffer.alloc(16)
  const value = Buffer.alloc(o.valueBytes, 'x')
  let i = 0
  // A multiplicative walk over the keyspace: every key is written, then overwritten.
  while (primary.commitLsn() < o.logBytes) {
    for (let b = 0; b < 1000; b++, i++) {
      const k = (i * 2654435761) % o.keyspace
      key.write(`key:${String(k).padStart(12, '0')}`, 0, 'latin1')
      value.writeUInt32LE(i, 0)
      primary.beginWrite(opBytes(16, o.valueBytes))
      primary.probe(key, 0, 16)
      primary.writeProbed(OP_TYPE_SET, key, 0, 16, value, 0, o.valueBytes, null, 0, 0)
      primary.endWrite()
    }
    primary.endTurn()
  }
  return primary
}

/** Order-independent digest of the index (slot hash + ref), equal for equal states. */
function indexDigest(index: Index): number {
  let d = 0
  for (const t of index.tables) {
    const n = tableSlotCount(t)
    for (let s = 0; s < n; s++) {
      const ref = t[TABLE_HEADER_WORDS + 2 * s + 1]
      if (ref !== 0) d = (d + Math.imul(t[TABLE_HEADER_WORDS + 2 * s] ^ ref, 0x9e3779b1)) | 0
    }
  }
  return d >>> 0
}

function countOps(store: SegmentStore): number {
  let n = 0
  for (const s of store.segments) {
    let at = 0
    const end = s.committedBytes()
    while (at < end) { n += s.dv.getUint32(at + BLOCK_OP_COUNT_OFFSET, true); at += s.dv.getUint32(at + BLOCK_LENGTH_OFFSET, true) }
  }
  return n
}

function measure<T>(f: () => T): { value: T, seconds: number, cpuSeconds: number } {
  const c0 = process.cpuUsage()
  const t0 = performance.now()
  const value = f()
  const seconds = (performance.now() - t0) / 1000
  const c = process.cpuUsage(c0)
  return { value, seconds, cpuSeconds: (c.user + c.system) / 1e6 }
}

function serial(store: SegmentStore): Index {
  const index = new Index()
  for (const s of store.segments) applyRange(store, s.id, 0, s.committedBytes(), index.tables, 0, 1, UNCOUNTED)
  return new Index(index.tables)
}

/** Serial replay that also copies every version into a Map (the classic standby's second copy). */
function dualCopy(store: SegmentStore): { index: Index, map: Map<string, Buffer> } {
  const index = new Index()
  const map = new Map<string, Buffer>()
  for (const s of store.segments) {
    applyRange(store, s.id, 0, s.committedBytes(), index.tables, 0, 1, UNCOUNTED)
    const u8 = s.buf
    const dv = s.dv
    let block = 0
    const end = s.committedBytes()
    while (block < end) {
      const length = dv.getUint32(block + BLOCK_LENGTH_OFFSET, true)
      const opCount = dv.getUint32(block + BLOCK_OP_COUNT_OFFSET, true)
      let at = block + BLOCK_HEADER_BYTES
      for (let i = 0; i < opCount; i++) {
        const kl = dv.getUint16(at + OP_KEY_LENGTH_OFFSET, true)
        const vl = dv.getUint32(at + OP_VALUE_LENGTH_OFFSET, true)
        const k = u8.toString('latin1', at + OP_HEADER_BYTES, at + OP_HEADER_BYTES + kl)
        const v = Buffer.allocUnsafe(vl)
        u8.copy(v, 0, at + OP_HEADER_BYTES + kl, at + OP_HEADER_BYTES + kl + vl)
        if (u8[at] === OP_TYPE_SET) map.set(k, v)
        else map.delete(k)
        at += alignUp(OP_HEADER_BYTES + kl + vl)
      }
      block += length
    }
  }
  return { index: new Index(index.tables), map }
}

/** A backup's view of the same log: same bytes in fresh segments (SAB), published. */
function replicaOf(store: SegmentStore): SegmentStore {
  const replica = new SegmentStore(store.segmentBytes)
  for (const s of store.segments) {
    const seg = replica.segmentFor(s.baseLsn)
    seg.u8.set(s.u8.subarray(0, s.committedBytes()))
    seg.publish(s.committedBytes())
  }
  replica.endLsn = store.endLsn
  return replica
}

async function pooled(store: SegmentStore, warmup: SegmentStore, workers: number): Promise<{ index: Index, seconds: number, cpuSeconds: number }> {
  // A running backup's workers are warm: replay a small scratch log on the same pool first,
  // so the timed run does not include thread start-up and cold JIT.
  const pool = createReplayPool(workers)
  const noop = (): void => {}
  const fail = (err: unknown): void => { throw err }
  const warm = new ReplayScheduler({ workers, store: replicaOf(warmup), index: new Index(), onVisible: noop, onError: fail, pool }, 0)
  await warm.replayTo(warmup.endLsn)
  await warm.close()
  const replica = replicaOf(store)
  const index = new Index()
  const scheduler = new ReplayScheduler({ workers, store: replica, index, onVisible: noop, onError: fail, pool }, 0)
  const c0 = process.cpuUsage()
  const t0 = performance.now()
  await scheduler.replayTo(replica.endLsn)
  const seconds = (performance.now() - t0) / 1000
  const c = process.cpuUsage(c0)
  await scheduler.close()
  await pool.destroy()
  return { index, seconds, cpuSeconds: (c.user + c.system) / 1e6 }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]
}

export interface ReplayBenchResult { logBytes: number, ops: number, results: Result[] }

export async function runReplayBench(o: ReplayBenchOptions): Promise<ReplayBenchResult> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'freshet-replay-bench-'))
  try {
    const t0 = performance.now()
    const primary = await generateLog({ logBytes: o.logBytes, keyspace: o.keyspace, valueBytes: o.valueBytes, dir })
    const genS = (performance.now() - t0) / 1000
    const store = primary.store
    const logBytes = store.endLsn
    const warmDir = fs.mkdtempSync(path.join(os.tmpdir(), 'freshet-replay-warm-'))
    const warmPrimary = await generateLog({ logBytes: 4 * 1024 * 1024, keyspace: 20_000, valueBytes: o.valueBytes, dir: warmDir })
    const warmup = warmPrimary.store
    const ops = countOps(store)
    o.out(`replay: log ${(logBytes / 1e9).toFixed(3)} GB, ${ops} ops (${o.valueBytes}-byte values, ${o.keyspace} keys), generated in ${genS.toFixed(1)} s in-process (${(logBytes / 1e6 / genS).toFixed(0)} MB/s, ${(ops / genS / 1e6).toFixed(2)} M ops/s)`)
    const results: Result[] = []
    const runs = new Map<string, Array<{ seconds: number, cpuSeconds: number, digest: number }>>()
    const add = (mode: string, seconds: number, cpuSeconds: number, digest: number): void => {
      if (!runs.has(mode)) runs.set(mode, [])
      runs.get(mode)!.push({ seconds, cpuSeconds, digest })
    }
    for (let r = 0; r < o.rounds; r++) {
      const s = measure(() => serial(store))
      add('serial', s.seconds, s.cpuSeconds, indexDigest(s.value))
      for (const w of o.workers) {
        const p = await pooled(store, warmup, w)
        add(`pool-${w}`, p.seconds, p.cpuSeconds, indexDigest(p.index))
      }
      const d = measure(() => dualCopy(store))
      add('dual-copy', d.seconds, d.cpuSeconds, indexDigest(d.value.index))
    }
    for (const [mode, rs] of runs) {
      results.push({ mode, seconds: median(rs.map((x) => x.seconds)), cpuSeconds: median(rs.map((x) => x.cpuSeconds)), ops, digest: rs[0].digest })
      if (new Set(rs.map((x) => x.digest)).size !== 1) throw new Error(`${mode}: digests differ between rounds`)
    }
    const serialS = results.find((r) => r.mode === 'serial')!.seconds
    const dualS = results.find((r) => r.mode === 'dual-copy')!.seconds
    o.out(`  mode        seconds  M records/s   GB/s   CPU-s/GB   vs serial   vs dual-copy   digest`)
    for (const r of results) {
      o.out(`  ${r.mode.padEnd(10)} ${r.seconds.toFixed(3).padStart(8)} ${(ops / r.seconds / 1e6).toFixed(2).padStart(12)} ${(logBytes / r.seconds / 1e9).toFixed(3).padStart(6)} ${(r.cpuSeconds / (logBytes / 1e9)).toFixed(2).padStart(10)} ${(serialS / r.seconds).toFixed(2).padStart(10)}x ${(dualS / r.seconds).toFixed(2).padStart(13)}x   ${r.digest.toString(16)}`)
    }
    const digests = new Set(results.map((r) => r.digest))
    o.out(`  state digests ${digests.size === 1 ? 'all equal' : 'DIFFER'} (median of ${o.rounds} rounds)`)
    if (digests.size !== 1) throw new Error('replay modes disagree on the final state')
    await primary.close()
    await warmPrimary.close()
    fs.rmSync(warmDir, { recursive: true, force: true })
    return { logBytes, ops, results }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

export async function run(ctx: BenchContext): Promise<BenchReport> {
  const figures: BenchReport['figures'] = {}
  const hashes: string[] = []
  // Two log shapes: redis-benchmark-like 64-byte values (per-op cost dominates)
  // and 1 KiB values (bytes dominate).
  const shapes = [
    { name: 'v64', valueBytes: 64, logBytes: param(ctx.mode, 32 * 1024 ** 2, 1024 ** 3), keyspace: param(ctx.mode, 200_000, 4_000_000) },
    { name: 'v1k', valueBytes: 1024, logBytes: param(ctx.mode, 32 * 1024 ** 2, 1024 ** 3), keyspace: param(ctx.mode, 20_000, 500_000) },
  ]
  for (const shape of shapes) {
    const r = await runReplayBench({
      logBytes: shape.logBytes, keyspace: shape.keyspace, valueBytes: shape.valueBytes,
      workers: [1, 2, 4], rounds: param(ctx.mode, 1, 3), out: ctx.log,
    })
    figures[`${shape.name}.log_bytes`] = r.logBytes
    figures[`${shape.name}.ops`] = r.ops
    for (const x of r.results) {
      figures[`${shape.name}.${x.mode}.gb_per_s`] = Number((r.logBytes / x.seconds / 1e9).toFixed(4))
      figures[`${shape.name}.${x.mode}.m_records_per_s`] = Number((r.ops / x.seconds / 1e6).toFixed(3))
      figures[`${shape.name}.${x.mode}.cpu_s_per_gb`] = Number((x.cpuSeconds / (r.logBytes / 1e9)).toFixed(3))
    }
    hashes.push(r.results[0].digest.toString(16))
  }
  return { name: 'replay', skipped: null, figures, hash: hashes.join('/') }
}

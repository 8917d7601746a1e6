/**
 * Question: how many SETs per second can the primary's write path take, with
 * no network in the way? (Issue target: >= 2 M ops/s.)
 *
 * Runs the exact path SET takes in server/commands.ts over redis-benchmark's
 * keys (`-r 1000000 -d 64`): beginWrite, probe, writeProbed, endWrite, and
 * endTurn (seal one block = one group-commit batch) every BATCH_OPS ops.
 * Before each batch its keys are formatted into a small buffer (the client's
 * work; the server finds them in its query buffer); between batches the loop
 * yields an event-loop turn as the server does, so the async group commit
 * writes files meanwhile. Two figures:
 *
 *   write path   ops / time inside the write loops and endTurn (the target's figure)
 *   wall         ops / elapsed time, key formatting and yields included
 *
 * Each also per CPU-second (process CPU time inside the write loops), which
 * time spent descheduled on a shared machine does not inflate.
 *
 * A fresh primary per run; medians over runs. Side by side, on the last run's
 * full index and the same batches: keyHash alone and probe alone, so the
 * write cost splits into hash, rest of probe, and encode + index update.
 */
import { createHistogram } from 'node:perf_hooks'
import { keyHash } from '../src/codec/hash.js'
import { opBytes } from '../src/codec/record.js'
import { SEGMENT_BYTES_DEFAULT } from '../src/constants.js'
import type { Primary } from '../src/primary/primary.js'
import {
  MB, Prng, cpuMicros, figure, makeTempDir, nextTurn, param, removeDir, secondsSince, showFigure,
  type BenchContext, type BenchReport,
} from './lib/common.js'
import { KEY_BYTES, KeyBatch, openPrimary, patternValue, writeSet } from './lib/workload.js'

const SEED = 0x5e7
const VALUE_BYTES = 64
const KEYSPACE = 1_000_000
/** Ops per endTurn(): one sealed block, one group-commit batch. */
const BATCH_OPS = 1000
const TARGET_OPS_PER_S = 2_000_000

interface RunResult {
  /** ops / seconds inside write loops + endTurn. */
  opsPerS: number
  /** ops / CPU seconds inside write loops + endTurn. */
  cpuOpsPerS: number
  wallOpsPerS: number
  mbPerS: number
  closeMs: number
  commitLsn: number
  keyCount: number
  batchP50Us: number
  batchP99Us: number
}

interface Workload {
  seq: Uint32Array
  batch: KeyBatch
  value: Uint8Array
}

/** CPU microseconds an empty [cpuMicros(), cpuMicros()] window reports: subtracted once per measured batch. */
function cpuWindowOverheadUs(): number {
  const reps = 2000
  let us = 0
  for (let i = 0; i < reps; i++) {
    const c = cpuMicros()
    us += cpuMicros() - c
  }
  return us / reps
}

async function writeRun(ctx: BenchContext, w: Workload, ops: number, overheadUs: number, keepOpen: boolean): Promise<{ result: RunResult, primary: Primary, dir: string }> {
  const dir = makeTempDir('append')
  const primary = await openPrimary(dir, SEGMENT_BYTES_DEFAULT, ctx.log)
  const hist = createHistogram()
  const kb = w.batch.bytes
  const value = w.value
  let inLoopNs = 0n
  let inLoopCpuUs = 0
  const t0 = process.hrtime.bigint()
  for (let from = 0; from < ops; from += BATCH_OPS) {
    const n = Math.min(BATCH_OPS, ops - from)
    w.batch.fill(w.seq, from, n)
    const cb = cpuMicros()
    const tb = process.hrtime.bigint()
    for (let i = 0; i < n; i++) writeSet(primary, kb, i * KEY_BYTES, KEY_BYTES, value, 0, VALUE_BYTES)
    primary.endTurn()
    const dt = process.hrtime.bigint() - tb
    inLoopCpuUs += cpuMicros() - cb - overheadUs
    inLoopNs += dt
    hist.record(dt)
    await nextTurn()
  }
  const wallSeconds = secondsSince(t0)
  const seconds = Number(inLoopNs) / 1e9
  const result: RunResult = {
    opsPerS: ops / seconds,
    cpuOpsPerS: ops / (inLoopCpuUs / 1e6),
    wallOpsPerS: ops / wallSeconds,
    mbPerS: primary.commitLsn() / MB / seconds,
    closeMs: 0,
    commitLsn: primary.commitLsn(),
    keyCount: primary.keyCount(),
    batchP50Us: hist.percentile(50) / 1e3,
    batchP99Us: hist.percentile(99) / 1e3,
  }
  if (!keepOpen) {
    const tc = process.hrtime.bigint()
    await primary.close()
    result.closeMs = secondsSince(tc) * 1e3
    removeDir(dir)
  }
  return { result, primary, dir }
}

const LOOP_FORMAT = 0
const LOOP_HASH = 1
const LOOP_PROBE = 2

interface StageCost {
  /** Elapsed ns per op. */
  nsPerOp: number
  /** CPU ns per op. */
  cpuNsPerOp: number
  sum: number
}

/** Cost per op of one stage over the same batches (a checksum keeps the loop from being optimized away). */
function timeStage(w: Workload, primary: Primary, stage: number, overheadUs: number): StageCost {
  const kb = w.batch.bytes
  const ops = w.seq.length
  let sum = 0
  let ns = 0n
  let cpuUs = 0
  for (let from = 0; from < ops; from += BATCH_OPS) {
    const n = Math.min(BATCH_OPS, ops - from)
    if (stage !== LOOP_FORMAT) w.batch.fill(w.seq, from, n)
    const cb = cpuMicros()
    const tb = process.hrtime.bigint()
    if (stage === LOOP_FORMAT) w.batch.fill(w.seq, from, n)
    else if (stage === LOOP_HASH) for (let i = 0; i < n; i++) sum = (sum + keyHash(kb, i * KEY_BYTES, KEY_BYTES)) | 0
    else for (let i = 0; i < n; i++) sum = (sum + primary.probe(kb, i * KEY_BYTES, KEY_BYTES)) | 0
    ns += process.hrtime.bigint() - tb
    cpuUs += cpuMicros() - cb - overheadUs
  }
  return { nsPerOp: Number(ns) / ops, cpuNsPerOp: cpuUs * 1e3 / ops, sum }
}

export async function run(ctx: BenchContext): Promise<BenchReport> {
  const ops = param(ctx.mode, 100_000, 5_000_000)
  const runs = param(ctx.mode, 3, 5)
  const prng = new Prng(SEED)
  const seq = new Uint32Array(ops)
  for (let i = 0; i < ops; i++) seq[i] = prng.below(KEYSPACE)
  const w: Workload = { seq, batch: new KeyBatch(BATCH_OPS), value: patternValue(VALUE_BYTES) }
  ctx.log(`append: ${ops} SETs per run, keyspace ${KEYSPACE}, ${KEY_BYTES}-byte keys, ${VALUE_BYTES}-byte values (${opBytes(KEY_BYTES, VALUE_BYTES)} log bytes/op), endTurn every ${BATCH_OPS} ops, ${runs} runs + 1 warm-up`)

  // Warm-up: JIT the path on a short run (not counted).
  const overheadUs = cpuWindowOverheadUs()
  await writeRun(ctx, w, Math.min(ops, 50_000), overheadUs, false)
  ctx.gc()

  const results: RunResult[] = []
  let last: { primary: Primary, dir: string } | null = null
  for (let r = 0; r < runs; r++) {
    const keep = r === runs - 1
    const { result, primary, dir } = await writeRun(ctx, w, ops, overheadUs, keep)
    results.push(result)
    if (keep) last = { primary, dir }
    else ctx.gc()
  }
  const lsns = new Set(results.map((x) => x.commitLsn))
  if (lsns.size !== 1) throw new Error(`append: runs disagree on the commit LSN: ${[...lsns].join(', ')}`)

  // Cost split on the last run's populated index (every key in seq is present now).
  const primary = last!.primary
  const format = timeStage(w, primary, LOOP_FORMAT, overheadUs)
  const hashOnly = timeStage(w, primary, LOOP_HASH, overheadUs)
  const probeOnly = timeStage(w, primary, LOOP_PROBE, overheadUs)
  const tc = process.hrtime.bigint()
  await primary.close()
  results[runs - 1].closeMs = secondsSince(tc) * 1e3
  removeDir(last!.dir)

  const opsF = figure(results.map((x) => x.opsPerS), 'ops/s')
  const cpuOpsF = figure(results.map((x) => x.cpuOpsPerS), 'ops/s')
  const wallF = figure(results.map((x) => x.wallOpsPerS), 'ops/s')
  const mbF = figure(results.map((x) => x.mbPerS), 'MB/s')
  const closeF = figure(results.map((x) => x.closeMs), 'ms')
  const p50F = figure(results.map((x) => x.batchP50Us), 'us')
  const p99F = figure(results.map((x) => x.batchP99Us), 'us')
  const writeNs = 1e9 / opsF.median
  const writeCpuNs = 1e9 / cpuOpsF.median
  const met = opsF.median >= TARGET_OPS_PER_S
  const cpuMet = cpuOpsF.median >= TARGET_OPS_PER_S
  const ns = (x: number): string => x.toFixed(0).padStart(5)
  ctx.log(`append: write path ${showFigure(opsF, 3, 1e6, 'M ops/s')}, log ${showFigure(mbF, 0)}; target >= ${TARGET_OPS_PER_S / 1e6} M ops/s: ${met ? 'MET' : 'MISSED'}`)
  ctx.log(`append: write path per CPU-second ${showFigure(cpuOpsF, 3, 1e6, 'M ops/s')}: ${cpuMet ? 'MET' : 'MISSED'} with a core to itself`)
  ctx.log(`append: wall (key formatting + event-loop yields included) ${showFigure(wallF, 3, 1e6, 'M ops/s')}`)
  ctx.log(`append: per ${BATCH_OPS}-op batch p50 ${p50F.median.toFixed(0)} us, p99 ${p99F.median.toFixed(0)} us; close (drain to disk) ${closeF.median.toFixed(0)} ms`)
  ctx.log(`append: per op, ns         elapsed    CPU   (CPU read per ${BATCH_OPS} ops; its own cost, ${overheadUs.toFixed(1)} us, subtracted)`)
  ctx.log(`append:   write path        ${ns(writeNs)}  ${ns(writeCpuNs)}`)
  ctx.log(`append:   keyHash           ${ns(hashOnly.nsPerOp)}  ${ns(hashOnly.cpuNsPerOp)}`)
  ctx.log(`append:   probe (with hash) ${ns(probeOnly.nsPerOp)}  ${ns(probeOnly.cpuNsPerOp)}`)
  ctx.log(`append:   write - probe     ${ns(writeNs - probeOnly.nsPerOp)}  ${ns(writeCpuNs - probeOnly.cpuNsPerOp)}  (encode, index update, seal)`)
  ctx.log(`append:   key formatting    ${ns(format.nsPerOp)}  ${ns(format.cpuNsPerOp)}  (client side, not counted)`)
  const r0 = results[0]
  return {
    name: 'append',
    skipped: null,
    figures: {
      ops, keyspace: KEYSPACE, valueBytes: VALUE_BYTES, batchOps: BATCH_OPS,
      opsPerS: opsF, cpuOpsPerS: cpuOpsF, wallOpsPerS: wallF, logMBPerS: mbF, closeMs: closeF, batchP50Us: p50F, batchP99Us: p99F,
      writeNsPerOp: writeNs, writeCpuNsPerOp: writeCpuNs,
      hashNsPerOp: hashOnly.nsPerOp, hashCpuNsPerOp: hashOnly.cpuNsPerOp,
      probeNsPerOp: probeOnly.nsPerOp, probeCpuNsPerOp: probeOnly.cpuNsPerOp,
      formatNsPerOp: format.nsPerOp, formatCpuNsPerOp: format.cpuNsPerOp, cpuReadOverheadUs: overheadUs,
      targetOpsPerS: TARGET_OPS_PER_S, targetMet: met, targetMetPerCpuSecond: cpuMet,
    },
    hash: `commit_lsn=${r0.commitLsn} keys=${r0.keyCount} probe_sum=${probeOnly.sum >>> 0}`,
  }
}

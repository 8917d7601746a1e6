/**
 * Question: how long does a primary take to restart on a big log? (Issue
 * target: replay >= 500 MB/s of log.)
 *
 * Writes a log of LOG_BYTES through the in-process SET path (values 64..1024
 * bytes, a keyspace large enough that every index partition grows several
 * times), closes it (drained and fdatasynced), then times Primary.open on the
 * same directory: total, read + verify (files -> segments, block checksums)
 * and index rebuild (applyRange), from primary.recovery; median of several
 * restarts. Then the real CLI from spawn to its listening line. The page
 * cache is warm (the log was just written): this measures the code, not the
 * disk. The log lives under os.tmpdir() and is deleted at the end.
 */
import { SEGMENT_BYTES_DEFAULT } from '../src/constants.js'
import type { Primary } from '../src/primary/primary.js'
import {
  MB, Prng, cpuMicros, dirBytes, figure, makeTempDir, nextTurn, param, removeDir, secondsSince, showFigure,
  type BenchContext, type BenchReport,
} from './lib/common.js'
import { CLI_ARGV, startUntilReady, stop } from './lib/proc.js'
import { KEY_BYTES, openPrimary, patternValue, writeKey, writeSet } from './lib/workload.js'

const SEED = 0x7ec0
const VALUE_MIN = 64
const VALUE_MAX = 1024
const BATCH_OPS = 1000
const TARGET_MB_PER_S = 500
const CLI_READY_RE = /primary listening on [^\s:]+:(\d+)/
const CLI_RECOVERED_RE = /recovered (\d+) blocks .* in (\d+) ms: read\+verify (\d+) ms, index (\d+) ms/
const CLI_READY_TIMEOUT_MS = 300_000

interface Generated {
  ops: number
  commitLsn: number
  keyCount: number
  seconds: number
}

async function generate(ctx: BenchContext, dir: string, logBytes: number, keyspace: number): Promise<Generated> {
  const value = patternValue(VALUE_MAX)
  const prng = new Prng(SEED)
  const primary = await openPrimary(dir, SEGMENT_BYTES_DEFAULT, ctx.log)
  const kb = new Uint8Array(KEY_BYTES)
  let ops = 0
  const t0 = process.hrtime.bigint()
  while (primary.commitLsn() < logBytes) {
    for (let i = 0; i < BATCH_OPS; i++) {
      writeKey(kb, 0, prng.below(keyspace))
      const length = VALUE_MIN + prng.below(VALUE_MAX - VALUE_MIN + 1)
      writeSet(primary, kb, 0, KEY_BYTES, value, 0, length)
    }
    ops += BATCH_OPS
    primary.endTurn()
    await nextTurn()
  }
  const result = { ops, commitLsn: primary.commitLsn(), keyCount: primary.keyCount(), seconds: 0 }
  await primary.close()
  result.seconds = secondsSince(t0)
  return result
}

interface Restart {
  totalMs: number
  cpuMs: number
  readMs: number
  replayMs: number
}

function check(what: string, got: number, want: number): void {
  if (got !== want) throw new Error(`recovery: ${what} is ${got} after restart, ${want} before`)
}

export async function run(ctx: BenchContext): Promise<BenchReport> {
  const logBytes = param(ctx.mode, 64 * MB, 1000 * MB)
  const keyspace = param(ctx.mode, 200_000, 4_000_000)
  const restarts = param(ctx.mode, 3, 3)
  const cliRestarts = param(ctx.mode, 1, 3)
  const dir = makeTempDir('recovery')
  try {
    ctx.log(`recovery: writing a ${(logBytes / MB).toFixed(0)} MB log (values ${VALUE_MIN}..${VALUE_MAX} B, keyspace ${keyspace}, ${SEGMENT_BYTES_DEFAULT / 2 ** 20} MiB segments) to ${dir}`)
    const gen = await generate(ctx, dir, logBytes, keyspace)
    ctx.log(`recovery: wrote ${gen.ops} ops, ${(gen.commitLsn / MB).toFixed(1)} MB, ${gen.keyCount} keys in ${gen.seconds.toFixed(1)} s (${(gen.ops / gen.seconds / 1e6).toFixed(2)} M ops/s incl. drain); ${(dirBytes(dir) / MB).toFixed(1)} MB on disk`)
    ctx.gc()

    const results: Restart[] = []
    let blocks = 0
    for (let r = 0; r < restarts; r++) {
      const c0 = cpuMicros()
      const t0 = process.hrtime.bigint()
      const primary: Primary = await openPrimary(dir, SEGMENT_BYTES_DEFAULT, ctx.log)
      const totalMs = secondsSince(t0) * 1e3
      const cpuMs = (cpuMicros() - c0) / 1e3
      const rec = primary.recovery
      check('commit LSN', primary.commitLsn(), gen.commitLsn)
      check('key count', primary.keyCount(), gen.keyCount)
      check('ops installed', rec.opsInstalled, gen.ops)
      check('bytes cut', rec.truncatedBytes, 0)
      blocks = rec.blockCount
      results.push({ totalMs, cpuMs, readMs: rec.readMs, replayMs: rec.replayMs })
      await primary.close()
      ctx.gc()
    }

    const cliReady: number[] = []
    const cliRecovered: number[] = []
    for (let r = 0; r < cliRestarts; r++) {
      const started = await startUntilReady(process.execPath, [...CLI_ARGV, 'primary', '--port', '0', '--dir', dir, '--commit', 'async'], CLI_READY_RE, CLI_READY_TIMEOUT_MS)
      await stop(started.child)
      cliReady.push(started.readyMs)
      for (const line of started.lines) {
        const m = CLI_RECOVERED_RE.exec(line)
        if (m !== null) cliRecovered.push(Number(m[2]))
      }
    }

    const mb = gen.commitLsn / MB
    const totalF = figure(results.map((x) => x.totalMs), 'ms')
    const readF = figure(results.map((x) => x.readMs), 'ms')
    const replayF = figure(results.map((x) => x.replayMs), 'ms')
    const rateF = figure(results.map((x) => mb / (x.totalMs / 1e3)), 'MB/s')
    const cpuF = figure(results.map((x) => x.cpuMs), 'ms')
    const cpuRateF = figure(results.map((x) => mb / (x.cpuMs / 1e3)), 'MB/s')
    const readRateF = figure(results.map((x) => mb / (x.readMs / 1e3)), 'MB/s')
    const replayRateF = figure(results.map((x) => mb / (x.replayMs / 1e3)), 'MB/s')
    const cliF = figure(cliReady, 'ms')
    const cliRecF = figure(cliRecovered, 'ms')
    const met = rateF.median >= TARGET_MB_PER_S
    ctx.log(`recovery: Primary.open on ${mb.toFixed(1)} MB (${blocks} blocks, ${gen.ops} ops): ${showFigure(totalF, 0)} = ${showFigure(rateF, 0)}; target >= ${TARGET_MB_PER_S} MB/s: ${met ? 'MET' : 'MISSED'}`)
    ctx.log(`recovery:   CPU ${showFigure(cpuF, 0)} = ${cpuRateF.median.toFixed(0)} MB per CPU-second: ${cpuRateF.median >= TARGET_MB_PER_S ? 'MET' : 'MISSED'} with a core to itself`)
    ctx.log(`recovery:   read+verify ${showFigure(readF, 0)} (${readRateF.median.toFixed(0)} MB/s), index rebuild ${showFigure(replayF, 0)} (${replayRateF.median.toFixed(0)} MB/s, ${(gen.ops / (replayF.median / 1e3) / 1e6).toFixed(2)} M ops/s)`)
    ctx.log(`recovery: CLI spawn -> listening ${showFigure(cliF, 0)} (its own recovery ${cliRecF.median.toFixed(0)} ms)`)
    return {
      name: 'recovery',
      skipped: null,
      figures: {
        logBytes: gen.commitLsn, ops: gen.ops, keys: gen.keyCount, blocks, keyspace, generateSeconds: gen.seconds,
        totalMs: totalF, cpuMs: cpuF, mbPerCpuS: cpuRateF, readMs: readF, replayMs: replayF, mbPerS: rateF, readMBPerS: readRateF, replayMBPerS: replayRateF,
        cliReadyMs: cliF, cliRecoveryMs: cliRecF, targetMBPerS: TARGET_MB_PER_S, targetMet: met,
      },
      hash: `end_lsn=${gen.commitLsn} keys=${gen.keyCount} ops=${gen.ops} blocks=${blocks}`,
    }
  } finally {
    removeDir(dir)
  }
}

/**
 * Question: does a restart follow live data, not history? (Issue 7 target:
 * a primary whose history is 50x its live data restarts in at most 1.5x the
 * time of the same live data written once.)
 *
 * Two logs of the same KEYS keys (values VALUE_BYTES), written in process:
 * "once" writes every key once; "history" overwrites every key ROUNDS times
 * (50x the live data) while the cleaner runs, then waits until the cleaner
 * has settled. Each is closed (drained, fdatasynced) and Primary.open on its
 * directory is timed, median of several restarts, alternating. The page cache
 * is warm: this measures what restart reads, not the disk.
 */
import { SEGMENT_BYTES_DEFAULT } from '../src/constants.js'
import type { Primary } from '../src/primary/primary.js'
import { MB, dirBytes, figure, makeTempDir, nextTurn, param, removeDir, showFigure, type BenchContext, type BenchReport } from './lib/common.js'
import { KEY_BYTES, openPrimary, patternValue, writeKey, writeSet } from './lib/workload.js'

const VALUE_BYTES = 100
const ROUNDS = 50
const BATCH_OPS = 2000
const TARGET_RATIO = 1.5

async function write(ctx: BenchContext, dir: string, keys: number, rounds: number): Promise<{ written: number, held: number, cleaned: number }> {
  const primary = await openPrimary(dir, SEGMENT_BYTES_DEFAULT, ctx.log)
  const kb = new Uint8Array(KEY_BYTES)
  const value = patternValue(VALUE_BYTES)
  for (let round = 0; round < rounds; round++) {
    for (let k = 0; k < keys; k += BATCH_OPS) {
      const end = Math.min(keys, k + BATCH_OPS)
      for (let i = k; i < end; i++) {
        writeKey(kb, 0, i)
        value[0] = 97 + (round % 26)
        writeSet(primary, kb, 0, KEY_BYTES, value, 0, VALUE_BYTES)
      }
      primary.endTurn()
      await nextTurn()
    }
  }
  await settle(primary)
  const out = { written: primary.commitLsn(), held: primary.store.retainedBytes(), cleaned: primary.cleaner.stats.segmentsCleaned }
  await primary.close()
  return out
}

/** Lets the cleaner finish: until the retained log has not shrunk for a while (bounded). */
async function settle(primary: Primary): Promise<void> {
  let last = primary.store.retainedBytes()
  let still = 0
  for (let i = 0; i < 20_000 && still < 200; i++) {
    await new Promise((resolve) => setTimeout(resolve, 1))
    const held = primary.store.retainedBytes()
    still = held === last && !primary.cleaner.busy() ? still + 1 : 0
    last = held
  }
}

async function restartMs(ctx: BenchContext, dir: string): Promise<{ ms: number, keys: number }> {
  ctx.gc()
  const t0 = performance.now()
  const p = await openPrimary(dir, SEGMENT_BYTES_DEFAULT, ctx.log)
  const ms = performance.now() - t0
  const keys = p.keyCount()
  await p.close()
  return { ms, keys }
}

export async function run(ctx: BenchContext): Promise<BenchReport> {
  const keys = param(ctx.mode, 20_000, 200_000)
  const restarts = param(ctx.mode, 3, 5)
  const once = makeTempDir('history-once')
  const history = makeTempDir('history-50x')
  try {
    ctx.log(`history: ${keys} keys of ${VALUE_BYTES} B written once, and overwritten ${ROUNDS} times with the cleaner running; restart of each, ${restarts} times, alternating`)
    const a = await write(ctx, once, keys, 1)
    const b = await write(ctx, history, keys, ROUNDS)
    ctx.log(`history: once wrote ${(a.written / MB).toFixed(1)} MB (${(dirBytes(once) / MB).toFixed(1)} MB on disk); history wrote ${(b.written / MB).toFixed(1)} MB, ` +
      `${b.cleaned} segments cleaned, ${(dirBytes(history) / MB).toFixed(1)} MB on disk`)
    const onceMs: number[] = []
    const historyMs: number[] = []
    for (let i = 0; i < restarts; i++) {
      const x = await restartMs(ctx, once)
      const y = await restartMs(ctx, history)
      if (x.keys !== keys || y.keys !== keys) throw new Error(`history: restarted with ${x.keys} / ${y.keys} keys, wrote ${keys}`)
      onceMs.push(x.ms)
      historyMs.push(y.ms)
    }
    const fo = figure(onceMs, 'ms')
    const fh = figure(historyMs, 'ms')
    const ratio = fh.median / fo.median
    ctx.log(`history: restart once ${showFigure(fo, 1)}, 50x history ${showFigure(fh, 1)}: ratio ${ratio.toFixed(2)} (target <= ${TARGET_RATIO})`)
    return {
      name: 'history',
      skipped: null,
      figures: {
        once_restart_ms: fo, history_restart_ms: fh, ratio, target_ratio: TARGET_RATIO,
        once_disk_bytes: dirBytes(once), history_disk_bytes: dirBytes(history), history_written_bytes: b.written, history_segments_cleaned: b.cleaned,
      },
      hash: `${keys}`,
    }
  } finally {
    removeDir(once)
    removeDir(history)
  }
}

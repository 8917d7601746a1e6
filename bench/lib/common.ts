/**
 * Shared bench plumbing: modes and parameters (a small value for CI, a full
 * value for real numbers), statistics over repeated runs, the seeded PRNG,
 * temp directories, and the machine description printed with every report.
 */
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

export type BenchMode = 'quick' | 'full'

export interface BenchContext {
  mode: BenchMode
  /** Full collection between runs (a no-op where unavailable), so one run's garbage is not billed to the next. */
  gc: () => void
  /** One line of the human summary. */
  log: (line: string) => void
}

/** A figure with its runs: median, min, max. */
export interface Figure {
  median: number
  min: number
  max: number
  runs: number[]
  unit: string
}

export interface BenchReport {
  name: string
  /** Why the bench did not run (a missing tool), or null. */
  skipped: string | null
  figures: Record<string, Figure | number | string | boolean>
  /** Deterministic digest of the final state, so a run that did less work cannot pass for a fast one. */
  hash: string
}

/** The quick value in quick mode, the full value in full mode. */
export function param<T>(mode: BenchMode, quick: T, full: T): T {
  return mode === 'full' ? full : quick
}

export function figure(runs: number[], unit: string): Figure {
  const sorted = [...runs].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  const median = sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
  return { median, min: sorted[0], max: sorted[sorted.length - 1], runs, unit }
}

/** "1.23 M ops/s (1.10-1.30, n=5)" */
export function showFigure(f: Figure, digits = 2, scale = 1, unit = f.unit): string {
  const s = (x: number): string => (x / scale).toFixed(digits)
  if (f.runs.length === 1) return `${s(f.median)} ${unit}`
  return `${s(f.median)} ${unit} (range ${s(f.min)}-${s(f.max)}, n=${f.runs.length})`
}

/** mulberry32: a tiny deterministic PRNG; every random choice in a bench comes from a fixed seed. */
export class Prng {
  private state: number
  constructor(seed: number) {
    this.state = seed >>> 0
  }

  /** Uniform u32. */
  nextU32(): number {
    this.state = (this.state + 0x6d2b79f5) | 0
    let t = this.state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return (t ^ (t >>> 14)) >>> 0
  }

  /** Uniform integer in [0, n), n <= 2^32. */
  below(n: number): number {
    return Math.floor((this.nextU32() / 0x1_0000_0000) * n)
  }
}

/** A fresh directory under os.tmpdir(); remove it with removeDir(). */
export function makeTempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `freshet-bench-${prefix}-`))
}

export function removeDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true })
}

export function dirBytes(dir: string): number {
  let n = 0
  for (const name of fs.readdirSync(dir)) n += fs.statSync(path.join(dir, name)).size
  return n
}

export interface MachineInfo {
  cpus: number
  cpuModel: string
  totalMemoryBytes: number
  node: string
  platform: string
  loadAverage: number[]
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus()
  return {
    cpus: cpus.length,
    cpuModel: cpus.length > 0 ? cpus[0].model.trim() : 'unknown',
    totalMemoryBytes: os.totalmem(),
    node: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    loadAverage: os.loadavg(),
  }
}

/** Yields one event-loop turn: what the server does between batches (file writes progress meanwhile). */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}

/**
 * CPU time of this process (all threads, user + system) in microseconds.
 * The machine benches run on is shared: elapsed time includes time spent
 * descheduled, CPU time does not, so each figure comes in both forms. The
 * write and replay paths are single-threaded and allocate nothing per op, so
 * other threads (libuv file writes, GC helpers) add little to it.
 */
export function cpuMicros(): number {
  const u = process.cpuUsage()
  return u.user + u.system
}

let clockTicks = 0

/** CPU milliseconds (user + system, all threads) used so far by process `pid`, from /proc (10 ms ticks); NaN if unreadable. */
export function processCpuMs(pid: number): number {
  let stat: string
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1')
  } catch {
    return NaN // not Linux, or the process is gone: the figure is reported as missing
  }
  if (clockTicks === 0) {
    const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' })
    clockTicks = r.status === 0 ? Number(r.stdout.trim()) : 100
  }
  // Fields after the parenthesized command name: state is field 3; utime and stime are fields 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) * 1000 / clockTicks
}

/**
 * A CPU speed reference printed with every report: ns per byte of a plain
 * byte-sum loop over 1 MiB, per CPU-second and elapsed. It moves when the
 * machine is contended (shared cores, noisy neighbours), so figures from two
 * reports compare only as well as their calibrations agree.
 */
export function calibrate(): { cpuNsPerByte: number, wallNsPerByte: number } {
  const bytes = new Uint8Array(1 << 20).fill(3)
  const reps = 64
  let sum = 0
  sumBytes(bytes) // warm up
  const c0 = cpuMicros()
  const t0 = process.hrtime.bigint()
  for (let r = 0; r < reps; r++) sum = (sum + sumBytes(bytes)) | 0
  const wallNs = Number(process.hrtime.bigint() - t0)
  const cpuNs = (cpuMicros() - c0) * 1e3
  if (sum !== ((reps * 3 * bytes.length) | 0)) throw new Error('calibration loop miscounted')
  return { cpuNsPerByte: cpuNs / (reps * bytes.length), wallNsPerByte: wallNs / (reps * bytes.length) }
}

function sumBytes(a: Uint8Array): number {
  let s = 0
  for (let i = 0; i < a.length; i++) s = (s + a[i]) | 0
  return s
}

export function secondsSince(startNs: bigint): number {
  return Number(process.hrtime.bigint() - startNs) / 1e9
}

export const MB = 1e6

/**
 * Real primary processes for end-to-end tests: spawns `node dist/src/cli/main.js
 * primary --port 0 --dir <tmp>` and waits (bounded) for its listening line.
 *
 * Every process and every temp dir made here is put in a registry; the
 * afterAll hook registered by this module (and cleanupPrimaries(), which a
 * file may also call from afterEach) SIGKILLs whatever is still running and
 * removes the dirs, so a failing test never leaks a server. A process 'exit'
 * hook kills leftovers if the test worker itself goes away.
 *
 * Needs a build: `npm run build` (npm test does it).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll } from 'vitest'
import { NODE_FLAGS, nodeEnv } from '../../src/cli/spawn.js'

export const MAIN_JS = fileURLToPath(new URL('../../dist/src/cli/main.js', import.meta.url))

const START_TIMEOUT_MS_DEFAULT = 15_000
const STOP_TIMEOUT_MS_DEFAULT = 15_000
const KILL_TIMEOUT_MS = 5_000
const STDERR_BYTES_MAX = 4 * 1024 * 1024
const LISTENING_RE = /primary listening on 127\.0\.0\.1:(\d+)/

export interface StartPrimaryOptions {
  /** Reuse this directory (restart on the same log). Default: a fresh temp dir. */
  dir?: string
  commit?: 'async' | 'local'
  requirepass?: string
  segmentSize?: string
  maxMemory?: string
  maxClients?: number
  /** Extra CLI arguments, appended last. */
  args?: string[]
  startTimeoutMs?: number
}

export interface ExitInfo {
  code: number | null
  signal: NodeJS.Signals | null
}

export interface PrimaryProcess {
  readonly port: number
  readonly dir: string
  readonly proc: ChildProcess
  /** Everything the process has written to stderr so far. */
  readonly stderr: string
  /** Resolves when the process has exited. */
  readonly exited: Promise<ExitInfo>
  /** Sends `signal` (default SIGTERM) and waits (bounded) for the exit. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<ExitInfo>
  /** SIGKILL, then waits (bounded) for the exit. */
  kill9(): Promise<ExitInfo>
  /** Waits (bounded) for an exit the test caused some other way (e.g. proc.kill()). */
  waitExit(timeoutMs?: number): Promise<ExitInfo>
}

const liveProcesses = new Set<ChildProcess>()
const tempDirs = new Set<string>()

process.on('exit', () => {
  for (const proc of liveProcesses) {
    try { proc.kill('SIGKILL') } catch { /* already gone: nothing to clean */ }
  }
})

afterAll(async () => {
  await cleanupPrimaries()
})

/** A fresh temp dir, removed by cleanupPrimaries(). */
export function makeTempDir(prefix = 'freshet-e2e-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
  tempDirs.add(dir)
  return dir
}

/** Copies a (stopped) primary's dir into a fresh temp dir. */
export function copyDir(from: string): string {
  const to = makeTempDir('freshet-e2e-copy-')
  fs.cpSync(from, to, { recursive: true })
  return to
}

/** Segment files of a log dir, sorted by id. */
export function segmentFiles(dir: string): string[] {
  return fs.readdirSync(dir).filter((n) => /^segment-\d{12}\.log$/.test(n)).sort().map((n) => path.join(dir, n))
}

function waitExit(proc: ChildProcess): Promise<ExitInfo> {
  if (proc.exitCode !== null || proc.signalCode !== null) {
    return Promise.resolve({ code: proc.exitCode, signal: proc.signalCode as NodeJS.Signals | null })
  }
  // 'close' comes after 'exit' and after stderr has been read to its end, so a
  // caller that reads `stderr` once this resolves sees all of it.
  return new Promise((resolve) => {
    proc.once('close', (code, signal) => resolve({ code, signal }))
  })
}

function withTimeout<T>(p: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms: ${what}`)), timeoutMs)
  })
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer))
}

export async function startPrimary(opts: StartPrimaryOptions = {}): Promise<PrimaryProcess> {
  if (!fs.existsSync(MAIN_JS)) throw new Error(`${MAIN_JS} is missing: run \`npm run build\` first`)
  const dir = opts.dir ?? makeTempDir()
  const args = [...NODE_FLAGS, MAIN_JS, 'primary', '--port', '0', '--dir', dir]
  if (opts.commit !== undefined) args.push('--commit', opts.commit)
  if (opts.requirepass !== undefined) args.push('--requirepass', opts.requirepass)
  if (opts.segmentSize !== undefined) args.push('--segment-size', opts.segmentSize)
  if (opts.maxMemory !== undefined) args.push('--max-memory', opts.maxMemory)
  if (opts.maxClients !== undefined) args.push('--max-clients', String(opts.maxClients))
  if (opts.args !== undefined) args.push(...opts.args)

  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], env: nodeEnv() })
  liveProcesses.add(proc)
  const exited = waitExit(proc).then((info) => {
    liveProcesses.delete(proc)
    return info
  })
  let stderr = ''
  const startTimeoutMs = opts.startTimeoutMs ?? START_TIMEOUT_MS_DEFAULT

  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL')
      reject(new Error(`primary did not start within ${startTimeoutMs} ms; stderr:\n${stderr}`))
    }, startTimeoutMs)
    proc.stderr!.setEncoding('utf8')
    proc.stderr!.on('data', (chunk: string) => {
      if (stderr.length < STDERR_BYTES_MAX) stderr += chunk
      const m = LISTENING_RE.exec(stderr)
      if (m !== null) {
        clearTimeout(timer)
        resolve(Number(m[1]))
      }
    })
    void exited.then((info) => {
      clearTimeout(timer)
      reject(new Error(`primary exited before listening (code ${info.code}, signal ${info.signal}); stderr:\n${stderr}`))
    })
    proc.once('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
  })

  const handle: PrimaryProcess = {
    port,
    dir,
    proc,
    get stderr() { return stderr },
    exited,
    stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = STOP_TIMEOUT_MS_DEFAULT) {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal)
      return withTimeout(exited, timeoutMs, `primary on port ${port} to exit after ${signal}`)
    },
    kill9() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL')
      return withTimeout(exited, KILL_TIMEOUT_MS, `primary on port ${port} to exit after SIGKILL`)
    },
    waitExit(timeoutMs = STOP_TIMEOUT_MS_DEFAULT) {
      return withTimeout(exited, timeoutMs, `primary on port ${port} to exit`)
    },
  }
  return handle
}

/** Whether every thread of `pid` is stopped (SIGSTOP), as the OS reports it; null if the process is gone. */
function isStopped(pid: number): boolean | null {
  const taskDir = `/proc/${pid}/task`
  if (fs.existsSync('/proc/self/stat')) {
    let tids: string[]
    try {
      tids = fs.readdirSync(taskDir)
    } catch {
      return null // no such process
    }
    for (const tid of tids) {
      let stat: string
      try {
        stat = fs.readFileSync(`${taskDir}/${tid}/stat`, 'latin1')
      } catch {
        continue // the thread exited meanwhile
      }
      // The state is the first field after the ')' that closes the command name.
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)
      if (state !== 'T' && state !== 't') return false
    }
    return true
  }
  // No procfs (macOS, BSD): ps reports the process state, 'T' when stopped.
  try {
    return execFileSync('ps', ['-o', 'stat=', '-p', String(pid)], { encoding: 'latin1' }).trim().startsWith('T')
  } catch {
    return null
  }
}

/**
 * Freezes a process with SIGSTOP and waits (bounded) until the OS reports
 * every thread stopped. From then on the process reads, writes and answers
 * nothing, so whatever a client sends is certainly unacknowledged; a SIGKILL
 * after this is a crash at the instant the process stopped, an arbitrary one.
 */
export async function freezeProcess(proc: ChildProcess, timeoutMs = 10_000): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`pid ${proc.pid} has exited: nothing to freeze`)
  proc.kill('SIGSTOP')
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`pid ${proc.pid} exited while being frozen`)
    const stopped = isStopped(proc.pid!)
    if (stopped === true) return
    if (stopped === null) throw new Error(`pid ${proc.pid} is gone: cannot freeze it`)
    if (Date.now() > deadline) throw new Error(`pid ${proc.pid} not stopped ${timeoutMs} ms after SIGSTOP`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

/** SIGKILLs every process still running and removes every temp dir. */
export async function cleanupPrimaries(): Promise<void> {
  const procs = [...liveProcesses]
  const waits = procs.map((proc) => {
    const done = waitExit(proc)
    proc.kill('SIGKILL')
    return withTimeout(done, KILL_TIMEOUT_MS, `pid ${proc.pid} to exit`)
  })
  await Promise.all(waits)
  for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true })
  tempDirs.clear()
}

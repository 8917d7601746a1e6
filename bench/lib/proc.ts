/**
 * Child processes for benches: start a server and wait for its ready line,
 * run a tool to completion with a deadline, and stop everything started here
 * (SIGTERM, then SIGKILL after a grace period). Every child is tracked, so
 * the harness kills what is left if it exits early.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import net from 'node:net'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { NODE_FLAGS, nodeEnv } from '../../src/cli/spawn.js'

/** dist/src/cli/main.js, next to this compiled file's dist/bench/lib/. */
export const CLI_PATH = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js')
/** node's arguments before a subcommand: the node flags the `freshet` command runs with, then the CLI. */
export const CLI_ARGV: readonly string[] = [...NODE_FLAGS, CLI_PATH]

/** A node process (a freshet node) gets the environment the `freshet` command sets (NODE_ENV_VARS); other tools this one's. */
function envFor(cmd: string): NodeJS.ProcessEnv {
  return cmd === process.execPath ? nodeEnv() : process.env
}

const STOP_GRACE_MS = 10_000
const OUTPUT_LINES_KEPT = 50

const live = new Set<ChildProcess>()

/** Kills every child still running (the harness is exiting). */
export function killAll(): void {
  for (const child of live) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  }
  live.clear()
}

export interface Started {
  child: ChildProcess
  /** The ready line's regex match. */
  match: RegExpExecArray
  /** From spawn() to the ready line. */
  readyMs: number
  /** Recent output lines, for error messages and for lines printed before ready. */
  lines: string[]
}

function track(child: ChildProcess): void {
  live.add(child)
  child.once('exit', () => live.delete(child))
}

/** Splits a stream into lines (\n or \r), calling `onLine` for each and keeping the last few. */
function readLines(stream: NodeJS.ReadableStream | null, kept: string[], onLine: (line: string) => void): void {
  if (stream === null) return
  let rest = ''
  stream.setEncoding('utf8')
  stream.on('data', (chunk: string) => {
    rest += chunk
    const parts = rest.split(/\r\n|\r|\n/)
    rest = parts.pop()!
    for (const line of parts) {
      kept.push(line)
      if (kept.length > OUTPUT_LINES_KEPT) kept.shift()
      onLine(line)
    }
  })
}

/** Spawns `cmd` and resolves once a stdout or stderr line matches `ready`; rejects on exit or timeout. */
export function startUntilReady(cmd: string, args: string[], ready: RegExp, timeoutMs: number): Promise<Started> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint()
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: envFor(cmd) })
    track(child)
    const lines: string[] = []
    let done = false
    const finish = (err: Error | null, match: RegExpExecArray | null): void => {
      if (done) return
      done = true
      clearTimeout(timer)
      if (err !== null) {
        if (child.exitCode === null) child.kill('SIGKILL')
        reject(err)
      } else {
        resolve({ child, match: match!, readyMs: Number(process.hrtime.bigint() - t0) / 1e6, lines })
      }
    }
    const timer = setTimeout(() => finish(new Error(`${cmd} not ready after ${timeoutMs} ms; last output:\n${lines.join('\n')}`), null), timeoutMs)
    const onLine = (line: string): void => {
      const m = ready.exec(line)
      if (m !== null) finish(null, m)
    }
    readLines(child.stdout, lines, onLine)
    readLines(child.stderr, lines, onLine)
    child.once('error', (err) => finish(err, null))
    child.once('exit', (code, signal) => finish(new Error(`${cmd} exited (${code ?? signal}) before ready; last output:\n${lines.join('\n')}`), null))
  })
}

/** SIGTERM, then SIGKILL if the child has not exited after the grace period. Resolves on exit. */
export function stop(child: ChildProcess, graceMs = STOP_GRACE_MS): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
    child.once('exit', () => {
      clearTimeout(timer)
      resolve()
    })
    child.kill('SIGTERM')
  })
}

export interface Finished {
  code: number | null
  stdout: string
  stderr: string
  ms: number
}

/** Runs `cmd` to completion; SIGKILLs it (and rejects) past `timeoutMs`. */
export function runToEnd(cmd: string, args: string[], timeoutMs: number): Promise<Finished> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint()
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: envFor(cmd) })
    track(child)
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (c: string) => { stdout += c })
    child.stderr.setEncoding('utf8').on('data', (c: string) => { stderr += c })
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`${cmd} ${args.join(' ')} ran past ${timeoutMs} ms`))
    }, timeoutMs)
    child.once('error', (err) => { clearTimeout(timer); reject(err) })
    child.once('exit', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr, ms: Number(process.hrtime.bigint() - t0) / 1e6 })
    })
  })
}

/** Absolute path of an executable on PATH, or null. */
export function which(name: string): string | null {
  const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' })
  const out = r.stdout.trim()
  return r.status === 0 && out !== '' ? out : null
}

/** A TCP port free right now on 127.0.0.1 (for servers that cannot bind port 0 and report it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port
      server.close(() => resolve(port))
    })
  })
}

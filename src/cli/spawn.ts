/**
 * Starts freshet nodes as real child processes (the demo and the benchmarks
 * use it): waits, bounded, for the "listening on HOST:PORT" line and stops
 * them with SIGTERM, then SIGKILL if they do not exit in time.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { dbError } from '../errors.js'
import { compiledPath } from '../dist_path.js'
import { MALLOC_MMAP_THRESHOLD_BYTES, YOUNG_SEMI_SPACE_MB } from '../constants.js'

export const MAIN_JS = compiledPath('./main.js', import.meta.url)

/**
 * Node flags a freshet node runs with. They must be given when node starts (V8
 * sizes the heap when the isolate is made, so v8.setFlagsFromString is too
 * late): main.ts's shebang carries the same flags for the `freshet` command,
 * and test/unit/cli/node_flags.test.ts checks that the two agree.
 */
export const NODE_FLAGS: readonly string[] = [`--max-semi-space-size=${YOUNG_SEMI_SPACE_MB}`]

/**
 * Environment a freshet node runs with, read by the C library as the process
 * starts (see MALLOC_MMAP_THRESHOLD_BYTES): the shebang sets it for the
 * `freshet` command, nodeEnv() for the processes started here.
 */
export const NODE_ENV_VARS: Readonly<Record<string, string>> = { MALLOC_MMAP_THRESHOLD_: String(MALLOC_MMAP_THRESHOLD_BYTES) }

/** This process's environment with NODE_ENV_VARS, for a freshet node it starts. */
export function nodeEnv(): NodeJS.ProcessEnv {
  return { ...process.env, ...NODE_ENV_VARS }
}

export interface NodeProcess {
  role: string
  port: number
  proc: ChildProcess
  stderr: () => string
  stop: (timeoutMs?: number) => Promise<number | null>
  kill9: () => Promise<void>
}

const STDERR_KEEP_BYTES = 64 * 1024

export function startNode(role: 'primary' | 'backup', args: string[], startTimeoutMs = 20000): Promise<NodeProcess> {
  const proc = spawn(process.execPath, [...NODE_FLAGS, MAIN_JS, role, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: nodeEnv() })
  let stderr = ''
  // 'close' rather than 'exit': it comes once stderr has been read to its end, so
  // the stderr a caller sees after `exited` (or in the error below) is all of it.
  const exited = new Promise<number | null>((resolve) => proc.once('close', (code) => resolve(code)))
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(dbError('TIMEOUT', `${role} did not start in ${startTimeoutMs} ms: ${stderr}`)) }, startTimeoutMs)
    proc.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString()
      if (stderr.length > STDERR_KEEP_BYTES) stderr = stderr.slice(-STDERR_KEEP_BYTES)
      const m = / listening on [^:\s]+:(\d+)/.exec(stderr)
      if (m !== null && timer !== null) {
        clearTimeout(timer)
        const node: NodeProcess = {
          role, port: Number(m[1]), proc, stderr: () => stderr,
          stop: async (timeoutMs = 10000) => {
            if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode
            proc.kill('SIGTERM')
            const t = setTimeout(() => proc.kill('SIGKILL'), timeoutMs)
            const code = await exited
            clearTimeout(t)
            return code
          },
          kill9: async () => {
            if (proc.exitCode !== null || proc.signalCode !== null) return
            proc.kill('SIGKILL')
            await exited
          },
        }
        resolve(node)
      }
    })
    proc.once('close', (code) => { clearTimeout(timer); reject(dbError('CLOSED', `${role} exited with ${code} before listening: ${stderr}`)) })
  })
}

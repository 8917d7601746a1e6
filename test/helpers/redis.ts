/**
 * Real Redis, the oracle for behaviour freshet claims to share. Starts a
 * `redis-server` child process on a free loopback port with no persistence,
 * waits (bounded) until it accepts connections, and stops it after the test
 * file. A missing redis-server is an error, never a skip: .ci/run installs it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import net from 'node:net'
import { afterAll } from 'vitest'

const START_TIMEOUT_MS = 10_000
const START_TRIES_MAX = 5

export interface RedisProcess {
  readonly port: number
  readonly version: string
  stop(): Promise<void>
}

const live = new Set<ChildProcess>()

afterAll(() => {
  for (const p of live) p.kill('SIGKILL')
  live.clear()
})

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const address = s.address()
      const port = typeof address === 'object' && address !== null ? address.port : 0
      s.close(() => resolve(port))
    })
  })
}

export function redisServerVersion(): string {
  const r = spawnSync('redis-server', ['--version'], { encoding: 'utf8' })
  if (r.error !== undefined || r.status !== 0) {
    throw new Error('redis-server is not installed: the differential tests need it as their oracle (.ci/run installs it: apt-get install -y redis-server)')
  }
  const m = /v=(\d+\.\d+\.\d+)/.exec(r.stdout)
  return m !== null ? m[1] : 'unknown'
}

/** Starts redis-server on a free port (retrying if another process takes the port first). */
export async function startRedis(extraArgs: string[] = []): Promise<RedisProcess> {
  const version = redisServerVersion()
  let lastError = ''
  for (let attempt = 0; attempt < START_TRIES_MAX; attempt++) {
    const port = await freePort()
    const proc = spawn('redis-server', [
      '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--dir', '/tmp', ...extraArgs,
    ], { stdio: ['ignore', 'pipe', 'pipe'] })
    live.add(proc)
    let output = ''
    const ready = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), START_TIMEOUT_MS)
      const onData = (chunk: Buffer): void => {
        output += chunk.toString()
        if (output.includes('Ready to accept connections')) { clearTimeout(timer); resolve(true) }
      }
      proc.stdout!.on('data', onData)
      proc.stderr!.on('data', onData)
      proc.once('close', () => { clearTimeout(timer); resolve(false) })
    })
    if (ready) {
      return {
        port, version,
        stop: () => new Promise<void>((resolve) => {
          if (proc.exitCode !== null || proc.signalCode !== null) { live.delete(proc); resolve(); return }
          proc.once('exit', () => { live.delete(proc); resolve() })
          proc.kill('SIGKILL')
        }),
      }
    }
    lastError = output.slice(-2000)
    proc.kill('SIGKILL')
    live.delete(proc)
  }
  throw new Error(`redis-server did not start in ${START_TRIES_MAX} tries: ${lastError}`)
}

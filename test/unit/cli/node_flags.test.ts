/**
 * The node flags and environment a freshet node runs with (NODE_FLAGS, see
 * YOUNG_SEMI_SPACE_MB; NODE_ENV_VARS, see MALLOC_MMAP_THRESHOLD_BYTES) reach
 * node however it is started: the compiled CLI's shebang carries them for
 * the `freshet` command (run here as an executable, as npm's bin link runs it),
 * and a node started as `node main.js` without them says so once at start.
 */
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, expect, test } from 'vitest'
import { MAIN_JS, NODE_ENV_VARS, NODE_FLAGS } from '../../../src/cli/spawn.js'

const START_TIMEOUT_MS = 20_000
const dirs: string[] = []

afterAll(() => {
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true })
})

/** This process's environment without NODE_ENV_VARS (as a shell that never set them). */
function envWithout(): NodeJS.ProcessEnv {
  const env = { ...process.env }
  for (const name of Object.keys(NODE_ENV_VARS)) delete env[name]
  return env
}

const ENV_ASSIGNMENTS = Object.entries(NODE_ENV_VARS).map(([k, v]) => `${k}=${v}`)

/** Starts `command args…` (environment without NODE_ENV_VARS), waits (bounded) for the listening line, kills it; its pid's argv, environment and stderr. */
async function startAndKill(command: string, args: string[]): Promise<{ argv: string[], env: string[], stderr: string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'freshet-flags-'))
  dirs.push(dir)
  const proc = spawn(command, [...args, 'primary', '--port', '0', '--dir', dir, '--commit', 'local'], { stdio: ['ignore', 'ignore', 'pipe'], env: envWithout() })
  let stderr = ''
  proc.stderr!.setEncoding('utf8')
  const closed = new Promise<void>((resolve) => proc.once('close', () => resolve()))
  try {
    const listening = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), START_TIMEOUT_MS)
      proc.stderr!.on('data', (chunk: string) => {
        stderr += chunk
        if (/ listening on /.test(stderr)) { clearTimeout(timer); resolve(true) }
      })
      void closed.then(() => { clearTimeout(timer); resolve(false) })
    })
    expect(listening, stderr).toBe(true)
    const argv = fs.readFileSync(`/proc/${proc.pid}/cmdline`, 'utf8').split('\0').filter((a) => a !== '')
    const env = fs.readFileSync(`/proc/${proc.pid}/environ`, 'utf8').split('\0').filter((a) => a !== '')
    return { argv, env, stderr }
  } finally {
    proc.kill('SIGKILL')
    await closed
  }
}

test('the compiled CLI\'s shebang carries NODE_ENV_VARS and NODE_FLAGS, and the build leaves it executable', () => {
  const first = fs.readFileSync(MAIN_JS, 'utf8').split('\n', 1)[0]
  expect(first).toBe(`#!/usr/bin/env -S ${ENV_ASSIGNMENTS.join(' ')} node ${NODE_FLAGS.join(' ')}`)
  expect(fs.statSync(MAIN_JS).mode & 0o111).not.toBe(0)
})

test('run as an executable, node gets the flags; run as `node main.js`, it runs and says they are missing', async () => {
  const direct = await startAndKill(MAIN_JS, [])
  for (const f of NODE_FLAGS) expect(direct.argv).toContain(f)
  for (const a of ENV_ASSIGNMENTS) expect(direct.env).toContain(a)
  expect(direct.stderr).not.toContain('(NODE_FLAGS)')

  const plain = await startAndKill(process.execPath, [MAIN_JS])
  for (const f of NODE_FLAGS) expect(plain.argv).not.toContain(f)
  for (const a of ENV_ASSIGNMENTS) expect(plain.env).not.toContain(a)
  expect(plain.stderr).toContain('(NODE_FLAGS)')
  for (const a of ENV_ASSIGNMENTS) expect(plain.stderr).toContain(a)
})

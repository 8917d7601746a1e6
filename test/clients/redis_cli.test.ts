/**
 * Redis's own tools against a freshet primary, end to end: redis-cli
 * --bigkeys, --memkeys, --stat, -3 (RESP3 through HELLO 3), MONITOR, and
 * redis-benchmark on the string commands. The tools come from the
 * distribution's redis-tools package (.ci/run installs it); a missing tool
 * fails the test.
 */
import { spawn, spawnSync } from 'node:child_process'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { startPrimary, type PrimaryProcess } from '../helpers/primary.js'

let primary: PrimaryProcess

function cli(...args: string[]): { status: number | null, out: string } {
  const r = spawnSync('redis-cli', ['-p', String(primary.port), ...args], { encoding: 'utf8', timeout: 30_000 })
  if (r.error !== undefined) throw new Error(`redis-cli could not run (.ci/run installs redis-tools): ${String(r.error)}`)
  return { status: r.status, out: `${r.stdout}${r.stderr}` }
}

beforeAll(async () => {
  primary = await startPrimary()
  const lines: string[] = []
  for (let i = 1; i <= 40; i++) lines.push(`SET cli:key${i} ${'x'.repeat(i * 10)}`)
  const r = spawnSync('redis-cli', ['-p', String(primary.port)], { input: lines.join('\n') + '\n', encoding: 'utf8', timeout: 30_000 })
  if (r.error !== undefined) throw new Error(`redis-cli could not run (.ci/run installs redis-tools): ${String(r.error)}`)
})

afterAll(async () => {
  await primary.stop()
})

test('redis-cli --bigkeys finds the biggest string and counts every key as a string', () => {
  const r = cli('--bigkeys')
  expect(r.status).toBe(0)
  expect(r.out).toContain("Biggest string found '\"cli:key40\"' has 400 bytes")
  expect(r.out).toMatch(/40 strings with 8200 bytes \(100\.00% of keys/)
})

test('redis-cli --memkeys sizes every key with MEMORY USAGE', () => {
  const r = cli('--memkeys')
  expect(r.status).toBe(0)
  expect(r.out).toMatch(/Biggest string found '"cli:key40"' has \d+ bytes/)
  expect(r.out).toMatch(/40 strings with \d+ bytes \(100\.00% of keys/)
})

test('redis-cli --stat prints rows with keys, clients, blocked and requests', async () => {
  const p = spawn('stdbuf', ['-o0', 'redis-cli', '-p', String(primary.port), '--stat', '-i', '0.1'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  p.stdout.on('data', (d: Buffer) => { out += d.toString() })
  try {
    const deadline = Date.now() + 20_000
    while (out.split('\n').filter((l) => /^\d+\s+\S+\s+\d+\s+\d+\s+\d+ \(\+\d+\)/.test(l)).length < 3 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50))
    }
  } finally {
    p.kill('SIGKILL')
  }
  const rows = out.split('\n').filter((l) => /^\d+\s+\S+\s+\d+\s+\d+\s+\d+ \(\+\d+\)/.test(l))
  expect(rows.length).toBeGreaterThanOrEqual(3)
  // keys, then the blocked column: a number, never garbage.
  expect(rows[0].split(/\s+/)[0]).toBe('40')
  expect(rows[0].split(/\s+/)[3]).toBe('0')
})

test('redis-cli -3 speaks RESP3 (HELLO 3): nulls and maps print as RESP3 values', () => {
  // --no-raw: the formatted output redis-cli gives a terminal.
  const hello = cli('--no-raw', '-3', 'HELLO', '3')
  expect(hello.status).toBe(0)
  expect(hello.out).toMatch(/"proto" => \(integer\) 3/)
  expect(cli('--no-raw', '-3', 'GET', 'cli:missing').out.trim()).toBe('(nil)')
  expect(cli('--no-raw', '-3', 'GET', 'cli:key1').out.trim()).toBe('"xxxxxxxxxx"')
  expect(cli('--no-raw', '-3', 'CONFIG', 'GET', 'maxclients').out.trim()).toBe('1# "maxclients" => "10000"')
})

test('redis-cli MONITOR shows commands other clients send', async () => {
  const p = spawn('stdbuf', ['-o0', 'redis-cli', '-p', String(primary.port), 'MONITOR'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  p.stdout.on('data', (d: Buffer) => { out += d.toString() })
  try {
    const deadline = Date.now() + 20_000
    while (!out.includes('OK') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    for (let i = 0; i < 100 && !out.includes('"cli:monitored"'); i++) {
      cli('SET', 'cli:monitored', String(i))
      await new Promise((r) => setTimeout(r, 50))
    }
  } finally {
    p.kill('SIGKILL')
  }
  expect(out).toMatch(/\d+\.\d{6} \[0 127\.0\.0\.1:\d+\] "SET" "cli:monitored" "\d+"/)
})

test('redis-benchmark runs its string tests end to end', () => {
  const r = spawnSync('redis-benchmark', ['-p', String(primary.port), '-q', '-n', '2000', '-c', '10', '-t', 'ping,set,get,incr,mset'], { encoding: 'utf8', timeout: 120_000 })
  if (r.error !== undefined) throw new Error(`redis-benchmark could not run (.ci/run installs redis-tools): ${String(r.error)}`)
  expect(r.status).toBe(0)
  const text = `${r.stdout}${r.stderr}`
  expect(text).not.toContain('Error from server')
  for (const t of ['PING_INLINE', 'PING_MBULK', 'SET', 'GET', 'INCR', 'MSET (10 keys)']) expect(text).toMatch(new RegExp(`${t.replace(/[()]/g, '\\$&')}: [\\d.]+ requests per second`))
})

test('the default redis-benchmark run passes every test in freshet\'s scope and stops at LPUSH, which answers the scope error', () => {
  // redis-benchmark exits on its first error reply; LPUSH (its sixth default test) is a list command,
  // which freshet refuses by design (strings only): the run cannot go further without lists.
  const r = spawnSync('redis-benchmark', ['-p', String(primary.port), '-q', '-n', '2000', '-c', '10'], { encoding: 'utf8', timeout: 120_000 })
  if (r.error !== undefined) throw new Error(`redis-benchmark could not run (.ci/run installs redis-tools): ${String(r.error)}`)
  const text = `${r.stdout}${r.stderr}`
  for (const t of ['PING_INLINE', 'PING_MBULK', 'SET', 'GET', 'INCR']) expect(text).toMatch(new RegExp(`${t}: [\\d.]+ requests per second`))
  expect(text).toMatch(/Error from server: ERR [^\n]*lpush/i)
  expect(r.status).toBe(1)
})

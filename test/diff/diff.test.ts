/**
 * Differential tests: real Redis is the oracle. Every exchange of
 * exchanges.ts is sent, byte for byte on a fresh connection, to a real
 * redis-server and to a freshet primary; the reply bytes must be identical,
 * except for the exchanges differences.json lists with a reason (and those
 * must really differ, so the list stays true). redis-server missing fails the
 * run: .ci/run installs it.
 */
import fs from 'node:fs'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { startPrimary, type PrimaryProcess } from '../helpers/primary.js'
import { startRedis, type RedisProcess } from '../helpers/redis.js'
import { RawConn, encodeCommand, parseReplies, parseReply } from '../helpers/clients.js'
import { EXCHANGES, type Exchange } from './exchanges.js'
import { createRng } from '../helpers/prng.js'
import { randomRequest } from '../helpers/random_commands.js'

const REPLY_TIMEOUT_MS = 5_000

const differences = (JSON.parse(fs.readFileSync(new URL('./differences.json', import.meta.url), 'utf8')) as { differences: Record<string, string> }).differences

let redis: RedisProcess
let freshet: PrimaryProcess

beforeAll(async () => {
  // One database, as freshet has: SELECT, MOVE, SWAPDB and COPY ... DB then answer alike.
  redis = await startRedis(['--databases', '1'])
  freshet = await startPrimary()
})

afterAll(async () => {
  await redis?.stop()
  await freshet?.stop()
})

function wire(e: Exchange, prefix: string): Buffer {
  const parts: Buffer[] = []
  for (const r of e.requests) {
    if (typeof r === 'string') parts.push(Buffer.from(r.replaceAll('{k}', prefix), 'latin1'))
    else parts.push(encodeCommand(...r.map((a) => (typeof a === 'string' ? a.replaceAll('{k}', prefix) : a))))
  }
  return Buffer.concat(parts)
}

/** Sends the exchange on a fresh connection; returns every byte received (bounded wait). */
async function run(port: number, e: Exchange, prefix: string): Promise<{ bytes: Buffer, closed: boolean }> {
  const c = await RawConn.connect(port)
  try {
    let skip = 0
    if (e.resp3 === true) {
      // HELLO's own reply names the server and the connection: compared by shape only, then dropped.
      await c.write(encodeCommand('HELLO', '3'))
      await c.until(() => parseReplies(c.received).length >= 1, REPLY_TIMEOUT_MS)
      const hello = parseReply(c.received)
      expect(hello?.reply.type).toBe('map')
      skip = hello!.end
    }
    await c.write(wire(e, prefix))
    const want = (e.replies ?? e.requests.length) + (skip > 0 ? 1 : 0)
    await c.until(() => parseReplies(c.received).length >= want && (e.closes !== true || c.closed), REPLY_TIMEOUT_MS)
    if (e.closes === true) await c.waitClosed(REPLY_TIMEOUT_MS)
    return { bytes: c.received.subarray(skip), closed: c.closed }
  } finally {
    c.close()
  }
}

function show(b: Buffer): string {
  return JSON.stringify(b.toString('latin1'))
}

test('every listed difference names an exchange', () => {
  const names = new Set(EXCHANGES.map((e) => e.name))
  for (const name of Object.keys(differences)) expect(names.has(name), `differences.json: no exchange named ${name}`).toBe(true)
})

test.each(EXCHANGES.map((e, i) => [e.name, e, i] as const))('%s', async (_name, e, i) => {
  const prefix = `diff${i}:`
  const [fromRedis, fromFreshet] = await Promise.all([run(redis.port, e, prefix), run(freshet.port, e, prefix)])
  expect(parseReplies(fromRedis.bytes).length, `redis ${redis.version} answered every request: ${show(fromRedis.bytes)}`).toBeGreaterThanOrEqual(e.requests.length > 0 ? 1 : 0)
  if (e.closes === true) expect(fromRedis.closed, 'redis closed the connection').toBe(true)
  const reason = differences[e.name]
  if (reason !== undefined) {
    expect(show(fromFreshet.bytes), `listed as a deliberate difference (${reason}), but freshet now answers as Redis does: remove it from differences.json`).not.toBe(show(fromRedis.bytes))
    return
  }
  expect(show(fromFreshet.bytes)).toBe(show(fromRedis.bytes))
  expect(fromFreshet.closed).toBe(fromRedis.closed)
})

// ---------------------------------------------------------------- seeded random sequences

const RANDOM_COMMANDS_PER_RUN = 400
const RANDOM_RUNS = 4

test.each(Array.from({ length: RANDOM_RUNS }, (_, i) => i))('seeded random command sequence %i: every reply is Redis\'s', async (run) => {
  const rng = createRng(`diff random sequence ${run}`, 0xd1ff00 + run)
  const prefix = `rnd${run}:`
  const requests: Array<Array<string | Buffer>> = []
  for (let i = 0; i < RANDOM_COMMANDS_PER_RUN; i++) requests.push(randomRequest(rng, prefix))
  requests.push(['DISCARD'], ['MGET', ...Array.from({ length: 6 }, (_, i) => `${prefix}${i}`)])
  const e: Exchange = { name: `random ${run}`, requests }
  const [fromRedis, fromFreshet] = await Promise.all([run2(redis.port, e), run2(freshet.port, e)])
  const redisReplies = parseReplies(fromRedis)
  const freshetReplies = parseReplies(fromFreshet)
  expect(redisReplies.length).toBe(requests.length)
  // The sequence exercises real values, not only errors.
  expect(redisReplies.filter((r) => r.type !== 'error').length).toBeGreaterThan(requests.length / 2)
  for (let i = 0; i < requests.length; i++) {
    expect(JSON.stringify(freshetReplies[i]), `request ${i}: ${JSON.stringify(requests[i].map(String))} (seed ${rng.seed})`).toBe(JSON.stringify(redisReplies[i]))
  }
})

async function run2(port: number, e: Exchange): Promise<Buffer> {
  return (await run(port, e, '')).bytes
}

/**
 * Read conformance across roles: one data set is built on the primary with
 * SET, MSET, DEL, INCR/INCRBY, APPEND, overwrites, deletes-then-reset and
 * MULTI transactions (so keys have long version chains and tombstones), while
 * a Map model follows along. After WAITLSN on the primary's LSN, the shared
 * read suite (test/conformance/read_view.suite.ts) runs against the primary
 * and two backups (1 and 3 replay workers): every answer equals the model's.
 */
import type { Redis } from 'ioredis'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { Cluster, cleanupClusters, lsnOf, seededRng, type Rng } from '../helpers/cluster.js'
import { readViewSuite, redisTarget, type ReadModel, type ReadTarget } from '../conformance/read_view.suite.js'

/** Two keys with the same XXH32 key hash (found by search; the stream property test asserts it). */
const HASH_TWINS = ['ctablkkx80', 'c8k7rr0x71']
const KEY_COUNT = 300
const COUNTER_COUNT = 8
const APPEND_COUNT = 6
const ROUNDS = 40
const COMMANDS_PER_ROUND = 40

let cluster: Cluster
let primaryClient: Redis
const targets = new Map<string, ReadTarget>()
const model: ReadModel = { live: new Map(), probeKeys: [] }
let finalLsn = 0
let appliedLsns: number[] = []

type Command = Array<string | Buffer>

/** Applies one command to the model, mirroring what the primary does. */
function applyToModel(live: Map<string, Buffer>, cmd: Command): void {
  const name = String(cmd[0]).toUpperCase()
  const key = (i: number): string => String(cmd[i])
  switch (name) {
    case 'SET': live.set(key(1), Buffer.from(cmd[2])); break
    case 'MSET': for (let i = 1; i < cmd.length; i += 2) live.set(key(i), Buffer.from(cmd[i + 1])); break
    case 'DEL': for (let i = 1; i < cmd.length; i++) live.delete(key(i)); break
    case 'INCR':
    case 'INCRBY': {
      const delta = name === 'INCR' ? 1 : Number(cmd[2])
      const now = Number(live.get(key(1))?.toString() ?? '0') + delta
      live.set(key(1), Buffer.from(String(now)))
      break
    }
    case 'APPEND': live.set(key(1), Buffer.concat([live.get(key(1)) ?? Buffer.alloc(0), Buffer.from(cmd[2])])); break
    default: throw new Error(`model does not know ${name}`)
  }
}

function randomValue(rng: Rng): Buffer {
  const kind = rng.int(0, 9)
  if (kind === 0) return Buffer.alloc(0)
  if (kind === 1) return rng.bytes(rng.int(1, 64)) // binary, any byte
  if (kind === 2) return Buffer.alloc(rng.int(8000, 40000), String.fromCharCode(97 + rng.int(0, 25)))
  return Buffer.from(`v${rng.int(0, 1e9)}-${'x'.repeat(rng.int(0, 40))}`)
}

function plainKeys(): string[] {
  const keys: string[] = []
  for (let i = 0; i < KEY_COUNT; i++) keys.push(`k:${i}`)
  // Odd keys: empty, spaces and CRLF, non-ASCII, long, and two keys with the
  // same 32-bit key hash (told apart only by comparing key bytes in the log).
  keys.push('', 'has space', 'crlf\r\nkey', 'ключ:ü', 'k'.repeat(300), ...HASH_TWINS)
  return keys
}

/** One random write command (and whether it may go inside MULTI). */
function randomCommand(rng: Rng, keys: string[]): Command {
  const k = (): string => rng.pick(keys)
  switch (rng.int(0, 9)) {
    case 0:
    case 1:
    case 2: return ['SET', k(), randomValue(rng)]
    case 3: {
      const cmd: Command = ['MSET']
      for (let i = rng.int(1, 6); i > 0; i--) cmd.push(k(), randomValue(rng))
      return cmd
    }
    case 4: {
      const cmd: Command = ['DEL']
      for (let i = rng.int(1, 3); i > 0; i--) cmd.push(k())
      return cmd
    }
    case 5: return ['INCR', `c:${rng.int(0, COUNTER_COUNT - 1)}`]
    case 6: return ['INCRBY', `c:${rng.int(0, COUNTER_COUNT - 1)}`, String(rng.int(-1000, 1000))]
    case 7: return ['APPEND', `a:${rng.int(0, APPEND_COUNT - 1)}`, randomValue(rng).subarray(0, 50)]
    case 8: return ['DEL', `c:${rng.int(0, COUNTER_COUNT - 1)}`, `a:${rng.int(0, APPEND_COUNT - 1)}`]
    default: return ['SET', k(), String(rng.int(0, 99))]
  }
}

async function buildDataSet(client: Redis, rng: Rng): Promise<void> {
  const keys = plainKeys()
  for (let round = 0; round < ROUNDS; round++) {
    const style = round % 4
    if (style === 3) {
      // One MULTI per round: a transaction of mixed writes in one block.
      const cmds: Command[] = []
      for (let i = 0; i < 12; i++) cmds.push(randomCommand(rng, keys))
      const multi = client.multi()
      for (const c of cmds) multi.callBuffer(String(c[0]), ...c.slice(1))
      const replies = await multi.exec()
      expect(replies?.every(([err]) => err === null), 'MULTI succeeded').toBe(true)
      for (const c of cmds) applyToModel(model.live, c)
    } else if (style === 2) {
      // One command per turn: single-op blocks.
      for (let i = 0; i < 10; i++) {
        const c = randomCommand(rng, keys)
        await client.callBuffer(String(c[0]), ...c.slice(1))
        applyToModel(model.live, c)
      }
    } else {
      // A pipeline: many commands, few blocks.
      const cmds: Command[] = []
      for (let i = 0; i < COMMANDS_PER_ROUND; i++) cmds.push(randomCommand(rng, keys))
      const p = client.pipeline()
      for (const c of cmds) p.callBuffer(String(c[0]), ...c.slice(1))
      const replies = await p.exec()
      expect(replies?.every(([err]) => err === null), 'pipeline succeeded').toBe(true)
      for (const c of cmds) applyToModel(model.live, c)
    }
    if (round === ROUNDS / 2) {
      // Delete everything written so far, then reset a few: whole chains end in tombstones.
      const all = [...model.live.keys()]
      for (let i = 0; i < all.length; i += 100) {
        const cmd: Command = ['DEL', ...all.slice(i, i + 100)]
        await client.callBuffer('DEL', ...cmd.slice(1))
        applyToModel(model.live, cmd)
      }
    }
  }
  const everWritten = new Set<string>(keys)
  for (let i = 0; i < COUNTER_COUNT; i++) everWritten.add(`c:${i}`)
  for (let i = 0; i < APPEND_COUNT; i++) everWritten.add(`a:${i}`)
  model.probeKeys = [...everWritten, 'never:1', 'never:2', 'k:', 'k:3000']
}

beforeAll(async () => {
  const rng = seededRng('replication conformance data set', 0xc0f0)
  cluster = await Cluster.start({ commit: 'async', workers: [1, 3] })
  primaryClient = cluster.primaryClient()
  await buildDataSet(primaryClient, rng)
  finalLsn = await lsnOf(primaryClient)
  appliedLsns = await cluster.waitAllApplied(finalLsn)
  targets.set('primary', redisTarget('primary', primaryClient))
  cluster.backups.forEach((b, i) => targets.set(`backup${i} (workers ${b.workers})`, redisTarget(`backup${i}`, cluster.backupClient(i))))
}, 60_000)

afterAll(async () => {
  await cleanupClusters()
})

test('the data set is non-trivial and every backup applied the primary LSN', () => {
  expect(finalLsn).toBeGreaterThan(0)
  expect(model.live.size).toBeGreaterThan(100)
  for (const applied of appliedLsns) expect(applied).toBeGreaterThanOrEqual(finalLsn)
})

readViewSuite({
  targetNames: ['primary', 'backup0 (workers 1)', 'backup1 (workers 3)'],
  target: (name) => {
    const t = targets.get(name)
    if (t === undefined) throw new Error(`no target ${name} (have ${[...targets.keys()].join(', ')})`)
    return t
  },
  model: () => model,
})

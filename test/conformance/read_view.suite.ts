/**
 * One suite of read checks (abstract-level style), run against every
 * implementation of "a read view": the primary, each backup, and a naive Map
 * store (MapTarget) that answers the same commands from the model of the
 * data set, which checks the suite itself. Each check turns a target's
 * replies into plain data (Answer) so that answers compare with toEqual.
 *
 * Covered: GET, MGET (one call and batches with repeats), EXISTS (per key and
 * counted over repeats), STRLEN, DBSIZE, SCAN (full iteration set at several
 * COUNTs, and MATCH), and a read-only MULTI/EXEC of GETs, EXISTS and STRLEN.
 *
 * Not a test file (vitest collects *.test.ts only): a test file calls
 * readViewSuite() with its targets.
 */
import type { Redis } from 'ioredis'
import { describe, expect, test } from 'vitest'

/** A reply as plain data: bulk strings as latin1 text (one char per byte), errors as { error: code }. */
export type Answer = null | string | number | { error: string } | Answer[]

export type Arg = string | Buffer

export interface ReadTarget {
  readonly name: string
  call(args: Arg[]): Promise<Answer>
  /** MULTI, the commands, EXEC; the EXEC reply (one answer per command). */
  transaction(commands: Arg[][]): Promise<Answer>
}

/** The data set as the test built it. */
export interface ReadModel {
  /** Live keys and values. */
  live: Map<string, Buffer>
  /** Keys to probe: every key ever written (live or deleted) plus keys never written. */
  probeKeys: string[]
}

export interface ReadCheck {
  readonly name: string
  run(t: ReadTarget, model: ReadModel): Promise<Answer>
}

const SCAN_CALLS_MAX = 100_000

export function normalize(v: unknown): Answer {
  if (v === null || v === undefined) return null
  if (Buffer.isBuffer(v)) return v.toString('latin1')
  if (typeof v === 'number') return v
  if (typeof v === 'string') return Buffer.from(v, 'utf8').toString('latin1')
  if (Array.isArray(v)) return v.map(normalize)
  if (v instanceof Error) return { error: v.message.split(' ')[0] }
  throw new Error(`cannot normalize reply ${String(v)}`)
}

function keyText(key: Arg): string {
  return (Buffer.isBuffer(key) ? key : Buffer.from(key, 'utf8')).toString('latin1')
}

/** A small seeded generator so each check picks the same batches on every target. */
function checkRng(seed: number): (n: number) => number {
  let a = seed >>> 0
  return (n) => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n)
  }
}

/** Random batches of probe keys (with repeats), the same on every target. */
function batches(model: ReadModel, seed: number, count: number, sizeMax: number): string[][] {
  const pick = checkRng(seed)
  const out: string[][] = []
  for (let i = 0; i < count; i++) {
    const size = 1 + pick(sizeMax)
    const batch: string[] = []
    for (let j = 0; j < size; j++) batch.push(model.probeKeys[pick(model.probeKeys.length)])
    out.push(batch)
  }
  return out
}

/** Iterates SCAN to the end (bounded); returns the sorted set of keys and whether any key came twice. */
async function scanSet(t: ReadTarget, extra: Arg[]): Promise<Answer> {
  const seen = new Set<string>()
  let cursor = '0'
  for (let i = 0; i < SCAN_CALLS_MAX; i++) {
    const reply = await t.call(['SCAN', cursor, ...extra])
    if (!Array.isArray(reply) || reply.length !== 2 || typeof reply[0] !== 'string' || !Array.isArray(reply[1])) {
      return { error: `bad SCAN reply ${JSON.stringify(reply)}` }
    }
    for (const k of reply[1]) seen.add(String(k))
    cursor = reply[0]
    if (cursor === '0') return [...seen].sort()
  }
  return { error: 'SCAN did not finish' }
}

export const READ_CHECKS: readonly ReadCheck[] = [
  {
    name: 'GET of every probe key (live, deleted, never written)',
    run: async (t, m) => Promise.all(m.probeKeys.map((k) => t.call(['GET', k]))),
  },
  {
    name: 'MGET of every probe key in one call',
    run: async (t, m) => t.call(['MGET', ...m.probeKeys]),
  },
  {
    name: 'MGET in random batches with repeated keys',
    run: async (t, m) => Promise.all(batches(m, 0x3e7a, 40, 25).map((b) => t.call(['MGET', ...b]))),
  },
  {
    name: 'EXISTS per key, and over batches (repeats counted)',
    run: async (t, m) => [
      await Promise.all(m.probeKeys.map((k) => t.call(['EXISTS', k]))),
      await Promise.all(batches(m, 0x5e15, 30, 20).map((b) => t.call(['EXISTS', ...b]))),
    ],
  },
  {
    name: 'STRLEN of every probe key',
    run: async (t, m) => Promise.all(m.probeKeys.map((k) => t.call(['STRLEN', k]))),
  },
  {
    name: 'DBSIZE',
    run: async (t) => t.call(['DBSIZE']),
  },
  {
    name: 'SCAN full iteration set (COUNT 1, 7, default, 1000)',
    run: async (t) => [
      await scanSet(t, ['COUNT', '1']),
      await scanSet(t, ['COUNT', '7']),
      await scanSet(t, []),
      await scanSet(t, ['COUNT', '1000']),
    ],
  },
  {
    name: 'SCAN MATCH full iteration set',
    run: async (t) => [
      await scanSet(t, ['MATCH', 'k:1*', 'COUNT', '20']),
      await scanSet(t, ['MATCH', 'c:?', 'COUNT', '5']),
      await scanSet(t, ['MATCH', 'nothing-matches-*']),
    ],
  },
  {
    name: 'read-only MULTI/EXEC of GETs (plus EXISTS and STRLEN)',
    run: async (t, m) => {
      const out: Answer[] = []
      for (const b of batches(m, 0x7a11, 12, 15)) {
        const cmds: Arg[][] = b.map((k) => ['GET', k])
        cmds.push(['EXISTS', ...b], ['STRLEN', b[0]], ['MGET', ...b], ['DBSIZE'])
        out.push(await t.transaction(cmds))
      }
      return out
    },
  },
]

/** An ioredis connection as a read target. */
export function redisTarget(name: string, client: Redis): ReadTarget {
  return {
    name,
    call: async (args) => {
      try {
        return normalize(await client.callBuffer(String(args[0]), ...args.slice(1)))
      } catch (err) {
        return normalize(err)
      }
    },
    transaction: async (commands) => {
      const multi = client.multi()
      for (const c of commands) multi.callBuffer(String(c[0]), ...c.slice(1))
      const replies = await multi.exec()
      if (replies === null) return { error: 'EXEC returned null' }
      return replies.map(([err, value]) => (err !== null ? normalize(err) : normalize(value)))
    },
  }
}

function globToRegExp(pattern: string): RegExp {
  let re = '^'
  for (const ch of pattern) {
    if (ch === '*') re += '.*'
    else if (ch === '?') re += '.'
    else re += ch.replace(/[.+^${}()|[\]\\]/g, '\\$&')
  }
  return new RegExp(re + '$', 's')
}

/**
 * The naive reference: a Map answering the same reads (MinimalLevel trick).
 * Keys and values are compared as bytes (latin1 text of their bytes).
 */
export class MapTarget implements ReadTarget {
  readonly name = 'map-model'
  private readonly live: Map<string, string>

  constructor(model: ReadModel) {
    this.live = new Map()
    for (const [k, v] of model.live) this.live.set(keyText(k), v.toString('latin1'))
  }

  async call(args: Arg[]): Promise<Answer> {
    return this.run(args)
  }

  async transaction(commands: Arg[][]): Promise<Answer> {
    return commands.map((c) => this.run(c))
  }

  private run(args: Arg[]): Answer {
    const name = String(args[0]).toUpperCase()
    const keys = args.slice(1).map(keyText)
    switch (name) {
      case 'GET': return this.live.get(keys[0]) ?? null
      case 'MGET': return keys.map((k) => this.live.get(k) ?? null)
      case 'EXISTS': return keys.filter((k) => this.live.has(k)).length
      case 'STRLEN': return this.live.get(keys[0])?.length ?? 0
      case 'DBSIZE': return this.live.size
      case 'SCAN': {
        let match: RegExp | null = null
        for (let i = 2; i < args.length; i += 2) {
          if (String(args[i]).toUpperCase() === 'MATCH') match = globToRegExp(keyText(args[i + 1]))
        }
        const found = [...this.live.keys()].filter((k) => match === null || match.test(k))
        return ['0', found]
      }
      default: return { error: 'ERR' }
    }
  }
}

export interface SuiteOptions {
  /** Target names, in the order they are checked. */
  targetNames: readonly string[]
  /** Called at test time (targets are made in beforeAll). */
  target: (name: string) => ReadTarget
  model: () => ReadModel
}

/**
 * Registers one test per check: every target must answer exactly what the
 * naive Map store answers for the same data set, hence all targets the same.
 */
export function readViewSuite(o: SuiteOptions): void {
  describe('read view conformance', () => {
    for (const check of READ_CHECKS) {
      test(check.name, async () => {
        const model = o.model()
        const expected = await check.run(new MapTarget(model), model)
        for (const name of o.targetNames) {
          const got = await check.run(o.target(name), model)
          expect(got, `${check.name}: ${name} differs from the model`).toEqual(expected)
        }
      })
    }
  })
}

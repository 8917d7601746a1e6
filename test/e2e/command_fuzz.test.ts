/**
 * No input kills a node. Commands generated from the node's own command table
 * (COMMAND: names and arities) with random arguments drawn from values that
 * have broken parsers before (glob patterns and regex metacharacters, integer
 * and float edge cases, empty and binary strings, option words) are sent,
 * pipelined, to a primary and to a backup. After every batch the node must
 * still answer, every reply must be well-formed RESP and match its command,
 * and INFO must count no internal error (an exception a handler did not
 * expect is a bug, even though the server survives it).
 */
import { afterAll, beforeAll, expect, test } from 'vitest'
import { Cluster, cleanupClusters } from '../helpers/cluster.js'
import { RawConn, encodeCommand, parseReplies, type Reply } from '../helpers/clients.js'
import { createRng, type Rng } from '../helpers/prng.js'

const PASSWORD = 'fuzz-secret'
const BATCHES = 80
const BATCH_COMMANDS = 60

/**
 * Never drawn: they end, hand over or log out the connection (RESET: later large arguments would then meet
 * the pre-AUTH bounds), or wait without bound; MULTI/EXEC wrap whole batches instead.
 */
const EXCLUDED = new Set(['multi', 'exec', 'discard', 'quit', 'reset', 'freshet.sync', 'wait', 'waitlsn', 'shutdown', 'monitor', 'sync', 'psync', 'replicaof', 'slaveof', 'freshet.promote', 'freshet.fence', 'debug'])

const PATTERNS = ['[', '[^', '[a-', '[]', ']', '\\', '*', '?', '*************x', '*a*a*a*a*a*a*a*a*a*b', '[[[[[[[[', '(', ')', '(a|b)*c', '.*', '^$', '{1,2}', '+', '\\\\[', 'max*', '*]', '[\\]']
const NUMBERS = ['0', '1', '-1', '2', '100', '9223372036854775807', '-9223372036854775808', '9223372036854775808', '1e400', '-1e400', 'nan', 'inf', '-inf', '-0', '+1', '0x10', ' 1', '1.5', '', '00', '4294967296', '99999999999999999999999']
const WORDS = ['match', 'count', 'type', 'get', 'set', 'nx', 'xx', 'ex', 'px', 'keepttl', 'list', 'info', 'id', 'setname', 'getname', 'kill', 'resetstat', 'all', 'default', 'everything', 'string', 'docs', 'help', 'persistence', 'replication', 'memory', 'stats', 'keyspace', 'clients', 'server', 'setinfo', 'lib-name']
/** Commands whose first argument is a subcommand: drawn from these (plus a random one now and then). */
const SUBCOMMANDS: Record<string, string[]> = {
  config: ['get', 'set', 'resetstat', 'rewrite'],
  client: ['list', 'info', 'id', 'setname', 'getname', 'kill', 'setinfo', 'no-evict'],
  command: ['count', 'docs', 'info', 'getkeys', 'list'],
  object: ['encoding', 'freq', 'help'],
  memory: ['usage', 'stats', 'doctor'],
}
const KEYS = ['fz:a', 'fz:b', 'fz:c', 'fz:n', '']

function randomArg(rng: Rng): string | Buffer {
  switch (rng.int(0, 6)) {
    case 0: return rng.pick(PATTERNS)
    case 1: return rng.pick(NUMBERS)
    case 2: return rng.pick(WORDS)
    case 3: return rng.pick(KEYS)
    case 4: return rng.bytes(rng.int(0, 24))
    case 5: return 'x'.repeat(rng.int(0, 3) === 0 ? rng.int(1000, 70_000) : rng.int(0, 8))
    default: return String(rng.int(-5, 5))
  }
}

interface Cmd { name: string, arity: number }

/** The node's command table, read with COMMAND. */
async function commandTable(port: number): Promise<Cmd[]> {
  const c = await RawConn.connect(port)
  try {
    await c.write(Buffer.concat([encodeCommand('AUTH', PASSWORD), encodeCommand('COMMAND')]))
    const replies = await c.replies(2)
    expect(replies[1].type).toBe('array')
    const table: Cmd[] = []
    for (const entry of replies[1].value as Reply[]) {
      const fields = entry.value as Reply[]
      const name = fields[0].type === 'bulk' ? (fields[0].value as Buffer).toString() : String(fields[0].value)
      table.push({ name: name.toLowerCase(), arity: Number(fields[1].value) })
    }
    return table
  } finally {
    c.close()
  }
}

function randomCommand(rng: Rng, table: readonly Cmd[]): Array<string | Buffer> {
  const cmd = rng.pick(table)
  const argc = cmd.arity > 0 ? (rng.int(0, 9) === 0 ? rng.int(1, 5) : cmd.arity) : -cmd.arity + rng.int(0, 5)
  const args: Array<string | Buffer> = [rng.int(0, 1) === 0 ? cmd.name : cmd.name.toUpperCase()]
  const subcommands = SUBCOMMANDS[cmd.name]
  for (let i = 1; i < argc; i++) args.push(i === 1 && subcommands !== undefined && rng.int(0, 5) > 0 ? rng.pick(subcommands) : randomArg(rng))
  return args
}

/** Runs the fuzz batches against one node; returns how many commands went out. */
async function fuzz(port: number, role: string, seed: number): Promise<number> {
  const label = role
  const rng = createRng(`command fuzz (${label})`, seed)
  const table = (await commandTable(port)).filter((c) => !EXCLUDED.has(c.name))
  expect(table.length).toBeGreaterThan(20)
  let sent = 0
  // Random CONFIG SETs (maxclients 1, another requirepass, maxmemory 1) are legitimate and change what
  // later batches see: a connection opened up front puts the configuration back after each batch.
  const admin = await RawConn.connect(port)
  await admin.write(encodeCommand('AUTH', PASSWORD))
  for (let b = 0; b < BATCHES; b++) {
    const cmds: Array<Array<string | Buffer>> = []
    // Some batches run inside MULTI, where commands are queued and then executed together.
    const inMulti = rng.int(0, 4) === 0
    for (let i = 0; i < BATCH_COMMANDS; i++) cmds.push(randomCommand(rng, table))
    const wire = [encodeCommand('AUTH', PASSWORD)]
    if (inMulti) wire.push(encodeCommand('MULTI'))
    for (const c of cmds) wire.push(encodeCommand(...c))
    if (inMulti) wire.push(encodeCommand('EXEC'))
    wire.push(encodeCommand('PING', 'alive'))
    const c = await RawConn.connect(port)
    try {
      await c.write(Buffer.concat(wire))
      // Every command gets exactly one reply, in order, and the connection ends with the PING's.
      const replies = await c.replies(wire.length, 15_000)
      const last = replies[wire.length - 1]
      expect(last, `batch ${b} of ${label} (seed ${rng.seed}): the node answered every command`).toEqual({ type: 'bulk', value: Buffer.from('alive') })
      expect(parseReplies(c.received).length).toBe(wire.length)
    } finally {
      c.close()
    }
    sent += cmds.length
    const before = parseReplies(admin.received).length
    await admin.write(encodeCommand('CONFIG', 'SET', 'maxclients', '10000', 'requirepass', PASSWORD, 'maxmemory', '512mb'))
    const restored = await admin.replies(before + 1)
    if (role === 'primary' || restored[before]?.type !== 'error') expect(restored[before]).toEqual({ type: 'simple', value: 'OK' })
  }
  admin.close()
  return sent
}

async function internalErrors(port: number): Promise<number> {
  const c = await RawConn.connect(port)
  try {
    await c.write(Buffer.concat([encodeCommand('AUTH', PASSWORD), encodeCommand('INFO', 'stats')]))
    const replies = await c.replies(2)
    const text = (replies[1].value as Buffer).toString()
    const line = text.split('\r\n').find((l) => l.startsWith('internal_errors:'))
    expect(line).toBeDefined()
    return Number(line!.split(':')[1])
  } finally {
    c.close()
  }
}

let cluster: Cluster

beforeAll(async () => {
  cluster = await Cluster.start({ password: PASSWORD, workers: [1] })
})

afterAll(async () => {
  await cleanupClusters()
})

test.each([
  ['primary', 0x5eed01],
  ['backup', 0x5eed02],
])('commands from the command table with random arguments never kill the %s, and reach no bug', async (role, seed) => {
  const port = role === 'primary' ? cluster.primary.port : cluster.backups[0].port
  const sent = await fuzz(port, role, seed)
  expect(sent).toBe(BATCHES * BATCH_COMMANDS)
  expect(await internalErrors(port)).toBe(0)
})

test.each(['primary', 'backup'])('CONFIG GET takes glob patterns, never regular expressions (%s)', async (role) => {
  const port = role === 'primary' ? cluster.primary.port : cluster.backups[0].port
  const c = await RawConn.connect(port)
  try {
    await c.write(Buffer.concat([
      encodeCommand('AUTH', PASSWORD),
      encodeCommand('CONFIG', 'GET', '['), encodeCommand('CONFIG', 'GET', '*************x'), encodeCommand('CONFIG', 'GET', '(max.*)'),
      encodeCommand('CONFIG', 'GET', 'MAXCLIENTS'), encodeCommand('CONFIG', 'GET', 'max*'), encodeCommand('CONFIG', 'GET', 'p[o]r?'),
      encodeCommand('PING'),
    ]))
    const replies = await c.replies(8)
    expect(replies.slice(1, 4)).toEqual([{ type: 'array', value: [] }, { type: 'array', value: [] }, { type: 'array', value: [] }])
    const names = (r: Reply): string[] => (r.value as Reply[]).filter((_, i) => i % 2 === 0).map((x) => (x.value as Buffer).toString()).sort()
    expect(names(replies[4])).toEqual(['MAXCLIENTS']) // a plain name is answered as written, as Redis does
    expect(names(replies[5])).toEqual(['maxclients', 'maxmemory'])
    expect(names(replies[6])).toEqual(['port'])
    expect(replies[7]).toEqual({ type: 'simple', value: 'PONG' })
  } finally {
    c.close()
  }
})

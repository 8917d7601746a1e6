/**
 * RESP parser properties. Valid command streams (multibulk and inline) split
 * into arbitrary chunks parse to exactly the original arguments; random bytes
 * and mutated streams (bit flips, truncation, inserted bytes) in arbitrary
 * chunkings only ever throw a DbError with code 'PROTOCOL', and every call
 * makes progress (iterations are bounded). Limits are protocol errors.
 */
import { expect } from 'vitest'
import { fc, test } from '@fast-check/vitest'
import { ARGS_MAX, INLINE_BYTES_MAX } from '../../src/constants.js'
import { DbError } from '../../src/errors.js'
import { PARSE_COMMAND, PARSE_NEED_MORE, RespParser } from '../../src/server/resp.js'

const BULK_MAX = 4096
const BUFFER_MAX = 64 * 1024

type Command = { inline: boolean, args: Uint8Array[] }

function encode(cmds: Command[]): Buffer {
  const parts: Buffer[] = []
  for (const c of cmds) {
    if (c.inline) {
      parts.push(Buffer.concat([Buffer.from(c.args.map((a) => Buffer.from(a).toString('latin1')).join(' '), 'latin1'), Buffer.from('\r\n')]))
      continue
    }
    parts.push(Buffer.from(`*${c.args.length}\r\n`))
    for (const a of c.args) {
      parts.push(Buffer.from(`$${a.length}\r\n`), Buffer.from(a), Buffer.from('\r\n'))
    }
  }
  return Buffer.concat(parts)
}

/** Splits `bytes` at the given fractions (sorted, deduplicated) into fresh Buffers. */
function chunk(bytes: Buffer, cuts: number[]): Buffer[] {
  const at = [...new Set(cuts.map((f) => Math.floor(f * bytes.length)))].sort((a, b) => a - b)
  const out: Buffer[] = []
  let prev = 0
  for (const c of at) {
    if (c > prev) out.push(Buffer.from(bytes.subarray(prev, c)))
    prev = Math.max(prev, c)
  }
  if (prev < bytes.length) out.push(Buffer.from(bytes.subarray(prev)))
  return out
}

interface Outcome {
  commands: Buffer[][]
  error: unknown
}

/**
 * Feeds chunks as a connection does: feed, next() until NEED_MORE, retain().
 * Every next() must consume input or report NEED_MORE; argument ranges must lie
 * in the parsed bytes. After retain() the chunk is scribbled over, as a reused
 * socket buffer would be: the parser must own whatever it kept.
 */
function parseAll(chunks: Buffer[], bulkMax = BULK_MAX, bufferMax = BUFFER_MAX): Outcome {
  const p = new RespParser(bulkMax, bufferMax)
  const commands: Buffer[][] = []
  const total = chunks.reduce((n, c) => n + c.length, 0)
  let iterations = 0
  try {
    for (const c of chunks) {
      p.feed(c)
      for (;;) {
        iterations++
        if (iterations > total + chunks.length + 1) throw new Error('parser does not make progress')
        const before = p.pendingBytes()
        const r = p.next()
        if (r === PARSE_NEED_MORE) {
          expect(p.pendingBytes()).toBe(before)
          break
        }
        expect(r).toBe(PARSE_COMMAND)
        expect(p.pendingBytes()).toBeLessThan(before)
        const args: Buffer[] = []
        for (let i = 0; i < p.argc; i++) {
          const s = p.argStart[i]
          const l = p.argLength[i]
          expect(s >= 0 && l >= 0 && s + l <= p.data.length).toBe(true)
          args.push(Buffer.from(p.data.subarray(s, s + l)))
        }
        commands.push(args)
      }
      p.retain()
      c.fill(0x2a) // '*': the chunk now looks like the start of a command
    }
  } catch (e) {
    return { commands, error: e }
  }
  return { commands, error: null }
}

function expectProtocolErrorOrNone(o: Outcome): void {
  if (o.error === null) return
  if (!(o.error instanceof DbError) || o.error.code !== 'PROTOCOL') throw o.error
}

/** Bulk argument bytes: anything, including CR, LF and '*'. */
const bulkArg = fc.oneof(
  { weight: 20, arbitrary: fc.uint8Array({ maxLength: 40 }) },
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 200, maxLength: BULK_MAX }) },
  { weight: 1, arbitrary: fc.constantFrom(Buffer.from('\r\n'), Buffer.from('*1\r\n$3\r\nfoo\r\n'), Buffer.from('$')) },
)
/** Plain inline argument bytes: no blank (space, \t \n \v \f \r), quote or NUL. */
const inlineArg = fc.uint8Array({ minLength: 1, maxLength: 20 })
  .map((a) => a.map((b) => (b === 32 || (b >= 9 && b <= 13) || b === 0 || b === 34 || b === 39 ? 0x61 : b)))

function commandOf(arg: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Command> {
  return fc.oneof(
    { weight: 4, arbitrary: fc.array(arg, { maxLength: 20 }).map((args) => ({ inline: false, args })) },
    {
      weight: 1,
      // An inline command may not start with '*' (that is a multibulk header).
      arbitrary: fc.array(inlineArg, { minLength: 1, maxLength: 6 }).map((args) => ({
        inline: true,
        args: args[0][0] === 42 ? [Uint8Array.from([0x58, ...args[0]]), ...args.slice(1)] : args,
      })),
    },
  )
}
const command = commandOf(bulkArg)
const smallCommand = commandOf(fc.uint8Array({ maxLength: 12 }))
const cuts = fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 30 })

test.prop([fc.array(command, { minLength: 1, maxLength: 12 }), cuts], { seed: 0x7e5901, numRuns: 120 })(
  'valid streams in any chunking parse to exactly the original arguments',
  (cmds, cutAt) => {
    const o = parseAll(chunk(encode(cmds), cutAt))
    if (o.error !== null) throw o.error
    expect(o.commands).toEqual(cmds.map((c) => c.args.map((a) => Buffer.from(a))))
  },
)

test.prop([fc.array(smallCommand, { minLength: 1, maxLength: 6 }), fc.nat()], { seed: 0x7e5902, numRuns: 100 })(
  'valid streams fed one byte at a time (with one larger chunk) parse to the original arguments',
  (cmds, skew) => {
    const bytes = encode(cmds)
    const big = skew % bytes.length
    const chunks: Buffer[] = []
    for (let i = 0; i < bytes.length;) {
      const end = i === big ? Math.min(bytes.length, i + 50) : i + 1
      chunks.push(Buffer.from(bytes.subarray(i, end)))
      i = end
    }
    const o = parseAll(chunks)
    if (o.error !== null) throw o.error
    expect(o.commands).toEqual(cmds.map((c) => c.args.map((a) => Buffer.from(a))))
  },
)

test.prop([fc.uint8Array({ maxLength: 600 }), cuts], { seed: 0x7e5903, numRuns: 1000 })(
  'random bytes: only PROTOCOL errors, always progress',
  (bytes, cutAt) => {
    expectProtocolErrorOrNone(parseAll(chunk(Buffer.from(bytes), cutAt)))
  },
)

/** Random bytes over the RESP alphabet, where the interesting states are reachable. */
const respish = fc.array(fc.constantFrom(
  '*', '$', '\r', '\n', '\r\n', '-', '0', '1', '2', '3', '9', '12', ' ', 'a', 'GET', '*1\r\n', '$3\r\n', '$-1\r\n', '*-1\r\n', '*0\r\n',
), { maxLength: 80 }).map((parts) => Buffer.from(parts.join(''), 'latin1'))

test.prop([respish, cuts], { seed: 0x7e5904, numRuns: 600 })(
  'RESP-like token soup: only PROTOCOL errors, always progress',
  (bytes, cutAt) => {
    expectProtocolErrorOrNone(parseAll(chunk(bytes, cutAt)))
  },
)

type Mutation =
  | { kind: 'flip', at: number, bit: number }
  | { kind: 'truncate', at: number }
  | { kind: 'insert', at: number, bytes: Uint8Array }
  | { kind: 'delete', at: number, count: number }

const unit = fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true })
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: unit, bit: fc.nat({ max: 7 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: unit }),
  fc.record({ kind: fc.constant('insert' as const), at: unit, bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: unit, count: fc.integer({ min: 1, max: 8 }) }),
)

function mutate(bytes: Buffer, ms: Mutation[]): Buffer {
  let b = Buffer.from(bytes)
  for (const m of ms) {
    const at = Math.floor(m.at * b.length)
    if (m.kind === 'flip') {
      if (b.length > 0) b[at] ^= 1 << m.bit
    } else if (m.kind === 'truncate') {
      b = b.subarray(0, at)
    } else if (m.kind === 'insert') {
      b = Buffer.concat([b.subarray(0, at), m.bytes, b.subarray(at)])
    } else {
      b = Buffer.concat([b.subarray(0, at), b.subarray(at + m.count)])
    }
  }
  return b
}

test.prop([fc.array(command, { minLength: 1, maxLength: 8 }), fc.array(mutation, { minLength: 1, maxLength: 4 }), cuts], { seed: 0x7e5905, numRuns: 400 })(
  'mutated valid streams: only PROTOCOL errors, always progress',
  (cmds, ms, cutAt) => {
    expectProtocolErrorOrNone(parseAll(chunk(mutate(encode(cmds), ms), cutAt)))
  },
)

test.prop([fc.array(command, { minLength: 1, maxLength: 8 }), fc.double({ min: 0, max: 1, noNaN: true }), cuts], { seed: 0x7e5906, numRuns: 300 })(
  'a truncated valid stream yields a prefix of the commands and no error',
  (cmds, frac, cutAt) => {
    const bytes = encode(cmds)
    const o = parseAll(chunk(bytes.subarray(0, Math.floor(frac * bytes.length)), cutAt))
    if (o.error !== null) throw o.error
    const want = cmds.map((c) => c.args.map((a) => Buffer.from(a)))
    expect(o.commands).toEqual(want.slice(0, o.commands.length))
  },
)

function protocolErrorOf(input: string | Buffer, bulkMax = BULK_MAX, bufferMax = BUFFER_MAX): unknown {
  return parseAll([typeof input === 'string' ? Buffer.from(input, 'latin1') : input], bulkMax, bufferMax).error
}

function expectProtocol(e: unknown): void {
  expect(e).toBeInstanceOf(DbError)
  expect((e as DbError).code).toBe('PROTOCOL')
}

test.prop([fc.integer({ min: 1, max: 1 << 20 }), fc.integer({ min: 1, max: 1000 })], { seed: 0x7e5907, numRuns: 200 })(
  'a bulk length over the limit is PROTOCOL; at the limit it waits for the bytes',
  (bulkMax, over) => {
    expectProtocol(protocolErrorOf(`*1\r\n$${bulkMax + over}\r\n`, bulkMax, 1 << 22))
    const atLimit = parseAll([Buffer.from(`*1\r\n$${bulkMax}\r\n`)], bulkMax, 1 << 22)
    expect(atLimit.error).toBeNull()
    expect(atLimit.commands).toEqual([])
  },
)

test('argument count over ARGS_MAX is PROTOCOL; at ARGS_MAX it waits for the arguments', () => {
  expectProtocol(protocolErrorOf(`*${ARGS_MAX + 1}\r\n`))
  expectProtocol(protocolErrorOf(`*${2 ** 40}\r\n`))
  const atLimit = parseAll([Buffer.from(`*${ARGS_MAX}\r\n$1\r\na\r\n`)])
  expect(atLimit.error).toBeNull()
  expect(atLimit.commands).toEqual([])
})

test('malformed headers and terminators are PROTOCOL', () => {
  for (const bad of [
    '*1\r\n$-1\r\n', // null bulk in a request
    '*1\r\n:1\r\n', // not a bulk
    '*x\r\n',
    '*1x\r\n',
    '*\r\n',
    '*-\r\n',
    '*+1\r\n',
    '*1\r\n$\r\n',
    '*1\r\n$3\r\nfoox\r\n', // bulk not followed by CRLF
    '*1\r\n$3\r\nfoo\rx',
    '*1\rx',
    '*1\r\n$1x\r\n',
    `*1\r\n$${'9'.repeat(17)}\r\n`, // too many digits
  ]) {
    const e = protocolErrorOf(bad)
    if (!(e instanceof DbError)) expect.fail(`${JSON.stringify(bad)} gave ${String(e)}`)
    expectProtocol(e)
  }
})

test('an inline request without a newline beyond INLINE_BYTES_MAX is PROTOCOL', () => {
  expectProtocol(protocolErrorOf(Buffer.alloc(INLINE_BYTES_MAX, 0x61)))
  const below = parseAll([Buffer.alloc(INLINE_BYTES_MAX - 1, 0x61)], BULK_MAX, 1 << 20)
  expect(below.error).toBeNull()
  expect(below.commands).toEqual([])
})

test('pending input over the buffer limit is PROTOCOL', () => {
  const chunks = [Buffer.from('*2\r\n$4000\r\n'), Buffer.alloc(3000, 0x62), Buffer.alloc(3000, 0x62)]
  expectProtocol(parseAll(chunks, 1 << 20, 5000).error)
  // The same input under a larger limit just waits.
  const waits = parseAll([Buffer.from('*2\r\n$4000\r\n'), Buffer.alloc(1500, 0x62), Buffer.alloc(1500, 0x62)], 1 << 20, 1 << 20)
  expect(waits.error).toBeNull()
  expect(waits.commands).toEqual([])
})

test('empty and negative-count multibulk headers are empty commands; empty inline lines too', () => {
  const o = parseAll([Buffer.from('*0\r\n*-1\r\n\r\n\n*1\r\n$0\r\n\r\nPING  a\tb \r\n')])
  expect(o.error).toBeNull()
  expect(o.commands).toEqual([
    [], [], [], [],
    [Buffer.alloc(0)],
    [Buffer.from('PING'), Buffer.from('a'), Buffer.from('b')],
  ])
})

/** An argument written inside double quotes: every byte that is not plain printable text as \xHH. */
function doubleQuoted(a: Uint8Array): string {
  let out = '"'
  for (const b of a) {
    if (b >= 0x20 && b < 0x7f && b !== 34 && b !== 92) out += String.fromCharCode(b)
    else out += '\\x' + b.toString(16).padStart(2, '0')
  }
  return out + '"'
}

/** An argument written inside single quotes (no CR, LF, NUL or backslash in it: a trailing backslash would escape the closing quote). */
function singleQuoted(a: Uint8Array): string {
  return "'" + Buffer.from(a).toString('latin1').replace(/'/g, "\\'") + "'"
}

test.prop([fc.array(fc.uint8Array({ maxLength: 30 }), { minLength: 1, maxLength: 8 }), cuts], { seed: 0x7e5902, numRuns: 150 })(
  'inline arguments in double quotes (with \\xHH escapes) parse to exactly the original bytes',
  (args, cutAt) => {
    const line = Buffer.from('ECHO ' + args.map(doubleQuoted).join(' ') + '\r\n', 'latin1')
    const o = parseAll(chunk(line, cutAt))
    expect(o.error).toBeNull()
    expect(o.commands).toEqual([[Buffer.from('ECHO'), ...args.map((a) => Buffer.from(a))]])
  },
)

test.prop([fc.array(fc.uint8Array({ maxLength: 30 }).map((a) => a.map((b) => (b === 10 || b === 13 || b === 0 || b === 92 ? 0x62 : b))), { minLength: 1, maxLength: 8 })], { seed: 0x7e5903, numRuns: 150 })(
  'inline arguments in single quotes parse to exactly the original bytes',
  (args) => {
    const o = parseAll([Buffer.from('ECHO ' + args.map(singleQuoted).join('\t') + '\n', 'latin1')])
    expect(o.error).toBeNull()
    expect(o.commands).toEqual([[Buffer.from('ECHO'), ...args.map((a) => Buffer.from(a))]])
  },
)

test('inline quoting: escapes, quotes joining words, unbalanced quotes are PROTOCOL, a NUL ends the line', () => {
  const o = parseAll([Buffer.from('SET k "a b"\r\nSET k \'it\\\'s\'\r\nECHO "\\n\\r\\t\\b\\a\\\\\\"\\q"\r\nECHO a"b c" d\r\nECHO "\\x4g" "\\x41"\r\nECHO x\0 y\r\n', 'latin1')])
  expect(o.error).toBeNull()
  expect(o.commands.map((c) => c.map((b) => b.toString('latin1')))).toEqual([
    ['SET', 'k', 'a b'],
    ['SET', 'k', "it's"],
    ['ECHO', '\n\r\t\b\x07\\"q'],
    ['ECHO', 'ab c', 'd'],
    ['ECHO', 'x4g', 'A'],
    ['ECHO', 'x'],
  ])
  for (const bad of ['SET k "a b\r\n', "SET k 'a\r\n", 'SET k "a"b\r\n', "SET k 'a'b\r\n", 'ECHO "a\0"\r\n']) {
    expectProtocol(protocolErrorOf(Buffer.from(bad, 'latin1')))
  }
})

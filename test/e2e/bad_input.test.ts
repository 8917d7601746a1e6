/**
 * Bad input on raw sockets (DESIGN.md §5): garbage, mutated RESP, absurd
 * lengths and counts, floods, oversized values, too many clients, memory
 * pressure, a client that never reads its replies. Each gets an error reply
 * and/or its own connection closed; after each, the server still answers PING
 * on a fresh connection and its data is intact.
 */
import net from 'node:net'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import type { Redis } from 'ioredis'
import { startPrimary, type PrimaryProcess } from '../helpers/primary.js'
import { RawConn, closeClient, connectClient, encodeCommand, errorCode, parseReplies, rawCommand, type Reply } from '../helpers/clients.js'
import { createRng } from '../helpers/prng.js'
import { waitFor } from '../helpers/util.js'

/** With --segment-size 1mb the largest value is half a segment. */
const VALUE_BYTES_MAX = 512 * 1024
const SENTINEL_COUNT = 50

let primary: PrimaryProcess
let admin: Redis
const sentinels = new Map<string, Buffer>()

function sentinelValue(i: number): Buffer {
  const b = Buffer.alloc(100 + i * 37)
  for (let k = 0; k < b.length; k++) b[k] = (i * 131 + k * 7) & 0xff
  return b
}

beforeAll(async () => {
  primary = await startPrimary({ commit: 'local', segmentSize: '1mb' })
  admin = connectClient(primary.port)
  const p = admin.pipeline()
  for (let i = 0; i < SENTINEL_COUNT; i++) {
    const key = `sentinel:${i}`
    sentinels.set(key, sentinelValue(i))
    p.set(key, sentinelValue(i))
  }
  await p.exec()
})

afterAll(async () => {
  await closeClient(admin)
  const exit = await primary.stop()
  expect(exit.code).toBe(0)
})

/** The server is alive, answers PING on a fresh connection, and the sentinel data is intact. */
async function expectHealthy(what: string): Promise<void> {
  expect(primary.proc.exitCode, `${what}: process exited; stderr:\n${primary.stderr}`).toBeNull()
  expect(await rawCommand(primary.port, 'PING'), what).toEqual({ type: 'simple', value: 'PONG' })
  const keys = [...sentinels.keys()]
  const got = await admin.mgetBuffer(...keys)
  for (let i = 0; i < keys.length; i++) {
    expect(got[i] !== null && Buffer.compare(got[i]!, sentinels.get(keys[i])!) === 0, `${what}: ${keys[i]} intact`).toBe(true)
  }
}

/** How long a closing or answering server may take before the test gives up (a failure bound only). */
const SERVER_WAIT_MS = 15_000

/**
 * Sends `bytes` on a fresh connection, then waits for what the test expects:
 * 'closed' (the server ends the connection), or, for fuzz rounds that expect
 * nothing in particular, until the server closes it or sends nothing more
 * for idleMs. Returns what came back.
 */
async function sendAndObserve(bytes: Buffer, wait: 'closed' | { idleMs: number } = { idleMs: 60 }): Promise<{ replies: Reply[], closed: boolean, raw: Buffer }> {
  const c = await RawConn.connect(primary.port)
  try {
    await c.write(bytes)
    if (wait === 'closed') {
      await c.waitClosed(SERVER_WAIT_MS)
    } else {
      const deadline = Date.now() + 3_000
      let seen = -1
      while (!c.closed && Date.now() < deadline && seen !== c.received.length) {
        seen = c.received.length
        await c.until(() => c.received.length !== seen, wait.idleMs)
      }
    }
    return { replies: parseReplies(c.received), closed: c.closed, raw: c.received }
  } finally {
    c.close()
  }
}

function errorWord(r: Reply): string {
  return r.type === 'error' ? r.value.split(' ')[0] : `<${r.type}>`
}

describe('garbage on the wire', () => {
  test('seeded random bytes', async () => {
    const rng = createRng('bad input random bytes', 0xbadb17e5)
    for (let round = 0; round < 30; round++) {
      let bytes = rng.bytes(rng.int(1, 2048))
      // A third of the rounds look like the start of a multibulk, to reach deeper into the parser.
      if (round % 3 === 1) bytes = Buffer.concat([Buffer.from(`*${rng.int(1, 9)}\r\n$${rng.int(0, 99)}\r\n`), bytes])
      const what = `random round ${round} (seed ${rng.seed})`
      const { replies } = await sendAndObserve(bytes)
      // Whatever came back is well-formed RESP, and none of it is a success.
      for (const r of replies) expect(r.type, what).toBe('error')
      await expectHealthy(what)
    }
  })

  test('mutated valid RESP', async () => {
    const rng = createRng('bad input mutated RESP', 0x3a7ed)
    const base = Buffer.concat([
      encodeCommand('SET', 'mut:a', 'value-a'), encodeCommand('GET', 'mut:a'), encodeCommand('MSET', 'mut:b', '1', 'mut:c', '2'),
      encodeCommand('INCR', 'mut:n'), encodeCommand('MGET', 'mut:a', 'mut:b'), encodeCommand('MULTI'),
      encodeCommand('SET', 'mut:d', 'x'), encodeCommand('EXEC'), encodeCommand('DEL', 'mut:c'), encodeCommand('ECHO', 'hello'),
    ])
    for (let round = 0; round < 30; round++) {
      let bytes = Buffer.from(base)
      const mutations = rng.int(1, 4)
      for (let m = 0; m < mutations; m++) {
        const at = rng.int(0, bytes.length - 1)
        switch (rng.int(0, 4)) {
          case 0: bytes[at] ^= 1 << rng.int(0, 7); break
          case 1: bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + 1)]); break
          case 2: bytes = Buffer.concat([bytes.subarray(0, at), rng.bytes(rng.int(1, 8)), bytes.subarray(at)]); break
          case 3: bytes[at] = rng.pick([0x2a, 0x24, 0x0d, 0x0a, 0x2d, 0x30, 0x39]); break
          default: bytes = bytes.subarray(0, at); break
        }
      }
      const what = `mutation round ${round} (seed ${rng.seed})`
      await sendAndObserve(bytes)
      await expectHealthy(what)
    }
  })

  test('huge or invalid declared bulk length: error reply, connection closed', async () => {
    for (const len of ['999999999999', '99999999999999999', '-5', '12x', '']) {
      const bytes = Buffer.from(`*2\r\n$3\r\nGET\r\n$${len}\r\n`)
      const { replies, closed } = await sendAndObserve(bytes, 'closed')
      expect(replies.map(errorWord), `$${len}`).toEqual(['ERR'])
      expect(closed, `$${len}`).toBe(true)
      await expectHealthy(`bulk length ${len}`)
    }
  })

  test("'*' with absurd counts: error reply, connection closed", async () => {
    for (const count of ['99999999999', '4294967296', '2147483648', '99999999999999999999', '12abc', '1048577']) {
      const { replies, closed } = await sendAndObserve(Buffer.from(`*${count}\r\n$4\r\nPING\r\n`), 'closed')
      expect(replies.map(errorWord), `*${count}`).toEqual(['ERR'])
      expect(closed, `*${count}`).toBe(true)
      await expectHealthy(`multibulk count ${count}`)
    }
  })

  test('inline garbage gets an error and the connection goes on; an endless inline line is cut', async () => {
    // The connection goes on: the third reply (PONG) comes after the two errors, and a fourth command is answered.
    const c = await RawConn.connect(primary.port)
    try {
      await c.write(Buffer.from('hello world\r\n\x01\x02\x03 \xff\xfe junk\r\nPING\r\n'))
      const replies = await c.replies(3, SERVER_WAIT_MS)
      expect(replies.map(errorWord)).toEqual(['ERR', 'ERR', '<simple>'])
      expect(replies[2]).toEqual({ type: 'simple', value: 'PONG' })
      await c.write(encodeCommand('ECHO', 'on'))
      expect((await c.replies(4, SERVER_WAIT_MS))[3]).toEqual({ type: 'bulk', value: Buffer.from('on') })
      expect(c.closed).toBe(false)
    } finally {
      c.close()
    }

    const long = await sendAndObserve(Buffer.alloc(200 * 1024, 0x61), 'closed')
    expect(long.replies.map(errorWord)).toEqual(['ERR'])
    expect(long.closed).toBe(true)
    await expectHealthy('inline garbage')
  })

  test('a bulk that does not end where it said: error reply, connection closed', async () => {
    // Declared 1.4 MB (within the parser's bulk bound, over the value bound), then bytes with no CRLF.
    const declared = 1_400_000
    const c = await RawConn.connect(primary.port)
    try {
      await c.write(`*3\r\n$3\r\nSET\r\n$8\r\nflood:ka\r\n$${declared}\r\n`)
      const chunk = Buffer.alloc(64 * 1024, 0x78)
      for (let sent = 0; sent < declared + 2 * chunk.length && !c.closed; sent += chunk.length) await c.write(chunk)
      expect(await c.waitClosed(SERVER_WAIT_MS)).toBe(true)
      expect(parseReplies(c.received).map(errorWord)).toEqual(['ERR'])
    } finally {
      c.close()
    }
    expect(await admin.exists('flood:ka')).toBe(0)
    await expectHealthy('unterminated bulk')
  })

  test('a client flooding a never-ending command is cut off at the query buffer bound', async () => {
    // One command of 1,000,000 arguments of 64 KiB each: 64 GB if it were sent whole.
    const sentBytesMax = 256 * 1024 * 1024
    const socket = net.connect({ port: primary.port, host: '127.0.0.1' })
    let received = Buffer.alloc(0)
    let closed = false
    socket.on('data', (d: Buffer) => { received = Buffer.concat([received, d]) })
    socket.on('error', () => { /* EPIPE when writing on after the server's end of stream */ })
    const closedP = new Promise<void>((resolve) => socket.on('close', () => { closed = true; resolve() }))
    await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
    const arg = Buffer.concat([Buffer.from('$65536\r\n'), Buffer.alloc(65536, 0x7a), Buffer.from('\r\n')])
    let sent = 0
    const ok = socket.write('*1000000\r\n$3\r\nSET\r\n')
    if (!ok) await new Promise((r) => socket.once('drain', r))
    // Every write yields to the event loop, so the error reply and the end of stream are read as they
    // arrive (a loop that writes while the kernel keeps taking bytes would never read).
    while (!closed && !socket.destroyed && sent < sentBytesMax) {
      sent += arg.length
      if (!socket.write(arg)) await Promise.race([new Promise((r) => socket.once('drain', r)), closedP])
      else await new Promise((r) => setImmediate(r))
    }
    await Promise.race([closedP, new Promise((r) => setTimeout(r, SERVER_WAIT_MS))])
    socket.destroy()
    expect(closed).toBe(true)
    expect(sent).toBeLessThan(sentBytesMax)
    const replies = parseReplies(received)
    expect(replies.map(errorWord)).toEqual(['ERR'])
    await expectHealthy('never-ending command')
  })
})

describe('expensive requests', () => {
  test('a pathological SCAN MATCH pattern finishes and does not stall other clients', async () => {
    await admin.set(`glob:${'a'.repeat(60)}`, 'x')
    const pattern = `${'*a'.repeat(30)}*b`
    const slow = connectClient(primary.port)
    try {
      // No wall-clock bound: an exponential matcher would take far longer than the test's timeout here
      // (30 stars against a 60-byte key), and the PING below would wait behind it.
      const scanning = (async () => {
        let cursor = '0'
        for (let calls = 0; calls < 10_000; calls++) {
          const [next] = await slow.scan(cursor, 'MATCH', pattern, 'COUNT', '1000')
          cursor = next
          if (cursor === '0') break
        }
      })()
      // Meanwhile another client is served promptly.
      expect(await admin.ping()).toBe('PONG')
      await scanning
    } finally {
      await closeClient(slow)
    }
    await expectHealthy('pathological glob')
  })
})

describe('value and key bounds', () => {
  test('a value over the bound gets an error reply and changes nothing', async () => {
    await admin.set('bound:v', 'original')
    expect(await admin.set('bound:max', Buffer.alloc(VALUE_BYTES_MAX, 0x41))).toBe('OK')
    expect(await admin.strlen('bound:max')).toBe(VALUE_BYTES_MAX)
    expect(await errorCode(admin.set('bound:v', Buffer.alloc(VALUE_BYTES_MAX + 1, 0x42)))).toBe('ERR')
    expect(await admin.get('bound:v')).toBe('original')
    expect(await errorCode(admin.set('bound:new', Buffer.alloc(VALUE_BYTES_MAX + 1, 0x42)))).toBe('ERR')
    expect(await admin.exists('bound:new')).toBe(0)
    expect(await errorCode(admin.getset('bound:v', Buffer.alloc(VALUE_BYTES_MAX + 1)))).toBe('ERR')
    expect(await admin.get('bound:v')).toBe('original')
    // MSET is all-or-nothing: one oversized value, none set.
    expect(await errorCode(admin.mset('bound:m1', 'small', 'bound:m2', Buffer.alloc(VALUE_BYTES_MAX + 1)))).toBe('ERR')
    expect(await admin.exists('bound:m1', 'bound:m2')).toBe(0)
    // APPEND past the bound.
    expect(await errorCode(admin.append('bound:max', 'x'))).toBe('ERR')
    expect(await admin.strlen('bound:max')).toBe(VALUE_BYTES_MAX)
    // Inside MULTI: the whole transaction is discarded.
    expect(await errorCode(admin.multi().set('bound:t1', 'a').set('bound:t2', Buffer.alloc(VALUE_BYTES_MAX + 1)).exec())).toBe('EXECABORT')
    expect(await admin.exists('bound:t1', 'bound:t2')).toBe(0)
    expect(await admin.ping()).toBe('PONG')
    await expectHealthy('oversized values')
  })

  test('a value far over the bound (past the parser bound) on a raw socket: error, connection closed', async () => {
    const c = await RawConn.connect(primary.port)
    try {
      await c.write(`*3\r\n$3\r\nSET\r\n$7\r\nbound:v\r\n$${4 * 1024 * 1024}\r\n`)
      await c.write(Buffer.alloc(64 * 1024, 0x43))
      expect(await c.waitClosed(SERVER_WAIT_MS)).toBe(true)
      expect(parseReplies(c.received).map(errorWord)).toEqual(['ERR'])
    } finally {
      c.close()
    }
    expect(await admin.get('bound:v')).toBe('original')
    await expectHealthy('value past the parser bound')
  })

  test('a key over 64 KiB gets an error reply; 65535 bytes is fine', async () => {
    const key = Buffer.alloc(65_536, 0x6b)
    expect(await errorCode(admin.set(key, 'v'))).toBe('ERR')
    expect(await admin.exists(key)).toBe(0)
    const maxKey = Buffer.alloc(65_535, 0x6b)
    expect(await admin.set(maxKey, 'v')).toBe('OK')
    expect(await admin.get(maxKey)).toBe('v')
    await expectHealthy('oversized key')
  })

  test('a write too large for one log block gets an error and writes nothing', async () => {
    // Three values near the bound: 1.2 MB, more than a 1 MiB segment holds in one block.
    const v = Buffer.alloc(400 * 1024, 0x55)
    expect(await errorCode(admin.mset('block:a', v, 'block:b', v, 'block:c', v))).toBe('ERR')
    expect(await admin.exists('block:a', 'block:b', 'block:c')).toBe(0)
    expect(await errorCode(admin.multi().set('block:a', v).set('block:b', v).set('block:c', v).exec())).toBe('EXECABORT')
    expect(await admin.exists('block:a', 'block:b', 'block:c')).toBe(0)
    // Two of them fit.
    expect(await admin.mset('block:a', v, 'block:b', v)).toBe('OK')
    expect(await admin.strlen('block:b')).toBe(v.length)
    await expectHealthy('write larger than a block')
  })
})

describe('a client that never reads its replies', () => {
  test('is cut off at the reply buffer bound while other clients keep working', async () => {
    const big = Buffer.alloc(VALUE_BYTES_MAX)
    for (let i = 0; i < big.length; i++) big[i] = i & 0xff
    expect(await admin.set('reply:big', big)).toBe('OK')
    const getCount = 160 // 80 MiB of replies > the 64 MiB bound
    const replyBytesTotal = getCount * (VALUE_BYTES_MAX + `$${VALUE_BYTES_MAX}\r\n`.length + 2)

    const socket = net.connect({ port: primary.port, host: '127.0.0.1' })
    await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
    socket.on('error', () => { /* reset by the server */ })
    socket.pause()
    const one = encodeCommand('GET', 'reply:big')
    socket.write(Buffer.concat(Array.from({ length: getCount }, () => one)))

    // While it is stuck, others are served.
    await waitFor(() => primary.stderr.includes('cut off'), SERVER_WAIT_MS, 'the server to log the cut-off')
    const other = connectClient(primary.port)
    try {
      expect(await other.set('reply:other', 'fine')).toBe('OK')
      expect(await other.get('reply:other')).toBe('fine')
      expect(Buffer.compare((await other.getBuffer('reply:big'))!, big)).toBe(0)
    } finally {
      await closeClient(other)
    }

    // Now read what it was sent: a prefix of the replies, then the end of the connection.
    let receivedBytes = 0
    let closed = false
    let head: Buffer | null = null
    socket.on('data', (d: Buffer) => { if (head === null) head = d.subarray(0, 32); receivedBytes += d.length })
    const closedP = new Promise<void>((resolve) => socket.on('close', () => { closed = true; resolve() }))
    socket.resume()
    await Promise.race([closedP, new Promise((r) => setTimeout(r, SERVER_WAIT_MS))])
    socket.destroy()
    expect(closed).toBe(true)
    expect(receivedBytes).toBeLessThan(replyBytesTotal)
    if (head !== null) expect((head as Buffer).toString('latin1')).toMatch(new RegExp(`^\\$${VALUE_BYTES_MAX}\\r\\n`))
    await expectHealthy('reply flood')
  })
})

describe('limits on separate primaries', () => {
  test('--max-clients 5: the 6th connection gets an error and is closed', async () => {
    const p = await startPrimary({ maxClients: 5 })
    const conns: RawConn[] = []
    try {
      for (let i = 0; i < 5; i++) {
        const c = await RawConn.connect(p.port)
        await c.write(encodeCommand('PING'))
        expect(await c.replies(1), `client ${i + 1}`).toEqual([{ type: 'simple', value: 'PONG' }])
        conns.push(c)
      }
      const sixth = await RawConn.connect(p.port)
      await sixth.write(encodeCommand('PING'))
      expect(await sixth.waitClosed(SERVER_WAIT_MS)).toBe(true)
      expect(parseReplies(sixth.received).map(errorWord)).toEqual(['ERR'])
      // The five still work.
      for (const c of conns) {
        c.received = Buffer.alloc(0)
        await c.write(encodeCommand('ECHO', 'still'))
        expect(await c.replies(1)).toEqual([{ type: 'bulk', value: Buffer.from('still') }])
      }
      // Once one leaves, a new client gets in (bounded wait for the server to see the close).
      conns.pop()!.close()
      let admitted: Reply | null = null
      await waitFor(async () => {
        const c = await RawConn.connect(p.port)
        try {
          await c.write(encodeCommand('PING'))
          const r = await c.replies(1, 1_000)
          admitted = r[0] ?? null
          return admitted !== null && admitted.type === 'simple'
        } finally {
          c.close()
        }
      }, SERVER_WAIT_MS, 'a slot to free up')
      expect(admitted).toEqual({ type: 'simple', value: 'PONG' })
    } finally {
      for (const c of conns) c.close()
      await p.stop()
    }
  })

  test('--max-memory: writes get OOM while reads keep working', async () => {
    const p = await startPrimary({ segmentSize: '1mb', maxMemory: '3mb' })
    const c = connectClient(p.port)
    try {
      const value = (i: number): Buffer => Buffer.alloc(64 * 1024, i & 0xff)
      let written = 0
      let oomCode = ''
      for (let i = 0; i < 200; i++) {
        try {
          await c.set(`mem:${i}`, value(i))
          written++
        } catch (err) {
          oomCode = String((err as Error).message).split(' ')[0]
          break
        }
      }
      expect(oomCode).toBe('OOM')
      expect(written).toBeGreaterThan(5)
      // Reads work and see everything written.
      expect(await c.dbsize()).toBe(written)
      for (let i = 0; i < written; i++) expect(Buffer.compare((await c.getBuffer(`mem:${i}`))!, value(i)), `mem:${i}`).toBe(0)
      expect(await c.exists(`mem:${written}`)).toBe(0)
      expect((await c.mget('mem:0', 'mem:1')).length).toBe(2)
      expect(await c.ping()).toBe('PONG')
      // Writes stay refused, with OOM.
      expect(await errorCode(c.set('mem:more', Buffer.alloc(64 * 1024)))).toBe('OOM')
      expect(await errorCode(c.append('mem:0', Buffer.alloc(64 * 1024)))).toBe('OOM')
      expect(await errorCode(c.multi().set('mem:tx', Buffer.alloc(64 * 1024)).exec())).toBe('EXECABORT')
      expect(await c.exists('mem:more', 'mem:tx')).toBe(0)
      expect(Buffer.compare((await c.getBuffer('mem:0'))!, value(0))).toBe(0)
      expect(p.proc.exitCode).toBeNull()
    } finally {
      await closeClient(c)
      await p.stop()
    }
  })
})

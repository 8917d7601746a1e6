/**
 * Every client command of the primary, through ioredis against a real
 * process, with exact expected replies. Errors are checked by their leading
 * code word only. Tests in this file run one after another against one
 * primary, so key-count deltas are exact; each test uses its own key prefix.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import type { Redis } from 'ioredis'
import { startPrimary, type PrimaryProcess } from '../helpers/primary.js'
import { RawConn, closeClient, connectClient, encodeCommand, errorCode, parseInfo, parseReplies, rawCommand, type Reply } from '../helpers/clients.js'
import { createRng } from '../helpers/prng.js'

const MAX_MEMORY_BYTES = 256 * 1024 * 1024

let primary: PrimaryProcess
let r: Redis

beforeAll(async () => {
  primary = await startPrimary({ maxMemory: '256mb' })
  r = connectClient(primary.port)
})

afterAll(async () => {
  await closeClient(r)
  await primary.stop()
})

describe('connection commands', () => {
  test('PING, PING msg', async () => {
    expect(await r.ping()).toBe('PONG')
    expect(await r.ping('hello there')).toBe('hello there')
  })

  test('TIME: unix seconds and microseconds, as two integers, from the node\'s clock', async () => {
    const before = Date.now()
    const [secs, micros] = await r.call('TIME') as [string, string]
    const after = Date.now()
    expect(secs).toMatch(/^\d+$/)
    expect(micros).toMatch(/^\d+$/)
    expect(Number(micros)).toBeLessThan(1e6)
    const ms = Number(secs) * 1000 + Number(micros) / 1000
    expect(ms).toBeGreaterThanOrEqual(before - 1000)
    expect(ms).toBeLessThanOrEqual(after + 1000)
  })

  test('ECHO', async () => {
    expect(await r.echo('hi')).toBe('hi')
    expect(await r.echo('')).toBe('')
  })

  test('SELECT 0 ok, SELECT 1 error', async () => {
    expect(await r.call('SELECT', '0')).toBe('OK')
    expect(await errorCode(r.call('SELECT', '1'))).toBe('ERR')
    expect(await errorCode(r.call('SELECT', 'x'))).toBe('ERR')
  })

  test('AUTH without a configured password is an error', async () => {
    expect(await errorCode(r.call('AUTH', 'whatever'))).toBe('ERR')
  })

  test('CLIENT SETNAME / GETNAME / ID', async () => {
    const c = connectClient(primary.port)
    const d = connectClient(primary.port)
    try {
      expect(await c.client('GETNAME')).toBeNull()
      expect(await c.client('SETNAME', 'worker-1')).toBe('OK')
      expect(await c.client('GETNAME')).toBe('worker-1')
      expect(await errorCode(c.call('CLIENT', 'SETNAME', 'has space'))).toBe('ERR')
      expect(await c.client('GETNAME')).toBe('worker-1')
      const idC = await c.client('ID')
      const idD = await d.client('ID')
      expect(typeof idC).toBe('number')
      expect(idC).toBeGreaterThan(0)
      expect(idD).toBeGreaterThan(0)
      expect(idC).not.toBe(idD)
      expect(await c.client('ID')).toBe(idC)
      expect(await d.client('GETNAME')).toBeNull()
    } finally {
      await closeClient(c)
      await closeClient(d)
    }
  })

  test('COMMAND COUNT', async () => {
    const n = await r.call('COMMAND', 'COUNT')
    expect(typeof n).toBe('number')
    // At least the commands DESIGN.md §4 promises on a primary.
    expect(n as number).toBeGreaterThanOrEqual(20)
  })

  test('CONFIG GET save / maxmemory', async () => {
    expect(await r.call('CONFIG', 'GET', 'save')).toEqual(['save', ''])
    expect(await r.call('CONFIG', 'GET', 'maxmemory')).toEqual(['maxmemory', String(MAX_MEMORY_BYTES)])
  })

  test('QUIT answers OK and the server closes the connection', async () => {
    const c = await RawConn.connect(primary.port)
    await c.write(encodeCommand('QUIT'))
    const replies = await c.replies(1)
    expect(replies[0]).toEqual({ type: 'simple', value: 'OK' })
    expect(await c.waitClosed(3_000)).toBe(true)
    const q = connectClient(primary.port)
    expect(await q.quit()).toBe('OK')
  })

  test('unknown command and wrong arity are errors; the connection stays usable', async () => {
    expect(await errorCode(r.call('NOSUCHCOMMAND', 'a'))).toBe('ERR')
    expect(await errorCode(r.call('GET'))).toBe('ERR')
    expect(await errorCode(r.call('GET', 'a', 'b'))).toBe('ERR')
    expect(await errorCode(r.call('SET', 'a'))).toBe('ERR')
    expect(await errorCode(r.call('ECHO'))).toBe('ERR')
    expect(await errorCode(r.call('INCRBY', 'a'))).toBe('ERR')
    expect(await errorCode(r.call('MSET', 'a', '1', 'b'))).toBe('ERR')
    expect(await r.ping()).toBe('PONG')
  })

  test('PING with more than one argument is a wrong-arity error (as in Redis)', async () => {
    expect(await errorCode(r.call('PING', 'a', 'b')).catch((e: Error) => e.message)).toBe('ERR')
  })

  test('pipelined commands after QUIT are not executed', async () => {
    const c = await RawConn.connect(primary.port)
    await c.write(Buffer.concat([encodeCommand('SET', 'quit:before', '1'), encodeCommand('QUIT'), encodeCommand('SET', 'quit:after', '1')]))
    expect(await c.waitClosed(3_000)).toBe(true)
    expect(parseReplies(c.received)).toEqual([{ type: 'simple', value: 'OK' }, { type: 'simple', value: 'OK' }])
    expect(await r.exists('quit:before')).toBe(1)
    expect(await r.exists('quit:after')).toBe(0)
  })

  test('command names are case-insensitive', async () => {
    expect(await r.call('sEt', 'case:k', 'v')).toBe('OK')
    expect(await r.call('gEt', 'case:k')).toBe('v')
    expect(await r.call('ping')).toBe('PONG')
  })
})

describe('strings', () => {
  test('GET / SET', async () => {
    expect(await r.get('s:missing')).toBeNull()
    expect(await r.set('s:a', 'alpha')).toBe('OK')
    expect(await r.get('s:a')).toBe('alpha')
    expect(await r.set('s:a', 'beta')).toBe('OK')
    expect(await r.get('s:a')).toBe('beta')
    expect(await r.set('s:empty', '')).toBe('OK')
    expect(await r.get('s:empty')).toBe('')
    expect(await r.exists('s:empty')).toBe(1)
  })

  test('SET NX / XX', async () => {
    expect(await r.set('nx:a', '1', 'NX')).toBe('OK')
    expect(await r.set('nx:a', '2', 'NX')).toBeNull()
    expect(await r.get('nx:a')).toBe('1')
    expect(await r.set('xx:a', '1', 'XX')).toBeNull()
    expect(await r.exists('xx:a')).toBe(0)
    expect(await r.set('nx:a', '3', 'XX')).toBe('OK')
    expect(await r.get('nx:a')).toBe('3')
    expect(await errorCode(r.call('SET', 'nx:a', '4', 'NX', 'XX'))).toBe('ERR')
    expect(await errorCode(r.call('SET', 'nx:a', '4', 'BOGUS'))).toBe('ERR')
    expect(await r.get('nx:a')).toBe('3')
  })

  test('SET GET and its combinations with NX / XX', async () => {
    expect(await r.call('SET', 'sg:a', 'v1', 'GET')).toBeNull()
    expect(await r.get('sg:a')).toBe('v1')
    expect(await r.call('SET', 'sg:a', 'v2', 'GET')).toBe('v1')
    expect(await r.get('sg:a')).toBe('v2')
    // NX GET: existing key → old value returned, nothing set.
    expect(await r.call('SET', 'sg:a', 'v3', 'NX', 'GET')).toBe('v2')
    expect(await r.get('sg:a')).toBe('v2')
    // NX GET: missing key → nil, key set.
    expect(await r.call('SET', 'sg:b', 'b1', 'NX', 'GET')).toBeNull()
    expect(await r.get('sg:b')).toBe('b1')
    // XX GET: missing key → nil, nothing set.
    expect(await r.call('SET', 'sg:c', 'c1', 'XX', 'GET')).toBeNull()
    expect(await r.exists('sg:c')).toBe(0)
    // XX GET: existing key → old value, key set.
    expect(await r.call('SET', 'sg:a', 'v4', 'GET', 'XX')).toBe('v2')
    expect(await r.get('sg:a')).toBe('v4')
    // Options are case-insensitive.
    expect(await r.call('SET', 'sg:a', 'v5', 'get', 'xx')).toBe('v4')
    expect(await r.get('sg:a')).toBe('v5')
  })

  test('SET with an expiry sets it; a bad expiry is refused and changes nothing', async () => {
    await r.set('ex:a', 'keep')
    expect(await errorCode(r.call('SET', 'ex:a', 'new', 'EX', '0'))).toBe('ERR')
    expect(await errorCode(r.call('SET', 'ex:a', 'new', 'PX', 'soon'))).toBe('ERR')
    expect(await r.get('ex:a')).toBe('keep')
    expect(await r.call('SET', 'ex:b', 'new', 'EX', '1000')).toBe('OK')
    expect(await r.ttl('ex:b')).toBeGreaterThan(990)
    expect(await r.ttl('ex:a')).toBe(-1)
  })

  test('GETSET', async () => {
    expect(await r.getset('gs:a', 'one')).toBeNull()
    expect(await r.get('gs:a')).toBe('one')
    expect(await r.getset('gs:a', 'two')).toBe('one')
    expect(await r.get('gs:a')).toBe('two')
  })

  test('DEL counts only existing keys (a repeated key once); UNLINK likewise', async () => {
    await r.mset('del:a', '1', 'del:b', '2', 'del:c', '3')
    expect(await r.del('del:a', 'del:b', 'del:missing')).toBe(2)
    expect(await r.exists('del:a', 'del:b', 'del:c')).toBe(1)
    expect(await r.del('del:c', 'del:c')).toBe(1)
    expect(await r.del('del:a')).toBe(0)
    await r.mset('ul:a', '1', 'ul:b', '2')
    expect(await r.unlink('ul:a', 'ul:b', 'ul:x')).toBe(2)
    expect(await r.get('ul:a')).toBeNull()
    // A deleted key can be set again.
    expect(await r.set('del:a', 'again')).toBe('OK')
    expect(await r.get('del:a')).toBe('again')
  })

  test('a deleted key behaves as missing for every command', async () => {
    await r.set('gone:k', '7')
    expect(await r.del('gone:k')).toBe(1)
    expect(await r.get('gone:k')).toBeNull()
    expect(await r.exists('gone:k')).toBe(0)
    expect(await r.strlen('gone:k')).toBe(0)
    expect(await r.mget('gone:k')).toEqual([null])
    expect(await r.set('gone:k', 'x', 'XX')).toBeNull()
    expect(await r.call('SET', 'gone:k', 'x', 'XX', 'GET')).toBeNull()
    expect(await r.exists('gone:k')).toBe(0)
    expect(await r.msetnx('gone:k', 'n')).toBe(1)
    expect(await r.del('gone:k')).toBe(1)
    expect(await r.getset('gone:k', 'g')).toBeNull()
    expect(await r.del('gone:k')).toBe(1)
    expect(await r.incr('gone:k')).toBe(1)
    expect(await r.del('gone:k')).toBe(1)
    expect(await r.append('gone:k', 'abc')).toBe(3)
    expect(await r.get('gone:k')).toBe('abc')
  })

  test('EXISTS counts duplicates', async () => {
    await r.set('ex2:a', '1')
    expect(await r.exists('ex2:a', 'ex2:a', 'ex2:a')).toBe(3)
    expect(await r.exists('ex2:a', 'ex2:nope', 'ex2:a')).toBe(2)
    expect(await r.exists('ex2:nope')).toBe(0)
  })

  test('MGET / MSET', async () => {
    expect(await r.mset('mg:a', 'A', 'mg:b', 'B', 'mg:c', 'C')).toBe('OK')
    expect(await r.mget('mg:a', 'mg:missing', 'mg:c', 'mg:b')).toEqual(['A', null, 'C', 'B'])
    // Later pairs win for a repeated key.
    expect(await r.mset('mg:d', '1', 'mg:d', '2')).toBe('OK')
    expect(await r.get('mg:d')).toBe('2')
  })

  test('MSETNX is all-or-nothing', async () => {
    expect(await r.msetnx('mn:a', '1', 'mn:b', '2')).toBe(1)
    expect(await r.mget('mn:a', 'mn:b')).toEqual(['1', '2'])
    expect(await r.msetnx('mn:c', '3', 'mn:a', 'x', 'mn:d', '4')).toBe(0)
    expect(await r.mget('mn:a', 'mn:c', 'mn:d')).toEqual(['1', null, null])
  })

  test('INCR / INCRBY / DECR / DECRBY', async () => {
    expect(await r.incr('n:a')).toBe(1)
    expect(await r.incrby('n:a', 10)).toBe(11)
    expect(await r.decr('n:a')).toBe(10)
    expect(await r.decrby('n:a', 15)).toBe(-5)
    expect(await r.incrby('n:a', -5)).toBe(-10)
    expect(await r.decrby('n:a', -10)).toBe(0)
    expect(await r.get('n:a')).toBe('0')
    expect(await r.decr('n:b')).toBe(-1)
    await r.set('n:c', '41')
    expect(await r.incr('n:c')).toBe(42)
    expect(await r.get('n:c')).toBe('42')
  })

  test('INCR on a non-integer value, or by a non-integer, is an error and changes nothing', async () => {
    // Redis integer rules (string2ll): optional '-', digits, no leading zero, no '+', within int64.
    for (const bad of ['abc', '1.5', ' 1', '1 ', '+1', '01', '-', '-01', '', '12a', '9223372036854775808', '99999999999999999999']) {
      await r.set('n:bad', bad)
      expect(await errorCode(r.incr('n:bad')).catch((e: Error) => e.message), `INCR on '${bad}'`).toBe('ERR')
      expect(await r.get('n:bad')).toBe(bad)
    }
    await r.set('n:ok', '5')
    expect(await errorCode(r.call('INCRBY', 'n:ok', 'x'))).toBe('ERR')
    expect(await errorCode(r.call('INCRBY', 'n:ok', '1.0'))).toBe('ERR')
    expect(await errorCode(r.call('DECRBY', 'n:ok', '9223372036854775808'))).toBe('ERR')
    expect(await r.get('n:ok')).toBe('5')
  })

  test("'-0' is not an integer (Redis string2ll rejects it), as a value or as an increment", async () => {
    await r.set('n:negzero', '-0')
    expect.soft(await errorCode(r.incr('n:negzero')).catch((e: Error) => e.message), "INCR on '-0'").toBe('ERR')
    expect.soft(await r.get('n:negzero')).toBe('-0')
    await r.set('n:five', '5')
    expect.soft(await errorCode(r.call('INCRBY', 'n:five', '-0')).catch((e: Error) => e.message), "INCRBY by '-0'").toBe('ERR')
    expect.soft(await r.get('n:five')).toBe('5')
  })

  test('64-bit values: exact near 2^63, overflow is an error', async () => {
    const s = connectClient(primary.port, { stringNumbers: true })
    try {
      await s.set('big:a', '9223372036854775800')
      expect(await s.incrby('big:a', 7)).toBe('9223372036854775807')
      expect(await s.get('big:a')).toBe('9223372036854775807')
      expect(await errorCode(s.incr('big:a'))).toBe('ERR')
      expect(await errorCode(s.incrby('big:a', 1000))).toBe('ERR')
      expect(await s.get('big:a')).toBe('9223372036854775807')
      expect(await s.decr('big:a')).toBe('9223372036854775806')

      await s.set('big:b', '-9223372036854775807')
      expect(await s.decr('big:b')).toBe('-9223372036854775808')
      expect(await errorCode(s.decr('big:b'))).toBe('ERR')
      expect(await s.get('big:b')).toBe('-9223372036854775808')
      expect(await s.incr('big:b')).toBe('-9223372036854775807')

      // Crossing 2^53 (where doubles stop being exact), step by step.
      await s.set('big:c', '9007199254740990')
      expect(await s.incr('big:c')).toBe('9007199254740991')
      expect(await s.incr('big:c')).toBe('9007199254740992')
      expect(await s.incr('big:c')).toBe('9007199254740993')
      expect(await s.incr('big:c')).toBe('9007199254740994')
      expect(await s.get('big:c')).toBe('9007199254740994')

      expect(await s.call('INCRBY', 'big:d', '9223372036854775807')).toBe('9223372036854775807')
      expect(await errorCode(s.call('INCRBY', 'big:d', '1'))).toBe('ERR')
      expect(await s.call('INCRBY', 'big:e', '-9223372036854775808')).toBe('-9223372036854775808')
      expect(await s.call('DECRBY', 'big:f', '-9223372036854775807')).toBe('9223372036854775807')
      expect(await errorCode(s.call('DECRBY', 'big:g', '-9223372036854775808'))).toBe('ERR')
      expect(await s.exists('big:g')).toBe('0')
      expect(await s.call('INCRBY', 'big:h', '123456789012345678')).toBe('123456789012345678')
      expect(await s.call('INCRBY', 'big:h', '123456789012345678')).toBe('246913578024691356')
    } finally {
      await closeClient(s)
    }
  })

  test('APPEND / STRLEN', async () => {
    expect(await r.strlen('ap:a')).toBe(0)
    expect(await r.append('ap:a', 'Hello')).toBe(5)
    expect(await r.append('ap:a', ', world')).toBe(12)
    expect(await r.get('ap:a')).toBe('Hello, world')
    expect(await r.strlen('ap:a')).toBe(12)
    expect(await r.append('ap:a', '')).toBe(12)
    expect(await r.strlen('ap:a')).toBe(12)
    await r.set('ap:utf8', 'héllo')
    expect(await r.strlen('ap:utf8')).toBe(6)
  })

  test('binary-safe keys and values (bytes 0..255)', async () => {
    const all = Buffer.alloc(256)
    for (let i = 0; i < 256; i++) all[i] = i
    const key = Buffer.concat([Buffer.from('bin:'), all])
    const value = Buffer.concat([all, all.subarray().reverse(), Buffer.from('\r\n*3\r\n$1\r\n')])
    expect(await r.set(key, value)).toBe('OK')
    expect(Buffer.compare((await r.getBuffer(key))!, value)).toBe(0)
    expect(await r.strlen(key)).toBe(value.length)
    expect(await r.exists(key)).toBe(1)
    // A key that differs in one byte is a different key.
    const other = Buffer.from(key)
    other[other.length - 1] ^= 1
    expect(await r.getBuffer(other)).toBeNull()
    // Each single byte as a key and a value.
    const p = r.pipeline()
    for (let i = 0; i < 256; i++) p.set(Buffer.from([0x62, 0x3a, i]), Buffer.from([i, 255 - i, 0, 13, 10]))
    await p.exec()
    const keys = Array.from({ length: 256 }, (_, i) => Buffer.from([0x62, 0x3a, i]))
    const got = await r.mgetBuffer(...keys)
    for (let i = 0; i < 256; i++) expect(Buffer.compare(got[i]!, Buffer.from([i, 255 - i, 0, 13, 10])), `byte ${i}`).toBe(0)
    expect(Buffer.compare((await r.echoBuffer(all))!, all)).toBe(0)
    // APPEND of binary bytes.
    await r.set(Buffer.from('bin:ap'), Buffer.from([0, 1]))
    expect(await r.append(Buffer.from('bin:ap'), Buffer.from([255, 0, 13]))).toBe(5)
    expect(Buffer.compare((await r.getBuffer('bin:ap'))!, Buffer.from([0, 1, 255, 0, 13]))).toBe(0)
  })

  test('empty key is a key like any other', async () => {
    expect(await r.set('', 'empty-key')).toBe('OK')
    expect(await r.get('')).toBe('empty-key')
    expect(await r.del('')).toBe(1)
    expect(await r.get('')).toBeNull()
  })
})

describe('keyspace', () => {
  test('DBSIZE follows sets and deletes', async () => {
    const before = await r.dbsize()
    await r.mset('db:a', '1', 'db:b', '2', 'db:c', '3')
    expect(await r.dbsize()).toBe(before + 3)
    await r.set('db:a', 'overwrite')
    expect(await r.dbsize()).toBe(before + 3)
    await r.del('db:a', 'db:b')
    expect(await r.dbsize()).toBe(before + 1)
    await r.set('db:a', 'back')
    expect(await r.dbsize()).toBe(before + 2)
    await r.del('db:a', 'db:c')
    expect(await r.dbsize()).toBe(before)
  })

  test('SCAN over 2000 keys: every key exactly once; MATCH; COUNT', async () => {
    const keyCount = 2000
    const keys = Array.from({ length: keyCount }, (_, i) => `scan:${i}`)
    for (let i = 0; i < keyCount; i += 500) {
      const args: string[] = []
      for (const k of keys.slice(i, i + 500)) args.push(k, `v-${k}`)
      await r.mset(...args)
    }
    // Some deleted keys must not show up.
    await r.set('scan-deleted:1', 'x')
    await r.del('scan-deleted:1')
    const dbsize = await r.dbsize()

    const scanAll = async (...opts: string[]): Promise<{ keys: string[], calls: number }> => {
      const seen: string[] = []
      let cursor = '0'
      let calls = 0
      do {
        // Buffers: keys are binary (the binary-safety test's keys are not UTF-8).
        const [next, batch] = await r.callBuffer('SCAN', cursor, ...opts) as [Buffer, Buffer[]]
        for (const k of batch) seen.push(k.toString('latin1'))
        cursor = next.toString()
        calls++
        if (calls > 20_000) throw new Error('SCAN did not finish within 20000 calls')
      } while (cursor !== '0')
      return { keys: seen, calls }
    }

    // No MATCH: every live key exactly once.
    const all = await scanAll()
    expect(new Set(all.keys).size).toBe(all.keys.length)
    expect(all.keys.length).toBe(dbsize)
    expect(all.keys).not.toContain('scan-deleted:1')
    const allSet = new Set(all.keys)
    for (const k of keys) expect(allSet.has(k), k).toBe(true)

    // MATCH: exactly the keys the pattern matches.
    const matched = await scanAll('MATCH', 'scan:1?9')
    const expected = keys.filter((k) => /^scan:1.9$/.test(k)).sort()
    expect([...matched.keys].sort()).toEqual(expected)
    const prefix = await scanAll('MATCH', 'scan:*', 'COUNT', '100')
    expect(prefix.keys.length).toBe(keyCount)
    expect(new Set(prefix.keys).size).toBe(keyCount)

    // COUNT: a bigger hint finishes in fewer calls; same keys either way.
    const small = await scanAll('COUNT', '5')
    const big = await scanAll('COUNT', '5000')
    expect(new Set(small.keys)).toEqual(allSet)
    expect(new Set(big.keys)).toEqual(allSet)
    expect(small.keys.length).toBe(dbsize)
    expect(big.keys.length).toBe(dbsize)
    expect(big.calls).toBeLessThan(small.calls)

    // TYPE: every key is a string.
    const typed = await scanAll('TYPE', 'string', 'COUNT', '1000')
    expect(typed.keys.length).toBe(dbsize)
    expect(await r.call('SCAN', '0', 'TYPE', 'list')).toEqual(['0', []])

    expect(await errorCode(r.call('SCAN', 'notacursor'))).toBe('ERR')
    expect(await errorCode(r.call('SCAN', '0', 'COUNT', '0'))).toBe('ERR')
    expect(await errorCode(r.call('SCAN', '0', 'COUNT'))).toBe('ERR')
  })
})

describe('transactions', () => {
  test('MULTI / EXEC returns the results array', async () => {
    const res = await r.multi().set('tx:a', '1').incr('tx:n').incr('tx:n').get('tx:a').mget('tx:a', 'tx:none').exec()
    expect(res).toEqual([[null, 'OK'], [null, 1], [null, 2], [null, '1'], [null, ['1', null]]])
  })

  test('MULTI / EXEC by hand: QUEUED replies, then the array', async () => {
    const c = await RawConn.connect(primary.port)
    try {
      await c.write(Buffer.concat([
        encodeCommand('MULTI'), encodeCommand('SET', 'tx:raw', 'x'), encodeCommand('APPEND', 'tx:raw', 'yz'),
        encodeCommand('GET', 'tx:raw'), encodeCommand('EXEC'),
      ]))
      const replies = await c.replies(5)
      expect(replies.slice(0, 5)).toEqual([
        { type: 'simple', value: 'OK' },
        { type: 'simple', value: 'QUEUED' },
        { type: 'simple', value: 'QUEUED' },
        { type: 'simple', value: 'QUEUED' },
        { type: 'array', value: [{ type: 'simple', value: 'OK' }, { type: 'integer', value: '3' }, { type: 'bulk', value: Buffer.from('xyz') }] },
      ])
    } finally {
      c.close()
    }
  })

  test('EXECABORT after a queued unknown command; nothing is written', async () => {
    const c = await RawConn.connect(primary.port)
    try {
      await c.write(Buffer.concat([
        encodeCommand('MULTI'), encodeCommand('SET', 'tx:abort', 'x'), encodeCommand('NOSUCHCOMMAND', 'y'),
        encodeCommand('SET', 'tx:abort2', 'y'), encodeCommand('EXEC'),
      ]))
      const replies = await c.replies(5)
      expect(replies[0]).toEqual({ type: 'simple', value: 'OK' })
      expect(replies[1]).toEqual({ type: 'simple', value: 'QUEUED' })
      expect(replies[2].type).toBe('error')
      expect(String(replies[2].value).split(' ')[0]).toBe('ERR')
      expect(replies[3]).toEqual({ type: 'simple', value: 'QUEUED' })
      expect(replies[4].type).toBe('error')
      expect(String(replies[4].value).split(' ')[0]).toBe('EXECABORT')
    } finally {
      c.close()
    }
    expect(await r.exists('tx:abort', 'tx:abort2')).toBe(0)
    // The same through ioredis: EXEC rejects.
    expect(await errorCode(r.multi().set('tx:abort3', '1').call('NOSUCHCOMMAND').exec())).toBe('EXECABORT')
    expect(await r.exists('tx:abort3')).toBe(0)
    // Wrong arity inside MULTI aborts too.
    expect(await errorCode(r.multi().set('tx:abort4', '1').call('GET').exec())).toBe('EXECABORT')
    expect(await r.exists('tx:abort4')).toBe(0)
  })

  test('DISCARD drops the queue; EXEC/DISCARD without MULTI and nested MULTI are errors', async () => {
    const c = connectClient(primary.port)
    try {
      expect(await c.call('MULTI')).toBe('OK')
      expect(await c.call('SET', 'tx:disc', '1')).toBe('QUEUED')
      expect(await errorCode(c.call('MULTI'))).toBe('ERR')
      expect(await c.call('DISCARD')).toBe('OK')
      expect(await c.exists('tx:disc')).toBe(0)
      expect(await errorCode(c.call('EXEC'))).toBe('ERR')
      expect(await errorCode(c.call('DISCARD'))).toBe('ERR')
      expect(await c.set('tx:disc', 'after')).toBe('OK')
      expect(await r.get('tx:disc')).toBe('after')
    } finally {
      await closeClient(c)
    }
  })

  test('a runtime error inside EXEC fails only that command', async () => {
    await r.set('tx:str', 'notanumber')
    const res = await r.multi().set('tx:rt', 'ok').incr('tx:str').get('tx:rt').exec()
    expect(res![0]).toEqual([null, 'OK'])
    expect(String((res![1][0] as Error).message).split(' ')[0]).toBe('ERR')
    expect(res![2]).toEqual([null, 'ok'])
    expect(await r.get('tx:str')).toBe('notanumber')
  })
})

describe('INFO', () => {
  test('sections and their fields', async () => {
    const server = parseInfo(await r.info('server'))
    expect(server.redis_version).toBeDefined()
    expect(server.tcp_port).toBe(String(primary.port))
    expect(server.process_id).toBe(String(primary.proc.pid))

    const replication = parseInfo(await r.info('replication'))
    expect(replication.role).toBe('master')
    expect(replication.freshet_role).toBe('primary')
    for (const k of ['epoch', 'commit_lsn', 'durable_lsn']) expect(replication[k], k).toMatch(/^\d+$/)

    const persistence = parseInfo(await r.info('persistence'))
    for (const k of ['recovery_blocks', 'recovery_truncated_bytes', 'commit_lsn', 'durable_lsn']) expect(persistence[k], k).toMatch(/^\d+$/)
    expect(persistence.recovery_truncated_bytes).toBe('0')

    const stats = parseInfo(await r.info('stats'))
    expect(Number(stats.total_commands_processed)).toBeGreaterThan(0)
    expect(Number(stats.total_connections_received)).toBeGreaterThan(0)

    await r.set('info:k', 'v')
    const keyspace = await r.info('keyspace')
    expect(keyspace).toMatch(/^# Keyspace/)
    expect(parseInfo(keyspace).db0).toMatch(new RegExp(`^keys=${await r.dbsize()},`))

    const all = await r.info()
    for (const h of ['# Server', '# Replication', '# Persistence', '# Stats', '# Keyspace']) expect(all).toContain(h)
    // Only the asked-for section.
    const only = await r.info('replication')
    expect(only).not.toContain('# Server')
  })
})

describe('LSN', () => {
  test('0 before any write on the connection, then monotonic, = commit_lsn when idle', async () => {
    const c = connectClient(primary.port)
    try {
      expect(await c.call('LSN')).toBe(0)
      await c.set('lsn:a', '1')
      const first = await c.call('LSN') as number
      expect(first).toBeGreaterThan(0)
      expect(first % 8).toBe(0)
      // Only this client writes now: its write's block is the log's last.
      const info = parseInfo(await c.info('replication'))
      expect(Number(info.commit_lsn)).toBe(first)
      // Reads do not move it.
      await c.get('lsn:a')
      expect(await c.call('LSN')).toBe(first)
      let last = first
      for (let i = 0; i < 20; i++) {
        await c.incr('lsn:n')
        const lsn = await c.call('LSN') as number
        expect(lsn).toBeGreaterThan(last)
        last = lsn
      }
      expect(Number(parseInfo(await c.info('persistence')).commit_lsn)).toBe(last)
      // Another connection's write does not change this connection's LSN.
      await r.set('lsn:other', 'x')
      expect(await c.call('LSN')).toBe(last)
      // Pipelined writes, LSN in the same pipeline: the end of the block holding the last write.
      const res = await c.pipeline().set('lsn:p1', '1').set('lsn:p2', '2').call('LSN').exec()
      const pipelined = res![2][1] as number
      expect(pipelined).toBeGreaterThan(last)
      expect(await c.call('LSN')).toBe(pipelined)
      expect(Number(parseInfo(await c.info('replication')).commit_lsn)).toBe(pipelined)
      expect(Number(parseInfo(await c.info('replication')).durable_lsn)).toBe(pipelined)
    } finally {
      await closeClient(c)
    }
  })
})

describe('pipelines and many clients', () => {
  test('a long pipeline of interleaved writes and reads gets every reply, in order', async () => {
    const p = r.pipeline()
    const expected: unknown[] = []
    for (let i = 0; i < 3000; i++) {
      p.set(`pipe:${i % 100}`, `v${i}`); expected.push('OK')
      p.get(`pipe:${i % 100}`); expected.push(`v${i}`)
      p.incr('pipe:n'); expected.push(i + 1)
      if (i % 10 === 0) { p.del(`pipe:${i % 100}`); expected.push(1) }
      if (i % 10 === 0) { p.exists(`pipe:${i % 100}`); expected.push(0) }
    }
    const res = await p.exec()
    expect(res!.map(([err, v]) => err === null ? v : `error: ${String(err)}`)).toEqual(expected)
  })

  test('100 concurrent clients each see their own writes and each other\'s', async () => {
    const clients = Array.from({ length: 100 }, () => connectClient(primary.port))
    try {
      await Promise.all(clients.map(async (c, i) => {
        for (let k = 0; k < 10; k++) {
          expect(await c.set(`many:${i}:${k}`, `${i}/${k}`)).toBe('OK')
          expect(await c.get(`many:${i}:${k}`)).toBe(`${i}/${k}`)
          await c.incr('many:total')
        }
      }))
      expect(await r.get('many:total')).toBe('1000')
      const keys = Array.from({ length: 1000 }, (_, n) => `many:${Math.floor(n / 10)}:${n % 10}`)
      expect(await r.mget(...keys)).toEqual(keys.map((_, n) => `${Math.floor(n / 10)}/${n % 10}`))
    } finally {
      await Promise.all(clients.map((c) => closeClient(c)))
    }
  })
})

describe('raw protocol basics', () => {
  test('a pipeline delivered one byte at a time, or in seeded small pieces, parses the same', async () => {
    const rng = createRng('commands byte-split pipeline', 0xb17e)
    const pipeline = Buffer.concat([
      encodeCommand('SET', 'split:a', Buffer.from([0, 13, 10, 36, 42])), encodeCommand('GET', 'split:a'),
      encodeCommand('MSET', 'split:b', 'x'.repeat(300), 'split:c', ''), encodeCommand('MGET', 'split:b', 'split:c', 'split:none'),
      encodeCommand('INCRBY', 'split:n', '-12'), Buffer.from('PING\r\nECHO inline\r\n'), encodeCommand('ECHO', 'end'),
    ])
    const want: Reply[] = [
      { type: 'simple', value: 'OK' }, { type: 'bulk', value: Buffer.from([0, 13, 10, 36, 42]) },
      { type: 'simple', value: 'OK' },
      { type: 'array', value: [{ type: 'bulk', value: Buffer.from('x'.repeat(300)) }, { type: 'bulk', value: Buffer.from('') }, { type: 'bulk', value: null }] },
      { type: 'integer', value: '-12' }, { type: 'simple', value: 'PONG' }, { type: 'bulk', value: Buffer.from('inline') }, { type: 'bulk', value: Buffer.from('end') },
    ]
    for (const mode of ['bytes', 'pieces']) {
      await r.del('split:n')
      const c = await RawConn.connect(primary.port)
      try {
        let at = 0
        while (at < pipeline.length) {
          const n = mode === 'bytes' ? 1 : rng.int(1, 40)
          await c.write(pipeline.subarray(at, at + n))
          at += n
          // Let each piece arrive on its own (a separate read on the server).
          if (mode === 'bytes' || rng.int(0, 1) === 0) await new Promise((resolve) => setImmediate(resolve))
        }
        const got = await c.replies(want.length)
        expect(got, mode).toEqual(want)
      } finally {
        c.close()
      }
    }
  })

  test('inline commands work', async () => {
    const c = await RawConn.connect(primary.port)
    try {
      await c.write('PING\r\nECHO hello\r\n')
      const replies = await c.replies(2)
      expect(replies[0]).toEqual({ type: 'simple', value: 'PONG' })
      expect(replies[1]).toEqual({ type: 'bulk', value: Buffer.from('hello') })
    } finally {
      c.close()
    }
    expect(await rawCommand(primary.port, 'PING')).toEqual({ type: 'simple', value: 'PONG' })
  })
})

describe('SCAN under index growth', () => {
  test('SCAN while keys are added (index growth): every key present throughout is returned, none twice', async () => {
    // A primary of its own: this test leaves 81k keys behind.
    const own = await startPrimary({ commit: 'async' })
    const g = connectClient(own.port)
    const base = Array.from({ length: 1000 }, (_, i) => `grow:${i}`)
    await g.mset(...base.flatMap((k) => [k, '1']))
    const indexBytesBefore = Number(parseInfo(await g.info('memory')).index_bytes)
    const seen = new Map<string, number>()
    let cursor = '0'
    let calls = 0
    let added = 0
    do {
      const [next, batch] = await g.callBuffer('SCAN', cursor, 'MATCH', 'grow:*', 'COUNT', '50') as [Buffer, Buffer[]]
      for (const k of batch) seen.set(k.toString(), (seen.get(k.toString()) ?? 0) + 1)
      cursor = next.toString()
      calls++
      // Between calls, add 2500 new keys (80k in all): the index tables grow under the scan.
      if (added < 80_000) {
        await g.mset(...Array.from({ length: 2500 }, (_, i) => [`grow:new:${added + i}`, '1']).flat())
        added += 2500
      }
      if (calls > 20_000) throw new Error('SCAN did not finish within 20000 calls')
    } while (cursor !== '0')
    expect(added).toBe(80_000)
    expect(Number(parseInfo(await g.info('memory')).index_bytes), 'the index grew during the scan').toBeGreaterThan(indexBytesBefore)
    const missing = base.filter((k) => !seen.has(k))
    expect(missing.slice(0, 10)).toEqual([])
    const twice = [...seen].filter(([, n]) => n > 1).map(([k]) => k)
    expect(twice.slice(0, 10)).toEqual([])
    await closeClient(g)
    await own.stop()
  })
})

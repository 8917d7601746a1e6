/**
 * --requirepass: a connection must AUTH before anything but AUTH/QUIT (and
 * PING); a wrong password gets WRONGPASS; auth is per connection.
 */
import { afterAll, beforeAll, expect, test } from 'vitest'
import { startPrimary, type PrimaryProcess } from '../helpers/primary.js'
import { RawConn, closeClient, connectClient, encodeCommand, errorCode, type Reply } from '../helpers/clients.js'

const PASSWORD = 's3cret-pa55'

let primary: PrimaryProcess

beforeAll(async () => {
  primary = await startPrimary({ requirepass: PASSWORD })
})

afterAll(async () => {
  await primary.stop()
})

function code(reply: Reply): string {
  if (reply.type !== 'error') return `<${reply.type}>`
  return reply.value.split(' ')[0]
}

test('commands before AUTH get NOAUTH and change nothing', async () => {
  const c = await RawConn.connect(primary.port)
  try {
    await c.write(Buffer.concat([
      encodeCommand('SET', 'auth:k', 'v'), encodeCommand('GET', 'auth:k'), encodeCommand('DBSIZE'),
      encodeCommand('MULTI'), encodeCommand('INFO'), encodeCommand('LSN'), encodeCommand('MSET', 'auth:a', '1', 'auth:b', '2'),
    ]))
    const replies = await c.replies(7)
    expect(replies.map(code)).toEqual(['NOAUTH', 'NOAUTH', 'NOAUTH', 'NOAUTH', 'NOAUTH', 'NOAUTH', 'NOAUTH'])
  } finally {
    c.close()
  }
  const admin = connectClient(primary.port, { password: PASSWORD })
  try {
    expect(await admin.exists('auth:k', 'auth:a', 'auth:b')).toBe(0)
  } finally {
    await closeClient(admin)
  }
})

test('wrong password → WRONGPASS, still not authenticated; right password → OK, commands work', async () => {
  const c = await RawConn.connect(primary.port)
  try {
    await c.write(Buffer.concat([
      encodeCommand('AUTH', 'wrong'),
      encodeCommand('AUTH', 'default', 'wrong'),
      encodeCommand('AUTH', 'someone', PASSWORD),
      encodeCommand('AUTH', ''),
      encodeCommand('AUTH', PASSWORD.slice(0, -1)),
      encodeCommand('AUTH', PASSWORD + 'x'),
      encodeCommand('GET', 'auth:k'),
      encodeCommand('AUTH', PASSWORD),
      encodeCommand('SET', 'auth:k', 'v1'),
      encodeCommand('GET', 'auth:k'),
      encodeCommand('AUTH', 'wrong-again'),
      encodeCommand('GET', 'auth:k'),
    ]))
    const replies = await c.replies(12)
    expect(replies.slice(0, 7).map(code)).toEqual(['WRONGPASS', 'WRONGPASS', 'WRONGPASS', 'WRONGPASS', 'WRONGPASS', 'WRONGPASS', 'NOAUTH'])
    expect(replies[7]).toEqual({ type: 'simple', value: 'OK' })
    expect(replies[8]).toEqual({ type: 'simple', value: 'OK' })
    expect(replies[9]).toEqual({ type: 'bulk', value: Buffer.from('v1') })
    expect(code(replies[10])).toBe('WRONGPASS')
    // A failed re-AUTH does not log an authenticated connection out (Redis keeps the old user).
    expect(replies[11]).toEqual({ type: 'bulk', value: Buffer.from('v1') })
    expect(c.closed).toBe(false)
  } finally {
    c.close()
  }
})

test('AUTH default <password> (the two-argument form) works', async () => {
  const c = await RawConn.connect(primary.port)
  try {
    await c.write(Buffer.concat([encodeCommand('AUTH', 'default', PASSWORD), encodeCommand('GET', 'auth:k')]))
    const replies = await c.replies(2)
    expect(replies[0]).toEqual({ type: 'simple', value: 'OK' })
    expect(replies[1]).toEqual({ type: 'bulk', value: Buffer.from('v1') })
  } finally {
    c.close()
  }
})

test('authentication is per connection', async () => {
  const a = connectClient(primary.port, { password: PASSWORD })
  const b = connectClient(primary.port, { enableReadyCheck: false })
  try {
    expect(await a.set('auth:per', 'x')).toBe('OK')
    expect(await errorCode(b.get('auth:per'))).toBe('NOAUTH')
    expect(await b.call('AUTH', PASSWORD)).toBe('OK')
    expect(await b.get('auth:per')).toBe('x')
  } finally {
    await closeClient(a)
    await closeClient(b)
  }
})

test('ioredis with the password option works end to end', async () => {
  const c = connectClient(primary.port, { password: PASSWORD })
  try {
    expect(await c.ping()).toBe('PONG')
    expect(await c.set('auth:io', 'hello')).toBe('OK')
    expect(await c.get('auth:io')).toBe('hello')
    expect(await c.incr('auth:ctr')).toBe(1)
    expect(await c.multi().incr('auth:ctr').get('auth:io').exec()).toEqual([[null, 2], [null, 'hello']])
    const info = await c.info('replication')
    expect(info).toContain('role:master')
    expect(info).toContain('freshet_role:primary')
  } finally {
    await closeClient(c)
  }
})

test('ioredis with a wrong password gets WRONGPASS and cannot run commands', async () => {
  const c = connectClient(primary.port, { password: 'nope', enableReadyCheck: false, retryStrategy: () => null, enableOfflineQueue: true })
  try {
    const code = await errorCode(c.get('auth:io'))
    expect(['NOAUTH', 'WRONGPASS']).toContain(code)
    expect(c.errors.some((e) => String(e.message).startsWith('WRONGPASS'))).toBe(true)
  } finally {
    await closeClient(c)
  }
})

test('QUIT works before AUTH', async () => {
  const c = await RawConn.connect(primary.port)
  try {
    await c.write(encodeCommand('QUIT'))
    const replies = await c.replies(1)
    expect(replies[0]).toEqual({ type: 'simple', value: 'OK' })
    expect(await c.waitClosed(3_000)).toBe(true)
  } finally {
    c.close()
  }
})

test('before AUTH a connection may buffer only a small request; after AUTH the full bounds apply', async () => {
  // An unfinished 60 MB argument: before AUTH it is refused at its length line, nothing is buffered.
  const big = await RawConn.connect(primary.port)
  const many = await RawConn.connect(primary.port)
  const authed = await RawConn.connect(primary.port)
  try {
    await big.write('*2\r\n$4\r\nAUTH\r\n$60000000\r\nxxxx')
    expect((await big.replies(1)).map(code)).toEqual(['ERR'])
    expect(await big.waitClosed()).toBe(true)
    // Too many arguments for any command a client may send before AUTH.
    await many.write('*11\r\n')
    expect((await many.replies(1)).map(code)).toEqual(['ERR'])
    expect(await many.waitClosed()).toBe(true)
    // Once authenticated, the same connection may send large requests again.
    const value = Buffer.alloc(100_000, 'v')
    await authed.write(Buffer.concat([encodeCommand('AUTH', PASSWORD), encodeCommand('SET', 'auth:big', value), encodeCommand('STRLEN', 'auth:big')]))
    const replies = await authed.replies(3)
    expect(replies).toEqual([{ type: 'simple', value: 'OK' }, { type: 'simple', value: 'OK' }, { type: 'integer', value: '100000' }])
  } finally {
    big.close()
    many.close()
    authed.close()
  }
})

test('a request pipelined right behind AUTH in the same write is parsed with the authenticated bounds', async () => {
  const c = await RawConn.connect(primary.port)
  try {
    const value = Buffer.alloc(40_000, 'w')
    await c.write(Buffer.concat([encodeCommand('AUTH', PASSWORD), encodeCommand('SET', 'auth:pipelined', value), encodeCommand('STRLEN', 'auth:pipelined')]))
    const replies = await c.replies(3)
    expect(replies).toEqual([{ type: 'simple', value: 'OK' }, { type: 'simple', value: 'OK' }, { type: 'integer', value: '40000' }])
    expect(c.closed).toBe(false)
  } finally {
    c.close()
  }
})

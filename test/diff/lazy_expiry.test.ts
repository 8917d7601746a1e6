/**
 * Lazy expiry against real Redis: with the active cycle paused on both, an
 * expired key that a command touches (a read, DEL, EXPIRE, EXISTS, a SCAN
 * step) is deleted then and there, so DBSIZE, INFO keyspace and expired_keys
 * move exactly as Redis's do, and one nothing touches stays counted. The same
 * script runs on a fresh redis-server and a fresh freshet primary; every
 * reply must be equal. Expiry times past 2^53 ms and far in the past are
 * taken as Redis takes them.
 */
import { Redis } from 'ioredis'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { startPrimary, type PrimaryProcess } from '../helpers/primary.js'
import { startRedis, type RedisProcess } from '../helpers/redis.js'

let redis: RedisProcess
let freshet: PrimaryProcess

beforeAll(async () => {
  redis = await startRedis(['--databases', '1', '--enable-debug-command', 'local'])
  freshet = await startPrimary()
})

afterAll(async () => {
  await redis?.stop()
  await freshet?.stop()
})

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

function field(info: string, name: string): string | undefined {
  return info.split('\r\n').find((l) => l.startsWith(`${name}:`))?.slice(name.length + 1)
}

/** The script's replies on the server at `port`. */
async function script(port: number): Promise<unknown[]> {
  const c = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0 })
  await c.connect()
  const out: unknown[] = []
  const call = async (...args: string[]): Promise<void> => {
    try {
      out.push(await c.call(args[0], ...args.slice(1)))
    } catch (err) {
      out.push(`error ${(err as Error).message.split(' ')[0]}`)
    }
  }
  const counts = async (): Promise<void> => {
    await call('DBSIZE')
    const info = await c.info()
    out.push(field(info, 'db0') ?? 'no db0', field(info, 'expired_keys'))
  }
  try {
    await call('DEBUG', 'SET-ACTIVE-EXPIRE', '0')
    for (const k of ['a', 'b', 'c', 'd', 'e', 'f', 'g']) await call('PSETEX', k, '100', 'v')
    await call('SET', 'live', 'v')
    await call('SET', 'later', 'v', 'EX', '1000')
    await sleep(300)
    await counts()
    // Reads delete what they meet.
    await call('MGET', 'a', 'b', 'live')
    await counts()
    await call('GET', 'c')
    await call('EXISTS', 'd')
    await counts()
    // So do writes that find the key gone: DEL answers 0, EXPIRE 0, PERSIST 0.
    await call('DEL', 'e')
    await call('EXPIRE', 'f', '100')
    await call('PERSIST', 'g')
    await counts()
    // Nothing left to expire; the live keys stay.
    await call('TTL', 'live')
    await counts()
    // Times Redis takes from int64: far future, far past (the key goes), overflow refused.
    await call('SET', 'big', 'v')
    await call('PEXPIREAT', 'big', '9223372036854770000')
    await call('EXISTS', 'big')
    await call('PEXPIREAT', 'big', '-9223372036854770000')
    await call('TTL', 'big')
    await call('SET', 'big', 'v')
    await call('EXPIREAT', 'big', '9223372036854770')
    await call('EXPIREAT', 'big', '-9223372036854770')
    await call('EXISTS', 'big')
    await call('SET', 'big', 'v', 'PXAT', '9223372036854770000')
    await call('GETEX', 'big', 'PXAT', '9223372036854770000')
    await call('PEXPIRE', 'big', '-9007199254740993')
    await call('EXISTS', 'big')
    await call('SET', 'big', 'v', 'PX', '9223372036854775807')
    await call('SET', 'big', 'v', 'EX', '9223372036854775')
    await call('EXPIRE', 'big', '-9223372036854776')
    await call('PEXPIREAT', 'big', '9223372036854775808')
    await counts()
    await call('DEBUG', 'SET-ACTIVE-EXPIRE', '1')
  } finally {
    c.disconnect()
  }
  return out
}

test('an expired key a command touches is deleted as Redis deletes it; expiry times span int64 as Redis takes them', async () => {
  const want = await script(redis.port)
  // The script says something: keys were counted and then deleted.
  expect(want).toContain('keys=9,expires=8,avg_ttl=0')
  const got = await script(freshet.port)
  expect(got).toEqual(want)
}, 30_000)

/**
 * WATCH across connections, against real Redis and freshet side by side: a
 * key changed by another client between WATCH and EXEC aborts the
 * transaction (null reply), on a primary and on a backup (where the change
 * arrives by replication). ioredis's optimistic-transaction pattern (WATCH,
 * read, MULTI, write, EXEC, retry on null) converges under contention.
 */
import { afterAll, beforeAll, expect, test } from 'vitest'
import { Cluster, cleanupClusters, connect, disconnect, lsnOf, waitApplied } from '../helpers/cluster.js'
import { startRedis, type RedisProcess } from '../helpers/redis.js'
import { RawConn, encodeCommand, parseReplies, type Reply } from '../helpers/clients.js'

let redis: RedisProcess
let cluster: Cluster

beforeAll(async () => {
  redis = await startRedis()
  cluster = await Cluster.start({ password: null, workers: [1] })
})

afterAll(async () => {
  await redis?.stop()
  await cleanupClusters()
})

/** Sends one command on a raw connection and returns its reply (bounded wait). */
async function call(c: RawConn, ...args: string[]): Promise<Reply> {
  const before = parseReplies(c.received).length
  await c.write(encodeCommand(...args))
  const replies = await c.replies(before + 1)
  expect(replies.length).toBe(before + 1)
  return replies[before]
}

async function open(port: number): Promise<RawConn> {
  return RawConn.connect(port)
}

/** A WATCHes k, B writes k, A runs MULTI/SET/EXEC: the EXEC reply and the final value. */
async function interleave(port: number, key: string): Promise<Reply[]> {
  const a = await open(port)
  const b = await open(port)
  try {
    const out: Reply[] = []
    out.push(await call(a, 'SET', key, 'start'))
    out.push(await call(a, 'WATCH', key))
    out.push(await call(b, 'SET', key, 'by-b'))
    out.push(await call(a, 'MULTI'))
    out.push(await call(a, 'SET', key, 'by-a'))
    out.push(await call(a, 'EXEC'))
    out.push(await call(a, 'GET', key))
    // Watching again with no change in between: EXEC runs.
    out.push(await call(a, 'WATCH', key))
    out.push(await call(b, 'GET', key))
    out.push(await call(a, 'MULTI'))
    out.push(await call(a, 'SET', key, 'by-a'))
    out.push(await call(a, 'EXEC'))
    out.push(await call(b, 'GET', key))
    return out
  } finally {
    a.close()
    b.close()
  }
}

test('a key written by another connection between WATCH and EXEC aborts EXEC, as in Redis', async () => {
  const fromRedis = await interleave(redis.port, 'w:k')
  const fromFreshet = await interleave(cluster.primary.port, 'w:k')
  expect(fromRedis[5]).toEqual({ type: 'array', value: null })
  expect(fromFreshet).toEqual(fromRedis)
})

test('on a backup, a watched key changed by replication aborts EXEC', async () => {
  const p = connect(cluster.primary.port)
  const b = await open(cluster.backups[0].port)
  try {
    await p.set('w:repl', '1')
    await waitApplied(cluster.backups[0].port, await lsnOf(p))
    expect(await call(b, 'WATCH', 'w:repl')).toEqual({ type: 'simple', value: 'OK' })
    await p.set('w:repl', '2')
    await waitApplied(cluster.backups[0].port, await lsnOf(p))
    await call(b, 'MULTI')
    await call(b, 'GET', 'w:repl')
    expect(await call(b, 'EXEC')).toEqual({ type: 'array', value: null })
    await call(b, 'WATCH', 'w:repl')
    await call(b, 'MULTI')
    await call(b, 'GET', 'w:repl')
    expect(await call(b, 'EXEC')).toEqual({ type: 'array', value: [{ type: 'bulk', value: Buffer.from('2') }] })
  } finally {
    disconnect(p)
    b.close()
  }
})

test('ioredis optimistic transactions (WATCH + MULTI + retry) lose no increment under contention', async () => {
  const clients = Array.from({ length: 4 }, () => connect(cluster.primary.port))
  const rounds = 25
  try {
    await clients[0].set('w:counter', '0')
    await Promise.all(clients.map(async (c) => {
      for (let i = 0; i < rounds; i++) {
        for (let attempt = 0; attempt < 1000; attempt++) {
          await c.watch('w:counter')
          const v = Number(await c.get('w:counter'))
          const r = await c.multi().set('w:counter', String(v + 1)).exec()
          if (r !== null) break
        }
      }
    }))
    expect(await clients[0].get('w:counter')).toBe(String(clients.length * rounds))
  } finally {
    for (const c of clients) disconnect(c)
  }
})

test('the cleaner relocating a watched key is not a change: EXEC runs', async () => {
  const c = await Cluster.start({ password: null, workers: [1], segmentSize: '1mb', args: ['--retain-bytes', '0'] })
  const a = await open(c.primary.port)
  const filler = connect(c.primary.port)
  try {
    expect(await call(a, 'SET', 'w:moved', 'start')).toEqual({ type: 'simple', value: 'OK' })
    const written = Number((await call(a, 'LSN')).value)
    expect(await call(a, 'WATCH', 'w:moved')).toEqual({ type: 'simple', value: 'OK' })
    // Fill segments and clean until the segment that held the watched version is released.
    for (let i = 0; i < 200; i++) {
      const p = filler.pipeline()
      for (let j = 0; j < 20; j++) p.set(`w:filler:${j}`, 'f'.repeat(16_000))
      p.call('FRESHET.CLEAN', '4')
      await p.exec()
      const persistence = await filler.info('persistence')
      if (Number(/horizon_lsn:(\d+)/.exec(persistence)![1]) > written) break
    }
    const persistence = await filler.info('persistence')
    expect(Number(/horizon_lsn:(\d+)/.exec(persistence)![1]), 'the watched version\'s segment was released').toBeGreaterThan(written)
    expect(await call(a, 'MULTI')).toEqual({ type: 'simple', value: 'OK' })
    expect(await call(a, 'SET', 'w:moved', 'by-a')).toEqual({ type: 'simple', value: 'QUEUED' })
    expect(await call(a, 'EXEC')).toEqual({ type: 'array', value: [{ type: 'simple', value: 'OK' }] })
    expect(await filler.get('w:moved')).toBe('by-a')
  } finally {
    a.close()
    disconnect(filler)
  }
}, 60_000)

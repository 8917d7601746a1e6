/**
 * The client libraries users use, with their default settings, against a
 * primary and a backup: node-redis (RESP2 and RESP3), ioredis, and redis-py
 * (run as a Python script; .ci/run installs it, and a missing redis-py fails
 * this test, never skips it).
 */
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { createClient } from 'redis'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { Cluster, cleanupClusters, connect, disconnect, lsnOf } from '../helpers/cluster.js'

const PASSWORD = 'clients-secret'
let cluster: Cluster

beforeAll(async () => {
  cluster = await Cluster.start({ password: PASSWORD, commit: 'local', workers: [1] })
})

afterAll(async () => {
  await cleanupClusters()
})

test('redis-py with its default settings (RESP3 via HELLO 3): commands, pipelines, WATCH, reads on a backup', () => {
  const script = fileURLToPath(new URL('./redis_py_check.py', import.meta.url))
  const r = spawnSync('python3', [script, String(cluster.primary.port), String(cluster.backups[0].port), PASSWORD], { encoding: 'utf8', timeout: 60_000 })
  const output = `${r.stdout}\n${r.stderr}`
  expect(r.error, output).toBeUndefined()
  if (/No module named 'redis'/.test(r.stderr)) throw new Error('redis-py is not installed (.ci/run installs it: python3 -m pip install redis==8.1.0)')
  expect(r.status, output).toBe(0)
  expect(output).toMatch(/PASSED \d+/)
})

for (const RESP of [2, 3] as const) {
  test(`node-redis (RESP${RESP}): commands, pipelines, WATCH transactions, reads on a backup`, async () => {
    const url = (port: number): string => `redis://default:${PASSWORD}@127.0.0.1:${port}`
    const c = createClient({ url: url(cluster.primary.port), RESP })
    const other = createClient({ url: url(cluster.primary.port), RESP })
    const b = createClient({ url: url(cluster.backups[0].port), RESP })
    c.on('error', () => {})
    other.on('error', () => {})
    b.on('error', () => {})
    await Promise.all([c.connect(), other.connect(), b.connect()])
    try {
      const k = `nr${RESP}:`
      expect(await c.set(`${k}a`, 'v')).toBe('OK')
      expect(await c.get(`${k}a`)).toBe('v')
      expect(await c.get(`${k}missing`)).toBeNull()
      expect(await c.incrByFloat(`${k}f`, 0.1)).toBe('0.1')
      expect(await c.mGet([`${k}a`, `${k}missing`])).toEqual(['v', null])
      expect(await c.getRange(`${k}a`, 0, -1)).toBe('v')
      expect(await c.type(`${k}a`)).toBe('string')
      expect(await c.configGet('maxclients')).toEqual({ maxclients: '10000' })
      const replies = await c.multi().incr(`${k}n`).incr(`${k}n`).get(`${k}n`).exec()
      expect(replies).toEqual([1, 2, '2'])
      const pipelined = await Promise.all(Array.from({ length: 50 }, (_, i) => c.set(`${k}p${i}`, String(i))))
      expect(pipelined.every((r) => r === 'OK')).toBe(true)
      // WATCH on a connection of its own: another client writes the key, EXEC aborts.
      const iso = c.duplicate()
      iso.on('error', () => {})
      await iso.connect()
      try {
        await iso.watch(`${k}w`)
        await other.set(`${k}w`, 'changed')
        await expect(iso.multi().set(`${k}w`, 'mine').exec()).rejects.toThrow()
      } finally {
        await iso.quit()
      }
      expect(await c.get(`${k}w`)).toBe('changed')
      const lsn = Number(await c.sendCommand(['LSN']))
      expect(Number(await b.sendCommand(['WAITLSN', String(lsn), '10000']))).toBeGreaterThanOrEqual(lsn)
      expect(await b.get(`${k}a`)).toBe('v')
      await expect(b.set(`${k}a`, 'x')).rejects.toThrow(/READONLY/)
    } finally {
      await Promise.allSettled([c.quit(), other.quit(), b.quit()])
    }
  })
}

test('ioredis with its default settings: commands, pipelines, WATCH, reads on a backup', async () => {
  const c = connect(cluster.primary.port, { password: PASSWORD, extra: { enableReadyCheck: true } })
  const b = connect(cluster.backups[0].port, { password: PASSWORD })
  try {
    expect(await c.set('io:a', 'v')).toBe('OK')
    expect(await c.incrbyfloat('io:f', '0.1')).toBe('0.1')
    expect(await c.getrange('io:a', 0, -1)).toBe('v')
    const p = c.pipeline()
    for (let i = 0; i < 20; i++) p.set(`io:p${i}`, String(i))
    expect((await p.exec())!.every(([err]) => err === null)).toBe(true)
    await c.watch('io:w')
    await c.get('io:w')
    expect(await c.multi().set('io:w', '1').exec()).toEqual([[null, 'OK']])
    const lsn = await lsnOf(c)
    expect(Number(await b.call('WAITLSN', String(lsn), '10000'))).toBeGreaterThanOrEqual(lsn)
    expect(await b.get('io:w')).toBe('1')
  } finally {
    disconnect(c)
    disconnect(b)
  }
})

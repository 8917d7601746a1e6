/**
 * The node's own commands on real processes: MONITOR (echoes commands; a
 * monitor that does not read is cut off, the node goes on), DEBUG DIGEST
 * (equal on a primary and its backup), DEBUG SLEEP, CONFIG SET (run-time
 * parameters take effect; immutable ones are refused), RESET with a
 * password, the INFO fields tools read, and SHUTDOWN (flushes the log: what
 * was acknowledged is there after a restart).
 */
import net from 'node:net'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { Cluster, cleanupClusters, connect, disconnect, errorCode, info, lsnOf, waitApplied } from '../helpers/cluster.js'
import { startPrimary } from '../helpers/primary.js'
import { RawConn, encodeCommand, parseReplies } from '../helpers/clients.js'

let cluster: Cluster

beforeAll(async () => {
  cluster = await Cluster.start({ password: null, workers: [1] })
})

afterAll(async () => {
  await cleanupClusters()
})

test('MONITOR shows each command with its arguments quoted; AUTH arguments are hidden', async () => {
  const m = await RawConn.connect(cluster.primary.port)
  const c = connect(cluster.primary.port)
  try {
    await m.write(encodeCommand('MONITOR'))
    expect(await m.replies(1)).toEqual([{ type: 'simple', value: 'OK' }])
    await c.set('mon:k', 'a "b"\n')
    await c.call('AUTH', 'default', 'secret-word').catch(() => null)
    await c.get('mon:k')
    expect(await m.until(() => m.received.toString().includes('"get" "mon:k"'), 5_000)).toBe(true)
    const text = m.received.toString()
    expect(text).toMatch(/\+\d+\.\d{6} \[0 127\.0\.0\.1:\d+\] "set" "mon:k" "a \\"b\\"\\n"/)
    expect(text.toLowerCase()).toContain('"auth" "(redacted)" "(redacted)"')
    expect(text).not.toContain('secret-word')
  } finally {
    m.close()
    disconnect(c)
  }
})

test('a monitor that does not read is cut off and the node goes on', async () => {
  // A raw socket that never reads: its receive window fills, the node's output for it grows to the bound.
  const stuck = net.connect({ port: cluster.primary.port, host: '127.0.0.1' })
  stuck.on('error', () => { /* cut off by the node: expected */ })
  await new Promise<void>((resolve) => stuck.once('connect', () => resolve()))
  stuck.write(encodeCommand('MONITOR'))
  stuck.pause()
  const c = connect(cluster.primary.port)
  try {
    const big = 'v'.repeat(64 * 1024)
    let cut = false
    for (let i = 0; i < 400 && !cut; i++) {
      const p = c.pipeline()
      for (let j = 0; j < 20; j++) p.set(`mon:big${j}`, big)
      await p.exec()
      cut = stuck.destroyed || Number((await info(c, 'clients')).get('monitors')) === 0
    }
    expect(cut).toBe(true)
    expect(await c.ping()).toBe('PONG')
  } finally {
    stuck.destroy()
    disconnect(c)
  }
})

test('DEBUG DIGEST is the same on a primary and its backup, and changes with the data', async () => {
  const p = connect(cluster.primary.port)
  const b = connect(cluster.backups[0].port)
  try {
    await p.mset('dg:a', '1', 'dg:b', '2')
    await waitApplied(cluster.backups[0].port, await lsnOf(p))
    const d1 = await p.call('DEBUG', 'DIGEST')
    expect(d1).toMatch(/^[0-9a-f]{40}$/)
    expect(await b.call('DEBUG', 'DIGEST')).toBe(d1)
    await p.set('dg:a', '3')
    expect(await p.call('DEBUG', 'DIGEST')).not.toBe(d1)
    const [v] = await p.call('DEBUG', 'DIGEST-VALUE', 'dg:missing') as string[]
    expect(v).toBe('0'.repeat(40))
    expect(await errorCode(p.call('DEBUG', 'JMAP'))).toBe('ERR')
  } finally {
    disconnect(p)
    disconnect(b)
  }
})

test('DEBUG SLEEP blocks the node for that long', async () => {
  const a = connect(cluster.primary.port)
  const b = connect(cluster.primary.port)
  try {
    const t0 = Date.now()
    const sleeping = a.call('DEBUG', 'SLEEP', '0.3')
    await new Promise((r) => setTimeout(r, 50))
    await b.ping()
    // The PING waited for the sleep: at least the part of it left after 50 ms.
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250)
    expect(await sleeping).toBe('OK')
  } finally {
    disconnect(a)
    disconnect(b)
  }
})

test('CONFIG SET changes run-time parameters; immutable ones are refused', async () => {
  const c = connect(cluster.primary.port)
  try {
    expect(await c.call('CONFIG', 'SET', 'maxmemory', '1')).toBe('OK')
    expect(await errorCode(c.set('cfg:k', 'v'))).toBe('OOM')
    expect(await c.call('CONFIG', 'SET', 'maxmemory', '512mb')).toBe('OK')
    expect(await c.call('CONFIG', 'GET', 'maxmemory')).toEqual(['maxmemory', String(512 * 1024 * 1024)])
    expect(await c.set('cfg:k', 'v')).toBe('OK')
    expect(await errorCode(c.call('CONFIG', 'SET', 'port', '1'))).toBe('ERR')
    expect(await errorCode(c.call('CONFIG', 'SET', 'maxmemory', 'lots'))).toBe('ERR')
    // All pairs are checked before any applies.
    expect(await errorCode(c.call('CONFIG', 'SET', 'maxclients', '7', 'nonsense', '1'))).toBe('ERR')
    expect(await c.call('CONFIG', 'GET', 'maxclients')).toEqual(['maxclients', '10000'])
  } finally {
    disconnect(c)
  }
})

test('INFO has the fields tools read, with Redis\'s names', async () => {
  const c = connect(cluster.primary.port)
  try {
    const all = await info(c, 'everything')
    for (const field of ['run_id', 'blocked_clients', 'instantaneous_ops_per_sec', 'used_memory', 'used_memory_human', 'mem_allocator', 'connected_clients', 'uptime_in_seconds']) {
      expect(all.has(field), field).toBe(true)
    }
    expect(all.get('run_id')).toMatch(/^[0-9a-f]{40}$/)
  } finally {
    disconnect(c)
  }
})

test('RESET on a node with a password: the connection must AUTH again', async () => {
  const primary = await startPrimary({ requirepass: 'pw' })
  const c = await RawConn.connect(primary.port)
  try {
    await c.write(Buffer.concat([encodeCommand('AUTH', 'pw'), encodeCommand('PING'), encodeCommand('RESET'), encodeCommand('GET', 'k')]))
    const replies = await c.replies(4)
    expect(replies.slice(0, 3)).toEqual([{ type: 'simple', value: 'OK' }, { type: 'simple', value: 'PONG' }, { type: 'simple', value: 'RESET' }])
    expect(replies[3].type === 'error' && String(replies[3].value).split(' ')[0]).toBe('NOAUTH')
  } finally {
    c.close()
    await primary.stop()
  }
})

test('SHUTDOWN flushes the log and stops the node; what was acknowledged is there after a restart', async () => {
  const primary = await startPrimary({ commit: 'async' })
  const c = await RawConn.connect(primary.port)
  await c.write(Buffer.concat([encodeCommand('SET', 'sd:k', 'kept'), encodeCommand('SHUTDOWN', 'NOSAVE')]))
  expect((await c.replies(1))[0]).toEqual({ type: 'simple', value: 'OK' })
  const exit = await primary.waitExit(10_000)
  expect(exit.code).toBe(0)
  c.close()
  const again = await startPrimary({ dir: primary.dir })
  const d = await RawConn.connect(again.port)
  try {
    await d.write(encodeCommand('GET', 'sd:k'))
    expect(parseReplies((await d.replies(1)) && d.received)[0]).toEqual({ type: 'bulk', value: Buffer.from('kept') })
  } finally {
    d.close()
    await again.stop()
  }
})

test('COMMAND INFO answers Redis 7\'s ten-field entries for the named commands only; keyless commands declare no keys', async () => {
  const c = connect(cluster.primary.port)
  try {
    const [get, dbsize, scan, mset] = await c.call('COMMAND', 'INFO', 'get', 'dbsize', 'scan', 'mset') as unknown[][]
    expect(get.length).toBe(10)
    expect(get.slice(0, 6)).toEqual(['get', 2, ['readonly'], 1, 1, 1])
    expect(get[6]).toEqual(['@read', '@string'])
    expect(dbsize.slice(3, 6)).toEqual([0, 0, 0])
    expect(scan.slice(3, 6)).toEqual([0, 0, 0])
    expect(mset.slice(3, 6)).toEqual([1, -1, 2])
    const count = await c.call('COMMAND', 'COUNT') as number
    const list = await c.call('COMMAND', 'LIST') as string[]
    expect(list.length).toBe(count)
    expect(list).toContain('incrbyfloat')
    expect((await c.call('COMMAND') as unknown[]).length).toBe(count)
  } finally {
    disconnect(c)
  }
})

test('CLIENT LIST has Redis\'s fields and filters by ID and TYPE; CLIENT KILL ID closes that connection', async () => {
  const a = connect(cluster.primary.port)
  const b = connect(cluster.primary.port)
  try {
    await b.call('CLIENT', 'SETNAME', 'victim')
    const idB = await b.call('CLIENT', 'ID') as number
    const one = await a.call('CLIENT', 'LIST', 'ID', String(idB)) as string
    const lines = one.trim().split('\n')
    expect(lines.length).toBe(1)
    const fields = new Map(lines[0].split(' ').map((kv) => kv.split('=', 2) as [string, string]))
    for (const f of ['id', 'addr', 'laddr', 'fd', 'name', 'age', 'idle', 'flags', 'db', 'multi', 'qbuf', 'obl', 'omem', 'tot-mem', 'cmd', 'user', 'resp']) expect(fields.has(f), f).toBe(true)
    expect(fields.get('name')).toBe('victim')
    expect(fields.get('cmd')).toBe('client')
    const normal = (await a.call('CLIENT', 'LIST', 'TYPE', 'normal') as string).trim().split('\n')
    expect(normal.length).toBeGreaterThanOrEqual(2)
    expect(await a.call('CLIENT', 'KILL', 'ID', String(idB))).toBe(1)
    await expect(b.ping()).rejects.toThrow()
    expect((await a.call('CLIENT', 'INFO') as string)).toMatch(/^id=\d+ addr=127\.0\.0\.1:\d+ /)
  } finally {
    disconnect(a)
    disconnect(b)
  }
})

test('ROLE answers as Redis does on a primary and on a backup', async () => {
  const p = connect(cluster.primary.port)
  const b = connect(cluster.backups[0].port)
  try {
    await p.set('role:k', 'v')
    await waitApplied(cluster.backups[0].port, await lsnOf(p))
    const [name, offset, replicas] = await p.call('ROLE') as [string, number, string[][]]
    expect(name).toBe('master')
    expect(offset).toBeGreaterThan(0)
    expect(replicas.length).toBe(1)
    expect(replicas[0][0]).toBe('127.0.0.1')
    expect(replicas[0][1]).toBe(String(cluster.backups[0].port))
    const [bname, host, port, state, boffset] = await b.call('ROLE') as [string, string, number, string, number]
    expect([bname, host, port, state]).toEqual(['slave', '127.0.0.1', cluster.primary.port, 'connected'])
    expect(boffset).toBeGreaterThan(0)
  } finally {
    disconnect(p)
    disconnect(b)
  }
})

test('FLUSHALL is replayed by backups: every key goes at once', async () => {
  const p = connect(cluster.primary.port)
  const b = connect(cluster.backups[0].port)
  try {
    await p.mset('fl:a', '1', 'fl:b', '2')
    expect(await p.flushall()).toBe('OK')
    expect(await p.dbsize()).toBe(0)
    await waitApplied(cluster.backups[0].port, await lsnOf(p))
    expect(await b.dbsize()).toBe(0)
    expect(await b.exists('fl:a', 'fl:b')).toBe(0)
    expect(await errorCode(b.flushall())).toBe('READONLY')
  } finally {
    disconnect(p)
    disconnect(b)
  }
})

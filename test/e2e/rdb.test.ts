/**
 * RDB snapshots against the real Redis tools as the oracle: a file freshet
 * writes (SAVE, BGSAVE on a backup, redis-cli --rdb) passes redis-check-rdb
 * and, loaded into a real redis-server, holds exactly freshet's keys and
 * values; a file real redis-server writes (LZF-compressed, integer-encoded,
 * binary values, keys with a TTL, another type, another database) loads into
 * freshet exactly, refusing or skipping what freshet cannot hold; damaged
 * files are refused and leave nothing behind; a BGSAVE on a backup under a
 * write load is the state at its LSN while replay and reads go on.
 */
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import type { Redis } from 'ioredis'
import { afterAll, describe, expect, test } from 'vitest'
import { cleanupClusters, connect, disconnect, info, makeTempDir, seededRng, sleep, startBackupNode, startPrimaryNode, waitFor } from '../helpers/cluster.js'
import { startRedis, type RedisProcess } from '../helpers/redis.js'
import { MAIN_JS } from '../helpers/primary.js'
import { crc64 } from '../../src/rdb/crc64.js'

afterAll(async () => {
  await cleanupClusters()
})

/** Every key and value (hex) of a node with its absolute expiry (PEXPIRETIME, -1: none), by SCAN + MGET. */
async function digest(c: Redis): Promise<Map<string, string>> {
  const m = new Map<string, string>()
  let cursor = '0'
  for (let i = 0; i < 100_000; i++) {
    const [next, keys] = await c.scanBuffer(cursor, 'COUNT', 500)
    for (const k of keys) m.set(k.toString('hex'), '')
    cursor = String(next)
    if (cursor === '0') break
  }
  const keys = [...m.keys()]
  for (let i = 0; i < keys.length; i += 500) {
    const batch = keys.slice(i, i + 500).map((h) => Buffer.from(h, 'hex'))
    const values = await c.mgetBuffer(...batch)
    const p = c.pipeline()
    for (const k of batch) p.call('PEXPIRETIME', k)
    const expiries = (await p.exec())!.map(([, e]) => String(e))
    values.forEach((v, j) => m.set(keys[i + j], `${v === null ? 'null' : v.toString('hex')}@${expiries[j]}`))
  }
  return m
}

/** Loads `file` into a new redis-server and returns its digest. */
async function redisDigestOf(file: string): Promise<Map<string, string>> {
  const check = spawnSync('redis-check-rdb', [file], { encoding: 'utf8' })
  expect(check.status, `redis-check-rdb ${file}: ${check.stdout}${check.stderr}`).toBe(0)
  const redis: RedisProcess = await startRedis(['--dir', path.dirname(file), '--dbfilename', path.basename(file)])
  const c = connect(redis.port, { password: '' })
  try {
    return await digest(c)
  } finally {
    disconnect(c)
    await redis.stop()
  }
}

function runCli(args: string[]): { code: number | null, stderr: string } {
  const r = spawnSync(process.execPath, [MAIN_JS, ...args], { encoding: 'utf8', timeout: 60_000 })
  return { code: r.status, stderr: r.stderr }
}

/** The code word freshet's CLI logs for a refusal: "error (CODE): ...". */
function cliErrorCode(stderr: string): string {
  return /error \(([A-Z_]+)\)/.exec(stderr)?.[1] ?? `no error code in: ${stderr.slice(-500)}`
}

async function writeMix(c: Redis, seed: number): Promise<void> {
  const rng = seededRng('rdb mix', seed)
  const p = c.pipeline()
  for (let i = 0; i < 400; i++) p.set(`k:${i}`, rng.bytes(rng.int(0, 300)))
  p.set('empty', '')
  p.set('int', '12345')
  p.set('neg', '-42')
  p.set('big', 'b'.repeat(20_000))
  p.set('bigger', rng.bytes(70_000))
  p.set(Buffer.from([0, 1, 2, 255]), 'binary key')
  p.set('unicode ключ', 'значение')
  // Keys with an absolute expiry far ahead (their times are compared exactly).
  p.set('ttl:a', 'x', 'PXAT', 4102444800000)
  p.set('ttl:b', 'y'.repeat(100), 'EXAT', 4102444801)
  await p.exec()
}

describe('RDB files freshet writes', () => {
  test('SAVE on a primary and BGSAVE on its backup pass redis-check-rdb and load into redis-server with exactly the same keys and values', async () => {
    const primary = await startPrimaryNode({ commit: 'local' })
    const backup = await startBackupNode(primary.port)
    const p = connect(primary.port)
    const b = connect(backup.port)
    try {
      await writeMix(p, 1501)
      const want = await digest(p)
      expect(await p.call('SAVE')).toBe('OK')
      expect(await p.call('CONFIG', 'GET', 'dbfilename')).toEqual(['dbfilename', 'dump.rdb'])
      expect(await p.call('CONFIG', 'GET', 'dir')).toEqual(['dir', path.resolve(primary.dir)])
      expect(await redisDigestOf(path.join(primary.dir, 'dump.rdb'))).toEqual(want)
      const lsn = Number((await info(p, 'replication')).get('commit_lsn'))
      expect(Number(await b.call('WAITLSN', String(lsn), '10000'))).toBeGreaterThanOrEqual(lsn)
      const before = Number(await b.call('LASTSAVE'))
      expect(await b.call('BGSAVE')).toBe('Background saving started')
      await waitFor(async () => (await info(b, 'persistence')).get('rdb_saves') === '1', 20_000, 'the backup\'s BGSAVE')
      const persistence = await info(b, 'persistence')
      expect(persistence.get('rdb_last_bgsave_status')).toBe('ok')
      expect(Number(persistence.get('rdb_last_keys'))).toBe(want.size)
      expect(Number(persistence.get('rdb_last_lsn'))).toBe(lsn)
      expect(Number(await b.call('LASTSAVE'))).toBeGreaterThanOrEqual(before)
      expect(await redisDigestOf(path.join(backup.dir, 'dump.rdb'))).toEqual(want)
      // Nothing but the file under its own name: the temp file was renamed.
      expect(fs.readdirSync(backup.dir).filter((f) => f.endsWith('.rdb'))).toEqual(['dump.rdb'])
    } finally {
      disconnect(p)
      disconnect(b)
    }
  }, 90_000)

  test('redis-cli --rdb against a backup writes the same data (REPLCONF + SYNC answered with the payload)', async () => {
    const primary = await startPrimaryNode({ commit: 'local' })
    const backup = await startBackupNode(primary.port)
    const p = connect(primary.port)
    try {
      await writeMix(p, 1502)
      const want = await digest(p)
      const lsn = Number((await info(p, 'replication')).get('commit_lsn'))
      const b = connect(backup.port)
      await b.call('WAITLSN', String(lsn), '10000')
      disconnect(b)
      const out = path.join(makeTempDir('freshet-rdb-cli-'), 'fetched.rdb')
      const r = spawnSync('redis-cli', ['-p', String(backup.port), '--rdb', out], { encoding: 'utf8', timeout: 60_000 })
      expect(r.status, r.stdout + r.stderr).toBe(0)
      expect(await redisDigestOf(out)).toEqual(want)
    } finally {
      disconnect(p)
    }
  }, 90_000)

  test('a BGSAVE on a backup under a write load holds exactly the state at its LSN, while replay and reads go on', async () => {
    const primary = await startPrimaryNode({ commit: 'local' })
    const backup = await startBackupNode(primary.port)
    const p = connect(primary.port)
    const b = connect(backup.port)
    try {
      for (let batch = 0; batch < 40; batch++) {
        const pl = p.pipeline()
        for (let i = 0; i < 1000; i++) pl.set(`pre:${batch * 1000 + i}`, `v0:${'x'.repeat(i % 50)}`)
        await pl.exec()
      }
      const lsn = Number((await info(p, 'replication')).get('commit_lsn'))
      await b.call('WAITLSN', String(lsn), '10000')
      const want = await digest(b)
      expect(want.size).toBe(40_000)
      // The save starts at the backup's visible LSN; the writers start as soon as it answers.
      expect(await b.call('BGSAVE')).toBe('Background saving started')
      let stop = false
      const writer = (async () => {
        for (let round = 0; round < 1000 && !stop; round++) {
          const pl = p.pipeline()
          for (let i = 0; i < 200; i++) pl.set(`pre:${(round * 200 + i) % 40_000}`, `v1:${round}`).set(`after:${round}:${i}`, 'new')
          await pl.exec()
        }
      })()
      let readsDuring = 0
      while ((await info(b, 'persistence')).get('rdb_bgsave_in_progress') === '1') {
        // Reads on the backup are served during the save.
        expect(await b.get('pre:1')).not.toBeNull()
        readsDuring++
      }
      await sleep(200)
      stop = true
      await writer
      const persistence = await info(b, 'persistence')
      expect(persistence.get('rdb_last_bgsave_status')).toBe('ok')
      expect(Number(persistence.get('rdb_last_lsn'))).toBe(lsn)
      // Replay went on: the backup applied the writes made during and after the save.
      expect(Number((await info(b, 'replication')).get('applied_lsn'))).toBeGreaterThan(lsn)
      expect(await redisDigestOf(path.join(backup.dir, 'dump.rdb'))).toEqual(want)
      // The save yielded between steps (40000 keys are far more than one step's work), each counted once.
      const steps = Number(persistence.get('rdb_last_steps'))
      const longSteps = Number(persistence.get('rdb_last_long_steps'))
      expect(steps).toBeGreaterThan(1)
      expect(longSteps).toBeGreaterThanOrEqual(0)
      expect(longSteps).toBeLessThanOrEqual(steps)
      process.stderr.write(`[rdb] BGSAVE of 40000 keys on a loaded backup: ${persistence.get('rdb_last_ms')} ms, longest step ${persistence.get('rdb_last_max_step_ms')} ms, ` +
        `${longSteps} of ${steps} steps over 2 ms, ${readsDuring} INFO+GET rounds during it\n`)
    } finally {
      disconnect(p)
      disconnect(b)
    }
  }, 120_000)
})

describe('RDB files redis-server writes', () => {
  test('load into freshet exactly (LZF, integer encodings, binary, expiry times); other types and databases are refused, or skipped with --skip-unsupported; expired keys are dropped', async () => {
    const dir = makeTempDir('freshet-rdb-redis-')
    const redis = await startRedis(['--dir', dir, '--dbfilename', 'redis.rdb', '--enable-debug-command', 'yes'])
    const r = connect(redis.port, { password: '' })
    let want: Map<string, string>
    try {
      await writeMix(r, 1503)
      const pl = r.pipeline()
      // Compressible values (Redis stores strings over 20 bytes with LZF when that saves space) and integer-encoded ones.
      for (let i = 0; i < 50; i++) pl.set(`lzf:${i}`, `${'abcdefgh'.repeat(20 + i)}${i}`)
      // Compressed keys too, with compressed and integer-encoded values: a key must outlive its value's decoding.
      for (let i = 0; i < 20; i++) pl.set(`${'longkey:'.repeat(8)}${i}`, i % 2 === 0 ? `${'v'.repeat(60 + i)}` : String(-i * 1000))
      pl.set('i8', '-100').set('i16', '30000').set('i32', '-2000000000').set('notint', '007')
      await pl.exec()
      want = await digest(r)
      await r.call('DEBUG', 'SET-ACTIVE-EXPIRE', '0')
      await r.set('soon', 'gone', 'PX', 20)
      await sleep(50)
      expect(await r.call('SAVE')).toBe('OK')
      // Only expired keys are extra: the first file loads as it is.
      const target = path.join(makeTempDir('freshet-rdb-restore-'), 'log')
      const loaded = runCli(['restore', path.join(dir, 'redis.rdb'), '--dir', target, '--segment-size', '1mb'])
      expect(loaded.code, loaded.stderr).toBe(0)
      const node = await startPrimaryNode({ dir: target })
      const f = connect(node.port)
      expect(await digest(f)).toEqual(want)
      disconnect(f)
      await node.node.stop()
      // Now a key with a TTL, a list and a key in database 1.
      await r.set('ttl', 'v', 'PXAT', 4102444802000)
      await r.rpush('list', 'a', 'b')
      await r.select(1)
      await r.set('db1', 'x')
      await r.select(0)
      expect(await r.call('SAVE')).toBe('OK')
      const refusedDir = path.join(makeTempDir('freshet-rdb-refused-'), 'log')
      const refused = runCli(['restore', path.join(dir, 'redis.rdb'), '--dir', refusedDir, '--segment-size', '1mb'])
      expect(refused.code).toBe(2)
      expect(cliErrorCode(refused.stderr)).toBe('RDB_UNSUPPORTED')
      expect(fs.existsSync(refusedDir)).toBe(false)
      const skipped = runCli(['restore', path.join(dir, 'redis.rdb'), '--dir', refusedDir, '--segment-size', '1mb', '--skip-unsupported'])
      expect(skipped.code, skipped.stderr).toBe(0)
      const again = await startPrimaryNode({ dir: refusedDir })
      const g = connect(again.port)
      // The key with a time to live loads with its expiry; the list and db 1 were skipped.
      want.set(Buffer.from('ttl').toString('hex'), `${Buffer.from('v').toString('hex')}@4102444802000`)
      expect(await digest(g)).toEqual(want)
      disconnect(g)
    } finally {
      disconnect(r)
      await redis.stop()
    }
  }, 120_000)

  test('a damaged or truncated file is refused with RDB_INVALID and leaves no directory; --load-rdb loads into an empty --dir only', async () => {
    const primary = await startPrimaryNode({ commit: 'local' })
    const p = connect(primary.port)
    await writeMix(p, 1504)
    const want = await digest(p)
    expect(await p.call('SAVE')).toBe('OK')
    disconnect(p)
    const file = fs.readFileSync(path.join(primary.dir, 'dump.rdb'))
    const work = makeTempDir('freshet-rdb-bad-')
    // Hand-made files with a correct checksum: one holding a key twice (Redis refuses such a file too), and one
    // whose framing is intact but a value's byte changed after its checksum was taken ("b" made "c"), which only
    // the checksum refuses (computed on another thread while the keys load).
    const rdbOf = (pairs: Array<[string, string]>): Buffer => {
      const body = Buffer.concat([Buffer.from('REDIS0009\xfe\x00', 'latin1'), ...pairs.map(([k, v]) => Buffer.from(`\x00${String.fromCharCode(k.length)}${k}${String.fromCharCode(v.length)}${v}`, 'latin1')), Buffer.from([0xff])])
      const crc = Buffer.alloc(8)
      crc64(body).bytesLE(crc, 0)
      return Buffer.concat([body, crc])
    }
    const changed = rdbOf([['k', 'a'], ['l', 'b']])
    changed[changed.length - 10] = 0x63
    const cases: Array<[string, Buffer]> = [
      ['a key twice', rdbOf([['k', 'a'], ['k', 'b']])],
      ['a value changed after its checksum', changed],
      ['truncated', file.subarray(0, file.length - 100)],
      ['a flipped byte', Buffer.concat([file.subarray(0, 500), Buffer.from([file[500] ^ 1]), file.subarray(501)])],
      ['garbage', Buffer.from('not an rdb file at all')],
    ]
    for (const [name, bytes] of cases) {
      fs.writeFileSync(path.join(work, 'bad.rdb'), bytes)
      const target = path.join(work, `log-${name.replace(/ /g, '-')}`)
      const r = runCli(['restore', path.join(work, 'bad.rdb'), '--dir', target])
      expect(r.code, name).toBe(2)
      expect(cliErrorCode(r.stderr), name).toBe('RDB_INVALID')
      expect(fs.existsSync(target), name).toBe(false)
      expect(fs.readdirSync(work).filter((f) => f.startsWith('.')), name).toEqual([])
    }
    // --load-rdb: a new primary starts with the file's data; a --dir that holds a log is refused.
    const fresh = await startPrimaryNode({ dir: path.join(work, 'fresh'), args: ['--load-rdb', path.join(primary.dir, 'dump.rdb')] })
    const f = connect(fresh.port)
    expect(await digest(f)).toEqual(want)
    disconnect(f)
    const refused = runCli(['primary', '--port', '0', '--dir', primary.dir, '--load-rdb', path.join(primary.dir, 'dump.rdb')])
    expect(refused.code).toBe(2)
    expect(cliErrorCode(refused.stderr)).toBe('INVALID_OPTION')
  }, 120_000)
})

/**
 * MULTI/EXEC atomicity on a real primary: concurrent readers never see half a
 * transaction, and after kill -9 + restart every transaction is either wholly
 * present or wholly absent (and, per connection, the present ones are a
 * prefix of those sent, covering every acknowledged one).
 */
import fs from 'node:fs'
import { afterAll, expect, test } from 'vitest'
import type { Redis } from 'ioredis'
import { copyDir, segmentFiles, startPrimary } from '../helpers/primary.js'
import { cleanupClients, closeClient, connectClient, connectOnce } from '../helpers/clients.js'
import { forEachLimit, sleep } from '../helpers/util.js'
import { createRng } from '../helpers/prng.js'

afterAll(async () => {
  await cleanupClients()
})

test('readers never see a half-applied transaction', async () => {
  const primary = await startPrimary({ commit: 'local' })
  const writer = connectClient(primary.port)
  const reader = connectClient(primary.port)
  const txReader = connectClient(primary.port)
  // The writer goes on until it has written txCountMin and both readers have read readsMin times
  // (counts, not a time window: a slow machine takes longer, it does not do less).
  const txCountMin = 1500
  const txCountMax = 20_000
  const readsMin = 50
  let done = false
  let mgetCount = 0
  let multiReadCount = 0
  /** Torn reads and unexpected replies, with what was seen. */
  const torn: string[] = []

  const write = async (): Promise<number> => {
    let i = 0
    try {
      while (i < txCountMax && (i < txCountMin || mgetCount < readsMin || multiReadCount < readsMin)) {
        // Alternate one transaction per round trip with a pipelined burst of 8.
        const burst = i % 80 < 40 ? 1 : 8
        const pending: Array<Promise<unknown>> = []
        for (let k = 0; k < burst; k++) {
          i++
          const n = i
          pending.push(writer.multi().set('a', String(n)).set('b', String(n)).incr('c').exec().then((res) => {
            const ok = res !== null && res.length === 3 && res[0][0] === null && res[0][1] === 'OK' &&
              res[1][0] === null && res[1][1] === 'OK' && res[2][0] === null && res[2][1] === n
            if (!ok) torn.push(`EXEC #${n} replied ${JSON.stringify(res)}`)
          }, (err: unknown) => { torn.push(`EXEC #${n} failed: ${String(err)}`) }))
        }
        await Promise.all(pending)
      }
    } finally {
      done = true
    }
    return i
  }

  const readMget = async (): Promise<void> => {
    for (let n = 0; n < 1_000_000 && !done; n++) {
      let a: string | null
      let b: string | null
      try {
        [a, b] = await reader.mget('a', 'b')
      } catch (err) {
        torn.push(`MGET failed: ${String(err)}`)
        return
      }
      mgetCount++
      if (a !== b) torn.push(`MGET a=${a} b=${b}`)
    }
  }

  const readMulti = async (): Promise<void> => {
    for (let n = 0; n < 1_000_000 && !done; n++) {
      let res: Array<[Error | null, unknown]> | null
      try {
        res = await txReader.multi().get('a').get('b').get('c').exec()
      } catch (err) {
        torn.push(`MULTI read failed: ${String(err)}`)
        return
      }
      multiReadCount++
      if (res === null || res.some(([err]) => err !== null)) { torn.push(`MULTI read replied ${JSON.stringify(res)}`); return }
      const [a, b, c] = res.map(([, v]) => v as string | null)
      if (a !== b || (a ?? '0') !== (c ?? '0')) torn.push(`MULTI a=${a} b=${b} c=${c}`)
    }
  }

  const [written] = await Promise.all([write(), readMget(), readMulti()])
  expect(torn).toEqual([])
  expect(written).toBeGreaterThanOrEqual(txCountMin)
  expect(mgetCount).toBeGreaterThanOrEqual(readsMin)
  expect(multiReadCount).toBeGreaterThanOrEqual(readsMin)
  expect(await writer.mget('a', 'b', 'c')).toEqual([String(written), String(written), String(written)])
  await closeClient(writer)
  await closeClient(reader)
  await closeClient(txReader)
  const exit = await primary.stop()
  expect(exit.code).toBe(0)
})

interface TxnRecord {
  worker: number
  index: number
  value: string
  acked: boolean
}

function txnKeys(worker: number, index: number): [string, string, string] {
  return [`t:${worker}:${index}:x`, `t:${worker}:${index}:y`, `t:${worker}:${index}:z`]
}

test('kill -9 mid-load: every transaction is all or nothing after restart', async () => {
  const rng = createRng('transactions kill -9', 0x7a11)
  const primary = await startPrimary({ commit: 'local' })
  const workerCount = 3
  const ackedToKill = 600
  const burst = 16
  const txns: TxnRecord[][] = Array.from({ length: workerCount }, () => [])
  const valueSizes = Array.from({ length: 4096 }, () => rng.pick([8, 64, 512, 4096, 30_000]))
  let acked = 0
  let killed = false
  let killedResolve: () => void = () => {}
  const killSignal = new Promise<void>((resolve) => { killedResolve = resolve })
  // SIGKILL from inside a reply callback, so that other transactions are still in flight.
  const killNow = (): void => {
    if (killed) return
    killed = true
    primary.proc.kill('SIGKILL')
    killedResolve()
  }

  const clients = Array.from({ length: workerCount }, () => connectOnce(primary.port))
  await Promise.all(clients.map((c) => c.ping()))

  const run = async (worker: number, client: Redis): Promise<void> => {
    let index = 0
    for (let round = 0; round < 10_000 && !killed; round++) {
      const pending: Array<Promise<unknown>> = []
      for (let k = 0; k < burst; k++) {
        const record: TxnRecord = { worker, index, value: '', acked: false }
        const size = valueSizes[(worker * 7919 + index) % valueSizes.length]
        record.value = `${worker}:${index}:`.padEnd(size, String.fromCharCode(97 + (index % 26)))
        txns[worker].push(record)
        const [x, y, z] = txnKeys(worker, index)
        index++
        pending.push(client.multi().set(x, record.value).set(y, record.value).set(z, record.value).incr(`ctr:${worker}`).exec().then((res) => {
          if (res !== null && res.every(([err]) => err === null)) {
            record.acked = true
            acked++
            if (acked >= ackedToKill) killNow()
          }
        }, () => { /* connection gone: not acknowledged */ }))
      }
      await Promise.all(pending)
      // Yield to timers and I/O: commands on a dead connection fail in microtasks only.
      await new Promise((resolve) => setImmediate(resolve))
      if (client.status === 'end') break
    }
  }

  const runs = clients.map((c, w) => run(w, c))
  // Bounded: kill once enough transactions are acknowledged, or after 10 s regardless.
  await Promise.race([killSignal, sleep(10_000)])
  killNow()
  const exit = await primary.kill9()
  expect(exit.signal).toBe('SIGKILL')
  await Promise.all(runs)
  const ackedAtKill = acked
  expect(ackedAtKill).toBeGreaterThan(0)

  // A copy of the crashed log, cut at a seeded offset in its last 64 KiB: a power
  // loss that tore the tail. Transactions must still be all or nothing there.
  const tornCopy = copyDir(primary.dir)
  const lastFile = segmentFiles(tornCopy).at(-1)!
  const lastBytes = fs.statSync(lastFile).size
  const tornAt = rng.int(Math.max(1, lastBytes - 64 * 1024), lastBytes - 1)
  fs.truncateSync(lastFile, tornAt)

  const restarted = await startPrimary({ dir: primary.dir, commit: 'local' })
  const c = connectClient(restarted.port)
  const afterKill = await checkTransactions(c, txns, true)
  process.stderr.write(`[transactions] sent ${afterKill.sentTotal}, acknowledged ${ackedAtKill}, present after restart ${afterKill.presentTotal}\n`)
  expect(afterKill.problems.slice(0, 20)).toEqual([])
  expect(afterKill.presentTotal).toBeGreaterThanOrEqual(ackedAtKill)
  await closeClient(c)
  await restarted.stop()

  const torn = await startPrimary({ dir: tornCopy, commit: 'local' })
  const d = connectClient(torn.port)
  const afterTear = await checkTransactions(d, txns, false)
  process.stderr.write(`[transactions] log cut at ${tornAt} of ${lastBytes} bytes (seed ${rng.seed}): present ${afterTear.presentTotal}\n`)
  expect(afterTear.problems.slice(0, 20)).toEqual([])
  expect(afterTear.presentTotal).toBeLessThanOrEqual(afterKill.presentTotal)
  await closeClient(d)
  await torn.stop()
})

/**
 * Every transaction is wholly present or wholly absent, the present ones of
 * each connection are a prefix of those it sent, each counter equals its
 * connection's present count, and nothing else is in the keyspace. With
 * requireAcked, every acknowledged transaction is present.
 */
async function checkTransactions(c: Redis, txns: TxnRecord[][], requireAcked: boolean): Promise<{ problems: string[], presentTotal: number, sentTotal: number }> {
  const problems: string[] = []
  let presentTotal = 0
  let sentTotal = 0
  let workersWithAny = 0
  for (let w = 0; w < txns.length; w++) {
    const list = txns[w]
    sentTotal += list.length
    let present = 0
    let sawAbsent = false
    for (let start = 0; start < list.length; start += 200) {
      const chunk = list.slice(start, start + 200)
      const values = await c.mget(...chunk.flatMap((t) => txnKeys(t.worker, t.index)))
      for (let i = 0; i < chunk.length; i++) {
        const t = chunk[i]
        const [x, y, z] = values.slice(3 * i, 3 * i + 3)
        const all = x === t.value && y === t.value && z === t.value
        const none = x === null && y === null && z === null
        if (!all && !none) problems.push(`txn ${w}/${t.index} is partial: ${[x, y, z].map((v) => v === null ? 'null' : `${v.length}B`).join(',')}`)
        if (all) {
          present++
          if (sawAbsent) problems.push(`txn ${w}/${t.index} present after an absent one (not a prefix)`)
        } else {
          sawAbsent = true
          if (t.acked && requireAcked) problems.push(`txn ${w}/${t.index} was acknowledged but is lost`)
        }
      }
    }
    const ctr = await c.get(`ctr:${w}`)
    if (Number(ctr ?? '0') !== present) problems.push(`ctr:${w}=${ctr} but ${present} transactions present`)
    presentTotal += present
    if (present > 0) workersWithAny++
  }
  if (presentTotal > sentTotal) problems.push(`${presentTotal} present > ${sentTotal} sent`)
  // Nothing else is in the log: three keys per present transaction, one counter per worker with any.
  const dbsize = await c.dbsize()
  if (dbsize !== 3 * presentTotal + workersWithAny) problems.push(`DBSIZE ${dbsize}, expected ${3 * presentTotal + workersWithAny}`)
  return { problems, presentTotal, sentTotal }
}

/**
 * A write command or MULTI is one block in the log (DESIGN.md §3), however
 * large: wherever a torn tail cuts into it, recovery keeps all of it or none.
 * Cut points lie strictly inside the transaction's LSN range [before, after).
 */
test.each([
  {
    name: 'MSET of 3 × 400 KiB (1.2 MB, more than the 1 MiB block target)',
    run: (c: Redis) => c.mset('big:1', Buffer.alloc(400 * 1024, 0x31), 'big:2', Buffer.alloc(400 * 1024, 0x32), 'big:3', Buffer.alloc(400 * 1024, 0x33)),
    probe: async (c: Redis) => [await c.strlen('big:1'), await c.strlen('big:2'), await c.strlen('big:3')],
    whole: [400 * 1024, 400 * 1024, 400 * 1024],
  },
  {
    name: 'MULTI { SET k 600 KiB; APPEND k x; SET k2 done } (APPEND grows a value set in the same transaction)',
    run: (c: Redis) => c.multi().set('big:k', Buffer.alloc(600 * 1024, 0x61)).append('big:k', 'x').set('big:k2', 'done').exec(),
    probe: async (c: Redis) => [await c.strlen('big:k'), await c.strlen('big:k2')],
    whole: [600 * 1024 + 1, 4],
  },
])('a large transaction is all or nothing wherever a torn tail cuts it: $name', async ({ run, probe, whole }) => {
  const rng = createRng('large transaction torn tail', 0x1a26e)
  const primary = await startPrimary({ commit: 'local' })
  const c = connectClient(primary.port)
  await c.set('big:before', 'x')
  const beforeLsn = await c.call('LSN') as number
  await run(c)
  expect(await probe(c)).toEqual(whole)
  const afterLsn = await c.call('LSN') as number
  await closeClient(c)
  expect((await primary.stop()).code).toBe(0)
  expect(fs.statSync(segmentFiles(primary.dir)[0]).size).toBe(afterLsn)

  const cuts = [beforeLsn + 1, Math.floor((beforeLsn + afterLsn) / 2), afterLsn - 1, rng.int(beforeLsn + 1, afterLsn - 1), rng.int(beforeLsn + 1, afterLsn - 1)]
  const none = whole.map(() => 0)
  await forEachLimit(cuts, 3, async (cut) => {
    const copy = copyDir(primary.dir)
    fs.truncateSync(segmentFiles(copy)[0], cut)
    const p = await startPrimary({ dir: copy, commit: 'local' })
    const d = connectClient(p.port)
    const got = await probe(d)
    const what = `log cut at ${cut}, transaction spans [${beforeLsn}, ${afterLsn}) (seed ${rng.seed})`
    expect([JSON.stringify(whole), JSON.stringify(none)], `${what}: got ${JSON.stringify(got)}`).toContain(JSON.stringify(got))
    expect(JSON.stringify(got), `${what}: the transaction is torn, so it must be gone`).toBe(JSON.stringify(none))
    expect(await d.get('big:before'), what).toBe('x')
    await closeClient(d)
    await p.stop()
  })
})

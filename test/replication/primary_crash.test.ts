/**
 * Primary crash under load: writers pipeline SETs (and DELs) to the primary,
 * the primary is killed with SIGKILL mid-load (it ships blocks before its
 * fsync, so the backup may hold blocks the restarted primary never wrote),
 * restarted on the same dir and port, and written to again. The backup must
 * resume: cut an unconfirmed tail the primary lost if it has one, rejoin, and
 * end with exactly the primary's data (SCAN + MGET digest at the same
 * applied position). Every acknowledged write is on both. Seeded cycles, in
 * `local` and `remote-flush` modes, 1 to 3 writers.
 *
 * Each writer owns its keys and writes versions in increasing order, so "the
 * acknowledged write is there" reads: each key holds its last acknowledged
 * version or a later one the writer sent (acknowledged or not), never an
 * older one (or is absent after a later DEL the writer sent); a key whose last
 * acknowledged write was a DEL is absent or holds a later version.
 *
 * A reader on the backup records, during the load and up to the crash, the
 * newest version of each key the backup served. The restarted primary (before
 * anything new is written) must hold each of them or a later version: a
 * backup never serves what a primary crash takes back.
 */
import type { Redis } from 'ioredis'
import { afterAll, describe, expect, test } from 'vitest'
import { Cluster, cleanupClusters, digest, disconnect, info, lsnOf, seededRng, sleep, waitApplied, waitFor, type Rng } from '../helpers/cluster.js'

const CYCLES = 6
const KEYS_PER_WRITER = 150
const BATCH = 200

afterAll(async () => {
  await cleanupClusters()
})

interface Writer {
  prefix: string
  /** Per key: version of the last acknowledged write (-1: none), and whether it was a DEL. */
  ackedVersion: number[]
  ackedDel: boolean[]
  /** Per key: version of the newest DEL sent (acknowledged or not; -1: none). */
  sentDelVersion: number[]
  nextVersion: number
}

function value(w: Writer, key: number, version: number): string {
  return `${w.prefix}:${key}:v${version}:${'p'.repeat(key % 40)}`
}

/** Pipelines batches until stopped or the connection dies; records what was acknowledged. */
async function writeLoad(client: Redis, w: Writer, rng: Rng, stop: () => boolean): Promise<void> {
  for (let batch = 0; batch < 10_000 && !stop(); batch++) {
    const p = client.pipeline()
    const sent: Array<[number, number, boolean]> = []
    for (let i = 0; i < BATCH; i++) {
      const key = rng.int(0, KEYS_PER_WRITER - 1)
      const version = w.nextVersion++
      const del = rng.int(0, 9) === 0
      if (del) { p.del(`${w.prefix}:${key}`); w.sentDelVersion[key] = version }
      else p.set(`${w.prefix}:${key}`, value(w, key, version))
      sent.push([key, version, del])
    }
    let results: Array<[Error | null, unknown]> | null
    try {
      results = await p.exec()
    } catch {
      return
    }
    if (results === null) return
    for (let i = 0; i < sent.length; i++) {
      if (results[i][0] !== null) return
      const [key, version, del] = sent[i]
      w.ackedVersion[key] = version
      w.ackedDel[key] = del
    }
  }
}

/** Reads random keys of the writers on the backup until stopped; records per key the newest version served. */
async function readLoad(client: Redis, writers: Writer[], rng: Rng, stop: () => boolean, served: Map<string, number>): Promise<void> {
  for (let i = 0; i < 100_000 && !stop(); i++) {
    const w = rng.pick(writers)
    const keys = Array.from({ length: 20 }, () => `${w.prefix}:${rng.int(0, KEYS_PER_WRITER - 1)}`)
    let got: Array<string | null>
    try {
      got = await client.mget(...keys)
    } catch {
      return
    }
    got.forEach((v, j) => {
      if (v === null) return
      const version = Number(/:v(\d+):/.exec(v)![1])
      if (version > (served.get(keys[j]) ?? -1)) served.set(keys[j], version)
    })
  }
}

/** Every version the backup served is in `state` (or a later version of its key, or a later DEL). */
function checkServed(state: Map<string, string | null>, served: Map<string, number>, writers: Writer[], where: string): void {
  const byPrefix = new Map(writers.map((w) => [w.prefix, w]))
  for (const [key, version] of served) {
    const v = state.get(key)
    const have = v === undefined || v === null ? -1 : Number(/:v(\d+):/.exec(Buffer.from(v, 'hex').toString())![1])
    const w = byPrefix.get(key.split(':')[0])!
    const ok = have >= version || (have === -1 && w.sentDelVersion[Number(key.split(':')[1])] > version)
    expect(ok, `${where}: the backup served ${key} at v${version}; the restarted primary holds v${have}`).toBe(true)
  }
}

/** Every acknowledged write is in `state` (or a later write of the same key). */
function checkAcked(state: Map<string, string | null>, writers: Writer[], where: string): void {
  for (const w of writers) {
    for (let key = 0; key < KEYS_PER_WRITER; key++) {
      const acked = w.ackedVersion[key]
      if (acked < 0) continue
      const v = state.get(`${w.prefix}:${key}`)
      // digest() holds values as hex.
      const have = v === undefined || v === null ? -1 : Number(/:v(\d+):/.exec(Buffer.from(v, 'hex').toString())![1])
      if (w.ackedDel[key]) {
        expect(have === -1 || have > acked, `${where}: ${w.prefix}:${key} deleted at v${acked}, holds v${have}`).toBe(true)
      } else if (have === -1) {
        expect(w.sentDelVersion[key], `${where}: ${w.prefix}:${key} acknowledged at v${acked} is missing`).toBeGreaterThan(acked)
      } else {
        expect(have, `${where}: ${w.prefix}:${key} acknowledged at v${acked}`).toBeGreaterThanOrEqual(acked)
      }
    }
  }
}

/**
 * While `stop()` is false: forces cleanings (FRESHET.CLEAN) and writes big
 * filler values, so the cleaner relocates, waits for durability and releases
 * segments while the writers run and when the primary is killed.
 */
async function cleanLoad(client: Redis, stop: () => boolean): Promise<void> {
  for (let i = 0; i < 10_000 && !stop(); i++) {
    const p = client.pipeline()
    p.call('FRESHET.CLEAN', '2')
    for (let j = 0; j < 8; j++) p.set(`filler:${j}`, 'f'.repeat(16_000))
    try {
      await p.exec()
    } catch {
      return
    }
  }
}

async function crashCycles(commit: 'local' | 'remote-flush', seed: number, cleaning = false): Promise<void> {
  const rng = seededRng(`primary crash ${commit}${cleaning ? ' cleaning' : ''}`, seed)
  const cluster = await Cluster.start({ commit, syncBackups: 1, workers: [2], args: cleaning ? ['--retain-bytes', '0'] : [] })
  const writers: Writer[] = []
  for (let i = 0; i < 3; i++) {
    writers.push({ prefix: `w${i}`, ackedVersion: new Array<number>(KEYS_PER_WRITER).fill(-1), ackedDel: new Array<boolean>(KEYS_PER_WRITER).fill(false), sentDelVersion: new Array<number>(KEYS_PER_WRITER).fill(-1), nextVersion: 0 })
  }
  const readRng = seededRng(`primary crash ${commit} reader`, seed + 1)
  let servedTotal = 0
  for (let cycle = 0; cycle < CYCLES; cycle++) {
    const active = writers.slice(0, rng.int(1, writers.length))
    let stopped = false
    const clients = active.map(() => cluster.primaryClient())
    const loads = active.map((w, i) => writeLoad(clients[i], w, rng, () => stopped))
    const served = new Map<string, number>()
    const reader = cluster.backupClient(0)
    clients.push(reader)
    loads.push(readLoad(reader, writers, readRng, () => stopped, served))
    if (cleaning) {
      const cc = cluster.primaryClient()
      clients.push(cc)
      loads.push(cleanLoad(cc, () => stopped))
    }
    await sleep(rng.int(40, 200))
    await cluster.killPrimary()
    stopped = true
    await Promise.all(loads)
    for (const c of clients) disconnect(c)

    await cluster.restartPrimary()
    const pc = cluster.primaryClient()
    // What the backup served before the restart is on the restarted primary (nothing written since).
    checkServed(await digest(pc), served, writers, `cycle ${cycle} served`)
    servedTotal += served.size
    // New writes after the restart (in remote-flush they wait for the backup to rejoin).
    const after = active[0]
    const p = pc.pipeline()
    const sent: Array<[number, number]> = []
    for (let i = 0; i < 40; i++) {
      const key = rng.int(0, KEYS_PER_WRITER - 1)
      const version = after.nextVersion++
      p.set(`${after.prefix}:${key}`, value(after, key, version))
      sent.push([key, version])
    }
    const results = await p.exec()
    for (const [err] of results ?? []) expect(err).toBeNull()
    for (const [key, version] of sent) { after.ackedVersion[key] = version; after.ackedDel[key] = false }
    const lsn = await lsnOf(pc)
    expect(await waitApplied(cluster.backups[0].port, lsn, 20_000)).toBeGreaterThanOrEqual(lsn)

    const bc = cluster.backupClient(0)
    const repl = await info(bc, 'replication')
    expect(repl.get('link'), `cycle ${cycle}: ${repl.get('link_error')}`).toBe('up')
    const want = await digest(pc)
    const got = await digest(bc)
    checkAcked(want, writers, `cycle ${cycle} primary`)
    expect(got.size, `cycle ${cycle}: key count`).toBe(want.size)
    expect(got, `cycle ${cycle}: backup digest`).toEqual(want)
    disconnect(pc)
    disconnect(bc)
  }
  const cuts = (cluster.backups[0].stderr().match(/DIVERGED: cut unconfirmed log/g) ?? []).length
  process.stderr.write(`[primary crash ${commit}] ${CYCLES} cycles, ${cuts} unconfirmed tails cut, ${servedTotal} served versions checked\n`)
  expect(servedTotal, 'the backup served reads during the load').toBeGreaterThan(0)
  if (cleaning) {
    // The cleaner did run across the crashes: the primary released segments, and so did the backup.
    const pc = cluster.primaryClient()
    expect(Number((await info(pc, 'persistence')).get('horizon_lsn')), 'the primary released segments').toBeGreaterThan(0)
    disconnect(pc)
    // The backup follows the primary's releases once it holds their relocations (asynchronously: bounded wait).
    const bc = cluster.backupClient(0)
    await waitFor(async () => Number((await info(bc, 'persistence')).get('horizon_lsn')) > 0, 20_000, 'the backup released segments below its horizon')
    disconnect(bc)
  }
}

describe('kill -9 of the primary under a pipelined write load', () => {
  test('local: the backup resumes and ends with the primary\'s data, every acknowledged write on both', async () => {
    await crashCycles('local', 0xc4a5)
  }, 90_000)

  test('remote-flush: the backup resumes and ends with the primary\'s data, every acknowledged write on both', async () => {
    await crashCycles('remote-flush', 0xc4a6)
  }, 90_000)

  test('local, with the cleaner relocating and releasing segments throughout: every acknowledged write on both, no deleted key back', async () => {
    await crashCycles('local', 0xc4a7, true)
  }, 120_000)
})

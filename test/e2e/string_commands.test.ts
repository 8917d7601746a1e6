/**
 * The string and keyspace writes beyond the core (SETRANGE, SETBIT, RENAME,
 * COPY, GETDEL, SETNX, ...) are physical redo ops like the others: a backup
 * replaying them, and the primary recovering them after kill -9, end with
 * exactly the primary's data. RANDOMKEY returns a live key (nil when empty).
 */
import { afterAll, beforeAll, expect, test } from 'vitest'
import { Cluster, cleanupClusters, digest, disconnect, lsnOf } from '../helpers/cluster.js'
import { createRng } from '../helpers/prng.js'
import { randomRequest } from '../helpers/random_commands.js'

let cluster: Cluster

beforeAll(async () => {
  cluster = await Cluster.start({ commit: 'local', workers: [2] })
})

afterAll(async () => {
  await cleanupClusters()
})

test('random string/keyspace writes replicate to a backup and survive kill -9 of the primary', async () => {
  const rng = createRng('string commands replicate', 0x57a1)
  const p = cluster.primaryClient()
  let lsn = 0
  try {
    for (let i = 0; i < 1500; i++) {
      const [name, ...args] = randomRequest(rng, `sc${rng.int(0, 3)}:`)
      await p.callBuffer(String(name), ...args).catch(() => null)
    }
    // The sequence may end inside a MULTI it opened.
    await p.call('DISCARD').catch(() => null)
    await p.set('sc:last', 'x')
    lsn = await lsnOf(p)
    expect(await p.randomkey()).not.toBeNull()
  } finally {
    disconnect(p)
  }
  await cluster.waitAllApplied(lsn)
  const fromPrimary = await withClient(cluster.primaryClient(), digest)
  const fromBackup = await withClient(cluster.backupClient(0), digest)
  expect(fromPrimary.size).toBeGreaterThan(5)
  expect(fromBackup).toEqual(fromPrimary)
  await cluster.primary.node.kill9()
  await cluster.restartPrimary()
  const recovered = await withClient(cluster.primaryClient({ reconnect: true }), digest)
  expect(recovered).toEqual(fromPrimary)
})

async function withClient<T>(c: ReturnType<Cluster['primaryClient']>, f: (c: ReturnType<Cluster['primaryClient']>) => Promise<T>): Promise<T> {
  try {
    return await f(c)
  } finally {
    disconnect(c)
  }
}

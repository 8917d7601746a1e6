/**
 * Durability of acknowledged writes across process death:
 *  - local mode, kill -9 during a pipelined multi-client write load: every
 *    acknowledged write is there after restart, exactly; unacknowledged ones
 *    are there or not, never garbled; per connection, what survived is a
 *    prefix of what was sent; and any value a concurrent reader saw survives
 *    (in local mode a reply, read or write, leaves only once what it shows is
 *    fsynced). Run with one segment and with segments rolling over.
 *  - async mode, SIGTERM/SIGINT (clean shutdown): nothing acknowledged is lost.
 */
import { expect, test } from 'vitest'
import type { Redis } from 'ioredis'
import { freezeProcess, segmentFiles, startPrimary } from '../helpers/primary.js'
import { closeClient, connectClient, connectOnce } from '../helpers/clients.js'
import { sleep } from '../helpers/util.js'
import { createRng, type Rng } from '../helpers/prng.js'

/** The value written for `key`: derived from the key, `size` bytes. */
function valueFor(key: string, size: number): string {
  const unit = `${key}|`
  return unit.repeat(Math.ceil(size / unit.length)).slice(0, Math.max(size, key.length))
}

type Op =
  | { kind: 'set', key: string, value: string, acked: boolean }
  | { kind: 'overwrite', key: string, value: string, version: number, acked: boolean }
  | { kind: 'incr', key: string, reply: number, acked: boolean }

interface LoadResult {
  ops: Op[][]
  ackedCount: number
}

/** Commands each writer keeps in flight (refilled as replies arrive, until the load is stopped). */
const WINDOW = 48
const OPS_PER_WORKER_MAX = 200_000

/**
 * Runs `workerCount` clients, each keeping WINDOW writes in flight (a new one
 * is sent as each reply arrives), until stopped() holds or its connection
 * fails. Records every op (visible through opsRef while running) and whether
 * (and what) it was acknowledged. onAcked runs synchronously on each reply,
 * so a caller can kill the server with replies still in flight.
 */
async function runWriteLoad(
  port: number, workerCount: number, rng: Rng, onAcked: (total: number) => void, stopped: () => boolean,
  opsRef: { ops: Op[][] | null } = { ops: null },
): Promise<LoadResult> {
  const ops: Op[][] = Array.from({ length: workerCount }, () => [])
  opsRef.ops = ops
  const clients = Array.from({ length: workerCount }, () => connectOnce(port))
  await Promise.all(clients.map((c) => c.ping()))
  const sizes = Array.from({ length: 1024 }, () => rng.pick([16, 100, 700, 3000, 12_000]))
  const overwriteVersions = new Map<string, number>()
  let ackedCount = 0
  const ack = (op: Op): void => {
    op.acked = true
    ackedCount++
    onAcked(ackedCount)
  }

  const run = (w: number, client: Redis): Promise<void> => new Promise((resolve) => {
    const list = ops[w]
    let inflight = 0
    let failed = false
    const issueOne = (): void => {
      const n = list.length
      let p: Promise<unknown>
      if (n % 7 === 3) {
        const op: Op = { kind: 'incr', key: `c:${w}`, reply: 0, acked: false }
        list.push(op)
        p = client.incr(op.key).then((reply) => { op.reply = reply; ack(op) })
      } else if (n % 5 === 1) {
        const key = `o:${w}:${n % 16}`
        const version = (overwriteVersions.get(key) ?? 0) + 1
        overwriteVersions.set(key, version)
        const op: Op = { kind: 'overwrite', key, value: `${key}@${version}:${valueFor(key, sizes[n % sizes.length])}`, version, acked: false }
        list.push(op)
        p = client.set(key, op.value).then((reply) => { if (reply === 'OK') ack(op) })
      } else {
        const key = `d:${w}:${n}`
        const op: Op = { kind: 'set', key, value: valueFor(key, sizes[(n * 31 + w) % sizes.length]), acked: false }
        list.push(op)
        p = client.set(key, op.value).then((reply) => { if (reply === 'OK') ack(op) })
      }
      inflight++
      p.catch(() => { failed = true /* the server died: not acknowledged */ }).finally(() => {
        inflight--
        // A failed connection stops its writer: on a dead socket commands fail in microtasks only.
        if (!failed && !stopped() && list.length < OPS_PER_WORKER_MAX) issueOne()
        else if (inflight === 0) resolve()
      })
    }
    for (let k = 0; k < WINDOW; k++) issueOne()
  })

  await Promise.all(clients.map((c, w) => run(w, c)))
  return { ops, ackedCount }
}

async function mgetAll(client: Redis, keys: string[]): Promise<Array<string | null>> {
  const out: Array<string | null> = []
  for (let i = 0; i < keys.length; i += 500) out.push(...await client.mget(...keys.slice(i, i + 500)))
  return out
}

/** Checks the restarted state against the recorded load; returns the problems found. */
async function checkAgainstLoad(client: Redis, load: LoadResult, requireAllAcked: boolean): Promise<{ problems: string[], present: number }> {
  const problems: string[] = []
  let present = 0
  for (let w = 0; w < load.ops.length; w++) {
    const list = load.ops[w]
    const sets = list.filter((o): o is Extract<Op, { kind: 'set' }> => o.kind === 'set')
    const values = await mgetAll(client, sets.map((o) => o.key))
    let sawAbsent = false
    for (let i = 0; i < sets.length; i++) {
      const o = sets[i]
      const v = values[i]
      if (v === null) {
        sawAbsent = true
        if (o.acked && requireAllAcked) problems.push(`${o.key} acknowledged but lost`)
        continue
      }
      present++
      if (v !== o.value) problems.push(`${o.key} has a wrong value (${v.length} bytes, expected ${o.value.length})`)
      if (sawAbsent) problems.push(`${o.key} present after an absent key of the same connection (not a prefix)`)
    }

    // Overwrites: the last acknowledged version, or a later (sent, unacknowledged) one.
    const byKey = new Map<string, Array<Extract<Op, { kind: 'overwrite' }>>>()
    for (const o of list) if (o.kind === 'overwrite') byKey.set(o.key, [...(byKey.get(o.key) ?? []), o])
    for (const [key, versions] of byKey) {
      const v = await client.get(key)
      let lastAcked = -1
      for (let i = 0; i < versions.length; i++) if (versions[i].acked) lastAcked = i
      const allowed = versions.slice(Math.max(0, lastAcked)).map((o) => o.value)
      if (v === null) {
        if (lastAcked >= 0 && requireAllAcked) problems.push(`${key} lost (version ${versions[lastAcked].version} was acknowledged)`)
      } else if (!allowed.includes(v)) {
        problems.push(`${key} = ${v.slice(0, 40)}…, not the last acknowledged version or a later one (acknowledged #${lastAcked + 1} of ${versions.length})`)
      }
    }

    // Counters: at least the last acknowledged reply, at most the INCRs sent.
    const incrs = list.filter((o): o is Extract<Op, { kind: 'incr' }> => o.kind === 'incr')
    if (incrs.length > 0) {
      const v = Number(await client.get(incrs[0].key) ?? '0')
      const lastAckedReply = Math.max(0, ...incrs.filter((o) => o.acked).map((o) => o.reply))
      if (requireAllAcked && v < lastAckedReply) problems.push(`${incrs[0].key} = ${v} < last acknowledged ${lastAckedReply}`)
      if (v > incrs.length) problems.push(`${incrs[0].key} = ${v} > ${incrs.length} INCRs sent`)
    }
  }
  return { problems, present }
}

test.each([
  { segmentSize: '64mb', note: 'one segment' },
  { segmentSize: '1mb', note: 'segments rolling over during the load' },
])('local mode: kill -9 during a pipelined write load loses no acknowledged write ($note)', async ({ segmentSize }) => {
  const rng = createRng(`durability kill -9 (${segmentSize} segments)`, 0xd00b)
  const primary = await startPrimary({ commit: 'local', segmentSize })
  const ackedToKill = 4000
  let frozen = false
  let stop = false
  let frozenNow: () => void = () => {}
  const freezeSignal = new Promise<void>((resolve) => { frozenNow = resolve })
  // SIGSTOP from inside the reply callback, while the other writers' windows are in flight: the
  // process halts at an arbitrary instant, and the SIGKILL below is a crash at that instant.
  const freeze = (): void => {
    if (frozen) return
    frozen = true
    primary.proc.kill('SIGSTOP')
    frozenNow()
  }
  const opsRef: { ops: Op[][] | null } = { ops: null }
  const loading = runWriteLoad(primary.port, 4, rng, (total) => { if (total >= ackedToKill) freeze() }, () => stop, opsRef)
  // A reader polls the newest keys of one writer: in local mode a value a reader saw is committed.
  const observed = new Map<string, string>()
  const reader = connectOnce(primary.port)
  const reading = (async () => {
    for (let n = 0; n < 100_000 && !stop; n++) {
      const list = opsRef.ops?.[0] ?? []
      const keys = list.slice(-60).filter((o) => o.kind === 'set').map((o) => o.key)
      if (keys.length > 0) {
        try {
          const values = await reader.mget(...keys)
          for (let i = 0; i < keys.length; i++) if (values[i] !== null) observed.set(keys[i], values[i]!)
        } catch {
          break // the server is gone
        }
      }
      await new Promise((resolve) => setImmediate(resolve))
    }
  })()
  // Bounded: freeze once enough writes are acknowledged, or after 10 s regardless.
  await Promise.race([freezeSignal, sleep(10_000)])
  freeze()
  await freezeProcess(primary.proc)
  // The server is stopped: no reply leaves it any more. The replies it sent before are read now
  // (two event-loop turns) and each refills its writer's window, so every writer has WINDOW writes
  // in flight that can never be acknowledged when the kill lands, however fast the server was.
  for (let turn = 0; turn < 2; turn++) await new Promise((resolve) => setImmediate(resolve))
  stop = true
  const exit = await primary.kill9()
  expect(exit.signal).toBe('SIGKILL')
  const load = await loading
  await reading
  // A reply read after the kill still counts: the server sent it before it stopped.
  const sent = load.ops.reduce((n, l) => n + l.length, 0)
  expect(load.ackedCount).toBeGreaterThan(0)
  expect(sent, 'the kill landed on unacknowledged writes').toBeGreaterThan(load.ackedCount)

  const restarted = await startPrimary({ dir: primary.dir, commit: 'local', segmentSize })
  const c = connectClient(restarted.port)
  const { problems, present } = await checkAgainstLoad(c, load, true)
  process.stderr.write(`[durability] ${segmentSize} segments (${segmentFiles(primary.dir).length} files): sent ${sent}, acknowledged ${load.ackedCount}, unique keys present ${present}, observed by the reader ${observed.size}; ${restarted.stderr.includes('log recovery:') ? 'torn tail cut' : 'no torn tail'}\n`)
  expect(problems.slice(0, 20)).toEqual([])
  expect(observed.size).toBeGreaterThan(0)
  const observedKeys = [...observed.keys()]
  const afterRestart = await mgetAll(c, observedKeys)
  const lostObserved = observedKeys.filter((k, i) => afterRestart[i] !== observed.get(k))
  expect(lostObserved.slice(0, 10), 'values a reader saw before the crash').toEqual([])
  await closeClient(c)
  expect((await restarted.stop()).code).toBe(0)
})

test('async mode: SIGTERM under load flushes every acknowledged write', async () => {
  const rng = createRng('durability SIGTERM', 0x5167)
  const primary = await startPrimary({ commit: 'async' })
  let stop = false
  let stopped: () => void = () => {}
  const stopSignal = new Promise<void>((resolve) => { stopped = resolve })
  // One SIGTERM, from inside the reply callback (a second signal would mean "exit now").
  const terminate = (): void => {
    if (stop) return
    stop = true
    primary.proc.kill('SIGTERM')
    stopped()
  }
  const loading = runWriteLoad(primary.port, 3, rng, (total) => { if (total >= 3000) terminate() }, () => stop)
  await Promise.race([stopSignal, sleep(10_000)])
  terminate()
  const exit = await primary.waitExit()
  expect(exit).toEqual({ code: 0, signal: null })
  const load = await loading
  expect(load.ackedCount).toBeGreaterThan(0)
  process.stderr.write(`[durability] SIGTERM: sent ${load.ops.reduce((n, l) => n + l.length, 0)}, acknowledged ${load.ackedCount}\n`)

  const restarted = await startPrimary({ dir: primary.dir, commit: 'async' })
  expect(restarted.stderr).not.toContain('log recovery:')
  const c = connectClient(restarted.port)
  const { problems } = await checkAgainstLoad(c, load, true)
  expect(problems.slice(0, 20)).toEqual([])
  await closeClient(c)
  expect((await restarted.stop()).code).toBe(0)
})

test('async mode: SIGINT / SIGTERM when idle lose nothing, recovery cuts nothing', async () => {
  const primary = await startPrimary({ commit: 'async' })
  const c = connectClient(primary.port)
  const keys = Array.from({ length: 3000 }, (_, i) => `idle:${i}`)
  const p = c.pipeline()
  for (const k of keys) p.set(k, valueFor(k, 200))
  p.incrby('idle:counter', 42)
  const res = await p.exec()
  expect(res!.every(([err]) => err === null)).toBe(true)
  const lsn = await c.call('LSN') as number
  await closeClient(c)
  expect(await primary.stop('SIGINT')).toEqual({ code: 0, signal: null })

  const second = await startPrimary({ dir: primary.dir, commit: 'async' })
  const d = connectClient(second.port)
  const info = await d.info('persistence')
  expect(info).toContain('recovery_truncated_bytes:0')
  expect(info).toContain(`commit_lsn:${lsn}`)
  expect(await d.dbsize()).toBe(keys.length + 1)
  const values = await mgetAll(d, keys)
  for (let i = 0; i < keys.length; i++) expect(values[i], keys[i]).toBe(valueFor(keys[i], 200))
  expect(await d.get('idle:counter')).toBe('42')
  await d.set('idle:after', 'x')
  await closeClient(d)
  expect(await second.stop('SIGTERM')).toEqual({ code: 0, signal: null })

  const third = await startPrimary({ dir: primary.dir, commit: 'async' })
  const e = connectClient(third.port)
  expect(await e.get('idle:after')).toBe('x')
  expect(await e.dbsize()).toBe(keys.length + 2)
  await closeClient(e)
  await third.stop()
})

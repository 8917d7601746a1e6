/**
 * `freshet demo` (what `npm start` runs): a primary and N backups as real
 * child processes on loopback in a temp dir, a write load at a fixed rate for
 * a while with one live line per second, read-your-writes checks on the
 * backups (LSN on the primary, WAITLSN + GET on each backup), a summary, and
 * a clean shutdown.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { RespClient, parseInfo, type Reply } from '../client/client.js'
import { startNode, type NodeProcess } from './spawn.js'
import { RateLoad } from '../client/load.js'
import { nowMs } from '../io/clock.js'

export interface DemoOptions {
  durationS: number
  backups: number
  workers: number
  rate: number
  clients: number
  valueBytes: number
  commit: string
  keyspace: number
  out: (line: string) => void
}


interface BackupStats { appliedBytes: number, rywOk: number, rywFailed: number, rywWaitMsMax: number }

export async function runDemo(o: DemoOptions): Promise<boolean> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'freshet-demo-'))
  const nodes: NodeProcess[] = []
  const clients: RespClient[] = []
  const loads: RateLoad[] = []
  let ok = true
  try {
    o.out(`freshet demo: 1 primary + ${o.backups} backups (${o.workers} replay workers each) in ${dir}`)
    const primary = await startNode('primary', ['--port', '0', '--dir', path.join(dir, 'primary'), '--commit', o.commit])
    nodes.push(primary)
    const backups: NodeProcess[] = []
    for (let i = 0; i < o.backups; i++) {
      const b = await startNode('backup', ['--primary', `127.0.0.1:${primary.port}`, '--port', '0', '--dir', path.join(dir, `backup${i + 1}`), '--workers', String(o.workers)])
      nodes.push(b)
      backups.push(b)
    }
    const admin = await RespClient.connect('127.0.0.1', primary.port)
    const backupClients = await Promise.all(backups.map((b) => RespClient.connect('127.0.0.1', b.port)))
    clients.push(admin, ...backupClients)
    await waitFor(async () => {
      const info = parseInfo(await admin.call('INFO', 'replication'))
      return Number(info.get('connected_backups')) === o.backups
    }, 10000)
    o.out(`primary 127.0.0.1:${primary.port} (commit ${o.commit}); backups ${backups.map((b) => `127.0.0.1:${b.port}`).join(', ')}`)
    o.out(`load: ${o.rate} SET/s of ${o.valueBytes}-byte values over ${o.keyspace} keys from ${o.clients} pipelining clients, ${o.durationS} s`)

    const load = await RateLoad.connect({ host: '127.0.0.1', port: primary.port, clients: o.clients, rate: o.rate, valueBytes: o.valueBytes, keyspace: o.keyspace })
    loads.push(load)
    const started = nowMs()
    const stats: BackupStats[] = backups.map(() => ({ appliedBytes: 0, rywOk: 0, rywFailed: 0, rywWaitMsMax: 0 }))
    load.start()

    let lastAcked = 0
    let lastApplied = backups.map(() => 0)
    let rywSeq = 0
    for (let second = 1; second <= o.durationS; second++) {
      await sleep(1000)
      const opsPerS = load.acked - lastAcked
      lastAcked = load.acked
      const parts: string[] = []
      for (let i = 0; i < backups.length; i++) {
        const info = parseInfo(await backupClients[i].call('INFO', 'all'))
        const applied = Number(info.get('applied_lsn'))
        const mbps = (applied - lastApplied[i]) / 1e6
        lastApplied[i] = applied
        stats[i].appliedBytes = applied
        parts.push(`b${i + 1} lag p50 ${info.get('replay_lag_window_p50_ms')} p99 ${info.get('replay_lag_window_p99_ms')} max ${info.get('replay_lag_window_max_ms')} ms, replay ${mbps.toFixed(1)} MB/s`)
      }
      o.out(`${String(second).padStart(3)}s primary ${opsPerS} ops/s | ${parts.join(' | ')}`)
      rywSeq++
      await readYourWrites(admin, backupClients, rywSeq, stats)
    }
    load.stop()
    const loadEnded = nowMs()
    await waitFor(async () => load.inFlight() === 0, 20000)
    const acked = load.acked
    const errors = load.errors
    const finalInfo = parseInfo(await admin.call('INFO', 'replication'))
    const commitLsn = Number(finalInfo.get('commit_lsn'))
    await waitFor(async () => {
      for (const c of backupClients) if (Number(parseInfo(await c.call('INFO', 'replication')).get('applied_lsn')) < commitLsn) return false
      return true
    }, 20000)
    const drainMs = nowMs() - loadEnded
    const primarySize = await admin.call('DBSIZE')
    const elapsedS = (loadEnded - started) / 1000
    o.out('')
    o.out(`summary: ${acked} writes acknowledged (${errors} errors) in ${elapsedS.toFixed(1)} s = ${Math.round(acked / elapsedS)} ops/s; log ${(commitLsn / 1e6).toFixed(1)} MB; all backups at commit LSN ${commitLsn} ${drainMs} ms after the load stopped (includes in-flight replies)`)
    for (let i = 0; i < backups.length; i++) {
      const info = parseInfo(await backupClients[i].call('INFO', 'all'))
      const size = await backupClients[i].call('DBSIZE')
      const same = size === primarySize
      if (!same || stats[i].rywFailed > 0) ok = false
      o.out(`  backup${i + 1}: lag p50 ${info.get('replay_lag_p50_ms')} ms, p99 ${info.get('replay_lag_p99_ms')} ms, max ${info.get('replay_lag_max_ms')} ms over ${info.get('replay_lag_samples')} blocks; replayed ${(Number(info.get('replay_bytes_total')) / 1e6).toFixed(1)} MB with ${info.get('replay_worker_cpu_ms')} ms of worker CPU; read-your-writes ${stats[i].rywOk}/${stats[i].rywOk + stats[i].rywFailed} ok (WAITLSN wait max ${stats[i].rywWaitMsMax.toFixed(1)} ms); DBSIZE ${String(size)} ${same ? '= primary' : `!= primary ${String(primarySize)}`}`)
    }
    if (errors > 0) ok = false
    o.out(ok ? 'demo: OK' : 'demo: FAILED (see above)')
    return ok
  } finally {
    for (const c of clients) c.close()
    for (const l of loads) l.close()
    await Promise.all(nodes.slice().reverse().map((n) => n.stop()))
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

async function readYourWrites(admin: RespClient, backups: RespClient[], seq: number, stats: BackupStats[]): Promise<void> {
  const key = `demo:ryw:${seq}`
  const value = `written-${seq}-${nowMs()}`
  await admin.call('SET', key, value)
  const lsn = await admin.call('LSN')
  await Promise.all(backups.map(async (b, i) => {
    const t0 = performance.now()
    const applied = await b.call('WAITLSN', lsn as number, 2000)
    const waitMs = performance.now() - t0
    const got: Reply = await b.call('GET', key)
    const good = typeof applied === 'number' && applied >= (lsn as number) && Buffer.isBuffer(got) && got.toString() === value
    if (good) stats[i].rywOk++
    else stats[i].rywFailed++
    stats[i].rywWaitMsMax = Math.max(stats[i].rywWaitMsMax, waitMs)
  }))
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = nowMs() + timeoutMs
  while (nowMs() < deadline) {
    if (await check()) return
    await sleep(20)
  }
  throw new Error(`condition not met within ${timeoutMs} ms`)
}

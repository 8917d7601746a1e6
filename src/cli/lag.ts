/**
 * `freshet lag HOST:PORT…`: a live view of replication lag. For a primary it
 * shows every backup (lag in ms and bytes, applied LSN rate); for a backup,
 * its own link, its staleness bound and, per stage of a block's way there
 * (received, flushed, visible), the lag from commit on the primary over the
 * last second (p50/p99 ms). Once a second until Ctrl-C, or one sample with --once.
 */
import { RespClient, parseFields, parseInfo, RespErrorReply } from '../client/client.js'
import { parseHostPort } from './options.js'
import { dbError } from '../errors.js'
import { nowMs } from '../io/clock.js'

interface Sample { appliedLsn: number, atMs: number }

export async function runLag(addresses: string[], once: boolean, password: string | null, out: (line: string) => void): Promise<void> {
  const targets = addresses.map((a) => ({ addr: a, ...parseHostPort(a, 'address') }))
  const clients = await Promise.all(targets.map(async (t) => {
    const c = await RespClient.connect(t.host, t.port)
    if (password !== null) {
      const r = await c.call('AUTH', password)
      // A node without a password answers AUTH with an error; like redis-cli -a, go on (INFO will tell).
      if (r instanceof RespErrorReply && r.code === 'WRONGPASS') throw dbError('AUTH_FAILED', `${t.addr}: ${r.text}`)
    }
    return c
  }))
  const previous = new Map<string, Sample>()
  let stop = false
  process.once('SIGINT', () => { stop = true })
  try {
    for (let round = 0; !stop; round++) {
      const now = nowMs()
      for (let i = 0; i < targets.length; i++) {
        const reply = await clients[i].call('INFO', 'replication')
        if (reply instanceof RespErrorReply) {
          throw dbError(reply.code === 'NOAUTH' ? 'AUTH_FAILED' : 'PROTOCOL', `${targets[i].addr}: ${reply.text}${reply.code === 'NOAUTH' ? ' (pass --password)' : ''}`)
        }
        const info = parseInfo(reply)
        const rows: Array<{ name: string, lagMs: string, lagBytes: string, applied: number, more: string }> = []
        if (info.get('freshet_role') === 'primary') {
          for (const [k, v] of info) {
            if (!/^backup\d+$/.test(k)) continue
            const f = parseFields(v)
            rows.push({ name: `${targets[i].addr} ${k} ${f.get('addr')}`, lagMs: f.get('lag_ms') ?? '?', lagBytes: f.get('lag_bytes') ?? '?', applied: Number(f.get('applied_lsn')), more: '' })
          }
          if (rows.length === 0) out(`${targets[i].addr} primary commit_lsn=${info.get('commit_lsn')}: no backups connected`)
        } else {
          // Its own view: the staleness bound, and each stage's lag from commit over the last second (p50/p99).
          const stats = await clients[i].call('INFO', 'stats')
          const st = stats instanceof RespErrorReply ? new Map<string, string>() : parseInfo(stats)
          const stage = (name: string, prefix: string): string => ` ${name}_p50/p99_ms=${st.get(`${prefix}_window_p50_ms`) ?? '?'}/${st.get(`${prefix}_window_p99_ms`) ?? '?'}`
          const more = ` staleness_ms=${info.get('staleness_ms') ?? '?'}${stage('received', 'received_lag')}${stage('flushed', 'flushed_lag')}${stage('visible', 'replay_lag')}`
          rows.push({ name: `${targets[i].addr} backup link=${info.get('link')}`, lagMs: info.get('lag_ms') ?? '?', lagBytes: info.get('lag_bytes') ?? '?', applied: Number(info.get('applied_lsn')), more })
          const persistence = await clients[i].call('INFO', 'persistence')
          if (!(persistence instanceof RespErrorReply)) {
            const p = parseInfo(persistence)
            if (p.get('loading') === '1') {
              const rate = Number(p.get('full_resync_rate_bytes_per_sec') ?? 0) / 1e6
              out(`${new Date(now).toISOString().slice(11, 19)} ${targets[i].addr} full resync: ${p.get('full_resync_bytes_done')} of ${p.get('full_resync_bytes_total')} bytes, ` +
                `${rate.toFixed(2)} MB/s, eta ${p.get('full_resync_eta_sec')} s (${p.get('full_resync_reason')})`)
            }
          }
        }
        for (const r of rows) {
          const prev = previous.get(r.name)
          const rate = prev !== undefined ? ((r.applied - prev.appliedLsn) / ((now - prev.atMs) / 1000) / 1e6).toFixed(2) + ' MB/s' : '-'
          previous.set(r.name, { appliedLsn: r.applied, atMs: now })
          out(`${new Date(now).toISOString().slice(11, 19)} ${r.name} lag_ms=${r.lagMs} lag_bytes=${r.lagBytes} applied_lsn=${r.applied} applied_rate=${rate}${r.more}`)
        }
      }
      if (once) break
      await new Promise((resolve) => setTimeout(resolve, 1000))
    }
  } finally {
    for (const c of clients) c.close()
  }
}

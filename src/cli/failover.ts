/**
 * `freshet failover HOST:PORT...`: an operator's (or a coordinator's)
 * failover, from the node side's commands only:
 *
 *   1. survey: INFO replication of every node, each bounded by --timeout
 *      (a stopped process accepts the connection but never answers);
 *   2. pick the backup with the highest received LSN (then flushed): promotion
 *      makes all it received durable, and with the old primary gone no
 *      backup can come to hold (and ack) more than that, so every write the
 *      old primary could still acknowledge is on the candidate; never one
 *      further behind the newest commit LSN anyone reports than
 *      --max-lag-bytes, nor one still loading;
 *   3. fence the old primary (FRESHET.FENCE with the new epoch), also when it
 *      does not answer: the command waits in its socket and runs first if it
 *      ever resumes;
 *   4. promote the candidate (FRESHET.PROMOTE);
 *   5. repoint every other node that answers (REPLICAOF), the old primary too;
 *   6. wait until the new primary can acknowledge writes (its sync backups
 *      connected, in remote-* modes), and print what it did with the times.
 *
 * Exit codes: 0 done; 3 no safe candidate (nothing was changed).
 */
import { RespClient, RespErrorReply, parseInfo, type Reply } from '../client/client.js'
import { dbError } from '../errors.js'
import { parseHostPort } from './options.js'

export interface FailoverOptions {
  addresses: string[]
  password: string | null
  /** Refuse a candidate further behind than this (bytes of log). */
  maxLagBytes: number
  /** Bound on each node's answer, ms. */
  timeoutMs: number
  /** Bound on waiting for the new primary to be writable, ms. */
  writableTimeoutMs: number
  out: (line: string) => void
}

interface Surveyed {
  addr: string
  host: string
  port: number
  client: RespClient | null
  info: Map<string, string> | null
  /** Why it did not answer. */
  error: string
}

export interface FailoverResult {
  promoted: string
  epoch: number
  startLsn: number
  fenced: string[]
  repointed: string[]
  surveyMs: number
  promoteMs: number
  writableMs: number
  totalMs: number
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | null = null
  const timeout = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(dbError('TIMEOUT', `${what}: no answer within ${ms} ms`)), ms) })
  return Promise.race([p, timeout]).finally(() => { if (timer !== null) clearTimeout(timer) })
}

async function ask(n: Surveyed, timeoutMs: number, ...args: Array<string | number>): Promise<Reply> {
  if (n.client === null) throw dbError('LINK_DOWN', `${n.addr} is not connected`)
  return withTimeout(n.client.call(...args), timeoutMs, `${n.addr} ${String(args[0])}`)
}

async function survey(addr: string, o: FailoverOptions): Promise<Surveyed> {
  const { host, port } = parseHostPort(addr, 'address')
  const n: Surveyed = { addr, host, port, client: null, info: null, error: '' }
  try {
    n.client = await RespClient.connect(host, port, o.timeoutMs)
    if (o.password !== null) await ask(n, o.timeoutMs, 'AUTH', o.password)
    const reply = await ask(n, o.timeoutMs, 'INFO', 'replication')
    if (reply instanceof RespErrorReply) throw dbError('PROTOCOL', reply.text)
    n.info = parseInfo(reply)
  } catch (err) {
    n.error = err instanceof Error ? err.message : String(err)
  }
  return n
}

const num = (n: Surveyed, key: string): number => Number(n.info?.get(key) ?? -1)

export async function runFailover(o: FailoverOptions): Promise<FailoverResult> {
  const t0 = performance.now()
  const nodes = await Promise.all(o.addresses.map((a) => survey(a, o)))
  try {
    const primaries = nodes.filter((n) => n.info?.get('freshet_role') === 'primary')
    const silent = nodes.filter((n) => n.info === null)
    for (const n of nodes) {
      if (n.info === null) o.out(`${n.addr}: no answer (${n.error})`)
      else o.out(`${n.addr}: ${n.info.get('freshet_role')} epoch=${n.info.get('epoch')} ` +
        (n.info.get('freshet_role') === 'primary'
          ? `commit_lsn=${n.info.get('commit_lsn')} fenced=${n.info.get('fenced')} connected_backups=${n.info.get('connected_backups')}`
          : `flushed_lsn=${n.info.get('flushed_lsn')} received_lsn=${n.info.get('received_lsn')} link=${n.info.get('link')} loading=${n.info.get('loading') ?? '0'}`))
    }
    const newest = Math.max(0, ...primaries.map((n) => num(n, 'commit_lsn')), ...nodes.map((n) => num(n, 'primary_commit_lsn')))
    const candidates = nodes.filter((n) => n.info?.get('freshet_role') === 'backup' && n.info.get('loading') !== '1')
      .sort((a, b) => num(b, 'received_lsn') - num(a, 'received_lsn') || num(b, 'flushed_lsn') - num(a, 'flushed_lsn'))
    const best = candidates[0]
    if (best === undefined) throw dbError('NOT_PRIMARY', 'no safe candidate: no backup answered (or every one is loading a full resync)')
    const behind = newest - num(best, 'received_lsn')
    if (behind > o.maxLagBytes) {
      throw dbError('NOT_PRIMARY', `no safe candidate: the most advanced backup ${best.addr} has received LSN ${num(best, 'received_lsn')}, ${behind} bytes behind the newest commit LSN ${newest} (--max-lag-bytes ${o.maxLagBytes})`)
    }
    const surveyMs = performance.now() - t0
    const epoch = Math.max(...nodes.map((n) => num(n, 'epoch'))) + 1
    // Fence every primary but the candidate (a stopped one gets the command queued in its socket).
    const fenced: string[] = []
    const old = [...primaries, ...silent]
    await Promise.all(old.map(async (n) => {
      if (n.client === null) return
      if (n.info === null) {
        // It did not answer INFO: the fence waits in its socket (it runs first if the node resumes); no need to wait here.
        n.client.call('FRESHET.FENCE', epoch).catch(() => {})
        o.out(`${n.addr}: fence sent, not waiting (it did not answer)`)
        return
      }
      try {
        const r = await ask(n, o.timeoutMs, 'FRESHET.FENCE', epoch)
        if (r instanceof RespErrorReply) { o.out(`${n.addr}: fence refused (${r.text})`); return }
        fenced.push(n.addr)
        o.out(`${n.addr}: fenced (epoch ${epoch})`)
      } catch {
        o.out(`${n.addr}: fence sent, no answer (it runs first if the node resumes)`)
      }
    }))
    const t1 = performance.now()
    const promoted = await ask(best, Math.max(o.timeoutMs, 30_000), 'FRESHET.PROMOTE')
    if (!Array.isArray(promoted)) throw dbError('PROTOCOL', `${best.addr} refused promotion: ${promoted instanceof RespErrorReply ? promoted.text : String(promoted)}`)
    const [newEpoch, startLsn, nodeMs] = promoted as number[]
    const promoteMs = performance.now() - t1
    o.out(`${best.addr}: promoted to primary of epoch ${newEpoch} at LSN ${startLsn} (${nodeMs} ms on the node)`)
    const repointed: string[] = []
    await Promise.all(nodes.filter((n) => n !== best && n.info !== null).map(async (n) => {
      try {
        const r = await ask(n, Math.max(o.timeoutMs, 30_000), 'REPLICAOF', best.host, best.port)
        if (r instanceof RespErrorReply) { o.out(`${n.addr}: REPLICAOF refused (${r.text})`); return }
        repointed.push(n.addr)
        o.out(`${n.addr}: now follows ${best.addr}`)
      } catch (err) {
        o.out(`${n.addr}: REPLICAOF failed (${err instanceof Error ? err.message : String(err)})`)
      }
    }))
    // Writable: in remote-* modes once its sync backups are connected (bounded).
    const deadline = performance.now() + o.writableTimeoutMs
    for (;;) {
      const r = parseInfo(await ask(best, o.timeoutMs, 'INFO', 'replication'))
      const remote = r.get('commit_mode') === 'remote-flush' || r.get('commit_mode') === 'remote-apply'
      const need = remote ? Number(r.get('sync_backups') ?? 0) : 0
      if (Number(r.get('connected_backups') ?? 0) >= need) break
      if (performance.now() > deadline) { o.out(`${best.addr}: ${r.get('connected_backups')} of ${need} sync backups connected after ${o.writableTimeoutMs} ms`); break }
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
    const t2 = performance.now()
    const result: FailoverResult = {
      promoted: best.addr, epoch: newEpoch, startLsn, fenced, repointed,
      surveyMs, promoteMs, writableMs: t2 - t1 - promoteMs, totalMs: t2 - t0,
    }
    o.out(`times: survey ${surveyMs.toFixed(1)} ms, promote ${promoteMs.toFixed(1)} ms, writable after ${result.writableMs.toFixed(1)} ms more; total ${result.totalMs.toFixed(1)} ms`)
    return result
  } finally {
    for (const n of nodes) n.client?.close()
  }
}

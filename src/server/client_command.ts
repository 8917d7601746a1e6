/**
 * CLIENT and its subcommands: names (SETNAME, GETNAME, shared with HELLO's
 * SETNAME), ID, LIST and INFO with Redis's fields and filters (TYPE, ID),
 * KILL (by address or by ID/ADDR/LADDR/TYPE/SKIPME filters), and the
 * subcommands clients send on connect (SETINFO, NO-EVICT).
 */
import { argInt, argIs, argString, type Args } from './args.js'
import { OK, type Session } from './commands.js'
import type { Connection } from './connection.js'
import { nowMs } from '../io/clock.js'

/** CLIENT SETNAME / HELLO SETNAME: printable ASCII without spaces ('!' to '~'), as Redis requires. */
export function setClientName(s: Session, a: Args, i: number): boolean {
  for (let j = 0; j < a.argLength[i]; j++) {
    const c = a.data[a.argStart[i] + j]
    if (c < 0x21 || c > 0x7e) { s.conn.out.error('ERR Client names cannot contain spaces, newlines or special characters.'); return false }
  }
  s.conn.name = argString(a, i)
  return true
}

/** Redis's client type names: connections here are normal clients, or replication links (replica). */
function typeOf(c: Connection): string {
  return c.detached ? 'replica' : 'normal'
}

function flagsOf(s: Session, c: Connection): string {
  let f = ''
  if (c.detached) f += 'S'
  if (s.server.monitors.has(c)) f += 'O'
  if (c.inMulti) f += 'x'
  if (c.blocked) f += 'b'
  return f === '' ? 'N' : f
}

/** One CLIENT LIST line, with Redis 7's fields (memory fields describe freshet's buffers). */
function describe(s: Session, c: Connection): string {
  const now = nowMs()
  const local = `${c.socket.localAddress ?? ''}:${c.socket.localPort ?? 0}`
  const qbuf = c.parser.pendingBytes()
  const omem = c.socket.writableLength + c.out.length
  return `id=${c.id} addr=${c.addr} laddr=${local} fd=-1 name=${c.name} age=${Math.floor((now - c.createdMs) / 1000)} ` +
    `idle=${Math.floor((now - c.lastCommandMs) / 1000)} flags=${flagsOf(s, c)} db=0 sub=0 psub=0 ssub=0 ` +
    `multi=${c.inMulti ? c.multiQueue.length : -1} qbuf=${qbuf} qbuf-free=0 argv-mem=0 multi-mem=0 rbs=${c.out.buf.length} rbp=${c.out.length} ` +
    `obl=${c.out.length} oll=0 omem=${omem} tot-mem=${qbuf + c.out.buf.length + omem} events=r cmd=${c.lastCommand} user=default redir=-1 resp=${c.out.protocol}`
}

const TYPES = new Set(['normal', 'master', 'replica', 'slave', 'pubsub'])

function list(s: Session, a: Args): void {
  const out = s.conn.out
  let type: string | null = null
  let ids: Set<number> | null = null
  for (let i = 2; i < a.argc; i++) {
    if (argIs(a, i, 'type') && i + 1 < a.argc) {
      type = argString(a, ++i).toLowerCase()
      if (!TYPES.has(type)) { out.error(`ERR Unknown client type '${type.slice(0, 64)}'`); return }
      if (type === 'slave') type = 'replica'
    } else if (argIs(a, i, 'id') && i + 1 < a.argc) {
      ids = new Set()
      for (i++; i < a.argc; i++) {
        const id = argInt(a, i)
        if (!(id > 0)) { out.error('ERR Invalid client ID'); return }
        ids.add(id)
      }
    } else { out.error('ERR syntax error'); return }
  }
  const lines: string[] = []
  for (const c of s.server.connections) {
    if (type !== null && typeOf(c) !== type) continue
    if (ids !== null && !ids.has(c.id)) continue
    lines.push(describe(s, c) + '\n')
  }
  out.verbatim(lines.join(''))
}

function kill(s: Session, a: Args): void {
  const out = s.conn.out
  if (a.argc === 3) {
    // Old form: CLIENT KILL ip:port.
    const addr = argString(a, 2)
    for (const c of s.server.connections) {
      if (c.addr === addr) { c.destroy(); out.raw(OK); return }
    }
    out.error('ERR No such client')
    return
  }
  let id = -1
  let addr: string | null = null
  let laddr: string | null = null
  let type: string | null = null
  let skipMe = true
  if ((a.argc - 2) % 2 !== 0) { out.error('ERR syntax error'); return }
  for (let i = 2; i < a.argc; i += 2) {
    const v = argString(a, i + 1)
    if (argIs(a, i, 'id')) {
      id = argInt(a, i + 1)
      if (!(id > 0)) { out.error('ERR client-id should be greater than 0'); return }
    } else if (argIs(a, i, 'addr')) addr = v
    else if (argIs(a, i, 'laddr')) laddr = v
    else if (argIs(a, i, 'type')) {
      type = v.toLowerCase()
      if (!TYPES.has(type)) { out.error(`ERR Unknown client type '${v.slice(0, 64)}'`); return }
      if (type === 'slave') type = 'replica'
    } else if (argIs(a, i, 'skipme')) {
      if (v.toLowerCase() === 'yes') skipMe = true
      else if (v.toLowerCase() === 'no') skipMe = false
      else { out.error('ERR syntax error'); return }
    } else if (argIs(a, i, 'user')) {
      if (v !== 'default') { out.error(`ERR No such user '${v.slice(0, 64)}'`); return }
    } else { out.error('ERR syntax error'); return }
  }
  let n = 0
  for (const c of [...s.server.connections]) {
    if (id > 0 && c.id !== id) continue
    if (addr !== null && c.addr !== addr) continue
    if (laddr !== null && `${c.socket.localAddress ?? ''}:${c.socket.localPort ?? 0}` !== laddr) continue
    if (type !== null && typeOf(c) !== type) continue
    if (skipMe && c === s.conn) continue
    if (c === s.conn) s.conn.closing = true
    else c.destroy()
    n++
  }
  out.integer(n)
}

export function client(s: Session, a: Args): void {
  const out = s.conn.out
  if (argIs(a, 1, 'setname') && a.argc === 3) {
    if (setClientName(s, a, 2)) out.raw(OK)
  } else if (argIs(a, 1, 'getname') && a.argc === 2) {
    if (s.conn.name === '') out.nullBulk(); else out.bulkString(s.conn.name)
  } else if (argIs(a, 1, 'id') && a.argc === 2) {
    out.integer(s.conn.id)
  } else if (argIs(a, 1, 'list')) {
    list(s, a)
  } else if (argIs(a, 1, 'info') && a.argc === 2) {
    out.verbatim(describe(s, s.conn) + '\n')
  } else if (argIs(a, 1, 'kill') && a.argc >= 3) {
    kill(s, a)
  } else if ((argIs(a, 1, 'setinfo') && a.argc === 4) || (argIs(a, 1, 'no-evict') && a.argc === 3) || (argIs(a, 1, 'no-touch') && a.argc === 3)) {
    out.raw(OK)
  } else {
    out.error(`ERR unknown subcommand '${argString(a, 1).slice(0, 128)}'. Try CLIENT HELP.`)
  }
}

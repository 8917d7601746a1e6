/**
 * The RESP server of a node (either role): accepts connections on loopback,
 * parses pipelined commands, dispatches them through the command table, and
 * at the end of each event-loop turn seals the turn's writes into one block
 * (group commit) and sends every reply its commit policy has released.
 *
 * Bounds: clients (maxClients), per-client unparsed input and pending reply
 * bytes (a client over them is cut off), bulk and key/value sizes. Bad input
 * gets an error reply and at most its own connection closed.
 */
import net from 'node:net'
import { PROTOCOL_ERROR_LINGER_MS_MAX, QUERY_BUFFER_BYTES_MAX } from '../constants.js'
import { DbError } from '../errors.js'
import { assert } from '../assert.js'
import type { ReadView } from '../view/read_view.js'
import type { Primary } from '../primary/primary.js'
import { type Args, argIs, argString, copyArgs } from './args.js'
import { COMMANDS, type CommandSpec, errorReply, F_BLOCKING, F_MULTI_CONTROL, F_NOAUTH, F_OBSERVES_ALL, F_WRITE, OK, QUEUED, type Session } from './commands.js'
import { Connection } from './connection.js'
import { PARSE_COMMAND } from './resp.js'

export interface ServedNode {
  readonly role: 'primary' | 'backup'
  readonly view: ReadView
  /** The primary itself, or null on a backup. */
  readonly writer: Primary | null
  releasedLsn(): number
  /** The newest op written (a reply that observed everything, DBSIZE or SCAN, waits for it). */
  waitLsn(): number
  endTurn(): void
  keyCount(): number
  onRelease: (() => void) | null
  /** INFO sections this role contributes (replication, persistence, ...). */
  info(section: string): Array<[string, string | number]> | null
  /** CONFIG RESETSTAT: clears the role's statistics (lag histograms). */
  resetStats(): void
  /** Role-specific commands (WAIT, WAITLSN, the replication handshake). */
  readonly extraCommands: CommandSpec[]
}

export interface ServerOptions {
  host: string
  port: number
  requirepass: string | null
  maxClients: number
  valueBytesMax: number
  log: (line: string) => void
}

export class RespServer {
  readonly node: ServedNode
  readonly options: ServerOptions
  readonly connections: Set<Connection>
  readonly commands: Map<string, CommandSpec>
  private readonly byHash: Map<number, CommandSpec>
  readonly startedMs: number
  private readonly server: net.Server
  private readonly held: Set<Connection>
  private readonly dirty: Set<Connection>
  private turnScheduled: boolean
  private nextId: number
  commandsTotal: number
  connectionsTotal: number
  rejectedConnections: number
  port: number

  constructor(node: ServedNode, options: ServerOptions) {
    this.node = node
    this.options = options
    this.connections = new Set()
    this.commands = new Map()
    this.startedMs = Date.now()
    this.held = new Set()
    this.dirty = new Set()
    this.turnScheduled = false
    this.nextId = 1
    this.commandsTotal = 0
    this.connectionsTotal = 0
    this.rejectedConnections = 0
    this.port = options.port
    this.byHash = new Map()
    for (const spec of [...COMMANDS, ...ADMIN_COMMANDS, ...node.extraCommands]) {
      this.commands.set(spec.name, spec)
      const name = Buffer.from(spec.name)
      const h = nameHash(name, 0, name.length)
      assert(!this.byHash.has(h), `command name hashes are distinct (${spec.name})`)
      this.byHash.set(h, spec)
    }
    node.onRelease = () => this.releaseHeld()
    this.server = net.createServer({ noDelay: true }, (socket) => this.accept(socket))
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject)
      this.server.listen(this.options.port, this.options.host, () => {
        this.server.off('error', reject)
        const address = this.server.address()
        if (address !== null && typeof address === 'object') this.port = address.port
        resolve()
      })
    })
  }

  close(): Promise<void> {
    for (const c of this.connections) {
      this.flushConnection(c)
      c.socket.end()
      setTimeout(() => c.destroy(), 200).unref()
    }
    return new Promise((resolve) => this.server.close(() => resolve()))
  }

  private accept(socket: net.Socket): void {
    if (this.connections.size >= this.options.maxClients) {
      this.rejectedConnections++
      socket.end('-ERR max number of clients reached\r\n')
      return
    }
    const bulkMax = this.options.valueBytesMax + 1024 * 1024
    const conn = new Connection(this.nextId++, socket, bulkMax, Math.max(QUERY_BUFFER_BYTES_MAX, 2 * bulkMax))
    conn.authed = this.options.requirepass === null
    conn.session = { node: this.node, server: this, conn }
    this.connections.add(conn)
    this.connectionsTotal++
    socket.setNoDelay(true)
    socket.on('data', (chunk: Buffer) => this.onData(conn, chunk))
    socket.on('error', () => { conn.destroy() })
    socket.on('close', () => {
      conn.closed = true
      this.connections.delete(conn)
      this.held.delete(conn)
      this.dirty.delete(conn)
    })
  }

  private onData(conn: Connection, chunk: Buffer): void {
    if (conn.closed || conn.detached) return
    // Closing (QUIT, a protocol error): no command after it runs, so its input is dropped, not parsed or buffered.
    if (conn.closing) return
    try {
      conn.parser.feed(chunk)
    } catch (err) {
      this.protocolError(conn, err)
      return
    }
    this.processInput(conn)
  }

  /** Runs every complete command in the connection's input (until one blocks). */
  processInput(conn: Connection): void {
    const p = conn.parser
    try {
      while (!conn.blocked && !conn.closing && !conn.detached && p.next() === PARSE_COMMAND) {
        if (p.argc === 0) continue
        this.dispatch(conn, p)
      }
      if (!conn.detached) p.retain()
    } catch (err) {
      this.protocolError(conn, err)
      return
    }
    this.afterCommands(conn)
  }

  /** Marks the replies just produced with what they observed and schedules the turn end. */
  afterCommands(conn: Connection): void {
    if (conn.detached) return
    conn.mark(conn.observedLsn, this.node.releasedLsn())
    conn.observedLsn = -1
    if (conn.hasHeld()) this.held.add(conn)
    this.dirty.add(conn)
    this.scheduleTurnEnd()
  }

  private protocolError(conn: Connection, err: unknown): void {
    if (!(err instanceof DbError)) throw err
    conn.out.error(`ERR Protocol error: ${err.message}`)
    conn.closing = true
    conn.mark(-1, 0)
    // Sends the error, then a FIN once nothing is held (Connection.flush). Input is read and dropped
    // meanwhile (onData), so the client reads the error before the end of the stream instead of losing
    // it to a reset; a client that neither closes nor stops sending is cut after a bounded linger.
    this.flushConnection(conn)
    setTimeout(() => conn.destroy(), PROTOCOL_ERROR_LINGER_MS_MAX).unref()
  }

  scheduleTurnEnd(): void {
    if (this.turnScheduled) return
    this.turnScheduled = true
    setImmediate(() => this.endTurn())
  }

  private endTurn(): void {
    this.turnScheduled = false
    this.node.endTurn()
    this.releaseHeld()
  }

  /** Called when the node's released position advances. */
  releaseHeld(): void {
    if (this.held.size > 0) {
      const released = this.node.releasedLsn()
      for (const c of this.held) {
        c.release(released)
        if (!c.hasHeld()) this.held.delete(c)
        this.dirty.add(c)
      }
    }
    for (const c of this.dirty) this.flushConnection(c)
    this.dirty.clear()
  }

  private flushConnection(c: Connection): void {
    if (!c.flush()) this.options.log(`client ${c.addr} cut off: reply buffer over its limit`)
  }

  dispatch(conn: Connection, a: Args): void {
    this.commandsTotal++
    conn.commandsTotal++
    const spec = this.find(a.data, a.argStart[0], a.argLength[0])
    const out = conn.out
    if (spec === undefined) {
      const name = a.data.toString('latin1', a.argStart[0], a.argStart[0] + Math.min(a.argLength[0], 64))
      if (conn.inMulti) conn.multiError = true
      out.error(`ERR unknown command '${name.slice(0, 128)}', with args beginning with: ${argsPreview(a)}`)
      return
    }
    if ((spec.arity > 0 && a.argc !== spec.arity) || (spec.arity < 0 && a.argc < -spec.arity)) {
      if (conn.inMulti) conn.multiError = true
      out.error(`ERR wrong number of arguments for '${spec.name}' command`)
      return
    }
    if (!conn.authed && (spec.flags & F_NOAUTH) === 0) {
      out.error('NOAUTH Authentication required.')
      return
    }
    if (conn.inMulti && (spec.flags & F_MULTI_CONTROL) === 0) {
      if ((spec.flags & F_BLOCKING) !== 0) {
        conn.multiError = true
        out.error(`ERR ${spec.name} is not allowed inside MULTI`)
        return
      }
      conn.multiQueue.push(copyArgs(a))
      out.raw(QUEUED)
      return
    }
    const session = conn.session!
    const view = this.node.view
    view.observedLsn = -1
    if ((spec.flags & F_OBSERVES_ALL) !== 0) view.observe(this.node.waitLsn())
    try {
      this.run(spec, session, a)
    } finally {
      if (view.observedLsn > conn.observedLsn) conn.observedLsn = view.observedLsn
    }
  }

  private run(spec: CommandSpec, session: Session, a: Args): void {
    const out = session.conn.out
    if ((spec.flags & F_WRITE) !== 0) {
      const writer = this.node.writer
      if (writer === null) {
        out.error('READONLY You can\'t write against a read only replica.')
        return
      }
      try {
        writer.beginWrite(spec.bound!(session, a, 0))
      } catch (err) {
        out.error(errorReply(err))
        return
      }
      spec.run(session, a)
      writer.endWrite()
      return
    }
    spec.run(session, a)
  }

  /** A blocking command parks its connection: no further input runs until unblock(). */
  block(conn: Connection): void {
    conn.blocked = true
  }

  /** The blocking command has written its reply; send it and run any input that queued meanwhile. */
  unblock(conn: Connection): void {
    if (!conn.blocked) return
    conn.blocked = false
    if (conn.closed) return
    this.processInput(conn)
  }

  execMulti(s: Session): void {
    const conn = s.conn
    const queue = conn.multiQueue
    conn.inMulti = false
    conn.multiQueue = []
    if (conn.multiError) {
      conn.multiError = false
      conn.out.error('EXECABORT Transaction discarded because of previous errors.')
      return
    }
    const writer = this.node.writer
    for (const a of queue) if ((this.lookup(a).flags & F_OBSERVES_ALL) !== 0) this.node.view.observe(this.node.waitLsn())
    let hasWrite = false
    let bound = 0
    try {
      // An APPEND's result is at most its key's current value plus every byte the transaction writes.
      let appendBytes = 0
      for (const a of queue) for (let i = 1; i < a.argc; i++) appendBytes += a.argLength[i]
      for (const a of queue) {
        const spec = this.lookup(a)
        if ((spec.flags & F_WRITE) === 0) continue
        hasWrite = true
        if (writer === null) { conn.out.error('EXECABORT Transaction discarded because of: READONLY You can\'t write against a read only replica.'); return }
        bound += spec.bound!(s, a, appendBytes)
      }
      if (hasWrite) writer!.beginWrite(bound)
    } catch (err) {
      conn.out.error(`EXECABORT Transaction discarded because of: ${errorReply(err)}`)
      return
    }
    conn.out.arrayHeader(queue.length)
    for (const a of queue) this.lookup(a).run(s, a)
    if (hasWrite) writer!.endWrite()
  }

  private lookup(a: Args): CommandSpec {
    return this.find(a.data, a.argStart[0], a.argLength[0])!
  }

  /**
   * The command named by bytes [start, start + length), case-insensitively,
   * without building a string: a case-folded hash picks the candidate, then
   * the bytes are compared.
   */
  find(d: Uint8Array, start: number, length: number): CommandSpec | undefined {
    if (length > COMMAND_NAME_BYTES_MAX) return undefined
    const spec = this.byHash.get(nameHash(d, start, length))
    if (spec === undefined || spec.name.length !== length) return undefined
    for (let i = 0; i < length; i++) if ((d[start + i] | 0x20) !== spec.name.charCodeAt(i)) return undefined
    return spec
  }
}

const COMMAND_NAME_BYTES_MAX = 32

/** FNV-1a over the case-folded bytes of a command name. */
function nameHash(d: Uint8Array, start: number, length: number): number {
  let h = 0x811c9dc5
  for (let i = 0; i < length; i++) h = Math.imul(h ^ (d[start + i] | 0x20), 0x01000193)
  return h >>> 0
}

function argsPreview(a: Args): string {
  const parts: string[] = []
  for (let i = 1; i < a.argc && i < 4; i++) parts.push(`'${argString(a, i).slice(0, 64)}'`)
  return parts.join(' ')
}

const ADMIN_COMMANDS: CommandSpec[] = [
  { name: 'multi', arity: 1, flags: F_MULTI_CONTROL, run: (s) => {
    if (s.conn.inMulti) { s.conn.out.error('ERR MULTI calls can not be nested'); return }
    s.conn.inMulti = true
    s.conn.multiError = false
    s.conn.out.raw(OK)
  } },
  { name: 'exec', arity: 1, flags: F_MULTI_CONTROL, run: (s) => {
    if (!s.conn.inMulti) { s.conn.out.error('ERR EXEC without MULTI'); return }
    s.server.execMulti(s)
  } },
  { name: 'discard', arity: 1, flags: F_MULTI_CONTROL, run: (s) => {
    if (!s.conn.inMulti) { s.conn.out.error('ERR DISCARD without MULTI'); return }
    s.conn.inMulti = false
    s.conn.multiQueue = []
    s.conn.multiError = false
    s.conn.out.raw(OK)
  } },
  { name: 'auth', arity: -2, flags: F_NOAUTH | F_MULTI_CONTROL, run: (s, a) => {
    const pass = s.server.options.requirepass
    if (a.argc > 3) { s.conn.out.error('ERR syntax error'); return }
    if (pass === null) { s.conn.out.error('ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?'); return }
    const user = a.argc === 3 ? argString(a, 1) : 'default'
    const given = argString(a, a.argc - 1)
    if (user === 'default' && timingSafeEqualString(given, pass)) { s.conn.authed = true; s.conn.out.raw(OK); return }
    s.conn.out.error('WRONGPASS invalid username-password pair or user is disabled.')
  } },
  { name: 'quit', arity: -1, flags: F_NOAUTH | F_MULTI_CONTROL, run: (s) => { s.conn.out.raw(OK); s.conn.closing = true } },
  { name: 'client', arity: -2, flags: 0, run: (s, a) => {
    const out = s.conn.out
    if (argIs(a, 1, 'setname') && a.argc === 3) {
      const name = argString(a, 2)
      if (/[\s]/.test(name)) { out.error('ERR Client names cannot contain spaces, newlines or special characters.'); return }
      s.conn.name = name
      out.raw(OK)
    } else if (argIs(a, 1, 'getname') && a.argc === 2) {
      if (s.conn.name === '') out.nullBulk(); else out.bulkString(s.conn.name)
    } else if (argIs(a, 1, 'id') && a.argc === 2) {
      out.integer(s.conn.id)
    } else if ((argIs(a, 1, 'list') || argIs(a, 1, 'info')) ) {
      const lines: string[] = []
      for (const c of s.server.connections) {
        if (argIs(a, 1, 'info') && c !== s.conn) continue
        lines.push(`id=${c.id} addr=${c.addr} name=${c.name} age=${Math.floor((Date.now() - c.createdMs) / 1000)} cmds=${c.commandsTotal} multi=${c.inMulti ? c.multiQueue.length : -1}`)
      }
      out.bulkString(lines.join('\n') + '\n')
    } else if (argIs(a, 1, 'setinfo')) {
      out.raw(OK)
    } else {
      out.error(`ERR unknown subcommand '${argString(a, 1).slice(0, 64)}'. Try CLIENT HELP.`)
    }
  } },
  { name: 'command', arity: -1, flags: 0, run: (s, a) => {
    const out = s.conn.out
    if (a.argc >= 2 && argIs(a, 1, 'count')) { out.integer(new Set([...s.server.commands.values()]).size); return }
    if (a.argc >= 2 && argIs(a, 1, 'docs')) { out.arrayHeader(0); return }
    const specs = [...new Set(s.server.commands.values())]
    out.arrayHeader(specs.length)
    for (const spec of specs) {
      out.arrayHeader(6)
      out.bulkString(spec.name)
      out.integer(spec.arity)
      const flags: string[] = []
      if ((spec.flags & F_WRITE) !== 0) flags.push('write')
      else flags.push('readonly')
      out.arrayHeader(flags.length)
      for (const f of flags) out.simple(f)
      const hasKey = spec.name !== 'ping' && spec.name !== 'echo' && (spec.flags & (F_WRITE | 2)) !== 0
      out.integer(hasKey ? 1 : 0)
      out.integer(hasKey ? (spec.name === 'mset' || spec.name === 'msetnx' ? -1 : spec.arity < 0 && spec.name !== 'set' ? -1 : 1) : 0)
      out.integer(hasKey ? (spec.name === 'mset' || spec.name === 'msetnx' ? 2 : 1) : 0)
    }
  } },
  { name: 'config', arity: -2, flags: 0, run: (s, a) => {
    const out = s.conn.out
    if (argIs(a, 1, 'get') && a.argc >= 3) {
      const values: Record<string, string> = {
        save: '', appendonly: 'no', maxmemory: String(s.server.node.writer?.options.maxMemoryBytes ?? 0),
        databases: '1', 'proto-max-bulk-len': String(s.server.options.valueBytesMax),
        maxclients: String(s.server.options.maxClients), port: String(s.server.port),
        bind: s.server.options.host, 'replica-read-only': 'yes',
      }
      const pairs: string[] = []
      for (let i = 2; i < a.argc; i++) {
        const pattern = argString(a, i).toLowerCase()
        const re = new RegExp('^' + pattern.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.') + '$')
        for (const [k, v] of Object.entries(values)) if (re.test(k) && !pairs.includes(k)) pairs.push(k, v)
      }
      out.arrayHeader(pairs.length)
      for (const p of pairs) out.bulkString(p)
    } else if (argIs(a, 1, 'set')) {
      out.error('ERR CONFIG SET is not supported by freshet; use the command-line flags')
    } else if (argIs(a, 1, 'resetstat')) {
      s.server.commandsTotal = 0
      s.server.node.resetStats()
      out.raw(OK)
    } else {
      out.error(`ERR unknown subcommand '${argString(a, 1).slice(0, 64)}'. Try CONFIG HELP.`)
    }
  } },
  { name: 'info', arity: -1, flags: 0, run: (s, a) => {
    const sections = a.argc > 1 ? Array.from({ length: a.argc - 1 }, (_, i) => argString(a, i + 1).toLowerCase()) : ['default']
    s.conn.out.bulkString(renderInfo(s.server, sections))
  } },
  { name: 'watch', arity: -2, flags: F_MULTI_CONTROL, run: (s) => s.conn.out.error('ERR WATCH is not supported by freshet') },
  { name: 'unwatch', arity: 1, flags: F_MULTI_CONTROL, run: (s) => s.conn.out.raw(OK) },
]

function timingSafeEqualString(a: string, b: string): boolean {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  let diff = x.length ^ y.length
  for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x[i % Math.max(1, x.length)] ?? 0) ^ (y[i % Math.max(1, y.length)] ?? 0)
  return diff === 0
}

const ALL_SECTIONS = ['server', 'clients', 'memory', 'persistence', 'stats', 'replication', 'keyspace']

export function renderInfo(server: RespServer, requested: string[]): string {
  const want = new Set<string>()
  for (const r of requested) {
    if (r === 'all' || r === 'everything' || r === 'default') for (const x of ALL_SECTIONS) want.add(x)
    else want.add(r)
  }
  const parts: string[] = []
  for (const section of ALL_SECTIONS) {
    if (!want.has(section)) continue
    const lines = sectionLines(server, section)
    if (lines === null) continue
    parts.push(`# ${section[0].toUpperCase()}${section.slice(1)}\r\n` + lines.map(([k, v]) => `${k}:${v}`).join('\r\n') + '\r\n')
  }
  return parts.join('\r\n')
}

function sectionLines(server: RespServer, section: string): Array<[string, string | number]> | null {
  const node = server.node
  switch (section) {
    case 'server':
      return [
        ['redis_version', '7.0.0'], ['freshet_version', '0.1.0'], ['redis_mode', 'standalone'],
        ['role', node.role], ['process_id', process.pid], ['tcp_port', server.port],
        ['uptime_in_seconds', Math.floor((Date.now() - server.startedMs) / 1000)],
        ['executable', process.argv[1] ?? ''],
      ]
    case 'clients':
      return [['connected_clients', server.connections.size], ['maxclients', server.options.maxClients]]
    case 'stats':
      return [
        ['total_connections_received', server.connectionsTotal], ['total_commands_processed', server.commandsTotal],
        ['rejected_connections', server.rejectedConnections],
        ...(node.info('stats') ?? []),
      ]
    case 'keyspace': {
      const keys = node.keyCount()
      return keys > 0 ? [['db0', `keys=${keys},expires=0,avg_ttl=0`]] : []
    }
    default:
      return node.info(section)
  }
}

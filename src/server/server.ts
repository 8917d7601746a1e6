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
import type { Freshness } from './freshness.js'
import { randomBytes } from 'node:crypto'
import net from 'node:net'
import { PROTOCOL_ERROR_LINGER_MS_MAX, QUERY_BUFFER_BYTES_MAX } from '../constants.js'
import { DbError, OOM_MESSAGE } from '../errors.js'
import type { ServedNode } from '../node.js'
import { type Args, argString, copyArgs } from './args.js'
import { type CommandSpec, errorReply, Session, F_ADMIN, F_BLOCKING, F_MAY_FREE, F_MULTI_CONTROL, F_NOAUTH, F_OBSERVES_ALL, F_READ, F_WRITE, QUEUED } from './commands.js'
import { Connection } from './connection.js'
import { WatchRegistry } from './watches.js'
import type { CommandRegistry, InfoRegistry } from './registry.js'
import { MONITOR_OUTPUT_BYTES_MAX, monitorLine } from './monitor.js'
import { OPS_SAMPLE_INTERVAL_MS, OpsRate } from './ops_rate.js'
import { PARSE_COMMAND } from './resp.js'
import { nowMs } from '../io/clock.js'

export interface ServerOptions {
  host: string
  port: number
  requirepass: string | null
  maxClients: number
  valueBytesMax: number
  log: (line: string) => void
  /** How SHUTDOWN stops this node (flush the log, close, exit); null: SHUTDOWN is refused. */
  shutdown: (() => void) | null
  /** CONFIG GET dir / dbfilename: where RDB snapshots go (absent in servers without them). */
  dir?: string
  dbfilename?: string
}

export class RespServer {
  /** The node served now; serve() changes it (a role change at run time). */
  node: ServedNode
  /** The node's commands (data, admin and its role's), filled at the composition root. */
  commands: CommandRegistry
  /** The INFO sections the node's components contribute. */
  info: InfoRegistry
  readonly options: ServerOptions
  readonly connections: Set<Connection>
  readonly startedMs: number
  private readonly server: net.Server
  /** WATCH: the node's writes mark watchers (a backup has none: it compares versions at EXEC). */
  private readonly watches: WatchRegistry
  private readonly held: Set<Connection>
  private readonly dirty: Set<Connection>
  private turnScheduled: boolean
  private nextId: number
  commandsTotal: number
  connectionsTotal: number
  rejectedConnections: number
  /** Unexpected exceptions caught at a connection's boundary (each logged with its stack). */
  internalErrors: number
  /** Replies answered with the node's held-reply error because their commit took longer than its bound (INFO held_replies_expired_total). */
  heldRepliesExpired: number
  port: number
  /** Connections in MONITOR mode: each command is echoed to them as it arrives. */
  readonly monitors: Set<Connection>
  /** Unique per process start (INFO run_id), as Redis's. */
  readonly runId: string
  /** INFO instantaneous_ops_per_sec. */
  private readonly opsRate: OpsRate
  private readonly sampler: NodeJS.Timeout
  /** Resolves once the listening socket is closed (set by the first quiesce()). */
  private closedListener: Promise<void> | null

  constructor(node: ServedNode, options: ServerOptions, commands: CommandRegistry, info: InfoRegistry) {
    this.node = node
    this.watches = new WatchRegistry()
    if (node.writer !== null) node.writer.keyWrites = this.watches
    this.commands = commands
    this.info = info
    this.options = options
    this.connections = new Set()
    this.startedMs = nowMs()
    this.held = new Set()
    this.dirty = new Set()
    this.turnScheduled = false
    this.nextId = 1
    this.commandsTotal = 0
    this.connectionsTotal = 0
    this.rejectedConnections = 0
    this.internalErrors = 0
    this.heldRepliesExpired = 0
    this.port = options.port
    this.monitors = new Set()
    this.runId = randomBytes(20).toString('hex')
    this.opsRate = new OpsRate(nowMs())
    this.sampler = setInterval(() => {
      this.opsRate.sample(this.commandsTotal, nowMs())
      this.expireHeld()
    }, OPS_SAMPLE_INTERVAL_MS)
    this.sampler.unref()
    this.closedListener = null
    this.server = net.createServer({ noDelay: true }, (socket) => this.accept(socket))
  }

  /**
   * Serves another node from now on, with its commands and INFO sections:
   * how a role changes at run time (commands read the node through their
   * session at each call).
   */
  serve(node: ServedNode, commands: CommandRegistry, info: InfoRegistry): void {
    this.node = node
    if (node.writer !== null) node.writer.keyWrites = this.watches
    this.commands = commands
    this.info = info
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

  instantaneousOps(): number {
    return this.opsRate.perSecond()
  }

  /** Connections whose replies wait for their commit (INFO held_clients). */
  heldClients(): number {
    return this.held.size
  }

  /**
   * A client never waits forever: replies held longer than the node's bound
   * (remote-* modes without their sync backups, a fenced primary) are
   * answered with its error instead, in order, one per reply.
   */
  private expireHeld(): void {
    if (this.held.size === 0) return
    const boundMs = this.node.heldReplyBoundMs()
    if (boundMs <= 0) return
    const before = nowMs() - boundMs
    let text: string | null = null
    for (const c of this.held) {
      if (c.markMs.length === 0 || c.markMs[0] > before) continue
      text ??= this.node.heldReplyError()
      this.heldRepliesExpired += c.expireHeld(before, text)
      if (!c.hasHeld()) this.held.delete(c)
      this.dirty.add(c)
    }
    for (const c of this.dirty) this.flushConnection(c)
    this.dirty.clear()
  }

  /** Answers every held reply with `text` now (a primary stepping down: what it holds will never be acknowledged). */
  failHeld(text: string): void {
    for (const c of this.held) {
      this.heldRepliesExpired += c.expireHeld(Number.POSITIVE_INFINITY, text)
      this.dirty.add(c)
    }
    this.held.clear()
    for (const c of this.dirty) this.flushConnection(c)
    this.dirty.clear()
  }

  /** Connections parked by a blocking command (INFO blocked_clients). */
  blockedClients(): number {
    let n = 0
    for (const c of this.connections) if (c.blocked) n++
    return n
  }

  /**
   * First step of a clean stop: no new connections and no further input, and
   * what this turn wrote is sealed. Replies already held go out as the node
   * releases them (the caller then flushes the log), so a client whose write
   * became durable before the stop gets its answer.
   */
  quiesce(): void {
    if (this.closedListener === null) this.closedListener = new Promise((resolve) => this.server.close(() => resolve()))
    for (const c of this.connections) {
      if (!c.detached) c.socket.pause()
    }
    this.endTurn()
  }

  /** Sends what may be sent and closes every connection. */
  close(): Promise<void> {
    clearInterval(this.sampler)
    this.quiesce()
    for (const c of this.connections) {
      this.flushConnection(c)
      c.socket.end()
      setTimeout(() => c.destroy(), 200).unref()
    }
    return this.closedListener!
  }

  private accept(socket: net.Socket): void {
    if (this.connections.size >= this.options.maxClients) {
      this.rejectedConnections++
      socket.end('-ERR max number of clients reached\r\n')
      return
    }
    const bulkMax = this.options.valueBytesMax + 1024 * 1024
    const conn = new Connection(this.nextId++, socket, bulkMax, Math.max(QUERY_BUFFER_BYTES_MAX, 2 * bulkMax), this.options.requirepass === null, this.watches)
    conn.session = new Session(this, conn)
    this.connections.add(conn)
    this.connectionsTotal++
    socket.setNoDelay(true)
    socket.on('data', (chunk: Buffer) => this.onData(conn, chunk))
    socket.on('error', () => { conn.destroy() })
    socket.on('close', () => {
      conn.closed = true
      conn.unwatch()
      this.connections.delete(conn)
      this.monitors.delete(conn)
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
    if (err instanceof DbError) {
      conn.out.error(`ERR Protocol error: ${err.message}`)
    } else {
      // A bug reached by this connection's input: it loses its connection, the node goes on.
      this.internalErrors++
      this.options.log(`internal error on client ${conn.addr}, closing it: ${describeError(err)}`)
      conn.out.error('ERR internal error (the server logged it); closing the connection')
    }
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

  endTurn(): void {
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
    if ((spec.flags & (F_READ | F_WRITE | F_OBSERVES_ALL)) !== 0) {
      const loading = this.node.loading()
      if (loading !== null) {
        if (conn.inMulti) conn.multiError = true
        out.error(`LOADING ${loading}`)
        return
      }
    }
    conn.lastCommand = spec.name
    conn.lastCommandMs = nowMs()
    if (this.monitors.size > 0 && (spec.flags & F_ADMIN) === 0) this.feedMonitors(conn, a, spec)
    if (conn.inMulti && (spec.flags & F_MULTI_CONTROL) === 0) {
      if ((spec.flags & F_BLOCKING) !== 0) {
        conn.multiError = true
        out.error('ERR Command not allowed inside a transaction')
        return
      }
      // Like Redis, a write that adds data is refused when queued if the node is already past maxmemory.
      const writer = this.node.writer
      if ((spec.flags & (F_WRITE | F_MAY_FREE)) === F_WRITE && writer !== null && writer.outOfMemory(0)) {
        conn.multiError = true
        out.error(`OOM ${OOM_MESSAGE}`)
        return
      }
      conn.multiQueue.push(copyArgs(a))
      out.raw(QUEUED)
      return
    }
    const gate = this.node.freshness
    const fresh = conn.freshness
    if (fresh !== null && gate !== null && ((spec.flags & F_READ) !== 0 || spec.name === 'exec') && !gate.fresh(fresh)) {
      gate.park(conn.session!, fresh, copyArgs(a), (b) => this.execute(conn, spec, b))
      return
    }
    this.execute(conn, spec, a)
  }

  /** Runs a command that passed dispatch's checks (at once, or once a parked read became fresh). */
  private execute(conn: Connection, spec: CommandSpec, a: Args): void {
    const session = conn.session!
    const view = this.node.view
    view.observedLsn = -1
    if ((spec.flags & F_OBSERVES_ALL) !== 0) view.observe(this.node.waitLsn())
    const errors = conn.out.errors
    try {
      this.run(spec, session, a)
    } finally {
      if (view.observedLsn > conn.observedLsn) conn.observedLsn = view.observedLsn
      // Lazy expiry, once the command is done with its probes (a no-op unless its reads met an expired key).
      if (this.node.writer !== null) this.node.writer.afterCommand()
      spec.calls = (spec.calls ?? 0) + 1
      if (conn.out.errors !== errors) spec.failed = (spec.failed ?? 0) + 1
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
        writer.beginWrite(spec.bound!(session, a, 0), (spec.flags & F_MAY_FREE) === 0)
      } catch (err) {
        out.error(errorReply(err))
        return
      }
      try {
        this.runHandler(spec, session, a)
      } finally {
        writer.endWrite()
      }
      return
    }
    this.runHandler(spec, session, a)
  }

  /**
   * Runs one command handler. Input never takes the node down: an operating
   * error a handler throws (DbError) becomes its error reply, and anything
   * else (a bug that input reached) becomes an error reply plus a logged
   * stack. Either way the partial reply the handler wrote is dropped, so the
   * client's reply stream stays in step with its commands.
   */
  private runHandler(spec: CommandSpec, session: Session, a: Args): void {
    const conn = session.conn
    const replyStart = conn.out.length
    try {
      spec.run(session, a)
    } catch (err) {
      if (conn.detached) throw err
      if (conn.out.length >= replyStart && conn.sendable <= replyStart) conn.out.length = replyStart
      conn.blocked = false
      if (err instanceof DbError) {
        conn.out.error(errorReply(err))
        return
      }
      this.internalErrors++
      this.options.log(`internal error in '${spec.name}' from client ${conn.addr}: ${describeError(err)}`)
      conn.out.error(`ERR internal error while running '${spec.name}' (the server logged it)`)
    }
  }

  /**
   * MONITOR: echoes a command, as it arrives, to every monitoring connection.
   * A monitor that does not read fast enough is cut off (its output is
   * bounded); it never slows the server down. AUTH and HELLO arguments are
   * not shown.
   */
  private feedMonitors(from: Connection, a: Args, spec: CommandSpec): void {
    const line = monitorLine(from.addr, a, spec.name === 'auth' || spec.name === 'hello')
    for (const m of this.monitors) {
      if (m.closed) continue
      if (m.socket.writableLength + m.out.length + line.length > MONITOR_OUTPUT_BYTES_MAX) {
        this.options.log(`monitor ${m.addr} cut off: its output is over ${MONITOR_OUTPUT_BYTES_MAX} bytes`)
        this.monitors.delete(m)
        m.destroy()
        continue
      }
      m.out.simpleLine(line)
      // Released at once (nothing to wait for), in order after the monitor's own replies.
      m.mark(-1, this.node.releasedLsn())
      this.dirty.add(m)
    }
    this.scheduleTurnEnd()
  }

  /** FRESHET.READ: dispatches the command in a[from, argc) under the contract `f` (the connection's own is restored). */
  dispatchUnder(conn: Connection, a: Args, from: number, f: Freshness): void {
    const inner: Args = { data: a.data, argStart: a.argStart.subarray(from), argLength: a.argLength.subarray(from), argc: a.argc - from }
    const own = conn.freshness
    conn.freshness = f
    try {
      this.dispatch(conn, inner)
    } finally {
      conn.freshness = own
    }
  }

  /** RESET: the connection's state back to that of a new connection. */
  resetConnection(conn: Connection): void {
    conn.endTransaction()
    conn.freshness = null
    conn.name = ''
    conn.out.protocol = 2
    this.monitors.delete(conn)
    if (this.options.requirepass !== null) conn.deauthenticate()
  }

  /** A blocking command parks its connection: no further input runs until unblock(). */
  block(conn: Connection): void {
    conn.blocked = true
  }

  /**
   * A command whose answer needs asynchronous work (SAVE, REPLICAOF): the
   * connection is parked until `work` settles, then `answer` writes the reply,
   * or the error `failure` names (`CODE message`), and input resumes.
   */
  answerWhenDone<T>(conn: Connection, work: Promise<T>, answer: (value: T) => void, failure: (err: unknown) => string): void {
    this.block(conn)
    work.then((v) => {
      if (!conn.closed) answer(v)
    }, (err: unknown) => {
      if (!conn.closed) conn.out.error(failure(err))
    }).finally(() => this.unblock(conn))
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
    const aborted = conn.multiError
    // A primary marks watchers on each write (exact, relocations are not writes); a backup compares versions.
    const changed = !aborted && (this.node.writer !== null ? conn.watchDirty : this.watchedKeyChanged(conn))
    conn.endTransaction()
    if (aborted) {
      conn.out.error('EXECABORT Transaction discarded because of previous errors.')
      return
    }
    if (changed) {
      conn.out.nullArray()
      return
    }
    const writer = this.node.writer
    for (const a of queue) if ((this.lookup(a).flags & F_OBSERVES_ALL) !== 0) this.node.view.observe(this.node.waitLsn())
    let hasWrite = false
    let addsData = false
    let bound = 0
    try {
      // An APPEND's result is at most its key's current value plus every byte the transaction writes.
      let appendBytes = 0
      for (const a of queue) for (let i = 1; i < a.argc; i++) appendBytes += a.argLength[i]
      for (const a of queue) {
        const spec = this.lookup(a)
        if ((spec.flags & F_WRITE) === 0) continue
        hasWrite = true
        if ((spec.flags & F_MAY_FREE) === 0) addsData = true
        if (writer === null) { conn.out.error('EXECABORT Transaction discarded because of: READONLY You can\'t write against a read only replica.'); return }
        bound += spec.bound!(s, a, appendBytes)
      }
      if (hasWrite) writer!.beginWrite(bound, addsData)
    } catch (err) {
      conn.out.error(`EXECABORT Transaction discarded because of: ${errorReply(err)}`)
      return
    }
    conn.out.arrayHeader(queue.length)
    try {
      for (const a of queue) this.runHandler(this.lookup(a), s, a)
    } finally {
      if (hasWrite) writer!.endWrite()
    }
  }

  /**
   * On a backup: has any key this connection WATCHes got a new version since
   * WATCH (replayed from the primary)? The index already knows each key's
   * newest version, so this is one lookup per watched key. The cleaner's
   * relocation of a watched version is not a change (one hop is looked through).
   */
  private watchedKeyChanged(conn: Connection): boolean {
    const view = this.node.view
    for (let i = 0; i < conn.watchedKeys.length; i++) {
      const key = conn.watchedKeys[i]
      if (!view.sameVersion(view.versionOf(key, 0, key.length), conn.watchedVersions[i])) return true
    }
    return false
  }

  private lookup(a: Args): CommandSpec {
    return this.find(a.data, a.argStart[0], a.argLength[0])!
  }

  find(d: Uint8Array, start: number, length: number): CommandSpec | undefined {
    return this.commands.find(d, start, length)
  }
}


/** An unexpected exception for the log: its stack when it has one. */
function describeError(err: unknown): string {
  return err instanceof Error ? err.stack ?? err.message : String(err)
}

function argsPreview(a: Args): string {
  const parts: string[] = []
  for (let i = 1; i < a.argc && i < 4; i++) parts.push(`'${argString(a, i).slice(0, 64)}'`)
  return parts.join(' ')
}

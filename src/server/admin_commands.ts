/**
 * The node's own commands, as opposed to data commands (commands.ts,
 * string_commands.ts): transactions (MULTI/EXEC/DISCARD/WATCH), connection
 * state (AUTH, HELLO, CLIENT, QUIT), introspection (INFO, CONFIG, COMMAND).
 * INFO renders the server's own sections and asks the node for the rest.
 */
import { parseFreshness } from './freshness.js'
import { keyHash } from '../codec/hash.js'
import { createHash } from 'node:crypto'
import { argInt, argIs, argString, globMatch, parseMemory, type Args } from './args.js'
import { type CommandSpec, F_ADMIN, F_BLOCKING, F_MULTI_CONTROL, F_NOAUTH, OK, type Session } from './commands.js'
import type { RespServer } from './server.js'
import { command } from './command_info.js'
import { client, setClientName } from './client_command.js'
import { REF_NONE } from '../constants.js'
import { advanceClock, nowMs } from '../io/clock.js'
import { counter, gauge } from '../metrics/metric.js'
import { parseFields } from '../client/client.js'
import { lineValues, type InfoLines } from '../node.js'

export const ADMIN_COMMANDS: CommandSpec[] = [
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
    s.conn.endTransaction()
    s.conn.out.raw(OK)
  } },
  // Not F_MULTI_CONTROL: inside MULTI, AUTH is queued and runs with EXEC, as in Redis.
  { name: 'auth', arity: -2, flags: F_NOAUTH, run: (s, a) => {
    if (a.argc > 3) { s.conn.out.error('ERR syntax error'); return }
    // With no password configured, the default user takes any password when named; the one-argument form is refused.
    if (s.server.options.requirepass === null && a.argc === 2) {
      s.conn.out.error('ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?')
      return
    }
    const user = a.argc === 3 ? argString(a, 1) : 'default'
    if (checkPassword(s, user, argString(a, a.argc - 1))) { s.conn.authenticate(); s.conn.out.raw(OK); return }
    s.conn.out.error(WRONGPASS)
  } },
  // The freshness contract of this connection's reads (server/freshness.ts).
  { name: 'freshet.freshness', arity: -1, flags: 0, run: (s, a) => {
    const out = s.conn.out
    if (a.argc === 1) {
      const f = s.conn.freshness
      out.simple(f === null ? 'OFF' : `MAXLAG ${Number.isFinite(f.maxLagMs) ? f.maxLagMs : -1} MINLSN ${f.minLsn} WAIT ${f.waitMs}`)
      return
    }
    if (a.argc === 2 && argIs(a, 1, 'off')) { s.conn.freshness = null; out.raw(OK); return }
    const parsed = parseFreshness(s, a, 1, a.argc)
    if (parsed === null) return
    if (parsed.next !== a.argc) { out.error('ERR syntax error'); return }
    s.conn.freshness = parsed.f
    out.raw(OK)
  } },
  // One command under a contract: FRESHET.READ [MAXLAG ms] [MINLSN lsn] [WAIT ms] command [arg ...].
  { name: 'freshet.read', arity: -4, flags: F_BLOCKING, run: (s, a) => {
    const parsed = parseFreshness(s, a, 1, a.argc)
    if (parsed === null) return
    if (parsed.next >= a.argc) { s.conn.out.error('ERR FRESHET.READ needs a command after its options'); return }
    if (argIs(a, parsed.next, 'freshet.read')) { s.conn.out.error('ERR FRESHET.READ cannot be nested'); return }
    s.server.dispatchUnder(s.conn, a, parsed.next, parsed.f)
  } },
  { name: 'quit', arity: -1, flags: F_NOAUTH | F_MULTI_CONTROL, run: (s) => { s.conn.out.raw(OK); s.conn.closing = true } },
  { name: 'client', arity: -2, flags: 0, run: client },
  { name: 'command', arity: -1, flags: 0, run: command },
  { name: 'config', arity: -2, flags: F_ADMIN, run: (s, a) => {
    const out = s.conn.out
    if (argIs(a, 1, 'get') && a.argc >= 3) {
      const values: Record<string, string> = {
        save: '', appendonly: 'no', maxmemory: String(s.server.node.writer?.options.maxMemoryBytes ?? 0),
        databases: '1', 'proto-max-bulk-len': String(s.server.options.valueBytesMax),
        maxclients: String(s.server.options.maxClients), port: String(s.server.port),
        bind: s.server.options.host, 'replica-read-only': 'yes',
        dir: s.server.options.dir ?? '', dbfilename: s.server.options.dbfilename ?? '',
      }
      const pairs: string[] = []
      for (let i = 2; i < a.argc; i++) {
        const asked = argString(a, i)
        // A plain name (no glob character) is looked up, and answered with the name as the client wrote it.
        if (!/[*?[]/.test(asked)) {
          const v = values[asked.toLowerCase()]
          if (v !== undefined && !pairs.includes(asked.toLowerCase())) pairs.push(asked, v)
          continue
        }
        for (const [k, v] of Object.entries(values)) {
          const name = Buffer.from(k)
          // Parameter names match case-insensitively, with the same bounded matcher as SCAN MATCH.
          if (globMatch(a.data, a.argStart[i], a.argLength[i], name, 0, name.length, true) && !pairs.includes(k)) pairs.push(k, v)
        }
      }
      out.mapHeader(pairs.length / 2)
      for (const p of pairs) out.bulkString(p)
    } else if (argIs(a, 1, 'set')) {
      if (a.argc >= 4 && a.argc % 2 === 0) configSet(s, a)
      else out.error('ERR wrong number of arguments for \'config|set\' command')
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
    s.conn.out.verbatim(renderInfo(s.server, sections))
  } },
  { name: 'watch', arity: -2, flags: F_MULTI_CONTROL, run: (s, a) => {
    const conn = s.conn
    if (conn.inMulti) { conn.out.error('ERR WATCH inside MULTI is not allowed'); return }
    if (conn.watchedKeys.length + a.argc - 1 > WATCHED_KEYS_MAX) { conn.out.error(`ERR at most ${WATCHED_KEYS_MAX} keys may be watched by one connection`); return }
    const view = s.node.view
    for (let i = 1; i < a.argc; i++) {
      conn.watch(a.data, a.argStart[i], a.argLength[i], view.versionOf(a.data, a.argStart[i], a.argLength[i]), keyHash(a.data, a.argStart[i], a.argLength[i]))
    }
    conn.out.raw(OK)
  } },
  // Queued inside MULTI, like Redis (EXEC unwatches anyway).
  { name: 'unwatch', arity: 1, flags: 0, run: (s) => { s.conn.unwatch(); s.conn.out.raw(OK) } },
  { name: 'hello', arity: -1, flags: F_NOAUTH | F_MULTI_CONTROL, run: hello },
  { name: 'reset', arity: 1, flags: F_NOAUTH | F_MULTI_CONTROL, run: (s) => { s.server.resetConnection(s.conn); s.conn.out.simple('RESET') } },
  { name: 'monitor', arity: 1, flags: F_ADMIN | F_BLOCKING, run: (s) => { s.server.monitors.add(s.conn); s.conn.out.raw(OK) } },
  // Refused inside MULTI (F_BLOCKING: not queued), as Redis refuses it.
  { name: 'shutdown', arity: -1, flags: F_ADMIN | F_BLOCKING, run: shutdown },
  { name: 'debug', arity: -2, flags: F_ADMIN, run: debug },
  { name: 'role', arity: 1, flags: F_NOAUTH, run: role },
]

const WATCHED_KEYS_MAX = 100_000
const WRONGPASS = 'WRONGPASS invalid username-password pair or user is disabled.'

/** The default user's password check (any password when none is configured). */
function checkPassword(s: Session, user: string, given: string): boolean {
  const pass = s.server.options.requirepass
  if (user !== 'default') return false
  return pass === null || timingSafeEqualString(given, pass)
}

/**
 * HELLO [protover [AUTH user pass] [SETNAME name]]: picks RESP2 or RESP3 for
 * this connection (authenticating first if asked) and answers with a map
 * describing the node.
 */
function hello(s: Session, a: Args): void {
  const conn = s.conn
  const out = conn.out
  let protocol = 0
  if (a.argc >= 2) {
    protocol = argInt(a, 1)
    if (Number.isNaN(protocol)) { out.error('ERR Protocol version is not an integer or out of range'); return }
    if (protocol < 2 || protocol > 3) { out.error('NOPROTO unsupported protocol version'); return }
  }
  let user: string | null = null
  let password = ''
  for (let j = 2; j < a.argc; j++) {
    const more = a.argc - 1 - j
    if (argIs(a, j, 'auth') && more >= 2) {
      user = argString(a, j + 1)
      password = argString(a, j + 2)
      j += 2
    } else if (argIs(a, j, 'setname') && more >= 1) {
      if (!setClientName(s, a, j + 1)) return
      j++
    } else {
      out.error(`ERR Syntax error in HELLO option '${argString(a, j).slice(0, 128)}'`)
      return
    }
  }
  if (user !== null) {
    if (!checkPassword(s, user, password)) { out.error(WRONGPASS); return }
    conn.authenticate()
  }
  if (!conn.authed) {
    out.error('NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time')
    return
  }
  if (protocol !== 0) out.protocol = protocol
  out.mapHeader(7)
  out.bulkString('server'); out.bulkString('freshet')
  out.bulkString('version'); out.bulkString(REDIS_VERSION)
  out.bulkString('proto'); out.integer(out.protocol)
  out.bulkString('id'); out.integer(conn.id)
  out.bulkString('mode'); out.bulkString('standalone')
  out.bulkString('role'); out.bulkString(s.node.role === 'primary' ? 'master' : 'replica')
  out.bulkString('modules'); out.arrayHeader(0)
}

/** CONFIG SET, for the parameters that can change at run time; all pairs are checked before any applies. */
function configSet(s: Session, a: Args): void {
  const out = s.conn.out
  const writer = s.server.node.writer
  const apply: Array<() => void> = []
  for (let i = 2; i < a.argc; i += 2) {
    const name = argString(a, i).toLowerCase()
    const value = argString(a, i + 1)
    const bad = (): void => out.error(`ERR CONFIG SET failed (possibly related to argument '${name.slice(0, 64)}') - argument couldn't be parsed into an integer`)
    switch (name) {
      case 'maxclients': {
        const n = argInt(a, i + 1)
        if (!(n >= 1)) { bad(); return }
        apply.push(() => { s.server.options.maxClients = n })
        break
      }
      case 'maxmemory': {
        const n = parseMemory(value)
        if (n === null) { bad(); return }
        if (writer === null) { out.error('ERR CONFIG SET failed (possibly related to argument \'maxmemory\') - a backup\'s memory follows its primary in this version'); return }
        // 0 means no limit, as in Redis.
        apply.push(() => { writer.options.maxMemoryBytes = n === 0 ? Number.MAX_SAFE_INTEGER : n })
        break
      }
      case 'requirepass':
        apply.push(() => { s.server.options.requirepass = value === '' ? null : value })
        break
      case 'save': case 'appendonly': {
        // freshet's log is its persistence: these accept only the values that describe it.
        const current = name === 'save' ? '' : 'no'
        if (value.toLowerCase() !== current) { out.error(`ERR CONFIG SET failed (possibly related to argument '${name}') - freshet persists through its log; ${name} stays '${current}'`); return }
        break
      }
      case 'port': case 'bind': case 'databases': case 'dir': case 'dbfilename': case 'proto-max-bulk-len': case 'daemonize':
        out.error(`ERR CONFIG SET failed (possibly related to argument '${name}') - can't set immutable config`)
        return
      default:
        out.error(`ERR Unknown option or number of arguments for CONFIG SET - '${name.slice(0, 64)}'`)
        return
    }
  }
  for (const f of apply) f()
  out.raw(OK)
}

/** SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE]: flushes the log and stops the node (freshet has no snapshot to save). */
function shutdown(s: Session, a: Args): void {
  for (let i = 1; i < a.argc; i++) {
    if (argIs(a, i, 'abort')) { s.conn.out.error('ERR No shutdown in progress.'); return }
    if (!argIs(a, i, 'nosave') && !argIs(a, i, 'save') && !argIs(a, i, 'now') && !argIs(a, i, 'force')) { s.conn.out.error('ERR syntax error'); return }
  }
  const stop = s.server.options.shutdown
  if (stop === null) { s.conn.out.error('ERR SHUTDOWN is not available on this node'); return }
  s.server.options.log(`SHUTDOWN from client ${s.conn.addr}: flushing the log and closing`)
  stop()
}

const DEBUG_SLEEP_SECONDS_MAX = 600
const DIGEST_EMPTY = '0'.repeat(40)
const KEY_VALUE_SEPARATOR = Buffer.from([0])

/**
 * DEBUG SLEEP (blocks the whole node, as Redis's does: tests use it to make
 * latency), DEBUG DIGEST (a digest of the dataset: equal on nodes that hold
 * the same keys and values, whatever their order), DEBUG DIGEST-VALUE, DEBUG
 * SET-ACTIVE-EXPIRE 0|1 (as Redis's) and DEBUG ADVANCE-CLOCK ms (freshet's:
 * moves the node's clock forward, so tests of TTLs need not sleep).
 * Only from a loopback connection.
 */
function debug(s: Session, a: Args): void {
  const out = s.conn.out
  const remote = s.conn.socket.remoteAddress ?? ''
  if (remote !== '127.0.0.1' && remote !== '::1' && remote !== '::ffff:127.0.0.1') { out.error('ERR DEBUG command not allowed from a non-local connection'); return }
  if (argIs(a, 1, 'sleep') && a.argc === 3) {
    const seconds = Number(argString(a, 2))
    if (!Number.isFinite(seconds) || seconds < 0 || seconds > DEBUG_SLEEP_SECONDS_MAX) { out.error('ERR value is not a valid float'); return }
    // Blocks the main thread on purpose, like Redis's DEBUG SLEEP.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, seconds * 1000) // nothing publishes here: a plain timed wait
    out.raw(OK)
    return
  }
  if (argIs(a, 1, 'digest') && a.argc === 2) {
    const acc = Buffer.alloc(20)
    let any = false
    const view = s.node.view
    view.forEachLive((ref) => {
      const c = view.locate(ref)
      const h = createHash('sha1').update(c.u8.subarray(c.keyStart, c.keyStart + c.keyLength)).update(KEY_VALUE_SEPARATOR).update(c.u8.subarray(c.valueStart, c.valueStart + c.valueLength)).digest()
      for (let i = 0; i < 20; i++) acc[i] ^= h[i]
      any = true
    })
    out.simple(any ? acc.toString('hex') : DIGEST_EMPTY)
    return
  }
  if (argIs(a, 1, 'digest-value')) {
    out.arrayHeader(a.argc - 2)
    for (let i = 2; i < a.argc; i++) {
      const ref = s.node.view.lookup(a.data, a.argStart[i], a.argLength[i])
      if (ref === REF_NONE) { out.simple(DIGEST_EMPTY); continue }
      const c = s.node.view.locate(ref)
      out.simple(createHash('sha1').update(c.u8.subarray(c.valueStart, c.valueStart + c.valueLength)).digest('hex'))
    }
    return
  }
  if (argIs(a, 1, 'set-active-expire') && a.argc === 3) {
    s.node.setActiveExpiry(argString(a, 2) !== '0')
    out.raw(OK)
    return
  }
  if (argIs(a, 1, 'advance-clock') && a.argc === 3) {
    const ms = Number(argString(a, 2))
    if (!Number.isSafeInteger(ms) || ms < 0) { out.error('ERR value is not an integer or out of range'); return }
    advanceClock(ms)
    out.raw(OK)
    return
  }
  out.error(`ERR DEBUG subcommand '${argString(a, 1).slice(0, 64)}' is not supported by freshet (SLEEP, DIGEST, DIGEST-VALUE, SET-ACTIVE-EXPIRE, ADVANCE-CLOCK are)`)
}

/**
 * ROLE as Redis answers it, from the node's replication fields: a primary is
 * ["master", offset, [[ip, port, offset] per backup]], a backup ["slave",
 * host, port, link state, offset]. Offsets are LSNs.
 */
function role(s: Session): void {
  const out = s.conn.out
  const fields = lineValues(s.server.info.lines('replication'))
  if (s.node.role === 'primary') {
    const backups = [...fields.entries()].filter(([k]) => /^backup\d+$/.test(k)).map(([, v]) => parseFields(String(v)))
    out.arrayHeader(3)
    out.bulkString('master')
    out.integer(Number(fields.get('commit_lsn') ?? 0))
    out.arrayHeader(backups.length)
    for (const b of backups) {
      const [host, port] = splitHostPort(b.get('addr'))
      out.arrayHeader(3)
      out.bulkString(host)
      out.bulkString(port)
      out.bulkString(b.get('flushed_lsn') ?? '0')
    }
    return
  }
  const [host, port] = splitHostPort(fields.get('primary'))
  out.arrayHeader(5)
  out.bulkString('slave')
  out.bulkString(host)
  out.integer(Number(port))
  out.bulkString(fields.get('link') === 'up' ? 'connected' : 'connect')
  out.integer(Number(fields.get('received_lsn') ?? 0))
}

/** `host:port` (an INFO field) as [host, port]; empty parts when absent. */
function splitHostPort(addr: string | number | undefined): [string, string] {
  const text = String(addr ?? ':')
  const colon = text.lastIndexOf(':')
  return [text.slice(0, colon), text.slice(colon + 1)]
}

/** The Redis version whose behaviour freshet follows (HELLO, INFO redis_version). */
export const REDIS_VERSION = '7.0.0'

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

/** The server's own figures that /metrics shows (metrics/metric.ts). */
const M = {
  connectedClients: gauge('freshet_connected_clients', 'Client connections'),
  blockedClients: gauge('freshet_blocked_clients', 'Connections parked by a blocking command'),
  heldClients: gauge('freshet_held_clients', 'Connections whose replies wait for their commit'),
  heldRepliesExpired: counter('freshet_held_replies_expired_total', 'Held replies answered -NOREPLICAS'),
  rss: gauge('freshet_memory_rss_bytes', 'Resident set size of the process', 'bytes'),
  heapUsed: gauge('freshet_memory_heap_used_bytes', 'JS heap in use', 'bytes'),
  connectionsReceived: counter('freshet_connections_received_total', 'Connections accepted'),
  commandsProcessed: counter('freshet_commands_processed_total', 'Commands run'),
  connectionsRejected: counter('freshet_connections_rejected_total', 'Connections refused (max clients)'),
  internalErrors: counter('freshet_internal_errors_total', 'Bugs input reached (logged with a stack)'),
  expiredKeys: counter('freshet_expired_keys_total', 'Keys removed by expiry'),
  expireCycle: counter('freshet_expire_cycle_seconds_total', 'Time the active expiry cycle ran', 'ms'),
}

export function sectionLines(server: RespServer, section: string): InfoLines | null {
  const node = server.node
  switch (section) {
    case 'server':
      return [
        ['redis_version', REDIS_VERSION], ['freshet_version', '0.1.0'], ['redis_mode', 'standalone'],
        ['os', `${process.platform} ${process.arch}`], ['arch_bits', 64], ['multiplexing_api', 'epoll'],
        ['process_id', process.pid], ['run_id', server.runId], ['tcp_port', server.port],
        ['uptime_in_seconds', Math.floor((nowMs() - server.startedMs) / 1000)],
        ['uptime_in_days', Math.floor((nowMs() - server.startedMs) / 86_400_000)],
        ['executable', process.argv[1] ?? ''], ['config_file', ''],
      ]
    case 'clients':
      return [
        ['connected_clients', server.connections.size, M.connectedClients], ['maxclients', server.options.maxClients],
        ['blocked_clients', server.blockedClients(), M.blockedClients], ['held_clients', server.heldClients(), M.heldClients],
        ['held_replies_expired_total', server.heldRepliesExpired, M.heldRepliesExpired], ['tracking_clients', 0], ['monitors', server.monitors.size],
      ]
    case 'memory': {
      const lines = server.info.lines('memory')
      const used = Number(lines.find(([k]) => k === 'used_memory')?.[1] ?? 0)
      const m = process.memoryUsage()
      return [
        ...lines, ['used_memory_human', humanBytes(used)], ['used_memory_rss', m.rss, M.rss], ['used_memory_rss_human', humanBytes(m.rss)],
        // Where the rest of RSS goes: the JS heap, and memory outside it (buffers; SharedArrayBuffers count once per process).
        ['process_heap_used', m.heapUsed, M.heapUsed], ['process_heap_total', m.heapTotal], ['process_external', m.external],
        ['process_array_buffers', m.arrayBuffers],
        ['mem_allocator', 'libc'],
      ]
    }
    case 'stats':
      return [
        ['total_connections_received', server.connectionsTotal, M.connectionsReceived], ['total_commands_processed', server.commandsTotal, M.commandsProcessed],
        ['instantaneous_ops_per_sec', server.instantaneousOps()],
        ['rejected_connections', server.rejectedConnections, M.connectionsRejected], ['internal_errors', server.internalErrors, M.internalErrors],
        ['expired_keys', node.expiryStats().expired, M.expiredKeys], ['expire_cycle_cpu_milliseconds', Math.round(node.expiryStats().cycleMs), M.expireCycle], ['evicted_keys', 0],
        ...server.info.lines('stats'),
      ]
    case 'replication':
      return withRedisReplicationFields(server.info.lines('replication'), node.role)
    case 'keyspace': {
      const keys = node.keyCount()
      return keys > 0 ? [['db0', `keys=${keys},expires=${node.expiryStats().expiring},avg_ttl=0`]] : []
    }
    default:
      return server.info.lines(section)
  }
}

/** Bytes as Redis's INFO *_human fields show them (1.50M, 312.00K, 900B). */
function humanBytes(n: number): string {
  if (n < 1024) return `${n}B`
  const units = ['K', 'M', 'G', 'T', 'P']
  let v = n / 1024
  let u = 0
  while (v >= 1024 && u < units.length - 1) { v /= 1024; u++ }
  return `${v.toFixed(2)}${units[u]}`
}

/**
 * INFO replication as tools read it: `role` in Redis's words (master, slave)
 * and the Redis-named fields tools parse (master_repl_offset,
 * connected_slaves, master_host, master_port, master_link_status), derived
 * here, in one place, from freshet's own fields, which keep their names
 * (`freshet_role` holds freshet's word for the role).
 */
function withRedisReplicationFields(lines: InfoLines, role: 'primary' | 'backup'): InfoLines {
  const get = (k: string): string | number | undefined => lines.find(([key]) => key === k)?.[1]
  const own = lines.filter(([k]) => k !== 'role')
  if (role === 'primary') {
    return [
      ['role', 'master'], ['freshet_role', 'primary'], ['connected_slaves', get('connected_backups') ?? 0],
      ['master_repl_offset', get('commit_lsn') ?? 0], ...own,
    ]
  }
  const [host, port] = splitHostPort(get('primary'))
  return [
    ['role', 'slave'], ['freshet_role', 'backup'], ['master_host', host], ['master_port', port],
    ['master_link_status', get('link') === 'up' ? 'up' : 'down'], ['slave_repl_offset', get('received_lsn') ?? 0],
    ['slave_read_only', 1], ['master_repl_offset', get('received_lsn') ?? 0], ...own,
  ]
}

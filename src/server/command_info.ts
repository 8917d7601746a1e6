/**
 * COMMAND and its subcommands (COUNT, INFO, LIST, DOCS, GETKEYS): what the
 * node's command table says about each command, in Redis 7's entry shape
 * (name, arity, flags, first key, last key, key step, ACL categories, tips,
 * key specs, subcommands). Key positions live here, in one table; flags and
 * categories are derived from the command's own flags.
 */
import { argIs, argString, type Args } from './args.js'
import { type CommandSpec, F_ADMIN, F_BLOCKING, F_NOAUTH, F_READ, F_WRITE, type Session } from './commands.js'

type KeyPositions = readonly [first: number, last: number, step: number]

const ONE: KeyPositions = [1, 1, 1]
const ALL: KeyPositions = [1, -1, 1]
const PAIRS: KeyPositions = [1, -1, 2]
const TWO: KeyPositions = [1, 2, 1]

/** Where each command's keys are (commands that take none are absent). */
const KEY_POSITIONS: Record<string, KeyPositions> = {
  get: ONE, set: ONE, getset: ONE, setnx: ONE, getdel: ONE, getex: ONE, getrange: ONE, substr: ONE, setrange: ONE,
  incr: ONE, decr: ONE, incrby: ONE, decrby: ONE, incrbyfloat: ONE, append: ONE, strlen: ONE,
  getbit: ONE, setbit: ONE, bitfield: ONE, bitfield_ro: ONE, bitcount: ONE, bitpos: ONE, type: ONE, move: ONE,
  ttl: ONE, pttl: ONE, expiretime: ONE, pexpiretime: ONE, persist: ONE, expire: ONE, pexpire: ONE, expireat: ONE, pexpireat: ONE, setex: ONE, psetex: ONE,
  del: ALL, unlink: ALL, exists: ALL, mget: ALL, touch: ALL, watch: ALL,
  mset: PAIRS, msetnx: PAIRS,
  rename: TWO, renamenx: TWO, copy: TWO, lcs: TWO, bitop: [2, -1, 1],
}

/** Commands of the keyspace (as opposed to string values), for their ACL category. */
const KEYSPACE = new Set(['del', 'unlink', 'exists', 'type', 'touch', 'keys', 'scan', 'randomkey', 'rename', 'renamenx', 'copy', 'move', 'dbsize', 'swapdb', 'ttl', 'pttl', 'expiretime', 'pexpiretime', 'persist', 'expire', 'pexpire', 'expireat', 'pexpireat', 'object'])

function keysOf(spec: CommandSpec): KeyPositions {
  return KEY_POSITIONS[spec.name] ?? [0, 0, 0]
}

function flagsOf(spec: CommandSpec): string[] {
  const flags: string[] = []
  if ((spec.flags & F_WRITE) !== 0) flags.push('write', 'denyoom')
  if ((spec.flags & F_READ) !== 0) flags.push('readonly')
  if ((spec.flags & F_ADMIN) !== 0) flags.push('admin', 'noscript')
  if ((spec.flags & F_BLOCKING) !== 0) flags.push('blocking')
  if ((spec.flags & F_NOAUTH) !== 0) flags.push('no_auth')
  return flags
}

function categoriesOf(spec: CommandSpec): string[] {
  const c: string[] = []
  if ((spec.flags & F_WRITE) !== 0) c.push('@write')
  if ((spec.flags & F_READ) !== 0) c.push('@read')
  if ((spec.flags & F_ADMIN) !== 0) c.push('@admin', '@dangerous')
  if (KEYSPACE.has(spec.name)) c.push('@keyspace')
  else if (KEY_POSITIONS[spec.name] !== undefined) c.push('@string')
  else if ((spec.flags & (F_WRITE | F_READ | F_ADMIN)) === 0) c.push('@connection')
  return c
}

function writeEntry(s: Session, spec: CommandSpec): void {
  const out = s.conn.out
  const [first, last, step] = keysOf(spec)
  out.arrayHeader(10)
  out.bulkString(spec.name)
  out.integer(spec.arity)
  const flags = flagsOf(spec)
  out.arrayHeader(flags.length)
  for (const f of flags) out.simple(f)
  out.integer(first)
  out.integer(last)
  out.integer(step)
  const categories = categoriesOf(spec)
  out.arrayHeader(categories.length)
  for (const c of categories) out.simple(c)
  out.arrayHeader(0) // tips
  out.arrayHeader(0) // key specs
  out.arrayHeader(0) // subcommands
}

function allSpecs(s: Session): CommandSpec[] {
  return s.server.commands.all()
}

/** The keys a command line would touch, by its key positions. */
function getkeys(s: Session, a: Args): void {
  const out = s.conn.out
  const spec = s.server.commands.get(argString(a, 2).toLowerCase())
  if (spec === undefined) { out.error('ERR Invalid command specified'); return }
  const argc = a.argc - 2
  if ((spec.arity > 0 && argc !== spec.arity) || (spec.arity < 0 && argc < -spec.arity)) { out.error('ERR Invalid number of arguments specified for command'); return }
  const [first, last, step] = keysOf(spec)
  if (first === 0) { out.error('ERR The command has no key arguments'); return }
  const end = last < 0 ? argc + last : last
  const keys: number[] = []
  for (let i = first; i <= end && i < argc; i += step) keys.push(i + 2)
  out.arrayHeader(keys.length)
  for (const i of keys) out.bulk(a.data, a.argStart[i], a.argLength[i])
}

export function command(s: Session, a: Args): void {
  const out = s.conn.out
  if (a.argc === 1) {
    const specs = allSpecs(s)
    out.arrayHeader(specs.length)
    for (const spec of specs) writeEntry(s, spec)
    return
  }
  if (argIs(a, 1, 'count') && a.argc === 2) { out.integer(allSpecs(s).length); return }
  if (argIs(a, 1, 'list') && a.argc === 2) {
    const specs = allSpecs(s)
    out.arrayHeader(specs.length)
    for (const spec of specs) out.bulkString(spec.name)
    return
  }
  if (argIs(a, 1, 'info')) {
    const specs = a.argc === 2 ? allSpecs(s) : Array.from({ length: a.argc - 2 }, (_, i) => s.server.commands.get(argString(a, i + 2).toLowerCase()))
    out.arrayHeader(specs.length)
    for (const spec of specs) {
      if (spec === undefined) out.nullBulk()
      else writeEntry(s, spec)
    }
    return
  }
  // No documentation is served: clients (redis-cli) then use their own help.
  if (argIs(a, 1, 'docs')) { out.mapHeader(0); return }
  if (argIs(a, 1, 'getkeys')) {
    if (a.argc < 4) { out.error('ERR wrong number of arguments for \'command|getkeys\' command'); return }
    getkeys(s, a)
    return
  }
  out.error(`ERR unknown subcommand '${argString(a, 1).slice(0, 128)}'. Try COMMAND HELP.`)
}

/**
 * Commands that exist so a Redis user's tools and habits work on a
 * string-only, single-database dataset: FLUSHALL/FLUSHDB delete every key, OBJECT and MEMORY USAGE describe string values, MOVE and SWAPDB
 * behave as in a Redis configured with one database, and the commands of data
 * types freshet does not have (lists, hashes, sets, sorted sets, streams,
 * HyperLogLog, geo) answer an error that names freshet's scope.
 *
 * FLUSHALL/FLUSHDB delete every key in one transaction: one block of delete
 * ops, so backups replay it and readers see all keys go at once. Until the
 * log's reclamation lands, the memory is returned only as the log is, and a
 * dataset whose deletes do not fit one block is refused (TXN_TOO_LARGE).
 */
import { OP_TYPE_DELETE, REF_NONE } from '../constants.js'
import { opBytes } from '../codec/record.js'
import { type Args, argInt, argIs, argString, parseInt64Bytes } from './args.js'
import { type CommandSpec, F_MAY_FREE, F_READ, F_WRITE, lookupArg, recordWrite, type Session } from './commands.js'

/** Redis keeps a small integer as "int" up to this many characters, other short strings as "embstr". */
const INT_ENCODING_CHARS_MAX = 20
const EMBSTR_BYTES_MAX = 44
/** Each key costs one index slot (hash + ref) besides its op in the log. */
const INDEX_SLOT_BYTES = 8

function object(s: Session, a: Args): void {
  const out = s.conn.out
  if (argIs(a, 1, 'help') && a.argc === 2) {
    const lines = ['OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:', 'ENCODING <key>', 'FREQ <key>', 'IDLETIME <key>', 'REFCOUNT <key>', 'HELP']
    out.arrayHeader(lines.length)
    for (const l of lines) out.simple(l)
    return
  }
  const sub = argString(a, 1).toLowerCase()
  if (!['encoding', 'freq', 'idletime', 'refcount'].includes(sub)) { subcommandError(s, a, 'OBJECT'); return }
  if (a.argc !== 3) { out.error(`ERR wrong number of arguments for 'object|${sub}' command`); return }
  const ref = lookupArg(s, a, 2)
  if (ref === REF_NONE) { out.nullBulk(); return }
  const c = s.node.view.locate(ref)
  switch (sub) {
    case 'encoding':
      if (c.valueLength <= INT_ENCODING_CHARS_MAX && parseInt64Bytes(c.u8, c.valueStart, c.valueLength) !== null) out.bulkString('int')
      else out.bulkString(c.valueLength <= EMBSTR_BYTES_MAX ? 'embstr' : 'raw')
      return
    case 'freq':
      out.error('ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.')
      return
    case 'idletime':
      // freshet does not track access times: every key reads as just used.
      out.integer(0)
      return
    default:
      out.integer(1)
  }
}

function memory(s: Session, a: Args): void {
  const out = s.conn.out
  if (!argIs(a, 1, 'usage')) { subcommandError(s, a, 'MEMORY'); return }
  if (a.argc < 3) { out.error('ERR wrong number of arguments for \'memory|usage\' command'); return }
  if (a.argc !== 3 && !(a.argc === 5 && argIs(a, 3, 'samples') && !Number.isNaN(argInt(a, 4)))) { out.error('ERR syntax error'); return }
  const ref = lookupArg(s, a, 2)
  if (ref === REF_NONE) { out.nullBulk(); return }
  const c = s.node.view.locate(ref)
  // The key's newest version in the log (header, key, value, padding) plus its index slot.
  out.integer(opBytes(c.keyLength, c.valueLength) + INDEX_SLOT_BYTES)
}

/** A container command's unknown subcommand, answered as Redis does. */
export function subcommandError(s: Session, a: Args, command: string): void {
  s.conn.out.error(`ERR unknown subcommand '${argString(a, 1).slice(0, 128)}'. Try ${command} HELP.`)
}


function flushArgsValid(s: Session, a: Args): boolean {
  if (a.argc === 1 || (a.argc === 2 && (argIs(a, 1, 'async') || argIs(a, 1, 'sync')))) return true
  s.conn.out.error('ERR syntax error')
  return false
}

/** Log bytes of a delete op for every live key. */
function flushBound(s: Session): number {
  let bytes = 0
  s.node.view.forEachLive((ref) => { bytes += opBytes(s.node.view.locate(ref).keyLength, 0) })
  return bytes
}

function flushall(s: Session, a: Args): void {
  if (!flushArgsValid(s, a)) return
  const view = s.node.view
  const keys: Array<[Uint8Array, number, number]> = []
  view.forEachLive((ref) => {
    const c = view.locate(ref)
    keys.push([c.u8, c.keyStart, c.keyLength])
  })
  const w = s.node.writer!
  // The key bytes are read straight from the (immutable) log versions being deleted.
  for (const [u8, start, length] of keys) {
    w.probe(u8, start, length)
    w.writeProbed(OP_TYPE_DELETE, u8, start, length, null, 0, 0, null, 0, 0)
  }
  if (keys.length > 0) recordWrite(s)
  s.conn.out.simple('OK')
}

function move(s: Session, a: Args): void {
  const db = argInt(a, 2)
  if (Number.isNaN(db)) { s.conn.out.error('ERR value is not an integer or out of range'); return }
  if (db !== 0) { s.conn.out.error('ERR DB index is out of range'); return }
  s.conn.out.error('ERR source and destination objects are the same')
}

function swapdb(s: Session, a: Args): void {
  const x = argInt(a, 1)
  const y = argInt(a, 2)
  if (Number.isNaN(x)) { s.conn.out.error('ERR invalid first DB index'); return }
  if (Number.isNaN(y)) { s.conn.out.error('ERR invalid second DB index'); return }
  if (x !== 0 || y !== 0) { s.conn.out.error('ERR DB index is out of range'); return }
  s.conn.out.simple('OK')
}

const OTHER_TYPES: Array<[string, string[]]> = [
  ['list', ['lpush', 'rpush', 'lpushx', 'rpushx', 'lpop', 'rpop', 'llen', 'lrange', 'lindex', 'lset', 'linsert', 'lrem', 'ltrim', 'lpos', 'lmove', 'lmpop', 'blpop', 'brpop', 'blmove', 'blmpop', 'rpoplpush', 'brpoplpush']],
  ['hash', ['hset', 'hsetnx', 'hget', 'hmset', 'hmget', 'hgetall', 'hdel', 'hlen', 'hexists', 'hkeys', 'hvals', 'hincrby', 'hincrbyfloat', 'hstrlen', 'hscan', 'hrandfield']],
  ['set', ['sadd', 'srem', 'smembers', 'sismember', 'smismember', 'scard', 'spop', 'srandmember', 'smove', 'sinter', 'sinterstore', 'sintercard', 'sunion', 'sunionstore', 'sdiff', 'sdiffstore', 'sscan']],
  ['sorted set', ['zadd', 'zrem', 'zrange', 'zrangebyscore', 'zrevrange', 'zrevrangebyscore', 'zrangebylex', 'zrevrangebylex', 'zrangestore', 'zcard', 'zcount', 'zlexcount', 'zscore', 'zmscore', 'zincrby', 'zrank', 'zrevrank', 'zremrangebyrank', 'zremrangebyscore', 'zremrangebylex', 'zpopmin', 'zpopmax', 'bzpopmin', 'bzpopmax', 'zmpop', 'bzmpop', 'zrandmember', 'zunion', 'zunionstore', 'zinter', 'zinterstore', 'zintercard', 'zdiff', 'zdiffstore', 'zscan']],
  ['stream', ['xadd', 'xrange', 'xrevrange', 'xlen', 'xread', 'xreadgroup', 'xgroup', 'xack', 'xpending', 'xclaim', 'xautoclaim', 'xinfo', 'xdel', 'xtrim', 'xsetid']],
  ['HyperLogLog', ['pfadd', 'pfcount', 'pfmerge']],
  ['geo', ['geoadd', 'geodist', 'geohash', 'geopos', 'georadius', 'georadiusbymember', 'georadius_ro', 'georadiusbymember_ro', 'geosearch', 'geosearchstore']],
]

function otherType(type: string): CommandSpec['run'] {
  return (s, a) => s.conn.out.error(`ERR freshet stores strings only: '${argString(a, 0).slice(0, 32).toLowerCase()}' is a ${type} command`)
}


const ERR_NO_SCRIPTS = 'ERR freshet runs no scripts or functions'

/** FUNCTION and SCRIPT: there are none, so FLUSH succeeds and listings are empty; loading one is refused. */
function scripting(s: Session, a: Args): void {
  const out = s.conn.out
  if (argIs(a, 1, 'flush') && (a.argc === 2 || (a.argc === 3 && (argIs(a, 2, 'async') || argIs(a, 2, 'sync'))))) { out.simple('OK'); return }
  if (argString(a, 0).toLowerCase() === 'function' && argIs(a, 1, 'list')) { out.arrayHeader(0); return }
  if (argString(a, 0).toLowerCase() === 'script' && argIs(a, 1, 'exists') && a.argc >= 3) {
    out.arrayHeader(a.argc - 2)
    for (let i = 2; i < a.argc; i++) out.integer(0)
    return
  }
  out.error(ERR_NO_SCRIPTS)
}

export const KEYSPACE_EXTRAS: CommandSpec[] = [
  { name: 'object', arity: -2, flags: F_READ, run: object },
  { name: 'memory', arity: -2, flags: F_READ, run: memory },
  { name: 'flushall', arity: -1, flags: F_WRITE | F_MAY_FREE, bound: flushBound, run: flushall },
  { name: 'flushdb', arity: -1, flags: F_WRITE | F_MAY_FREE, bound: flushBound, run: flushall },
  { name: 'move', arity: 3, flags: 0, run: move },
  { name: 'swapdb', arity: 3, flags: 0, run: swapdb },
  { name: 'function', arity: -2, flags: 0, run: scripting },
  { name: 'script', arity: -2, flags: 0, run: scripting },
  ...['eval', 'evalsha', 'eval_ro', 'evalsha_ro', 'fcall', 'fcall_ro'].map((name): CommandSpec => ({ name, arity: -1, flags: 0, run: (s) => s.conn.out.error(ERR_NO_SCRIPTS) })),
  ...OTHER_TYPES.flatMap(([type, names]) => names.map((name): CommandSpec => ({ name, arity: -1, flags: 0, run: otherType(type) }))),
]

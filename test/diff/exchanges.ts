/**
 * RESP exchanges sent byte for byte to real Redis and to freshet by
 * diff.test.ts. Each request gets one reply; `{k}` in an argument becomes a
 * key prefix of its own per exchange, so exchanges never see each other's
 * keys. A string request is sent as an inline line exactly as written; an
 * array is sent as a multibulk command. `closes`: the server ends the
 * connection after the last reply (protocol errors).
 */
export interface Exchange {
  name: string
  requests: Array<string | Array<string | Buffer>>
  /** Speak RESP3: the harness sends HELLO 3 first and compares what follows its reply. */
  resp3?: boolean
  /** Replies expected (default: one per request; an empty inline line gets none). */
  replies?: number
  closes?: boolean
}

const BIN = Buffer.from([0, 1, 2, 0xff, 0x0d, 0x0a, 0x20, 0x22])

export const EXCHANGES: Exchange[] = [
  // ---------------------------------------------------------------- AUTH without a password configured
  { name: 'auth: one-argument form without a password configured', requests: [['AUTH', 'pw']] },
  { name: 'auth: the default user takes any password when none is configured', requests: [['AUTH', 'default', 'anything'], ['PING']] },
  { name: 'auth: another user is refused', requests: [['AUTH', 'someone', 'pw']] },
  { name: 'auth: too many arguments', requests: [['AUTH', 'a', 'b', 'c']] },
  { name: 'auth: queued inside MULTI, run by EXEC', requests: [['MULTI'], ['AUTH', 'default', 'x'], ['SET', '{k}a', '1'], ['EXEC'], ['GET', '{k}a']] },

  // ---------------------------------------------------------------- CLIENT SETNAME / GETNAME
  { name: 'client: names with a space, a newline or a non-ASCII byte are refused', requests: [['CLIENT', 'SETNAME', 'a b'], ['CLIENT', 'SETNAME', 'a\nb'], ['CLIENT', 'SETNAME', 'caf\u00e9'], ['CLIENT', 'SETNAME', 'tab\there'], ['CLIENT', 'GETNAME']] },
  { name: 'client: list and kill filters, errors', requests: [['CLIENT', 'LIST', 'TYPE', 'foo'], ['CLIENT', 'LIST', 'ID', 'x'], ['CLIENT', 'LIST', 'ID', '999999999'], ['CLIENT', 'LIST', 'TYPE', 'pubsub'], ['CLIENT', 'KILL', 'ID', '0'], ['CLIENT', 'KILL', 'ID', '999999999'], ['CLIENT', 'KILL', '1.2.3.4:5'], ['CLIENT', 'KILL', 'ID'], ['CLIENT', 'FOO'], ['CLIENT', 'NO-EVICT', 'on']] },
  { name: 'client: a printable name is kept; an empty name clears it', requests: [['CLIENT', 'SETNAME', 'worker-1!~'], ['CLIENT', 'GETNAME'], ['CLIENT', 'SETNAME', ''], ['CLIENT', 'GETNAME']] },

  // ---------------------------------------------------------------- CONFIG GET patterns (glob, never regex)
  { name: 'config: patterns that are not valid regular expressions match nothing', requests: [['CONFIG', 'GET', '['], ['CONFIG', 'GET', '(max.*)'], ['CONFIG', 'GET', 'zz*************zz'], ['CONFIG', 'GET', '\\']] },
  { name: 'config: names match case-insensitively; a plain name is answered as written', requests: [['CONFIG', 'GET', 'MAXCLIENTS'], ['CONFIG', 'GET', 'MaxClient?'], ['CONFIG', 'GET', 'maxcl[h-j]ents'], ['CONFIG', 'GET', 'maxclients', 'MAXCLIENTS']] },

  // ---------------------------------------------------------------- inline requests
  { name: 'inline: double quotes keep blanks and decode escapes', requests: ['SET {k}q "a b"\r\n', 'GET {k}q\r\n', 'SET {k}e "x\\ty\\x41\\\\\\"z\\q"\r\n', 'GET {k}e\r\n'] },
  { name: 'inline: single quotes take only \\\'', requests: ["SET {k}s 'it\\'s \\n'\r\n", 'GET {k}s\r\n'] },
  { name: 'inline: a quote inside a word starts a quoted part', requests: ['SET {k}w a"b c"\r\n', 'GET {k}w\r\n'] },
  { name: 'inline: blanks of every kind separate arguments; empty lines are skipped', requests: ['ECHO   \t spaced  \r\n', '\r\n', 'PING\n'], replies: 2 },
  { name: 'inline: unbalanced double quotes are a protocol error', requests: ['SET {k}u "open\r\n'], closes: true },
  { name: 'inline: unbalanced single quotes are a protocol error', requests: ["SET {k}u 'open\r\n"], closes: true },
  { name: 'inline: a closing quote followed by a letter is a protocol error', requests: ['SET {k}u "a"b\r\n'], closes: true },

  // ---------------------------------------------------------------- protocol errors (the connection closes after the reply)
  { name: 'protocol: a multibulk length that is not a number', requests: ['*x\r\n'], closes: true },
  { name: 'protocol: a bulk length that is not a number', requests: ['*1\r\n$x\r\n'], closes: true },
  { name: 'protocol: a negative bulk length', requests: ['*1\r\n$-5\r\n'], closes: true },
  { name: 'protocol: something else where a bulk should start', requests: ['*1\r\nfoo\r\n'], closes: true },
  { name: 'protocol: commands before the error still run', requests: ['PING\r\n', '*1\r\n$4\r\nPING\r\n', '*1\r\n$q\r\n'], closes: true },

  // ---------------------------------------------------------------- strings
  { name: 'strings: SET and GET, empty and binary values', requests: [['SET', '{k}a', ''], ['GET', '{k}a'], ['SET', '{k}b', BIN], ['GET', '{k}b'], ['STRLEN', '{k}b'], ['GET', '{k}missing']] },
  { name: 'strings: SET NX, XX and GET options', requests: [['SET', '{k}a', '1', 'NX'], ['SET', '{k}a', '2', 'NX'], ['SET', '{k}a', '3', 'XX'], ['SET', '{k}b', '1', 'XX'], ['SET', '{k}a', '4', 'GET'], ['SET', '{k}c', '1', 'GET'], ['GET', '{k}a']] },
  { name: 'strings: SET with conflicting or unknown options', requests: [['SET', '{k}a', '1', 'NX', 'XX'], ['SET', '{k}a', '1', 'FOO'], ['SET', '{k}a']] },
  { name: 'strings: GETSET and APPEND', requests: [['GETSET', '{k}a', 'x'], ['GETSET', '{k}a', 'y'], ['APPEND', '{k}a', 'zz'], ['APPEND', '{k}new', 'q'], ['GET', '{k}a']] },
  { name: 'strings: MSET, MGET, MSETNX', requests: [['MSET', '{k}a', '1', '{k}b', '2'], ['MGET', '{k}a', '{k}b', '{k}c'], ['MSETNX', '{k}c', '3', '{k}a', '9'], ['MSETNX', '{k}c', '3', '{k}d', '4'], ['MGET', '{k}a', '{k}c', '{k}d'], ['MSET', '{k}a']] },

  // ---------------------------------------------------------------- counters
  { name: 'incr: counting, negative steps, missing keys', requests: [['INCR', '{k}n'], ['INCRBY', '{k}n', '10'], ['DECR', '{k}n'], ['DECRBY', '{k}n', '-5'], ['INCRBY', '{k}m', '-3'], ['GET', '{k}n']] },
  { name: 'incr: not an integer', requests: [['SET', '{k}s', 'abc'], ['INCR', '{k}s'], ['SET', '{k}f', '1.5'], ['INCR', '{k}f'], ['SET', '{k}sp', ' 1'], ['INCR', '{k}sp'], ['INCRBY', '{k}n', 'x'], ['INCRBY', '{k}n', '1.0']] },
  { name: 'incr: overflow at the 64-bit bounds', requests: [['SET', '{k}max', '9223372036854775807'], ['INCR', '{k}max'], ['SET', '{k}min', '-9223372036854775808'], ['DECR', '{k}min'], ['INCRBY', '{k}x', '9223372036854775808'], ['DECRBY', '{k}y', '-9223372036854775808']] },

  // ---------------------------------------------------------------- keyspace
  { name: 'keyspace: DEL, UNLINK and EXISTS count keys (repeats too)', requests: [['MSET', '{k}a', '1', '{k}b', '2'], ['EXISTS', '{k}a', '{k}a', '{k}zz'], ['DEL', '{k}a', '{k}a', '{k}zz'], ['UNLINK', '{k}b'], ['EXISTS', '{k}a', '{k}b']] },

  // ---------------------------------------------------------------- more strings
  { name: 'setnx and getdel', requests: [['SETNX', '{k}a', '1'], ['SETNX', '{k}a', '2'], ['GET', '{k}a'], ['GETDEL', '{k}a'], ['GETDEL', '{k}a'], ['EXISTS', '{k}a'], ['SETNX', '{k}a']] },
  { name: 'getex without expiry options', requests: [['SET', '{k}a', 'v'], ['GETEX', '{k}a'], ['GETEX', '{k}a', 'PERSIST'], ['GETEX', '{k}missing'], ['GETEX', '{k}a', 'FOO']] },
  { name: 'getrange and substr with every index shape', requests: [
    ['SET', '{k}s', 'This is a string'], ['GETRANGE', '{k}s', '0', '3'], ['GETRANGE', '{k}s', '-3', '-1'], ['GETRANGE', '{k}s', '0', '-1'],
    ['GETRANGE', '{k}s', '10', '100'], ['GETRANGE', '{k}s', '5', '3'], ['GETRANGE', '{k}s', '-1', '-5'], ['GETRANGE', '{k}s', '-100', '2'],
    ['GETRANGE', '{k}s', '0', '9223372036854775807'], ['GETRANGE', '{k}s', 'a', '1'], ['GETRANGE', '{k}missing', '0', '-1'],
    ['SUBSTR', '{k}s', '1', '2'], ['SET', '{k}e', ''], ['GETRANGE', '{k}e', '0', '-1'], ['GETRANGE', '{k}s', '-9223372036854775808', '-1']] },
  { name: 'setrange: overwrite, pad with zeros, empty values, bad offsets', requests: [
    ['SET', '{k}a', 'Hello World'], ['SETRANGE', '{k}a', '6', 'Redis'], ['GET', '{k}a'], ['SETRANGE', '{k}b', '5', 'x'], ['GET', '{k}b'],
    ['SETRANGE', '{k}c', '3', ''], ['EXISTS', '{k}c'], ['SETRANGE', '{k}a', '100', ''], ['SETRANGE', '{k}a', '-1', 'x'], ['SETRANGE', '{k}a', 'x', 'y'],
    ['SETRANGE', '{k}a', '0', ''], ['GET', '{k}a']] },
  { name: 'getbit and setbit', requests: [
    ['SETBIT', '{k}b', '7', '1'], ['GET', '{k}b'], ['GETBIT', '{k}b', '7'], ['GETBIT', '{k}b', '6'], ['GETBIT', '{k}b', '100'], ['SETBIT', '{k}b', '7', '0'],
    ['SETBIT', '{k}b', '20', '1'], ['STRLEN', '{k}b'], ['SETBIT', '{k}b', '1', '2'], ['SETBIT', '{k}b', '-1', '1'], ['GETBIT', '{k}b', '4294967296'],
    ['SETBIT', '{k}b', 'x', '1'], ['GETBIT', '{k}missing', '0'], ['SETBIT', '{k}b', '1', '01']] },
  { name: 'bitfield: get, set, incrby with wrap, sat and fail', requests: [
    ['BITFIELD', '{k}a', 'SET', 'i8', '0', '100', 'GET', 'i8', '0', 'INCRBY', 'i8', '0', '100', 'GET', 'u4', '0'], ['GET', '{k}a'],
    ['BITFIELD', '{k}a', 'OVERFLOW', 'SAT', 'INCRBY', 'i8', '0', '200', 'INCRBY', 'u2', '100', '1', 'OVERFLOW', 'FAIL', 'INCRBY', 'u2', '102', '5', 'GET', 'u2', '102'],
    ['BITFIELD', '{k}b', 'SET', 'u8', '#1', '255', 'GET', 'u8', '8', 'SET', 'u8', '#2', '-1', 'OVERFLOW', 'SAT', 'SET', 'u8', '#3', '-1', 'SET', 'i8', '#4', '300'], ['GET', '{k}b'],
    ['BITFIELD', '{k}c', 'SET', 'i64', '0', '-9223372036854775808', 'INCRBY', 'i64', '0', '-1', 'GET', 'i64', '0', 'SET', 'u63', '64', '9223372036854775807', 'INCRBY', 'u63', '64', '1'],
    ['BITFIELD', '{k}d', 'OVERFLOW', 'FAIL', 'INCRBY', 'u8', '16', '300'], ['STRLEN', '{k}d'], ['BITFIELD', '{k}missing', 'GET', 'i16', '0'], ['EXISTS', '{k}missing'],
    ['BITFIELD', '{k}e', 'GET', 'u64', '0'], ['BITFIELD', '{k}e', 'GET', 'i0', '0'], ['BITFIELD', '{k}e', 'GET', 'x8', '0'], ['BITFIELD', '{k}e', 'GET', 'i8', '-1'], ['BITFIELD', '{k}e', 'GET', 'i8', '#x'],
    ['BITFIELD', '{k}e', 'OVERFLOW', 'NOPE', 'GET', 'i8', '0'], ['BITFIELD', '{k}e', 'SET', 'i8', '0'], ['BITFIELD', '{k}e', 'FOO'], ['BITFIELD', '{k}e', 'SET', 'i8', '0', 'x'], ['BITFIELD', '{k}e'],
    ['BITFIELD_RO', '{k}b', 'GET', 'u8', '#1', 'GET', 'I8', '#4'], ['BITFIELD_RO', '{k}b', 'SET', 'u8', '0', '1'], ['BITFIELD', '{k}f', 'SET', 'i5', '3', '17', 'GET', 'i5', '3', 'INCRBY', 'U3', '2', '9']] },
  { name: 'bitop: and, or, xor, not, missing and empty sources', requests: [
    ['SET', '{k}a', 'foobar'], ['SET', '{k}b', 'abcdef'], ['SET', '{k}c', 'xy'], ['BITOP', 'AND', '{k}d', '{k}a', '{k}b'], ['GET', '{k}d'], ['BITOP', 'OR', '{k}d', '{k}a', '{k}c'], ['GET', '{k}d'],
    ['BITOP', 'XOR', '{k}d', '{k}a', '{k}b', '{k}c'], ['GET', '{k}d'], ['BITOP', 'NOT', '{k}d', '{k}c'], ['GET', '{k}d'], ['BITOP', 'NOT', '{k}d', '{k}a', '{k}b'], ['BITOP', 'NAND', '{k}d', '{k}a'],
    ['BITOP', 'AND', '{k}d', '{k}missing1', '{k}missing2'], ['EXISTS', '{k}d'], ['BITOP', 'OR', '{k}e', '{k}missing', '{k}c'], ['GET', '{k}e']] },
  { name: 'bitcount: bytes, bits, negative ranges, syntax', requests: [
    ['SET', '{k}a', 'foobar'], ['BITCOUNT', '{k}a'], ['BITCOUNT', '{k}a', '0', '0'], ['BITCOUNT', '{k}a', '1', '1'], ['BITCOUNT', '{k}a', '1', '1', 'BYTE'],
    ['BITCOUNT', '{k}a', '5', '30', 'BIT'], ['BITCOUNT', '{k}a', '-2', '-1'], ['BITCOUNT', '{k}a', '-1', '-2'], ['BITCOUNT', '{k}a', '0'], ['BITCOUNT', '{k}a', '0', '1', 'WORD'],
    ['BITCOUNT', '{k}missing'], ['BITCOUNT', '{k}a', 'x', '1'], ['BITCOUNT', '{k}a', '0', '-1', 'BIT', 'extra']] },
  { name: 'bitpos: first set and clear bits in ranges', requests: [
    ['SET', '{k}a', Buffer.from([0xff, 0xf0, 0x00])], ['BITPOS', '{k}a', '0'], ['BITPOS', '{k}a', '1'], ['BITPOS', '{k}a', '1', '2'], ['BITPOS', '{k}a', '0', '0', '0'],
    ['SET', '{k}f', Buffer.from([0xff, 0xff])], ['BITPOS', '{k}f', '0'], ['BITPOS', '{k}f', '0', '0', '-1'], ['BITPOS', '{k}f', '0', '1'],
    ['BITPOS', '{k}a', '1', '7', '15', 'BIT'], ['BITPOS', '{k}a', '0', '7', '15', 'BIT'], ['BITPOS', '{k}a', '0', '-10', '-1', 'BIT'], ['BITPOS', '{k}a', '1', '5', '3'],
    ['BITPOS', '{k}missing', '0'], ['BITPOS', '{k}missing', '1'], ['BITPOS', '{k}a', '2'], ['BITPOS', '{k}a', 'x'], ['BITPOS', '{k}a', '1', '0', '1', 'BYTE', 'x']] },
  { name: 'incrbyfloat: extended precision, formatting, invalid and infinite values', requests: [
    ['INCRBYFLOAT', '{k}f', '0.1'], ['INCRBYFLOAT', '{k}f', '0.2'], ['INCRBYFLOAT', '{k}f', '-0.3'], ['SET', '{k}g', '10.50'], ['INCRBYFLOAT', '{k}g', '0.1'],
    ['SET', '{k}h', '5.0e3'], ['INCRBYFLOAT', '{k}h', '2.0e2'], ['INCRBYFLOAT', '{k}h', '5000.1'], ['INCRBYFLOAT', '{k}i', '1e300'], ['INCRBYFLOAT', '{k}j', '-1e-20'],
    ['INCRBYFLOAT', '{k}k', '0x1p3'], ['INCRBYFLOAT', '{k}k', '.5'], ['INCRBYFLOAT', '{k}k', '5.'], ['INCRBYFLOAT', '{k}k', '1e'], ['INCRBYFLOAT', '{k}k', ' 1'],
    ['INCRBYFLOAT', '{k}k', '1 '], ['INCRBYFLOAT', '{k}k', 'nan'], ['INCRBYFLOAT', '{k}k', 'inf'], ['INCRBYFLOAT', '{k}k', '-Infinity'], ['INCRBYFLOAT', '{k}k', '1e5000'],
    ['SET', '{k}s', 'abc'], ['INCRBYFLOAT', '{k}s', '1'], ['SET', '{k}inf', 'inf'], ['INCRBYFLOAT', '{k}inf', '1'], ['INCRBYFLOAT', '{k}l', '1.7976931348623157e308'],
    ['INCRBYFLOAT', '{k}l', '1.7976931348623157e308'], ['INCRBYFLOAT', '{k}m', '0.0000000000000000001'], ['INCRBYFLOAT', '{k}n', '3.0'], ['INCRBYFLOAT', '{k}n', '-3'],
    ['INCRBYFLOAT', '{k}o', String(1 / 41)], ['INCRBYFLOAT', '{k}o', String(-1 / 41)], ['INCRBYFLOAT', '{k}p', '1.23456789012345678901234567890'], ['INCRBYFLOAT', '{k}q', '-0']] },
  { name: 'lcs: string, LEN, IDX with MINMATCHLEN and WITHMATCHLEN', requests: [
    ['MSET', '{k}a', 'ohmytext', '{k}b', 'mynewtext'], ['LCS', '{k}a', '{k}b'], ['LCS', '{k}a', '{k}b', 'LEN'], ['LCS', '{k}a', '{k}b', 'IDX'],
    ['LCS', '{k}a', '{k}b', 'IDX', 'MINMATCHLEN', '4'], ['LCS', '{k}a', '{k}b', 'IDX', 'MINMATCHLEN', '4', 'WITHMATCHLEN'], ['LCS', '{k}a', '{k}b', 'LEN', 'IDX'],
    ['LCS', '{k}a', '{k}missing'], ['LCS', '{k}missing', '{k}missing', 'IDX'], ['LCS', '{k}a', '{k}b', 'MINMATCHLEN', 'x'], ['LCS', '{k}a', '{k}b', 'FOO'],
    ['MSET', '{k}c', 'abcabcabcXYZ', '{k}d', 'XYZcbacbaabc'], ['LCS', '{k}c', '{k}d', 'IDX', 'WITHMATCHLEN'], ['LCS', '{k}c', '{k}d'], ['LCS', '{k}a', '{k}b', 'IDX', 'MINMATCHLEN', '-5']] },
  { name: 'lcs in RESP3', resp3: true, requests: [['MSET', '{k}a', 'ohmytext', '{k}b', 'mynewtext'], ['LCS', '{k}a', '{k}b', 'IDX', 'WITHMATCHLEN']] },

  // ---------------------------------------------------------------- more keyspace
  { name: 'type and touch', requests: [['SET', '{k}a', '1'], ['TYPE', '{k}a'], ['TYPE', '{k}missing'], ['TOUCH', '{k}a', '{k}a', '{k}missing']] },
  { name: 'keys with patterns', requests: [['MSET', '{k}one', '1', '{k}two', '2'], ['KEYS', '{k}o*'], ['KEYS', '{k}t[vwx]o'], ['KEYS', '{k}[^t]ne'], ['KEYS', '{k}nothing*'], ['KEYS', '{k}\\one']] },
  { name: 'rename and renamenx', requests: [
    ['SET', '{k}a', 'v'], ['RENAME', '{k}a', '{k}b'], ['EXISTS', '{k}a'], ['GET', '{k}b'], ['RENAME', '{k}a', '{k}c'], ['RENAME', '{k}b', '{k}b'],
    ['SET', '{k}c', 'w'], ['RENAMENX', '{k}b', '{k}c'], ['RENAMENX', '{k}b', '{k}d'], ['GET', '{k}d'], ['RENAMENX', '{k}d', '{k}d'], ['RENAMENX', '{k}missing', '{k}x']] },
  { name: 'copy with and without REPLACE', requests: [
    ['SET', '{k}a', 'v'], ['COPY', '{k}a', '{k}b'], ['COPY', '{k}a', '{k}b'], ['SET', '{k}a', 'w'], ['COPY', '{k}a', '{k}b', 'REPLACE'], ['GET', '{k}b'],
    ['COPY', '{k}missing', '{k}x'], ['COPY', '{k}a', '{k}a'], ['COPY', '{k}a', '{k}c', 'DB', '0'], ['COPY', '{k}a', '{k}c', 'FOO'], ['COPY', '{k}a', '{k}d', 'DB', 'x']] },
  { name: 'new writes inside MULTI', requests: [['MULTI'], ['SETNX', '{k}a', '1'], ['SETRANGE', '{k}a', '1', 'xy'], ['SETBIT', '{k}a', '0', '1'], ['RENAME', '{k}a', '{k}b'], ['GETDEL', '{k}b'], ['EXEC']] },

  // ---------------------------------------------------------------- WATCH (one connection; interleavings in watch.test.ts)
  { name: 'watch: a write by the watching connection itself aborts EXEC', requests: [['WATCH', '{k}a'], ['SET', '{k}a', '1'], ['MULTI'], ['SET', '{k}a', '2'], ['EXEC'], ['GET', '{k}a']] },
  { name: 'watch: an unchanged key lets EXEC run; EXEC unwatches', requests: [['SET', '{k}a', '1'], ['WATCH', '{k}a', '{k}b', '{k}a'], ['GET', '{k}a'], ['MULTI'], ['INCR', '{k}a'], ['EXEC'], ['SET', '{k}a', '5'], ['MULTI'], ['INCR', '{k}a'], ['EXEC']] },
  { name: 'watch: UNWATCH forgets, DISCARD unwatches, WATCH inside MULTI is refused', requests: [
    ['WATCH', '{k}a'], ['SET', '{k}a', '1'], ['UNWATCH'], ['MULTI'], ['GET', '{k}a'], ['EXEC'],
    ['WATCH', '{k}a'], ['MULTI'], ['WATCH', '{k}b'], ['UNWATCH'], ['DISCARD'], ['SET', '{k}a', '2'], ['MULTI'], ['GET', '{k}a'], ['EXEC'], ['WATCH']] },
  { name: 'watch: deleting a watched key, or creating a missing one, aborts; a DEL of nothing does not', requests: [
    ['SET', '{k}a', '1'], ['WATCH', '{k}a'], ['DEL', '{k}a'], ['MULTI'], ['PING'], ['EXEC'],
    ['WATCH', '{k}n'], ['SET', '{k}n', 'x'], ['MULTI'], ['PING'], ['EXEC'],
    ['WATCH', '{k}z'], ['DEL', '{k}z'], ['MULTI'], ['PING'], ['EXEC']] },
  { name: 'watch: EXECABORT wins over a changed key', requests: [['WATCH', '{k}a'], ['SET', '{k}a', '1'], ['MULTI'], ['GET'], ['EXEC'], ['MULTI'], ['PING'], ['EXEC']] },

  // ---------------------------------------------------------------- HELLO and RESP3
  { name: 'hello: bad versions and options', requests: [['HELLO', '1'], ['HELLO', '4'], ['HELLO', 'x'], ['HELLO', '3', 'FOO'], ['HELLO', '3', 'AUTH', 'someone', 'pw'], ['HELLO', '3', 'SETNAME', 'bad name'], ['HELLO', '2', 'AUTH', 'default']] },
  { name: 'resp3: nulls, maps and verbatim text where Redis uses them', resp3: true, requests: [['GET', '{k}missing'], ['MGET', '{k}missing', '{k}x'], ['SET', '{k}x', '1', 'NX', 'GET'], ['CONFIG', 'GET', 'maxclients'], ['CLIENT', 'GETNAME'], ['MULTI'], ['PING'], ['EXEC'], ['SET', '{k}a', '1'], ['GETDEL', '{k}zz']] },
  { name: 'resp3: an aborted EXEC is a null', resp3: true, requests: [['WATCH', '{k}a'], ['SET', '{k}a', '1'], ['MULTI'], ['PING'], ['EXEC']] },

  // ---------------------------------------------------------------- a string-only, expiry-free, single-database keyspace
  { name: 'ttl family on keys without expiry', requests: [['SET', '{k}a', '1'], ['TTL', '{k}a'], ['PTTL', '{k}a'], ['TTL', '{k}missing'], ['PTTL', '{k}missing'], ['EXPIRETIME', '{k}a'], ['PEXPIRETIME', '{k}missing'], ['PERSIST', '{k}a'], ['PERSIST', '{k}missing']] },
  { name: 'object encoding of strings', requests: [['SET', '{k}i', '12345'], ['SET', '{k}e', 'short string'], ['SET', '{k}r', 'x'.repeat(45)], ['SET', '{k}z', '012'], ['SET', '{k}n', '-9223372036854775808'],
    ['OBJECT', 'ENCODING', '{k}i'], ['OBJECT', 'ENCODING', '{k}e'], ['OBJECT', 'ENCODING', '{k}r'], ['OBJECT', 'ENCODING', '{k}z'], ['OBJECT', 'ENCODING', '{k}n'], ['OBJECT', 'ENCODING', '{k}missing'], ['OBJECT', 'FOO', '{k}i']] },
  { name: 'flushall and flushdb empty the keyspace and abort a WATCH on a key that existed', requests: [
    ['MSET', '{k}a', '1', '{k}b', '2'], ['FLUSHALL'], ['DBSIZE'], ['GET', '{k}a'], ['SET', '{k}c', '3'], ['FLUSHDB', 'ASYNC'], ['EXISTS', '{k}c'], ['FLUSHALL', 'FOO'], ['FLUSHALL', 'SYNC'],
    ['SET', '{k}w', '1'], ['WATCH', '{k}w'], ['FLUSHALL'], ['MULTI'], ['PING'], ['EXEC'], ['WATCH', '{k}none'], ['FLUSHALL'], ['MULTI'], ['PING'], ['EXEC']] },
  { name: 'move and swapdb with one database', requests: [['SET', '{k}a', '1'], ['MOVE', '{k}a', '0'], ['MOVE', '{k}a', '1'], ['MOVE', '{k}a', 'x'], ['SWAPDB', '0', '0'], ['SWAPDB', '0', '1'], ['SWAPDB', 'x', '0'], ['SELECT', '0'], ['SELECT', '1']] },
  { name: 'object and memory: subcommand errors', requests: [['OBJECT', 'ENCODING'], ['OBJECT', 'ENCODING', 'a', 'b'], ['MEMORY', 'FOO'], ['MEMORY', 'USAGE'], ['OBJECT', 'FREQ', '{k}missing']] },
  { name: 'other data types are out of scope', requests: [['LPUSH', '{k}l', 'x'], ['HSET', '{k}h', 'f', 'v'], ['SADD', '{k}s', 'm'], ['ZADD', '{k}z', '1', 'm']] },
  // ---------------------------------------------------------------- key expiry (absolute times and long TTLs: the replies do not depend on when they run)
  { name: 'expiry: SET EX/PX/EXAT/PXAT/KEEPTTL and TTL, PTTL, EXPIRETIME, PEXPIRETIME', requests: [
    ['SET', '{k}a', '1', 'EX', '1000'], ['TTL', '{k}a'], ['SET', '{k}b', '1', 'EXAT', '4102444800'], ['EXPIRETIME', '{k}b'], ['PEXPIRETIME', '{k}b'],
    ['SET', '{k}c', '1', 'PXAT', '4102444800123'], ['PEXPIRETIME', '{k}c'], ['EXPIRETIME', '{k}c'], ['SET', '{k}c', '2', 'KEEPTTL'], ['PEXPIRETIME', '{k}c'],
    ['SET', '{k}c', '3'], ['TTL', '{k}c'], ['PTTL', '{k}none'], ['TTL', '{k}none'], ['EXPIRETIME', '{k}none'], ['SET', '{k}d', 'v', 'PX', '100000000'], ['GET', '{k}d']] },
  { name: 'expiry: SET option errors', requests: [
    ['SET', '{k}a', '1', 'EX', '0'], ['SET', '{k}a', '1', 'EX', '-5'], ['SET', '{k}a', '1', 'PX', 'abc'], ['SET', '{k}a', '1', 'EX'], ['SET', '{k}a', '1', 'EX', '10', 'PX', '10'],
    ['SET', '{k}a', '1', 'EX', '10', 'KEEPTTL'], ['SET', '{k}a', '1', 'KEEPTTL', 'EX', '10'], ['SET', '{k}a', '1', 'EX', '9223372036854775807'], ['SET', '{k}a', '1', 'EXAT', '0'],
    ['SET', '{k}a', '1', 'NX', 'XX'], ['SET', '{k}a', '1', 'EX', '10', 'EX', '20'], ['TTL', '{k}a'], ['SET', '{k}a', '1', 'KEEPTTL', 'KEEPTTL'], ['SET', '{k}a', '1', 'KEEPTTL', 'GET']] },
  { name: 'expiry: SETEX, PSETEX and their errors', requests: [
    ['SETEX', '{k}a', '1000', 'v'], ['TTL', '{k}a'], ['GET', '{k}a'], ['PSETEX', '{k}b', '100000000', 'w'], ['GET', '{k}b'], ['SETEX', '{k}a', '0', 'v'], ['SETEX', '{k}a', '-1', 'v'],
    ['PSETEX', '{k}a', '0', 'v'], ['SETEX', '{k}a', 'x', 'v'], ['SETEX', '{k}a', '9223372036854775807', 'v'], ['TTL', '{k}a']] },
  { name: 'expiry: EXPIRE family with NX, XX, GT, LT; PERSIST', requests: [
    ['SET', '{k}a', '1'], ['EXPIRE', '{k}a', '1000', 'XX'], ['TTL', '{k}a'], ['EXPIRE', '{k}a', '1000', 'GT'], ['EXPIRE', '{k}a', '1000', 'NX'], ['TTL', '{k}a'],
    ['EXPIRE', '{k}a', '2000', 'NX'], ['EXPIRE', '{k}a', '2000', 'GT'], ['TTL', '{k}a'], ['EXPIRE', '{k}a', '1500', 'GT'], ['EXPIRE', '{k}a', '1500', 'LT'], ['TTL', '{k}a'],
    ['EXPIRE', '{k}a', '1000', 'XX', 'LT'], ['TTL', '{k}a'], ['PERSIST', '{k}a'], ['PERSIST', '{k}a'], ['TTL', '{k}a'], ['EXPIRE', '{k}a', '3000', 'LT'], ['TTL', '{k}a'],
    ['EXPIREAT', '{k}a', '4102444800'], ['EXPIRETIME', '{k}a'], ['PEXPIREAT', '{k}a', '4102444800999'], ['PEXPIRETIME', '{k}a'], ['PEXPIRE', '{k}a', '100000000'], ['GET', '{k}a'],
    ['EXPIRE', '{k}none', '10'], ['PERSIST', '{k}none'], ['EXPIRE', '{k}a', '10', 'NX', 'XX'], ['EXPIRE', '{k}a', '10', 'GT', 'LT'], ['EXPIRE', '{k}a', '10', 'FOO'],
    ['EXPIRE', '{k}a', 'ten'], ['EXPIRE', '{k}a', '9223372036854775807'], ['EXPIRE', '{k}a'], ['GET', '{k}a']] },
  { name: 'expiry: a time in the past deletes the key', requests: [
    ['SET', '{k}a', '1'], ['EXPIRE', '{k}a', '-1'], ['EXISTS', '{k}a'], ['SET', '{k}b', '1'], ['EXPIREAT', '{k}b', '1'], ['GET', '{k}b'], ['SET', '{k}c', '1'], ['PEXPIRE', '{k}c', '0'], ['EXISTS', '{k}a', '{k}b', '{k}c']] },
  { name: 'expiry: writes keep or clear a TTL as Redis does', requests: [
    ['SET', '{k}a', '10', 'EXAT', '4102444800'], ['INCR', '{k}a'], ['EXPIRETIME', '{k}a'], ['APPEND', '{k}a', '5'], ['EXPIRETIME', '{k}a'], ['SETRANGE', '{k}a', '0', '9'], ['EXPIRETIME', '{k}a'],
    ['INCRBYFLOAT', '{k}a', '1.5'], ['EXPIRETIME', '{k}a'], ['SETBIT', '{k}a', '1', '1'], ['EXPIRETIME', '{k}a'], ['GETSET', '{k}a', 'x'], ['TTL', '{k}a'],
    ['SET', '{k}b', 'v', 'EXAT', '4102444800'], ['RENAME', '{k}b', '{k}c'], ['EXPIRETIME', '{k}c'], ['COPY', '{k}c', '{k}d'], ['EXPIRETIME', '{k}d'],
    ['MSET', '{k}c', '1'], ['TTL', '{k}c'], ['SET', '{k}e', 'v', 'EXAT', '4102444800'], ['GETDEL', '{k}e'], ['TTL', '{k}e']] },
  { name: 'expiry: GETEX', requests: [
    ['SET', '{k}a', 'v'], ['GETEX', '{k}a', 'EX', '1000'], ['TTL', '{k}a'], ['GETEX', '{k}a', 'PERSIST'], ['TTL', '{k}a'], ['GETEX', '{k}a', 'EXAT', '4102444800'], ['EXPIRETIME', '{k}a'],
    ['GETEX', '{k}a'], ['GETEX', '{k}none', 'EX', '10'], ['GETEX', '{k}a', 'EX', '0'], ['GETEX', '{k}a', 'EX', '10', 'PX', '10'], ['GETEX', '{k}a', 'PERSIST', 'EX', '10'],
    ['GETEX', '{k}a', 'FOO'], ['GETEX', '{k}a', 'EX'], ['GETEX', '{k}a', 'PXAT', '1'], ['EXISTS', '{k}a']] },
  // (Not DBSIZE: the keyspace is shared by every exchange, and Redis holds keys of other types freshet refused.)
  { name: 'expiry: WATCH sees an expiry change', requests: [
    ['SET', '{k}a', '1', 'EX', '1000'], ['SET', '{k}b', '1'], ['WATCH', '{k}a'], ['EXPIRE', '{k}a', '2000'], ['MULTI'], ['GET', '{k}a'], ['EXEC'],
    ['WATCH', '{k}b'], ['PERSIST', '{k}b'], ['MULTI'], ['GET', '{k}b'], ['EXEC']] },

  // ---------------------------------------------------------------- connection state
  { name: 'reset: leaves MULTI, forgets WATCH and the name, back to RESP2', requests: [['CLIENT', 'SETNAME', 'x'], ['WATCH', '{k}a'], ['MULTI'], ['RESET'], ['CLIENT', 'GETNAME'], ['SET', '{k}a', '1'], ['MULTI'], ['GET', '{k}a'], ['EXEC']] },
  // (CONFIG SET port is immutable in freshet but not in Redis: never sent to the oracle, it would move it.)
  { name: 'maxmemory: writes that add data get OOM; deletes and FLUSHALL still run', requests: [
    ['SET', '{k}a', '1'], ['CONFIG', 'SET', 'maxmemory', '1'], ['SET', '{k}b', '2'], ['APPEND', '{k}a', 'x'], ['GET', '{k}a'], ['DEL', '{k}a'], ['MULTI'], ['SET', '{k}c', '1'], ['EXEC'],
    ['FLUSHALL'], ['CONFIG', 'SET', 'maxmemory', '0'], ['SET', '{k}b', '2']] },
  { name: 'config set: run-time parameters, unknown and immutable ones', requests: [['CONFIG', 'SET', 'maxclients', '10000'], ['CONFIG', 'GET', 'maxclients'], ['CONFIG', 'SET', 'no-such-option', '1'], ['CONFIG', 'SET', 'maxclients'], ['CONFIG', 'SET', 'databases', '4']] },

  // ---------------------------------------------------------------- COMMAND (entries differ in detail; these parts agree)
  { name: 'command: getkeys and errors', requests: [['COMMAND', 'GETKEYS', 'MSET', 'a', '1', 'b', '2'], ['COMMAND', 'GETKEYS', 'GET', 'k'], ['COMMAND', 'GETKEYS', 'LCS', 'x', 'y'], ['COMMAND', 'GETKEYS', 'PING'], ['COMMAND', 'GETKEYS', 'NOPE', 'x'], ['COMMAND', 'GETKEYS', 'GET'], ['COMMAND', 'GETKEYS', 'GET', 'a', 'b'], ['COMMAND', 'GETKEYS', 'PING', 'x'], ['COMMAND', 'FOO']] },
  { name: 'command info: an unknown name is nil', requests: [['COMMAND', 'INFO', 'no-such-command']] },

  // ---------------------------------------------------------------- errors
  { name: 'errors: wrong number of arguments', requests: [['GET'], ['GET', 'a', 'b'], ['INCR'], ['ECHO'], ['MGET']] },
  { name: 'errors: SHUTDOWN is refused inside MULTI, which then aborts', requests: [['MULTI'], ['SET', '{k}a', '1'], ['SHUTDOWN'], ['EXEC'], ['EXISTS', '{k}a']] },
  { name: 'errors: MULTI nesting, EXEC and DISCARD without MULTI', requests: [['EXEC'], ['DISCARD'], ['MULTI'], ['MULTI'], ['DISCARD']] },
  { name: 'errors: a queued command with a wrong arity aborts EXEC', requests: [['MULTI'], ['SET', '{k}a'], ['SET', '{k}a', '1'], ['EXEC'], ['EXISTS', '{k}a']] },
]

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

  // ---------------------------------------------------------------- errors
  { name: 'errors: wrong number of arguments', requests: [['GET'], ['GET', 'a', 'b'], ['INCR'], ['ECHO'], ['MGET']] },
  { name: 'errors: MULTI nesting, EXEC and DISCARD without MULTI', requests: [['EXEC'], ['DISCARD'], ['MULTI'], ['MULTI'], ['DISCARD']] },
  { name: 'errors: a queued command with a wrong arity aborts EXEC', requests: [['MULTI'], ['SET', '{k}a'], ['SET', '{k}a', '1'], ['EXEC'], ['EXISTS', '{k}a']] },
]

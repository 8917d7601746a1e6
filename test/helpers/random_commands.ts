/**
 * Seeded random string/keyspace commands over a handful of keys, among those
 * whose replies depend neither on hash order nor on time: the differential
 * tests send them to Redis and freshet, the replication tests to a primary
 * whose backups must end with the same data.
 */
import type { Rng } from './prng.js'

/** One random command over a handful of keys, among those whose replies do not depend on hash order or time. */
export function randomRequest(rng: Rng, prefix: string): Array<string | Buffer> {
  const key = (): string => `${prefix}${rng.int(0, 5)}`
  const value = (): string | Buffer => rng.pick<string | Buffer>(['', '0', '1', '-7', '42', '9223372036854775806', 'abc', 'hello world', rng.bytes(rng.int(1, 12)), 'x'.repeat(rng.int(20, 300))])
  const index = (): string => String(rng.pick([0, 1, 2, 3, -1, -2, -5, 7, 40, 100, -100]))
  switch (rng.int(0, 28)) {
    case 0: return ['SET', key(), value()]
    case 1: return ['GET', key()]
    case 2: return ['SETNX', key(), value()]
    case 3: return ['GETDEL', key()]
    case 4: return ['GETRANGE', key(), index(), index()]
    case 5: return ['SETRANGE', key(), String(rng.int(0, 40)), value()]
    case 6: return ['GETBIT', key(), String(rng.int(0, 200))]
    case 7: return ['SETBIT', key(), String(rng.int(0, 200)), String(rng.int(0, 1))]
    case 8: return rng.int(0, 1) === 0 ? ['BITCOUNT', key()] : ['BITCOUNT', key(), index(), index(), rng.pick(['BIT', 'BYTE'])]
    case 9: return rng.int(0, 1) === 0 ? ['BITPOS', key(), String(rng.int(0, 1))] : ['BITPOS', key(), String(rng.int(0, 1)), index(), index(), rng.pick(['BIT', 'BYTE'])]
    case 10: return ['APPEND', key(), value()]
    case 11: return ['STRLEN', key()]
    case 12: return ['INCR', key()]
    case 13: return ['INCRBY', key(), String(rng.int(-1000, 1000))]
    case 14: return ['DECRBY', key(), String(rng.int(-1000, 1000))]
    case 15: return ['RENAME', key(), key()]
    case 16: return ['RENAMENX', key(), key()]
    case 17: return rng.int(0, 1) === 0 ? ['COPY', key(), key()] : ['COPY', key(), key(), 'REPLACE']
    case 18: return ['DEL', key(), key()]
    case 19: return ['EXISTS', key(), key(), key()]
    case 20: return ['TYPE', key()]
    case 21: return ['MGET', key(), key(), key()]
    case 22: return ['MSET', key(), value(), key(), value()]
    case 23: return ['GETSET', key(), value()]
    case 26: return ['BITOP', rng.pick(['AND', 'OR', 'XOR']), key(), key(), key()]
    case 27: return ['BITFIELD', key(), 'OVERFLOW', rng.pick(['WRAP', 'SAT', 'FAIL']), rng.pick(['SET', 'INCRBY']), rng.pick(['i8', 'u4', 'i16', 'u7']), String(rng.int(0, 40)), String(rng.int(-300, 300)), 'GET', 'i8', String(rng.int(0, 40))]
    case 25: return rng.int(0, 2) === 0 ? ['LCS', key(), key()] : ['LCS', key(), key(), rng.pick(['LEN', 'IDX'])]
    case 24: return ['INCRBYFLOAT', key(), rng.pick([`${rng.int(-99, 99)}.${rng.int(0, 999)}`, `${rng.int(1, 9)}e${rng.int(-5, 5)}`, String(rng.int(-3, 3)), '0.1', '-0.1'])]
    default: return rng.int(0, 1) === 0 ? ['MULTI'] : ['EXEC']
  }
}


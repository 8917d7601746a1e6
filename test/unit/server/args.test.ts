/**
 * Argument helpers: Redis glob matching (examples, and a property against a
 * port of Redis's stringmatchlen), and Redis string2ll integer parsing.
 */
import { describe, expect } from 'vitest'
import { fc, test } from '@fast-check/vitest'
import { INT64_MAX, INT64_MIN, globMatch, parseInt64Bytes, parseIntBytes } from '../../../src/server/args.js'

const latin1 = (s: string): Buffer => Buffer.from(s, 'latin1')

/** globMatch over pattern and key embedded at offsets in larger buffers (start/length arguments). */
function g(pattern: string, key: string, nocase = false): boolean {
  const p = latin1('<<' + pattern + '>>')
  const k = latin1('{{{' + key + '}}')
  return globMatch(p, 2, p.length - 4, k, 3, k.length - 5, nocase)
}

/**
 * Redis util.c stringmatchlen() (7.x), ported byte for byte; bytes past the
 * end read as 0, as the NUL after an sds string does.
 */
function redisMatch(p: Uint8Array, k: Uint8Array, nocase: boolean): boolean {
  const skip = { longer: false }
  return redisMatchImpl(p, 0, p.length, k, 0, k.length, nocase, skip, 0)
}

function redisMatchImpl(
  pat: Uint8Array, pi: number, pl: number, str: Uint8Array, si: number, sl: number,
  nocase: boolean, skip: { longer: boolean }, nesting: number,
): boolean {
  const P = (i: number): number => (i < pat.length ? pat[i] : 0)
  const S = (i: number): number => (i < str.length ? str[i] : 0)
  const lower = (c: number): number => (c >= 65 && c <= 90 ? c + 32 : c)
  if (nesting > 1000) return false
  while (pl > 0 && sl > 0) {
    const c = P(pi)
    if (c === 42) { // '*'
      while (pl > 0 && P(pi + 1) === 42) { pi++; pl-- }
      if (pl === 1) return true
      while (sl > 0) {
        if (redisMatchImpl(pat, pi + 1, pl - 1, str, si, sl, nocase, skip, nesting + 1)) return true
        if (skip.longer) return false
        si++; sl--
      }
      skip.longer = true
      return false
    } else if (c === 63) { // '?'
      si++; sl--
    } else if (c === 91) { // '['
      pi++; pl--
      const not = P(pi) === 94
      if (not) { pi++; pl-- }
      let match = false
      for (;;) {
        if (P(pi) === 92 && pl >= 2) {
          pi++; pl--
          if (P(pi) === S(si)) match = true
        } else if (P(pi) === 93) {
          break
        } else if (pl === 0) {
          pi--; pl++
          break
        } else if (pl >= 3 && P(pi + 1) === 45) {
          let start = P(pi)
          let end = P(pi + 2)
          let ch = S(si)
          if (start > end) { const t = start; start = end; end = t }
          if (nocase) { start = lower(start); end = lower(end); ch = lower(ch) }
          pi += 2; pl -= 2
          if (ch >= start && ch <= end) match = true
        } else if (nocase ? lower(P(pi)) === lower(S(si)) : P(pi) === S(si)) {
          match = true
        }
        pi++; pl--
      }
      if (not) match = !match
      if (!match) return false
      si++; sl--
    } else {
      if (c === 92 && pl >= 2) { pi++; pl-- }
      const lit = P(pi)
      if (nocase ? lower(lit) !== lower(S(si)) : lit !== S(si)) return false
      si++; sl--
    }
    pi++; pl--
    if (sl === 0) {
      while (P(pi) === 42 && pl > 0) { pi++; pl-- }
      break
    }
  }
  return pl === 0 && sl === 0
}

describe('globMatch', () => {
  test('* matches any run of bytes, including none', () => {
    expect(g('*', '')).toBe(true)
    expect(g('*', 'anything at all')).toBe(true)
    expect(g('**', '')).toBe(true)
    expect(g('h*llo', 'hllo')).toBe(true)
    expect(g('h*llo', 'heeeello')).toBe(true)
    expect(g('h*llo', 'hellox')).toBe(false)
    expect(g('*a', '')).toBe(false)
    expect(g('a*', 'a')).toBe(true)
    expect(g('a*b*c', 'aXbYc')).toBe(true)
    expect(g('a*b*c', 'aXcYb')).toBe(false)
    expect(g('*:*', 'user:1')).toBe(true)
    expect(g('*:*', 'user1')).toBe(false)
  })

  test('? matches exactly one byte', () => {
    expect(g('h?llo', 'hello')).toBe(true)
    expect(g('h?llo', 'hallo')).toBe(true)
    expect(g('h?llo', 'hllo')).toBe(false)
    expect(g('h?llo', 'heello')).toBe(false)
    expect(g('?', '')).toBe(false)
    expect(g('???', 'abc')).toBe(true)
  })

  test('[abc] matches one byte of the set', () => {
    expect(g('h[ae]llo', 'hello')).toBe(true)
    expect(g('h[ae]llo', 'hallo')).toBe(true)
    expect(g('h[ae]llo', 'hillo')).toBe(false)
    expect(g('h[ae]llo', 'hllo')).toBe(false)
    expect(g('[abc]', '')).toBe(false)
  })

  test('[^a] matches one byte not in the set', () => {
    expect(g('h[^e]llo', 'hallo')).toBe(true)
    expect(g('h[^e]llo', 'hbllo')).toBe(true)
    expect(g('h[^e]llo', 'hello')).toBe(false)
    expect(g('h[^e]llo', 'hllo')).toBe(false)
  })

  test('[a-z] ranges, in either order', () => {
    expect(g('h[a-b]llo', 'hallo')).toBe(true)
    expect(g('h[a-b]llo', 'hbllo')).toBe(true)
    expect(g('h[a-b]llo', 'hcllo')).toBe(false)
    expect(g('h[b-a]llo', 'hallo')).toBe(true)
    expect(g('[0-9][0-9]', '42')).toBe(true)
    expect(g('[0-9][0-9]', '4x')).toBe(false)
    expect(g('[^0-9]', 'x')).toBe(true)
    expect(g('[^0-9]', '5')).toBe(false)
    expect(g('[a-]', '-')).toBe(false) // "a-]" is the range a..']', and the class is unterminated
    expect(g('[a-c-e]', 'd')).toBe(false)
  })

  test('backslash escapes a special byte, inside and outside a class', () => {
    expect(g('h\\*llo', 'h*llo')).toBe(true)
    expect(g('h\\*llo', 'hello')).toBe(false)
    expect(g('\\?', '?')).toBe(true)
    expect(g('\\?', 'x')).toBe(false)
    expect(g('\\[a]', '[a]')).toBe(true)
    expect(g('[\\]]', ']')).toBe(true)
    expect(g('[\\^a]', '^')).toBe(true)
    expect(g('[\\-]', '-')).toBe(true)
    expect(g('a\\', 'a\\')).toBe(true) // a trailing backslash is literal
    expect(g('\\\\', '\\')).toBe(true)
  })

  test('an unterminated class ends the pattern (Redis behaviour)', () => {
    expect(g('[abc', 'a')).toBe(true)
    expect(g('[abc', 'd')).toBe(false)
    expect(g('x[', 'x')).toBe(false)
  })

  test('literal bytes, empty pattern, nocase', () => {
    expect(g('', '')).toBe(true)
    expect(g('', 'a')).toBe(false)
    expect(g('abc', 'abc')).toBe(true)
    expect(g('abc', 'abd')).toBe(false)
    expect(g('abc', 'ABC')).toBe(false)
    expect(g('abc', 'ABC', true)).toBe(true)
    expect(g('H*O', 'hello', true)).toBe(true)
    expect(g('[A-C]x', 'bX', true)).toBe(true)
    expect(g('[a-c]x', 'Bx', false)).toBe(false)
  })

  const alphabet = fc.constantFrom(...'ab*?[]^-\\'.split('').map((c) => c.charCodeAt(0)))
  const keyAlphabet = fc.constantFrom(...'abAB-]^\\*?['.split('').map((c) => c.charCodeAt(0)))
  // Non-empty keys: Redis 7's stringmatchlen rejects "*" against "" (KEYS and SCAN
  // special-case a lone "*" before calling it), which globMatch need not copy.
  test.prop(
    [fc.array(alphabet, { maxLength: 12 }), fc.array(keyAlphabet, { minLength: 1, maxLength: 12 })],
    { seed: 0x610b01, numRuns: 3000 },
  )('agrees with Redis stringmatchlen on patterns over *?[]^-\\ (case-sensitive)', (p, k) => {
    const pat = Uint8Array.from(p)
    const key = Uint8Array.from(k)
    expect(globMatch(pat, 0, pat.length, key, 0, key.length)).toBe(redisMatch(pat, key, false))
  })

  // Pattern letters are lowercase: Redis swaps range ends before folding case and
  // globMatch after, which differ only for ranges like [B-a] (nocase is unused by
  // the command table today, so that corner is left out).
  const lowerPattern = fc.constantFrom(...'abz*?[]^-\\'.split('').map((c) => c.charCodeAt(0)))
  const mixedKey = fc.constantFrom(...'aAbBzZ-]^\\'.split('').map((c) => c.charCodeAt(0)))
  test.prop(
    [fc.array(lowerPattern, { maxLength: 10 }), fc.array(mixedKey, { minLength: 1, maxLength: 10 })],
    { seed: 0x610b02, numRuns: 3000 },
  )('agrees with Redis stringmatchlen with nocase', (p, k) => {
    const pat = Uint8Array.from(p)
    const key = Uint8Array.from(k)
    expect(globMatch(pat, 0, pat.length, key, 0, key.length, true)).toBe(redisMatch(pat, key, true))
  })

  test('many stars against a long non-matching key take polynomial, not exponential, work', () => {
    // Redis stops retrying earlier stars once a later one has failed at every
    // position (skipLongerMatches, the CVE-2022-36021 fix). Work is counted
    // deterministically as key byte reads through a Proxy.
    const pattern = latin1('*a'.repeat(8) + '*b')
    const raw = new Uint8Array(18).fill(0x61)
    let reads = 0
    const key = new Proxy(raw, {
      get(target, prop) {
        if (typeof prop === 'string' && /^[0-9]+$/.test(prop)) reads++
        const v = Reflect.get(target, prop, target)
        return typeof v === 'function' ? v.bind(target) : v
      },
    })
    expect(globMatch(pattern, 0, pattern.length, key, 0, raw.length)).toBe(false)
    expect(redisMatch(pattern, raw, false)).toBe(false)
    // A generous polynomial bound: 20 reads per (pattern byte, key byte) pair.
    expect(reads).toBeLessThanOrEqual(20 * pattern.length * raw.length)
  })
})

describe('parseIntBytes / parseInt64Bytes', () => {
  const pi = (s: string): number => {
    const b = latin1(`##${s}##`)
    return parseIntBytes(b, 2, s.length)
  }
  const p64 = (s: string): bigint | null => {
    // A view with a non-zero byteOffset, to check the offset arithmetic.
    const backing = latin1(`!!!!${s}!!`)
    const view = new Uint8Array(backing.buffer, backing.byteOffset + 1, backing.length - 1)
    return parseInt64Bytes(view, 3, s.length)
  }

  test('plain integers', () => {
    expect(pi('0')).toBe(0)
    expect(pi('1')).toBe(1)
    expect(pi('-1')).toBe(-1)
    expect(pi('10')).toBe(10)
    expect(pi('1234567890')).toBe(1234567890)
    expect(p64('0')).toBe(0n)
    expect(p64('-42')).toBe(-42n)
  })

  test('rejects what string2ll rejects: empty, signs alone, "+", leading zeros, spaces, junk', () => {
    for (const bad of ['', '-', '+', '+1', '01', '00', '-01', ' 1', '1 ', '1a', 'a1', '1.0', '1e3', '--1', '0x1', '\u00001']) {
      expect(pi(bad), JSON.stringify(bad)).toBeNaN()
      expect(p64(bad), JSON.stringify(bad)).toBeNull()
    }
  })

  test('"-0" is rejected, as Redis string2ll and parseInt64Bytes reject it', () => {
    expect(p64('-0')).toBeNull()
    expect(pi('-0')).toBeNaN()
  })

  test('2^53 bounds: exact inside, NaN outside; parseInt64Bytes goes on to int64', () => {
    expect(pi('9007199254740991')).toBe(Number.MAX_SAFE_INTEGER)
    expect(pi('-9007199254740991')).toBe(Number.MIN_SAFE_INTEGER)
    expect(pi('9007199254740992')).toBeNaN()
    expect(pi('-9007199254740992')).toBeNaN()
    expect(pi('9007199254740993')).toBeNaN()
    expect(pi('99999999999999999')).toBeNaN()
    expect(p64('9007199254740993')).toBe(9007199254740993n)
  })

  test('int64 bounds and the 20-character limit', () => {
    expect(p64('9223372036854775807')).toBe(INT64_MAX)
    expect(p64('-9223372036854775808')).toBe(INT64_MIN)
    expect(p64('9223372036854775808')).toBeNull()
    expect(p64('-9223372036854775809')).toBeNull()
    expect(p64('99999999999999999999')).toBeNull() // 20 digits, out of range
    expect(pi('99999999999999999999')).toBeNaN()
    expect(p64('-09223372036854775807')).toBeNull()
    expect(p64('100000000000000000000')).toBeNull() // 21 characters
    expect(pi('100000000000000000000')).toBeNaN()
  })

  test.prop([fc.maxSafeInteger()], { seed: 0x610b03, numRuns: 1000 })('every safe integer round-trips through its decimal text', (n) => {
    const s = String(n)
    expect(pi(s)).toBe(n)
    expect(p64(s)).toBe(BigInt(n))
  })

  test.prop([fc.bigInt({ min: INT64_MIN, max: INT64_MAX })], { seed: 0x610b04, numRuns: 1000 })('every int64 round-trips through parseInt64Bytes', (n) => {
    expect(p64(n.toString())).toBe(n)
    const asNumber = pi(n.toString())
    if (n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER)) expect(asNumber).toBe(Number(n))
    else expect(asNumber).toBeNaN()
  })

  const intish = fc.array(fc.constantFrom('-', '+', '0', '1', '9', ' ', 'a'), { maxLength: 22 }).map((a) => a.join(''))
  test.prop([intish], { seed: 0x610b05, numRuns: 5000 })('parseIntBytes accepts exactly the safe-range strings parseInt64Bytes accepts', (s) => {
    const n = pi(s)
    const b = p64(s)
    if (b !== null && b >= BigInt(Number.MIN_SAFE_INTEGER) && b <= BigInt(Number.MAX_SAFE_INTEGER)) {
      expect(n).toBe(Number(b))
    } else {
      expect(n, JSON.stringify(s)).toBeNaN()
    }
  })
})

/**
 * Command arguments as the parser leaves them: (start, length) pairs into one
 * buffer. Queued MULTI commands keep a copy in the same shape.
 */
export interface Args {
  data: Buffer
  argStart: Int32Array
  argLength: Int32Array
  argc: number
}

export function argString(a: Args, i: number): string {
  return a.data.toString('utf8', a.argStart[i], a.argStart[i] + a.argLength[i])
}

/** Case-insensitive compare of argument i with a lowercase ASCII word. */
export function argIs(a: Args, i: number, lower: string): boolean {
  const n = a.argLength[i]
  if (n !== lower.length) return false
  const d = a.data
  const s = a.argStart[i]
  for (let k = 0; k < n; k++) {
    if ((d[s + k] | 0x20) !== lower.charCodeAt(k)) return false
  }
  return true
}

export function copyArgs(a: Args): Args {
  let total = 0
  for (let i = 0; i < a.argc; i++) total += a.argLength[i]
  const data = Buffer.allocUnsafe(total)
  const argStart = new Int32Array(a.argc)
  const argLength = new Int32Array(a.argc)
  let at = 0
  for (let i = 0; i < a.argc; i++) {
    a.data.copy(data, at, a.argStart[i], a.argStart[i] + a.argLength[i])
    argStart[i] = at
    argLength[i] = a.argLength[i]
    at += a.argLength[i]
  }
  return { data, argStart, argLength, argc: a.argc }
}

/**
 * Parses a Redis integer (string2ll rules: optional '-', no leading zeros or
 * '+', at most 20 chars). Returns NaN when invalid. Exact for |n| < 2^53;
 * larger inputs return NaN and callers needing 64-bit range use argBigInt.
 */
export function parseIntBytes(d: Uint8Array, s: number, n: number): number {
  if (n === 0 || n > 20) return NaN
  let i = s
  const end = s + n
  let neg = false
  if (d[i] === 45) { neg = true; i++; if (i === end) return NaN }
  // No leading zeros, and no "-0" (Redis string2ll).
  if (d[i] === 48 && (end - i > 1 || neg)) return NaN
  let v = 0
  for (; i < end; i++) {
    const c = d[i] - 48
    if (c < 0 || c > 9) return NaN
    v = v * 10 + c
  }
  if (!Number.isSafeInteger(v)) return NaN
  return neg ? -v : v
}

export function argInt(a: Args, i: number): number {
  return parseIntBytes(a.data, a.argStart[i], a.argLength[i])
}

export const INT64_MIN = -(2n ** 63n)
export const INT64_MAX = 2n ** 63n - 1n

/** Full signed 64-bit parse (slow path, off the hot loop). Returns null when invalid. */
export function parseInt64Bytes(d: Uint8Array, s: number, n: number): bigint | null {
  if (n === 0 || n > 20) return null
  const text = Buffer.from(d.buffer, d.byteOffset + s, n).toString('latin1')
  if (!/^(0|-?[1-9][0-9]*)$/.test(text)) return null
  const v = BigInt(text)
  return v < INT64_MIN || v > INT64_MAX ? null : v
}

/**
 * Redis glob match (*, ?, [...], [^...], [a-z], \x) of pattern bytes against
 * key bytes. Iterative, backtracking only to the most recent '*', so the work
 * is O(key length x pattern length) for any pattern (a recursive matcher is
 * exponential on patterns like *a*a*a*b, reachable through SCAN MATCH).
 */
export function globMatch(p: Uint8Array, ps: number, pl: number, k: Uint8Array, ks: number, kl: number, nocase = false): boolean {
  const pe = ps + pl
  const ke = ks + kl
  let pi = ps
  let ki = ks
  let starP = -1
  let starK = -1
  while (ki < ke) {
    if (pi < pe && p[pi] === 42) { // '*': remember where to resume, try matching nothing first
      while (pi < pe && p[pi] === 42) pi++
      if (pi === pe) return true
      starP = pi
      starK = ki
      continue
    }
    if (pi < pe) {
      const next = matchOne(p, pi, pe, k[ki], nocase)
      if (next >= 0) { pi = next; ki++; continue }
    }
    if (starP < 0) return false
    // Backtrack: the last '*' absorbs one more key byte.
    starK++
    ki = starK
    pi = starP
  }
  while (pi < pe && p[pi] === 42) pi++
  return pi === pe
}

function fold(c: number, nocase: boolean): number {
  return nocase && c >= 65 && c <= 90 ? c + 32 : c
}

/** Matches one pattern element at `pi` against byte `c`; returns the next pattern index, or -1. */
function matchOne(p: Uint8Array, pi: number, pe: number, c: number, nocase: boolean): number {
  const pc = p[pi]
  if (pc === 63) return pi + 1 // '?'
  if (pc === 91) { // '['
    let i = pi + 1
    const not = i < pe && p[i] === 94
    if (not) i++
    let match = false
    const kc = fold(c, nocase)
    while (i < pe && p[i] !== 93) {
      if (p[i] === 92 && i + 1 < pe) {
        i++
        if (p[i] === c) match = true
      } else if (i + 2 < pe && p[i + 1] === 45) {
        let lo = fold(p[i], nocase)
        let hi = fold(p[i + 2], nocase)
        if (lo > hi) { const t = lo; lo = hi; hi = t }
        if (kc >= lo && kc <= hi) match = true
        i += 2
      } else if (fold(p[i], nocase) === kc) {
        match = true
      }
      i++
    }
    if (not) match = !match
    if (!match) return -1
    return i < pe ? i + 1 : i // skip ']' (an unterminated class ends the pattern, as in Redis)
  }
  if (pc === 92 && pi + 1 < pe) return fold(p[pi + 1], nocase) === fold(c, nocase) ? pi + 2 : -1
  return fold(pc, nocase) === fold(c, nocase) ? pi + 1 : -1
}

const MEMORY_UNITS: Record<string, number> = { '': 1, b: 1, k: 1000, kb: 1024, m: 1000 ** 2, mb: 1024 ** 2, g: 1000 ** 3, gb: 1024 ** 3 }

/** A memory size as CONFIG SET takes it ("100mb", "1gb", "1048576"); null if it is not one. */
export function parseMemory(text: string): number | null {
  const t = text.toLowerCase()
  let i = 0
  while (i < t.length && t.charCodeAt(i) >= 48 && t.charCodeAt(i) <= 57) i++
  if (i === 0 || i > 18) return null
  const unit = MEMORY_UNITS[t.slice(i)]
  if (unit === undefined) return null
  const n = Number(t.slice(0, i)) * unit
  return Number.isSafeInteger(n) ? n : null
}

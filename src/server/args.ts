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
  if (d[i] === 48 && end - i > 1) return NaN
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

/** Redis glob match (*, ?, [...], [^...], \x) of pattern bytes against key bytes. */
export function globMatch(p: Uint8Array, ps: number, pl: number, k: Uint8Array, ks: number, kl: number, nocase = false): boolean {
  let pi = ps
  const pe = ps + pl
  let ki = ks
  const ke = ks + kl
  const fold = (c: number): number => nocase && c >= 65 && c <= 90 ? c + 32 : c
  while (pi < pe) {
    const c = p[pi]
    if (c === 42) { // '*'
      while (pi + 1 < pe && p[pi + 1] === 42) pi++
      if (pi + 1 === pe) return true
      for (let t = ki; t <= ke; t++) {
        if (globMatch(p, pi + 1, pe - pi - 1, k, t, ke - t, nocase)) return true
      }
      return false
    }
    if (ki >= ke) return false
    if (c === 63) { // '?'
      ki++; pi++
      continue
    }
    if (c === 91) { // '['
      pi++
      const not = pi < pe && p[pi] === 94
      if (not) pi++
      let match = false
      while (pi < pe && p[pi] !== 93) {
        if (p[pi] === 92 && pi + 1 < pe) {
          pi++
          if (p[pi] === k[ki]) match = true
        } else if (pi + 2 < pe && p[pi + 1] === 45) {
          let lo = fold(p[pi]); let hi = fold(p[pi + 2])
          if (lo > hi) { const t = lo; lo = hi; hi = t }
          const kc = fold(k[ki])
          if (kc >= lo && kc <= hi) match = true
          pi += 2
        } else if (fold(p[pi]) === fold(k[ki])) {
          match = true
        }
        pi++
      }
      if (not) match = !match
      if (!match) return false
      pi++ // skip ']'
      ki++
      continue
    }
    let lit = c
    if (c === 92 && pi + 1 < pe) { pi++; lit = p[pi] }
    if (fold(lit) !== fold(k[ki])) return false
    pi++; ki++
  }
  return ki === ke
}

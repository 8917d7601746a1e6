/**
 * INCRBYFLOAT's arithmetic, exactly as Redis does it on x86-64: operands
 * parsed as 80-bit extended floats (64-bit significand, round to nearest
 * even), added in that precision, printed with 17 decimals and trailing zeros
 * cut. A JavaScript double would print 0.1 + 0.2 as 0.30000000000000004
 * where Redis answers 0.3; the log stores the resulting string (physical
 * redo), so every node agrees whichever arithmetic computed it, but users and
 * Redis's tests see the digits.
 *
 * Values are exact rationals in BigInt while being rounded; this runs once
 * per INCRBYFLOAT, never on a hot path.
 */

/** An extended float: (-1)^neg × m × 2^e, with m < 2^64 (m ≥ 2^63 unless subnormal); m = 0n for zero. */
export interface Extended {
  neg: boolean
  m: bigint
  e: number
  inf: boolean
}

const SIGNIFICAND_BITS = 64
const EXPONENT_MAX = 16383
const EXPONENT_MIN = -16382
/** e of the smallest subnormal: 2^(EXPONENT_MIN - 63). */
const E_SUBNORMAL = EXPONENT_MIN - (SIGNIFICAND_BITS - 1)
/** Redis refuses longer number strings (MAX_LONG_DOUBLE_CHARS). */
export const TEXT_CHARS_MAX = 5 * 1024
const PRINT_DECIMALS = 17

function bitLength(n: bigint): number {
  return n === 0n ? 0 : n.toString(2).length
}

/** Rounds (N / D) × 2^e0 (N, D > 0) to an extended float; null when it overflows or underflows to zero. */
function round(neg: boolean, n: bigint, d: bigint, e0: number): Extended | null {
  let e = bitLength(n) - bitLength(d) - SIGNIFICAND_BITS + e0
  for (let tries = 0; tries < 4; tries++) {
    if (e < E_SUBNORMAL) e = E_SUBNORMAL
    const shift = e - e0
    const num = shift < 0 ? n << BigInt(-shift) : n
    const den = shift > 0 ? d << BigInt(shift) : d
    let m = num / den
    if (m >= 1n << 64n) { e++; continue }
    if (m < 1n << 63n && e > E_SUBNORMAL) { e--; continue }
    const r2 = (num % den) * 2n
    if (r2 > den || (r2 === den && (m & 1n) === 1n)) m++
    if (m === 1n << 64n) { m = 1n << 63n; e++ }
    if (e + SIGNIFICAND_BITS - 1 > EXPONENT_MAX) return null
    if (m === 0n) return null
    return { neg, m, e, inf: false }
  }
  throw new Error('extended rounding did not settle')
}

function isDigit(c: number, hex: boolean): boolean {
  return (c >= 48 && c <= 57) || (hex && ((c >= 97 && c <= 102) || (c >= 65 && c <= 70)))
}

/**
 * Parses a number as Redis's string2ld does (strtold on the whole string:
 * decimal or hexadecimal, optional exponent, inf/infinity; no leading blank,
 * nothing after the number, no NaN, no overflow, no underflow to zero).
 * Returns null when it is not a valid float.
 */
export function parseExtended(text: string): Extended | null {
  if (text.length === 0 || text.length >= TEXT_CHARS_MAX) return null
  let i = 0
  let neg = false
  if (text[i] === '+' || text[i] === '-') { neg = text[i] === '-'; i++ }
  const rest = text.slice(i).toLowerCase()
  if (rest === 'inf' || rest === 'infinity') return { neg, m: 0n, e: 0, inf: true }
  const hex = rest.startsWith('0x')
  if (hex) i += 2
  let digits = 0n
  let scale = 0
  let seen = false
  const base = hex ? 16n : 10n
  for (; i < text.length && isDigit(text.charCodeAt(i), hex); i++) { digits = digits * base + BigInt(parseInt(text[i], 16)); seen = true }
  if (text[i] === '.') {
    i++
    for (; i < text.length && isDigit(text.charCodeAt(i), hex); i++) { digits = digits * base + BigInt(parseInt(text[i], 16)); scale++; seen = true }
  }
  if (!seen) return null
  let exp = 0
  if (i < text.length && (text[i] === (hex ? 'p' : 'e') || text[i] === (hex ? 'P' : 'E'))) {
    let j = i + 1
    let expNeg = false
    if (text[j] === '+' || text[j] === '-') { expNeg = text[j] === '-'; j++ }
    const start = j
    while (j < text.length && isDigit(text.charCodeAt(j), false)) j++
    if (j > start) {
      exp = Number(text.slice(start, j)) * (expNeg ? -1 : 1)
      if (!Number.isSafeInteger(exp)) return null
      i = j
    }
  }
  if (i !== text.length) return null
  if (digits === 0n) return { neg, m: 0n, e: 0, inf: false }
  if (hex) return round(neg, digits, 1n, exp - 4 * scale)
  // digits × 10^(exp - scale), far outside the range: overflow or underflow, which strtold reports.
  const p10 = exp - scale
  if (p10 > 5000) return null
  if (p10 < -5100) return null
  return p10 >= 0 ? round(neg, digits * 10n ** BigInt(p10), 1n, 0) : round(neg, digits, 10n ** BigInt(-p10), 0)
}

/** a + b, rounded to extended precision; null for an infinite result. */
export function addExtended(a: Extended, b: Extended): Extended | null {
  if (a.inf || b.inf) return null
  if (a.m === 0n) return b
  if (b.m === 0n) return a
  const e = Math.min(a.e, b.e)
  const sa = (a.m << BigInt(a.e - e)) * (a.neg ? -1n : 1n)
  const sb = (b.m << BigInt(b.e - e)) * (b.neg ? -1n : 1n)
  const sum = sa + sb
  if (sum === 0n) return { neg: false, m: 0n, e: 0, inf: false }
  return round(sum < 0n, sum < 0n ? -sum : sum, 1n, e)
}

/** Prints as Redis's human-friendly form: "%.17Lf" with trailing zeros (and a bare '.') cut; never "-0". */
export function formatExtended(x: Extended): string {
  let scaled: bigint
  if (x.e >= 0) {
    scaled = (x.m << BigInt(x.e)) * 10n ** BigInt(PRINT_DECIMALS)
  } else {
    const num = x.m * 10n ** BigInt(PRINT_DECIMALS)
    const den = 1n << BigInt(-x.e)
    scaled = num / den
    const r2 = (num % den) * 2n
    if (r2 > den || (r2 === den && (scaled & 1n) === 1n)) scaled++
  }
  const digits = scaled.toString().padStart(PRINT_DECIMALS + 1, '0')
  const text = `${digits.slice(0, -PRINT_DECIMALS)}.${digits.slice(-PRINT_DECIMALS)}`.replace(/0+$/, '').replace(/\.$/, '')
  return x.neg && text !== '0' ? `-${text}` : text
}

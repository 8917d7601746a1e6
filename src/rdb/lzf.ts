/**
 * LZF decompression (liblzf's format, as Redis stores compressed RDB
 * strings): a control byte below 32 copies that many + 1 literal bytes; any
 * other is a back reference of length (ctrl >> 5) + 2 (7 meaning one more
 * length byte follows) at distance ((ctrl & 31) << 8 | next byte) + 1. Input
 * from a file: every length and distance is checked, and a stream that does
 * not produce exactly `outLength` bytes is refused (null).
 */
export function lzfDecompress(src: Uint8Array, start: number, end: number, outLength: number): Buffer | null {
  const out = Buffer.allocUnsafe(outLength)
  return lzfDecompressInto(src, start, end, out, outLength) ? out : null
}

/** Most output bytes one input byte can give: a 3-byte back reference copies at most 264. */
export const LZF_EXPANSION_MAX = 88

/** lzfDecompress into out[0, outLength) (out at least that long); false if the stream is refused. */
export function lzfDecompressInto(src: Uint8Array, start: number, end: number, out: Uint8Array, outLength: number): boolean {
  let ip = start
  let op = 0
  while (ip < end) {
    const ctrl = src[ip++]
    if (ctrl < 32) {
      const n = ctrl + 1
      if (ip + n > end || op + n > outLength) return false
      for (let i = 0; i < n; i++) out[op++] = src[ip++]
      continue
    }
    let len = ctrl >> 5
    if (len === 7) {
      if (ip >= end) return false
      len += src[ip++]
    }
    len += 2
    if (ip >= end) return false
    const back = ((ctrl & 0x1f) << 8) + src[ip++] + 1
    if (back > op || op + len > outLength) return false
    // Overlapping copies are byte by byte (a run repeats what it just wrote).
    for (let i = 0; i < len; i++, op++) out[op] = out[op - back]
  }
  return op === outLength
}

/**
 * CRC-64/Jones as Redis computes it for RDB files and DUMP payloads:
 * reflected, polynomial 0x95ac9329ac4bc9b5, initial value 0, no final xor
 * (check value of "123456789": 0xe9c6d914c4b8d9ca). Table-driven on two
 * 32-bit halves (slicing-by-8), so the loop uses no BigInt and allocates
 * nothing: the halves stay signed 32-bit inside it (XOR gives int32; an
 * unsigned half past 2^31 was a heap number per 8 bytes, about 2 bytes of
 * garbage per byte hashed, and a save's scavenges with it) and are made
 * unsigned only when stored.
 */

/** The reflected polynomial's halves. */
const POLY_HI = 0x95ac9329
const POLY_LO = 0xac4bc9b5

/**
 * Slicing-by-8 tables, halves apart: T[k][n] is the CRC of byte n followed
 * by k zero bytes, so eight bytes fold in with eight lookups.
 */
const SLICES = 8
const TABLES_HI = new Int32Array(256 * SLICES)
const TABLES_LO = new Int32Array(256 * SLICES)
for (let n = 0; n < 256; n++) {
  let hi = 0
  let lo = n
  for (let k = 0; k < 8; k++) {
    const carry = lo & 1
    lo = ((lo >>> 1) | ((hi & 1) << 31)) >>> 0
    hi = hi >>> 1
    if (carry !== 0) {
      hi = (hi ^ POLY_HI) >>> 0
      lo = (lo ^ POLY_LO) >>> 0
    }
  }
  TABLES_HI[n] = hi
  TABLES_LO[n] = lo
}
for (let k = 1; k < SLICES; k++) {
  for (let n = 0; n < 256; n++) {
    const hi = TABLES_HI[(k - 1) * 256 + n]
    const lo = TABLES_LO[(k - 1) * 256 + n]
    const t = lo & 0xff
    TABLES_LO[k * 256 + n] = (((lo >>> 8) | ((hi & 0xff) << 24)) ^ TABLES_LO[t]) >>> 0
    TABLES_HI[k * 256 + n] = ((hi >>> 8) ^ TABLES_HI[t]) >>> 0
  }
}

/** A running CRC over chunks. */
export class Crc64 {
  hi: number
  lo: number

  constructor() {
    this.hi = 0
    this.lo = 0
  }

  update(b: Uint8Array, start = 0, end = b.length): void {
    const TH = TABLES_HI
    const TL = TABLES_LO
    let hi = this.hi | 0
    let lo = this.lo | 0
    let i = start
    // Eight bytes at a time: xor them into the CRC, then one lookup per byte in its slice's table.
    for (; i + 8 <= end; i += 8) {
      const l = lo ^ (b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24))
      const h = hi ^ (b[i + 4] | (b[i + 5] << 8) | (b[i + 6] << 16) | (b[i + 7] << 24))
      lo = TL[1792 + (l & 0xff)] ^ TL[1536 + ((l >>> 8) & 0xff)] ^ TL[1280 + ((l >>> 16) & 0xff)] ^ TL[1024 + (l >>> 24)] ^
        TL[768 + (h & 0xff)] ^ TL[512 + ((h >>> 8) & 0xff)] ^ TL[256 + ((h >>> 16) & 0xff)] ^ TL[h >>> 24]
      hi = TH[1792 + (l & 0xff)] ^ TH[1536 + ((l >>> 8) & 0xff)] ^ TH[1280 + ((l >>> 16) & 0xff)] ^ TH[1024 + (l >>> 24)] ^
        TH[768 + (h & 0xff)] ^ TH[512 + ((h >>> 8) & 0xff)] ^ TH[256 + ((h >>> 16) & 0xff)] ^ TH[h >>> 24]
    }
    for (; i < end; i++) {
      const t = (lo ^ b[i]) & 0xff
      lo = ((lo >>> 8) | ((hi & 0xff) << 24)) ^ TL[t]
      hi = (hi >>> 8) ^ TH[t]
    }
    this.hi = hi >>> 0
    this.lo = lo >>> 0
  }

  /** The CRC as 8 little-endian bytes (how RDB stores it). */
  bytesLE(out: Buffer, at: number): void {
    out.writeUInt32LE(this.lo, at)
    out.writeUInt32LE(this.hi, at + 4)
  }

  hex(): string {
    return this.hi.toString(16).padStart(8, '0') + this.lo.toString(16).padStart(8, '0')
  }
}

export function crc64(b: Uint8Array, start = 0, end = b.length): Crc64 {
  const c = new Crc64()
  c.update(b, start, end)
  return c
}

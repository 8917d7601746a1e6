/**
 * CRC-64/Jones as Redis computes it for RDB files and DUMP payloads:
 * reflected, polynomial 0x95ac9329ac4bc9b5, initial value 0, no final xor
 * (check value of "123456789": 0xe9c6d914c4b8d9ca). Table-driven on two
 * 32-bit halves, so the per-byte loop uses no BigInt and allocates nothing.
 */

/** The reflected polynomial's halves. */
const POLY_HI = 0x95ac9329
const POLY_LO = 0xac4bc9b5

const TABLE_HI = new Uint32Array(256)
const TABLE_LO = new Uint32Array(256)
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
  TABLE_HI[n] = hi
  TABLE_LO[n] = lo
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
    let hi = this.hi
    let lo = this.lo
    for (let i = start; i < end; i++) {
      const t = (lo ^ b[i]) & 0xff
      lo = (((lo >>> 8) | ((hi & 0xff) << 24)) ^ TABLE_LO[t]) >>> 0
      hi = ((hi >>> 8) ^ TABLE_HI[t]) >>> 0
    }
    this.hi = hi
    this.lo = lo
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

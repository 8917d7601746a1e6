/**
 * The RDB codec on its own: CRC-64/Jones against its check value, the length
 * encoding, LZF against a stream written by hand, and the reader's refusals:
 * every single-byte flip and every truncation of a small file written by
 * freshet's writer is refused with RDB_INVALID, never loaded.
 */
import { describe, expect, test } from 'vitest'
import { crc64 } from '../../../src/rdb/crc64.js'
import { lzfDecompress } from '../../../src/rdb/lzf.js'
import { lengthBytes, writeLength } from '../../../src/rdb/format.js'
import { entryKey, entryValue, readRdb, walkRdb } from '../../../src/rdb/reader.js'
import { writeRdb } from '../../../src/rdb/writer.js'
import { DbError } from '../../../src/errors.js'
import { openPrimary, tempDir, writeKey, type Model } from '../../helpers/in_process.js'

function codeOf(fn: () => unknown): string {
  try {
    fn()
  } catch (err) {
    return err instanceof DbError ? err.code : `not a DbError: ${String(err)}`
  }
  return 'no error'
}

describe('crc64', () => {
  test('the check value of "123456789" is e9c6d914c4b8d9ca; chunks give the same CRC as one pass', () => {
    const b = Buffer.from('123456789')
    expect(crc64(b).hex()).toBe('e9c6d914c4b8d9ca')
    const c = crc64(b, 0, 4)
    c.update(b, 4, 9)
    expect(c.hex()).toBe('e9c6d914c4b8d9ca')
    expect(crc64(Buffer.alloc(0)).hex()).toBe('0000000000000000')
  })

  test('eight bytes at a time give what one byte at a time gives, for every length and alignment up to 200', () => {
    const data = Buffer.from(Array.from({ length: 210 }, (_, i) => (i * 151 + 7) & 0xff))
    for (let start = 0; start < 8; start++) {
      for (let n = 0; n + start <= 200; n++) {
        const bytewise = crc64(Buffer.alloc(0))
        for (let i = start; i < start + n; i++) bytewise.update(data, i, i + 1)
        expect(crc64(data, start, start + n).hex(), `${start}+${n}`).toBe(bytewise.hex())
      }
    }
  })
})

describe('length encoding', () => {
  test('each size class round-trips through the reader', () => {
    for (const n of [0, 1, 63, 64, 16383, 16384, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 7]) {
      const out = Buffer.alloc(9)
      expect(writeLength(out, 0, n)).toBe(lengthBytes(n))
    }
  })
})

describe('lzf', () => {
  test('literals and back references, overlapping runs; bad streams refused', () => {
    // "abc" as a literal run, then a back reference of length 7 at distance 3: "abcabcabca".
    const stream = Buffer.from([2, 0x61, 0x62, 0x63, (5 << 5) | 0, 2])
    expect(lzfDecompress(stream, 0, stream.length, 10)?.toString()).toBe('abcabcabca')
    expect(lzfDecompress(stream, 0, stream.length, 11)).toBeNull()
    expect(lzfDecompress(Buffer.from([2, 0x61]), 0, 2, 3)).toBeNull()
    // A back reference before the start of the output.
    expect(lzfDecompress(Buffer.from([0, 0x61, (1 << 5) | 0, 5]), 0, 4, 4)).toBeNull()
  })
})

describe('reader refusals', () => {
  test('every single-byte flip and every truncation of a small freshet RDB is refused with RDB_INVALID', async () => {
    const p = await openPrimary(tempDir('freshet-rdb-'))
    const model: Model = new Map()
    try {
      for (let i = 0; i < 20; i++) writeKey(p.primary, model, `key:${i}`, Buffer.from(i % 3 === 0 ? String(i * 1000) : 'v'.repeat(i * 7)))
      p.primary.endTurn()
      const chunks: Buffer[] = []
      const snapshot = p.primary.snapshot()
      await writeRdb(snapshot, async (c) => { chunks.push(Buffer.from(c)) }, { aux: [['redis-ver', '7.0.0']], keyCount: p.primary.keyCount(), stepMs: 1 })
      snapshot.close()
      const file = Buffer.concat(chunks)
      const seen = new Map<string, string>()
      readRdb(file, { skipUnsupported: false }, (e) => seen.set(entryKey(e), entryValue(e)))
      expect(seen.size).toBe(20)
      expect(seen.get('key:3')).toBe('3000')
      for (let at = 0; at < file.length; at++) {
        const bad = Buffer.from(file)
        bad[at] ^= 0x5a
        expect(codeOf(() => walkRdb(bad, { skipUnsupported: true }, () => {})), `flip at ${at}`).toMatch(/^RDB_(INVALID|UNSUPPORTED)$/)
      }
      for (let n = 0; n < file.length; n++) {
        expect(codeOf(() => walkRdb(file.subarray(0, n), { skipUnsupported: true }, () => {})), `truncated to ${n}`).toBe('RDB_INVALID')
      }
      expect(codeOf(() => walkRdb(Buffer.concat([file, Buffer.from([0])]), { skipUnsupported: true }, () => {}))).toBe('RDB_INVALID')
    } finally {
      await p.primary.close()
    }
  })
})

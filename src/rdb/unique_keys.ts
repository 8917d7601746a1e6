/**
 * A restore's check that no key is loaded twice, without an index: each key
 * loaded is noted as (hash, ref) in one growing array, and at the end the
 * array is sorted (a native sort of 64-bit words, hash in the high half) so
 * that keys with equal hashes sit together; only those are compared, by
 * their bytes in the log. Writing an index entry per key costs a cache miss
 * into a table of the whole keyspace per key (most of a restore's time
 * after the copies); the sort of 5M words takes about 0.35 s.
 */
/** Which 32-bit half of a 64-bit word is its high half on this machine. */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1
const HASH_WORD = LITTLE_ENDIAN ? 1 : 0
const REF_WORD = 1 - HASH_WORD

const INITIAL_KEYS = 1024

export class UniqueKeys {
  private words: Uint32Array
  count: number

  /** `expected`: the keys the file says it holds (RESIZEDB), already bounded by the caller; 0 if unknown. */
  constructor(expected = 0) {
    this.words = new Uint32Array(2 * Math.max(INITIAL_KEYS, expected))
    this.count = 0
  }

  /** Notes a key loaded at `ref` whose keyHash() is `hash`. */
  add(hash: number, ref: number): void {
    if (2 * this.count === this.words.length) {
      const grown = new Uint32Array(2 * this.words.length)
      grown.set(this.words)
      this.words = grown
    }
    const i = 2 * this.count++
    this.words[i + HASH_WORD] = hash
    this.words[i + REF_WORD] = ref
  }

  /**
   * A key noted twice, or null. `keyOf(ref)` gives the key loaded at a ref
   * (latin1, so bytes compare exactly); it is called only for keys whose hash
   * another key shares. Sorts the notes (they are not needed in order again).
   */
  findDuplicate(keyOf: (ref: number) => string): string | null {
    const n = this.count
    const w = this.words
    new BigUint64Array(w.buffer, 0, n).sort()
    for (let i = 0; i < n;) {
      const hash = w[2 * i + HASH_WORD]
      let end = i + 1
      while (end < n && w[2 * end + HASH_WORD] === hash) end++
      if (end - i > 1) {
        // Keys sharing a hash: a few in a big file (and a crafted file's many collide in a Set, not in pairs).
        const keys = new Set<string>()
        for (let j = i; j < end; j++) {
          const key = keyOf(w[2 * j + REF_WORD])
          if (keys.has(key)) return key
          keys.add(key)
        }
      }
      i = end
    }
    return null
  }
}

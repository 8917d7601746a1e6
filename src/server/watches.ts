/**
 * WATCH on a primary, as Redis does it: every write a command makes to a key
 * marks the connections that watch that key (Primary.keyWrites), and EXEC
 * aborts a transaction whose connection was marked. Exact: a write compares
 * the key's bytes (found by its 32-bit hash, one Map lookup, no allocation),
 * and the cleaner's relocations, which are not writes, never mark anyone,
 * however often a watched version moves while the client holds its WATCH.
 * The map holds only keys being watched (at most WATCHED_KEYS_MAX per
 * connection); a connection leaves it on EXEC, DISCARD, UNWATCH, RESET and close.
 */
import type { KeyWriteObserver } from '../node.js'

/** What a watching connection exposes here. */
export interface Watcher {
  /** A watched key was written since WATCH: EXEC must abort. */
  watchDirty: boolean
}

interface Entry { watcher: Watcher, key: Buffer }

export class WatchRegistry implements KeyWriteObserver {
  private readonly byHash: Map<number, Entry[]>

  constructor() {
    this.byHash = new Map()
  }

  /** Keys watched now, over all connections. */
  get size(): number {
    let n = 0
    for (const list of this.byHash.values()) n += list.length
    return n
  }

  add(watcher: Watcher, hash: number, key: Buffer): void {
    const list = this.byHash.get(hash)
    if (list === undefined) this.byHash.set(hash, [{ watcher, key }])
    else list.push({ watcher, key })
  }

  /** Forgets `watcher`'s keys (their hashes given, as watched). */
  remove(watcher: Watcher, hashes: readonly number[]): void {
    for (const hash of hashes) {
      const list = this.byHash.get(hash)
      if (list === undefined) continue
      const kept = list.filter((e) => e.watcher !== watcher)
      if (kept.length === 0) this.byHash.delete(hash)
      else this.byHash.set(hash, kept)
    }
  }

  /** A command wrote key bytes [start, start + length) of `key` (hash `hash`): its watchers are marked. */
  written(hash: number, key: Uint8Array, start: number, length: number): void {
    if (this.byHash.size === 0) return
    const list = this.byHash.get(hash)
    if (list === undefined) return
    for (let i = 0; i < list.length; i++) {
      const e = list[i]
      if (e.key.length === length && e.key.compare(key, start, start + length) === 0) e.watcher.watchDirty = true
    }
  }
}

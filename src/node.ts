/**
 * What the RESP server serves: a node in one role. The server and the
 * command handlers see a node only through this interface (reads through its
 * view, writes through its writer, which is null on a backup), so changing a
 * node's role at run time (backup -> primary) is serving another ServedNode
 * with its role's commands and INFO sections (RespServer.serve), not a
 * special case in every command.
 *
 * Nothing here imports the server: hooks a node calls (a released position
 * advanced, a block was sealed) are passed to its constructor and wired at
 * the composition root (cli/run_primary.ts, cli/run_backup.ts).
 */
import type { FreshnessGate } from './server/freshness.js'
import type { ReadView } from './view/read_view.js'
import type { Metric } from './metrics/metric.js'

export type NodeRole = 'primary' | 'backup'

/** Told of every write a command makes (WATCH: server/watches.ts); the cleaner's relocations are not writes. */
export interface KeyWriteObserver {
  written(hash: number, key: Uint8Array, keyStart: number, keyLength: number): void
}

/**
 * What write commands use of a node that takes writes (the primary): reserve
 * room, probe a key, write its new version, and the block positions WAIT and
 * LSN report. The primary implements it; nothing here knows the primary.
 */
export interface NodeWriter {
  /** --max-memory, which CONFIG SET maxmemory changes at run time. */
  readonly options: { maxMemoryBytes: number }
  keyWrites: KeyWriteObserver | null
  beginWrite(boundBytes: number, checkMemory?: boolean): void
  endWrite(): void
  outOfMemory(boundBytes: number): boolean
  probe(key: Uint8Array, keyStart: number, keyLength: number): number
  writeProbed(
    type: number, key: Uint8Array, keyStart: number, keyLength: number,
    v1: Uint8Array | null, v1Start: number, v1Length: number,
    v2: Uint8Array | null, v2Start: number, v2Length: number,
    expireAtMs?: number,
  ): number
  lastOpBlockStart(): number
  blockEndOf(blockStart: number): number
  /** After each command: deletes the expired keys its reads met (lazy expiry), logged like any delete. */
  afterCommand(): void
}

export interface ServedNode {
  readonly role: NodeRole
  readonly view: ReadView
  /** The primary itself, or null on a backup. */
  readonly writer: NodeWriter | null
  /** Holds reads to their freshness contract (a backup); null where every read is fresh (a primary). */
  readonly freshness: FreshnessGate | null
  /** Replies that observed positions below this may leave. */
  releasedLsn(): number
  /** The newest op written (a reply that observed everything, DBSIZE or SCAN, waits for it). */
  waitLsn(): number
  /** End of an event-loop turn: seal what the turn wrote (primary); nothing on a backup. */
  endTurn(): void
  keyCount(): number
  /** CONFIG RESETSTAT: clears the role's statistics (lag histograms). */
  resetStats(): void
  /** Why reads cannot be served yet (a backup loading a full resync), or null: commands that touch data get -LOADING. */
  loading(): string | null
  /** How long a reply may be held for its commit (0: no bound); past it, it is answered heldReplyError() instead. */
  heldReplyBoundMs(): number
  /** The error (`CODE message`) a reply held past heldReplyBoundMs() gets. */
  heldReplyError(): string
  /** Key expiry's figures (INFO keyspace expires=, stats expired_keys and expire_cycle_cpu_milliseconds); a backup expires nothing: zeros. */
  expiryStats(): ExpiryStats
  /** DEBUG SET-ACTIVE-EXPIRE: runs or pauses the active expiry cycle (a backup has none). */
  setActiveExpiry(on: boolean): void
}

/**
 * One INFO line, `key:value`; with a Metric (metrics/metric.ts) when
 * /metrics shows it too: the figure's one typed description.
 */
export type InfoLine = [string, string | number, Metric?]

/** One INFO section's lines, in order. */
export type InfoLines = InfoLine[]

/** The lines' values by key. */
export function lineValues(lines: InfoLines): Map<string, string | number> {
  return new Map(lines.map(([k, v]) => [k, v]))
}

/** What key expiry reports (the primary's; a backup's are zeros). */
export interface ExpiryStats {
  /** Keys with a time to live. */
  expiring: number
  /** Keys expired (deleted by the active cycle or the cleaner). */
  expired: number
  /** Milliseconds the active cycle has run. */
  cycleMs: number
}

/** A component's contributions to INFO sections, by section name (registered at the composition root). */
export type InfoSections = Record<string, () => InfoLines>

/**
 * The one home of a command and of an INFO section. The composition root
 * (cli/) fills a CommandRegistry with the data and admin commands and the
 * role's own (replication handshake, WAIT, WAITLSN), and an InfoRegistry with
 * each component's sections; the server only looks them up.
 *
 * Commands are found by a case-folded hash of their name bytes, without
 * building a string per command.
 */
import { assert } from '../assert.js'
import type { InfoLines, InfoSections } from '../node.js'
import type { CommandSpec } from './commands.js'

/** Longest command name looked up (longer input is no command). */
const COMMAND_NAME_BYTES_MAX = 32

export class CommandRegistry {
  private readonly byName: Map<string, CommandSpec>
  private readonly byHash: Map<number, CommandSpec>

  constructor(...tables: ReadonlyArray<readonly CommandSpec[]>) {
    this.byName = new Map()
    this.byHash = new Map()
    for (const t of tables) this.add(t)
  }

  add(specs: readonly CommandSpec[]): void {
    for (const spec of specs) {
      assert(!this.byName.has(spec.name), `one home per command (${spec.name})`)
      assert(spec.name.length <= COMMAND_NAME_BYTES_MAX, 'command names fit the lookup bound')
      const name = Buffer.from(spec.name)
      const h = nameHash(name, 0, name.length)
      assert(!this.byHash.has(h), `command name hashes are distinct (${spec.name})`)
      this.byName.set(spec.name, spec)
      this.byHash.set(h, spec)
    }
  }

  /** By lower-case name (COMMAND INFO, GETKEYS). */
  get(name: string): CommandSpec | undefined {
    return this.byName.get(name)
  }

  all(): CommandSpec[] {
    return [...this.byName.values()]
  }

  /**
   * The command named by bytes [start, start + length), case-insensitively:
   * the folded hash picks the candidate, then the bytes are compared.
   */
  find(d: Uint8Array, start: number, length: number): CommandSpec | undefined {
    if (length > COMMAND_NAME_BYTES_MAX) return undefined
    const spec = this.byHash.get(nameHash(d, start, length))
    if (spec === undefined || spec.name.length !== length) return undefined
    for (let i = 0; i < length; i++) if (foldCase(d[start + i]) !== spec.name.charCodeAt(i)) return undefined
    return spec
  }
}

/** FNV-1a over the case-folded bytes of a command name. */
function nameHash(d: Uint8Array, start: number, length: number): number {
  let h = 0x811c9dc5
  for (let i = 0; i < length; i++) h = Math.imul(h ^ foldCase(d[start + i]), 0x01000193)
  return h >>> 0
}

/** ASCII upper-case letters to lower case; every other byte (digits, '_', '.', '-') as it is. */
function foldCase(c: number): number {
  return c >= 65 && c <= 90 ? c | 0x20 : c
}

/**
 * INFO sections a node's components contribute (replication, persistence,
 * memory, stats): each section's lines are its contributors' lines, in the
 * order they were added. The server renders its own sections (server,
 * clients, its stats, keyspace) around them.
 */
export class InfoRegistry {
  private readonly contributors: Map<string, Array<() => InfoLines>>

  constructor(...components: InfoSections[]) {
    this.contributors = new Map()
    for (const c of components) this.addAll(c)
  }

  add(section: string, lines: () => InfoLines): void {
    const list = this.contributors.get(section)
    if (list === undefined) this.contributors.set(section, [lines])
    else list.push(lines)
  }

  addAll(sections: InfoSections): void {
    for (const [name, lines] of Object.entries(sections)) this.add(name, lines)
  }

  /** The section's lines (empty if nothing contributes to it). */
  lines(section: string): InfoLines {
    const lines: InfoLines = []
    for (const f of this.contributors.get(section) ?? []) lines.push(...f())
    return lines
  }
}

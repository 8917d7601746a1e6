/**
 * In-process primaries for tests of the log and the cleaner (no servers):
 * Primary.open on a temp dir (removed after the file's tests) with 1 MiB
 * segments, --retain-bytes 0, a log collected in memory, the cleaner paused
 * (tests force cleanings), and optionally a LogFiles crash point that throws
 * once at a chosen step (the test then treats that instant as kill -9).
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll } from 'vitest'
import { opBytes } from '../../src/codec/record.js'
import { OP_TYPE_DELETE, OP_TYPE_SET, REF_NONE } from '../../src/constants.js'
import type { CrashStep } from '../../src/log/log_file.js'
import { Primary, type CommitMode } from '../../src/primary/primary.js'

export const SEGMENT_BYTES = 1024 * 1024

const dirs: string[] = []
afterAll(() => { for (const d of dirs) fs.rmSync(d, { recursive: true, force: true }) })

export function tempDir(prefix: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
  dirs.push(d)
  return d
}

/** What a crash point throws. */
export class Crash extends Error {}

/** A crash point that throws at `step` while armed (once: disarms after firing). */
export interface Fault { step: CrashStep, armed: boolean, once: boolean, fired: number }

export interface Node {
  primary: Primary
  log: string[]
}

export async function openPrimary(dir: string, o: { fault?: Fault | null, commit?: CommitMode, paused?: boolean, windowForceBytes?: number } = {}): Promise<Node> {
  const log: string[] = []
  const fault = o.fault ?? null
  const primary = await Primary.open({
    dir, segmentBytes: SEGMENT_BYTES, commit: o.commit ?? 'local', maxMemoryBytes: 2 ** 40, valueBytesMax: SEGMENT_BYTES / 2,
    retainBytes: 0, recoveryWorkers: 1, windowForceBytes: o.windowForceBytes, log: (line) => { log.push(line) },
    crashPoint: fault === null ? undefined : (step) => {
      if (!fault.armed || step !== fault.step) return
      fault.fired++
      if (fault.once) fault.armed = false
      throw new Crash(step)
    },
  })
  primary.cleaner.paused = o.paused ?? true
  return { primary, log }
}

let counter = 0
/** A value of `length` bytes that differs from every other one made here (a counter in its first bytes). */
export function valueOf(length: number): Buffer {
  const b = Buffer.alloc(length, counter & 0xff)
  if (length >= 4) b.writeUInt32LE(counter, 0)
  counter++
  return b
}

/** Waits (bounded by `limitMs`) until `done()`, calling `between()` before each poll. */
export async function waitFor(what: string, done: () => boolean, between: () => void = () => {}, limitMs = 30_000): Promise<void> {
  const t0 = Date.now()
  while (!done()) {
    between()
    await new Promise((resolve) => setTimeout(resolve, 1))
    if (Date.now() - t0 > limitMs) throw new Error(`timed out waiting for ${what}`)
  }
}

/** The acknowledged state: key -> value (absent: deleted or never written). */
export type Model = Map<string, Buffer>

/**
 * SET `key` to `value` (DEL for null, which writes nothing for an absent key,
 * as the DEL command does) through the primary's write path, and in the model.
 * The caller ends the turn (one block per turn).
 */
export function writeKey(p: Primary, model: Model, key: string, value: Buffer | null): void {
  const k = Buffer.from(key)
  p.beginWrite(opBytes(k.length, value === null ? 0 : value.length), value !== null)
  try {
    const head = p.probe(k, 0, k.length)
    if (value === null) {
      if (head === REF_NONE || !p.view.isSet(head)) return
      p.writeProbed(OP_TYPE_DELETE, k, 0, k.length, null, 0, 0, null, 0, 0)
      model.delete(key)
    } else {
      p.writeProbed(OP_TYPE_SET, k, 0, k.length, value, 0, value.length, null, 0, 0)
      model.set(key, value)
    }
  } finally {
    p.endWrite()
  }
}

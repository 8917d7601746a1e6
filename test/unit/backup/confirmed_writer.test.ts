/**
 * ConfirmedWriter (a backup's confirmed position on disk): the periodic write
 * does its fsyncs off the main thread and lands; a synchronous write made
 * while it is under way wins (the periodic one is dropped, never renamed over
 * it); a second periodic write does not overlap the first.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, expect, test } from 'vitest'
import { ConfirmedWriter, readConfirmedLsn } from '../../../src/backup/confirmed.js'

const dirs: string[] = []
afterAll(() => { for (const d of dirs) fs.rmSync(d, { recursive: true, force: true }) })

function tempDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'freshet-confirmed-'))
  dirs.push(d)
  return d
}

const noLog = (): void => {}

test('a periodic write lands; a second one while it is under way is refused', async () => {
  const dir = tempDir()
  const w = new ConfirmedWriter(dir)
  const first = w.writeInBackground(4096)
  expect(await w.writeInBackground(8192)).toBe(false)
  expect(await first).toBe(true)
  expect(readConfirmedLsn(dir, noLog)).toBe(4096)
  expect(await w.writeInBackground(8192)).toBe(true)
  expect(readConfirmedLsn(dir, noLog)).toBe(8192)
})

test('a synchronous write made while a periodic one is under way stays in force', async () => {
  const dir = tempDir()
  const w = new ConfirmedWriter(dir)
  w.write(1000)
  // The periodic write starts with a newer position; a cut then records a lower one at once.
  const periodic = w.writeInBackground(9000)
  w.write(512)
  expect(readConfirmedLsn(dir, noLog)).toBe(512)
  expect(await periodic).toBe(false)
  expect(readConfirmedLsn(dir, noLog)).toBe(512)
})

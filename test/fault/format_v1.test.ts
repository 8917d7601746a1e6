/**
 * On-disk format fixtures: a log directory written by an older freshet (format v1, no segment
 * manifest; test/fixtures/format/v1/README.md) must still open, with every key as written.
 */
import fs from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, test } from 'vitest'
import { copyDir, startPrimary } from '../helpers/primary.js'
import { closeClient, connectClient } from '../helpers/clients.js'

const FIXTURE_DIR = fileURLToPath(new URL('../fixtures/format/v1/log', import.meta.url))

/** The model the fixture generator (test/fixtures/format/make_v1.mjs) wrote. */
function expected(): Map<string, string> {
  const m = new Map<string, string>()
  const value = (i: number): string => `v1:${i}:` + String.fromCharCode(97 + (i % 26)).repeat(8000 + (i % 7) * 100)
  for (let i = 0; i < 300; i++) m.set(`k:${i}`, value(i))
  for (let i = 0; i < 300; i += 10) m.delete(`k:${i}`)
  for (let i = 5; i < 300; i += 50) m.set(`k:${i}`, `over:${i}`)
  m.set('ctr', '42')
  return m
}

describe('format v1 fixture', () => {
  test('a v1 log directory (no manifest) opens, every key as written, twice', async () => {
    const copy = copyDir(FIXTURE_DIR)
    const model = expected()
    const keys = [...Array.from({ length: 300 }, (_, i) => `k:${i}`), 'ctr']
    for (let round = 0; round < 2; round++) {
      const primary = await startPrimary({ dir: copy, commit: 'local', segmentSize: '1mb' })
      const c = connectClient(primary.port)
      expect(primary.stderr).not.toContain('log recovery:')
      const got = await c.mget(...keys)
      const wrong = keys.filter((k, i) => got[i] !== (model.get(k) ?? null))
      expect(wrong, `round ${round}`).toEqual([])
      expect(await c.dbsize()).toBe(model.size)
      await closeClient(c)
      expect((await primary.stop()).code).toBe(0)
    }
    // The fixture itself is never written to.
    expect(fs.readdirSync(FIXTURE_DIR).sort()).toEqual(['freshet.json', 'segment-000000000000.log', 'segment-000000000001.log', 'segment-000000000002.log'])
  })
})

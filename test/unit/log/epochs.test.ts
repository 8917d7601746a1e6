/**
 * Epoch histories (log/epochs.ts): where two logs part, judged from their
 * histories alone, for the shapes a failover makes; the handshake's text
 * form; the file (absent in logs from before histories, damage refused).
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { describe, expect, test } from 'vitest'
import { commonPoint, formatHistory, historyUpTo, openEpochs, parseHistory, readEpochs, validHistory, writeEpochs, EPOCHS_FILE, type EpochHistory } from '../../../src/log/epochs.js'
import { DbError } from '../../../src/errors.js'

const SEGMENT = 1024 * 1024
const h = (...pairs: Array<[number, number]>): EpochHistory => pairs.map(([epoch, startLsn]) => ({ epoch, startLsn }))

describe('commonPoint', () => {
  test('a backup that is a prefix of its primary agrees up to its own end', () => {
    expect(commonPoint(h([1, 0]), 5000, h([1, 0]), 4000)).toBe(4000)
    // Behind the promotion point: its whole log is the new primary's too.
    expect(commonPoint(h([1, 0], [2, 6000]), 9000, h([1, 0]), 4000)).toBe(4000)
    // Already following the new epoch.
    expect(commonPoint(h([1, 0], [2, 6000]), 9000, h([1, 0], [2, 6000]), 8000)).toBe(8000)
  })

  test('an old primary past the promotion point parts at it, at a block boundary inside a segment', () => {
    // The promoted backup held the old primary's log up to LSN 6000 (a block end mid-segment).
    expect(commonPoint(h([1, 0], [2, 6000]), 9000, h([1, 0]), 7400)).toBe(6000)
  })

  test('across segments and holes the point is still the epoch switch (holes do not move it)', () => {
    const switchLsn = 3 * SEGMENT + 4096
    expect(commonPoint(h([1, 0], [2, switchLsn]), 6 * SEGMENT, h([1, 0]), 5 * SEGMENT + 72)).toBe(switchLsn)
  })

  test('two promotions to different epochs after a common one part at the earlier switch', () => {
    expect(commonPoint(h([1, 0], [2, 6000], [3, 8000]), 9000, h([1, 0], [2, 6000], [4, 7000]), 7600)).toBe(7000)
    // Two nodes promoted to the same epoch at different points: the earlier one (the checksum catches the rest).
    expect(commonPoint(h([1, 0], [2, 6000]), 9000, h([1, 0], [2, 5000]), 7000)).toBe(5000)
  })

  test('logs that share no epoch have no common point', () => {
    expect(commonPoint(h([1, 0]), 5000, h([2, 0]), 5000)).toBe(-1)
  })

  test('histories that begin at different LSNs but with one epoch are one log', () => {
    // A backup's history after a full resync may start where its primary's retained log did.
    expect(commonPoint(h([1, 0], [2, 9000]), 12000, h([1, 8192], [2, 9000]), 11000)).toBe(11000)
    expect(commonPoint(h([1, 0], [2, 9000]), 12000, h([1, 8192]), 11000)).toBe(9000)
  })
})

describe('text and file forms', () => {
  test('format and parse round-trip; malformed or non-monotonic histories are refused', () => {
    const x = h([1, 0], [2, 6000], [5, 6000])
    expect(parseHistory(formatHistory(x))).toEqual(x)
    for (const bad of ['', '1', '1:', ':0', '1:0,1:5', '2:5,1:9', '1:9,2:5', '0:0', '1:-4', '1:0;2:5', 'a:b', `1:${'9'.repeat(20)}`]) {
      expect(parseHistory(bad), bad).toBeNull()
    }
    expect(validHistory([])).toBe(false)
  })

  test('historyUpTo drops the entries a log has not reached yet, never the first', () => {
    const x = h([1, 0], [2, 6000], [3, 9000])
    expect(historyUpTo(x, 7000)).toEqual(h([1, 0], [2, 6000]))
    expect(historyUpTo(x, 6000)).toEqual(h([1, 0], [2, 6000]))
    expect(historyUpTo(h([3, 9000]), 0)).toEqual(h([3, 9000]))
  })

  test('a directory without a history (a log from before them) has one epoch from LSN 0; a damaged file is LOG_DAMAGED', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'freshet-epochs-'))
    try {
      expect(readEpochs(dir)).toBeNull()
      expect(openEpochs(dir, 0)).toEqual(h([1, 0]))
      expect(openEpochs(dir, 1)).toEqual(h([1, 0]))
      writeEpochs(dir, h([1, 0], [2, 4096]))
      expect(readEpochs(dir)).toEqual(h([1, 0], [2, 4096]))
      expect(openEpochs(dir, 2)).toEqual(h([1, 0], [2, 4096]))
      // Blocks of an epoch the history does not name.
      expect(() => openEpochs(dir, 3)).toThrow(DbError)
      for (const text of ['{', '{"format":1,"epochs":[[2,0],[1,5]]}', '{"format":9,"epochs":[[1,0]]}', '{"format":1,"epochs":[]}']) {
        fs.writeFileSync(path.join(dir, EPOCHS_FILE), text)
        let code = ''
        try { readEpochs(dir) } catch (err) { code = (err as DbError).code }
        expect(code, text).toBe('LOG_DAMAGED')
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
})

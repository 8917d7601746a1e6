/**
 * The primary's answers in the replication handshake (ship/protocol.ts), as
 * the backup reads them: one RESP line each, parsed and checked here (input
 * from the link: anything malformed is named, never trusted), acted on by the
 * backup (backup.ts).
 *
 *   +SYNC <epoch> <commit-lsn> <segment-bytes> [<history>]   the link is up
 *   +FULLRESYNC <epoch> <horizon> <commit-lsn> <segment-bytes> <reason>
 *   -CUT <lsn> <epoch> <why>        the histories part at lsn: cut there, sync again
 *   -<CODE> <text>                  refused (EPOCH, DIVERGED, NOAUTH, ...)
 *   :1 / :0 / :-1                   a FRESHET.CHECK answer (divergence search)
 *   +OK                             AUTH
 */
import { parseHistory, type EpochHistory } from '../log/epochs.js'

export type HandshakeLine =
  | { type: 'sync', epoch: number, commitLsn: number, segmentBytes: number, history: EpochHistory | null }
  | { type: 'fullresync', epoch: number, horizonLsn: number, commitLsn: number, reason: string }
  | { type: 'cut', lsn: number, epoch: number, why: string }
  | { type: 'refused', code: string, text: string }
  | { type: 'check', agree: boolean, released: boolean }
  | { type: 'malformed', text: string }
  | { type: 'other' }

/** Parses one handshake line of a backup whose segments are `segmentBytes` long. */
export function parseHandshakeLine(line: string, segmentBytes: number): HandshakeLine {
  if (line.startsWith('+SYNC ')) {
    const [, epoch, commit, segment, historyText] = line.split(' ')
    const e = Number(epoch)
    const c = Number(commit)
    if (!(Number.isSafeInteger(e) && e >= 1 && Number.isSafeInteger(c) && c >= 0)) return { type: 'malformed', text: line.slice(0, 200) }
    const history = historyText === undefined ? null : parseHistory(historyText)
    if (historyText !== undefined && history === null) return { type: 'malformed', text: line.slice(0, 200) }
    return { type: 'sync', epoch: e, commitLsn: c, segmentBytes: Number(segment), history }
  }
  if (line.startsWith('+FULLRESYNC ')) {
    const [, epoch, horizon, commit, segment, ...why] = line.split(' ')
    const h = Number(horizon)
    const c = Number(commit)
    if (Number(segment) !== segmentBytes || !Number.isSafeInteger(h) || h % segmentBytes !== 0 ||
      !Number.isSafeInteger(c) || c < h || !(Number(epoch) >= 1)) return { type: 'malformed', text: line.slice(0, 200) }
    return { type: 'fullresync', epoch: Number(epoch), horizonLsn: h, commitLsn: c, reason: why.join(' ') }
  }
  if (line.startsWith('-CUT ')) {
    const [, lsnText, epochText, ...why] = line.split(' ')
    const lsn = Number(lsnText)
    const epoch = Number(epochText)
    if (!Number.isSafeInteger(lsn) || lsn < 0 || !Number.isSafeInteger(epoch) || epoch < 1) return { type: 'malformed', text: line.slice(0, 200) }
    return { type: 'cut', lsn, epoch, why: why.join(' ') }
  }
  if (line.startsWith('-')) return { type: 'refused', code: line.slice(1).split(' ', 1)[0], text: line.slice(1) }
  if (line.startsWith(':')) return { type: 'check', agree: line === ':1', released: line === ':-1' }
  return { type: 'other' }
}

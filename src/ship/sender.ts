/**
 * Primary side of log shipping. One ShipSender per connected backup keeps a
 * cursor (next LSN to send) and pushes whole blocks from the primary's own
 * segments straight onto the socket (no copy of log bytes: the frame body is
 * a view of the immutable segment), bounded by SHIP_INFLIGHT_BYTES_MAX of
 * unsent socket data. Shipping starts at seal time, before the local fsync,
 * so backups receive blocks as early as possible; heartbeats tell each backup
 * the primary's safe LSN (durable, or committed in async mode), the most it
 * may make visible. remote-flush and remote-apply commit modes count a block
 * committed only once N backups acked it.
 *
 * Shipping (one per primary) owns the senders, the heartbeat timer, the
 * FRESHET.SYNC handshake and FRESHET.CHECK agreement commands, WAIT, and
 * INFO replication on the primary.
 */
import type { Socket } from 'node:net'
import { assert } from '../assert.js'
import { blockLength } from '../codec/record.js'
import { isRemoteMode, type Primary } from '../primary/primary.js'
import type { CommandSpec } from '../server/commands.js'
import { BlockedWaits } from '../server/blocked_waits.js'
import { argInt, argString } from '../server/args.js'
import type { InfoLines, InfoSections } from '../node.js'
import { nowMs } from '../io/clock.js'
import { EPOCH } from '../metrics/figures.js'
import { counter, gauge, type Metric } from '../metrics/metric.js'
import {
  ACK_PAYLOAD_BYTES, FRAME_ACK, FRAME_BLOCKS, FRAME_BLOCKS_BYTES_TARGET, FRAME_HEADER_BYTES,
  HEARTBEAT_INTERVAL_MS, LINK_TIMEOUT_MS, RELEASE_IDS_MAX, SHIP_INFLIGHT_BYTES_MAX, SYNC_COMMAND, CHECK_COMMAND,
  encodeFrameHeader, encodeHeartbeat, encodeRelease,
} from './protocol.js'
import { checksumEndingAt } from './agreement.js'
import { commonPoint, currentEpoch, formatHistory, historyUpTo, parseHistory, type EpochHistory } from '../log/epochs.js'
import { SYNC_TIMEOUT_MS_DEFAULT } from '../primary/primary.js'
import { F_ADMIN, F_BLOCKING } from '../server/commands.js'

const ACK_FRAME_BYTES = FRAME_HEADER_BYTES + ACK_PAYLOAD_BYTES

function descending(a: number, b: number): number {
  return b - a
}
const BACKUPS_MAX = 64

/** The primary's replication figures /metrics shows (metrics/metric.ts). */
const M = {
  commit: gauge('freshet_commit_lsn', 'Primary: the end of the committed log', 'lsn'),
  durable: gauge('freshet_durable_lsn', 'Primary: the end of the fsynced log', 'lsn'),
  released: gauge('freshet_released_lsn', 'Primary: replies of writes below this have been sent', 'lsn'),
  backups: gauge('freshet_connected_backups', 'Primary: backups connected'),
  refused: counter('freshet_writes_refused_noreplicas_total', 'Primary: writes refused for missing sync backups'),
}

/** Fields of the primary's `backupN` lines that /metrics shows, labelled `backup` (its address). */
export const BACKUP_METRICS: ReadonlyArray<readonly [string, Metric]> = [
  ['flushed_lsn', gauge('freshet_backup_flushed_lsn', 'Primary: a backup\'s fsynced LSN, as it acknowledged', 'lsn')],
  ['applied_lsn', gauge('freshet_backup_visible_lsn', 'Primary: a backup\'s visible LSN, as it acknowledged', 'lsn')],
  ['lag_bytes', gauge('freshet_backup_lag_bytes', 'Primary: the commit LSN minus a backup\'s visible LSN', 'bytes')],
  ['lag_ms', gauge('freshet_backup_lag_seconds', 'Primary: a backup\'s lag as it last acknowledged (its lag_ms)', 'ms')],
]

export class ShipSender {
  readonly id: number
  readonly socket: Socket
  readonly addr: string
  readonly listenPort: number
  cursor: number
  /** Frames below this LSN have left this process (handed to the kernel): their segment bytes are no longer referenced. */
  flushedCursor: number
  receivedLsn: number
  flushedLsn: number
  appliedLsn: number
  lagMs: number
  lastSendMs: number
  /** When the last valid ACK arrived; a backup acks at least every ACK_INTERVAL_MS (protocol.ts). */
  lastAckMs: number
  /** The safe LSN last told to this backup. */
  safeSent: number
  closed: boolean
  private readonly primary: Primary
  private readonly onAck: () => void
  private readonly ackBuf: Buffer
  private ackLength: number
  private waitingDrain: boolean

  constructor(id: number, socket: Socket, primary: Primary, fromLsn: number, listenPort: number, onAck: () => void) {
    this.id = id
    this.socket = socket
    this.addr = `${socket.remoteAddress}:${listenPort}`
    this.listenPort = listenPort
    this.cursor = fromLsn
    this.flushedCursor = fromLsn
    // Only acks say what a backup has flushed or applied; its sync position may not be on disk yet.
    this.receivedLsn = 0
    this.flushedLsn = 0
    this.appliedLsn = 0
    this.lagMs = 0
    this.lastSendMs = 0
    this.lastAckMs = nowMs()
    this.safeSent = -1
    this.closed = false
    this.primary = primary
    this.onAck = onAck
    this.ackBuf = Buffer.allocUnsafe(ACK_FRAME_BYTES)
    this.ackLength = 0
    this.waitingDrain = false
    socket.on('data', (chunk: Buffer) => this.onData(chunk))
  }

  /** Sends every whole block up to the commit LSN, as far as the in-flight bound allows. */
  pump(): void {
    if (this.closed || this.waitingDrain) return
    const store = this.primary.store
    const commitLsn = store.endLsn
    while (this.cursor < commitLsn) {
      if (this.socket.writableLength >= SHIP_INFLIGHT_BYTES_MAX) {
        this.waitingDrain = true
        this.socket.once('drain', () => { this.waitingDrain = false; this.pump() })
        return
      }
      if (this.cursor < store.horizonLsn()) {
        this.close(`the log at LSN ${this.cursor} was released: this backup fell behind the retained log and must resync`)
        return
      }
      const next = store.skipGap(this.cursor)
      if (next !== this.cursor) {
        this.cursor = next
        continue
      }
      const segment = store.segmentAt(this.cursor)!
      const offset = this.cursor - segment.baseLsn
      const committed = Math.min(segment.committedBytes(), commitLsn - segment.baseLsn)
      let end = offset
      while (end < committed) {
        end += blockLength(segment.dv, end)
        if (end - offset >= FRAME_BLOCKS_BYTES_TARGET) break
      }
      assert(end <= committed, 'frames end on block boundaries')
      const header = Buffer.allocUnsafe(FRAME_HEADER_BYTES)
      encodeFrameHeader(header, 0, FRAME_BLOCKS, end - offset)
      this.socket.cork()
      this.socket.write(header)
      const frameEnd = segment.baseLsn + end
      // The frame is a view of the segment (no copy): the cleaner may reuse the buffer only once it has left.
      this.socket.write(segment.buf.subarray(offset, end), () => { if (frameEnd > this.flushedCursor) this.flushedCursor = frameEnd })
      this.socket.uncork()
      this.cursor = frameEnd
      this.lastSendMs = nowMs()
    }
    this.sendSafe()
  }

  /**
   * The cleaner released `ids` above the horizon, once the log held `afterLsn`:
   * tell the backup, unless one of them is a segment it has not been sent
   * whole (then its log would skip versions it never saw replaced: it must
   * resync, and the link closes).
   */
  released(ids: readonly number[], afterLsn: number): void {
    if (this.closed || ids.length === 0) return
    const store = this.primary.store
    const sending = store.segmentId(this.cursor)
    if (ids.some((id) => id >= sending)) {
      this.close(`the cleaner released a segment this backup has not been sent whole (its log is at LSN ${this.cursor}): it must resync`)
      return
    }
    this.writeRelease(ids, afterLsn)
  }

  /** RELEASE frames for `ids`, split to RELEASE_IDS_MAX per frame. */
  writeRelease(ids: readonly number[], afterLsn: number): void {
    const store = this.primary.store
    for (let i = 0; i < ids.length; i += RELEASE_IDS_MAX) {
      this.socket.write(encodeRelease(store.horizonLsn(), Math.min(afterLsn, store.endLsn), ids.slice(i, i + RELEASE_IDS_MAX)))
    }
  }

  heartbeat(now: number): void {
    if (this.closed) return
    if (now - this.lastAckMs > LINK_TIMEOUT_MS) { this.close(`no ACK for ${LINK_TIMEOUT_MS} ms`); return }
    if (this.cursor < this.primary.store.endLsn) return
    if (now - this.lastSendMs < HEARTBEAT_INTERVAL_MS) return
    this.writeHeartbeat(now)
  }

  /** Tells the backup at once when the safe LSN (or, with `always`, the horizon) moved. */
  sendSafe(always = false): void {
    if (this.closed || this.waitingDrain || (!always && this.primary.safeLsn() <= this.safeSent)) return
    this.writeHeartbeat(nowMs())
  }

  private writeHeartbeat(now: number): void {
    const p = this.primary
    const safe = p.safeLsn()
    // A horizon moved after what this backup was sent is told later (horizon-after must not pass the commit LSN sent).
    const after = Math.min(p.cleaner.horizonAfterLsn, p.store.endLsn)
    this.socket.write(encodeHeartbeat(p.store.endLsn, now, safe, p.store.horizonLsn(), Math.max(after, p.store.horizonLsn())))
    this.safeSent = safe
    this.lastSendMs = now
  }

  /**
   * ACK frames, staged in a fixed ACK_FRAME_BYTES buffer (the input bound: a
   * backup sends nothing else). An ACK is checked against what was sent to
   * this backup (its cursor), not the primary's log end: a position past the
   * cursor is one it cannot have, and releasing remote-* writes on it would
   * acknowledge writes no backup received.
   */
  private onData(chunk: Buffer): void {
    let at = 0
    while (at < chunk.length) {
      const n = Math.min(ACK_FRAME_BYTES - this.ackLength, chunk.length - at)
      chunk.copy(this.ackBuf, this.ackLength, at, at + n)
      this.ackLength += n
      at += n
      if (this.ackLength < ACK_FRAME_BYTES) break
      this.ackLength = 0
      const b = this.ackBuf
      if (b[0] !== FRAME_ACK || b.readUInt32LE(4) !== ACK_PAYLOAD_BYTES) {
        this.close('malformed ack frame')
        return
      }
      const received = b.readDoubleLE(8)
      const flushed = b.readDoubleLE(16)
      const applied = b.readDoubleLE(24)
      const lagMs = b.readDoubleLE(32)
      if (!(Number.isSafeInteger(received) && Number.isSafeInteger(flushed) && Number.isSafeInteger(applied) &&
        flushed >= 0 && applied >= 0 && flushed <= received && applied <= received)) {
        this.close('ack for positions the primary never sent')
        return
      }
      if (received > this.cursor) {
        this.close(`ack for positions the primary never sent (LSN ${received}, sent to this backup up to LSN ${this.cursor})`)
        return
      }
      this.lastAckMs = nowMs()
      this.receivedLsn = Math.max(this.receivedLsn, received)
      this.flushedLsn = Math.max(this.flushedLsn, flushed)
      this.appliedLsn = Math.max(this.appliedLsn, applied)
      this.lagMs = Number.isFinite(lagMs) && lagMs >= 0 ? lagMs : 0
    }
    this.onAck()
  }

  close(reason: string): void {
    if (this.closed) return
    this.closed = true
    this.primary.options.log(`backup ${this.addr}: link closed (${reason})`)
    this.socket.destroy()
  }
}


/** What shipping tells the rest of the node: passed to its constructor, wired at the composition root. */
export interface ShippingHooks {
  /** Backups acknowledged positions: in remote-* modes held replies may go (the server). */
  released(): void
}

export class Shipping {
  readonly primary: Primary
  readonly senders: ShipSender[]
  readonly syncBackups: number
  private readonly hooks: ShippingHooks
  private nextId: number
  private readonly timer: NodeJS.Timeout
  private readonly waiters: BlockedWaits
  /** remote-* modes: the highest position the required backups reached (what was released stays released). */
  private remoteReleasedMax: number
  private readonly positions: number[]
  /** remote-* modes: since when fewer than syncBackups backups are connected (0: enough are). */
  private shortSinceMs: number
  /** Writes refused with -NOREPLICAS up front (INFO writes_refused_noreplicas_total). */
  refusedTotal: number

  constructor(primary: Primary, syncBackups: number, hooks: ShippingHooks) {
    this.primary = primary
    this.senders = []
    this.syncBackups = syncBackups
    this.hooks = hooks
    this.nextId = 1
    this.waiters = new BlockedWaits()
    this.remoteReleasedMax = 0
    this.positions = []
    this.shortSinceMs = nowMs()
    this.refusedTotal = 0
    this.timer = setInterval(() => this.tick(), HEARTBEAT_INTERVAL_MS / 2)
    this.timer.unref()
  }

  /** A block was sealed: send it to every backup (the primary's `sealed` hook). */
  pump(): void {
    for (const s of this.senders) s.pump()
  }

  /** The primary's durable LSN advanced: tell every backup (the primary's `safe` hook). */
  sendSafe(always = false): void {
    for (const s of this.senders) s.sendSafe(always)
  }

  /** The cleaner released segments (the primary's `cleaned` hook): holes in RELEASE frames, the horizon in a heartbeat. */
  cleaned(holes: readonly number[]): void {
    const after = this.primary.cleaner.holesAfterLsn
    for (const s of this.senders) {
      s.released(holes, after)
      s.sendSafe(true)
    }
  }

  /** The oldest position whose frames may still sit in a backup's socket buffers (the primary's `shippedFloor` hook). */
  shippedFloor(): number {
    let floor = Number.MAX_SAFE_INTEGER
    for (const s of this.senders) if (!s.closed && s.flushedCursor < floor) floor = s.flushedCursor
    return floor
  }

  /** The oldest position a connected backup has yet to be sent (the primary's `retainFloor` hook). */
  retainFloor(): number {
    let floor = Number.MAX_SAFE_INTEGER
    for (const s of this.senders) if (!s.closed && s.cursor < floor) floor = s.cursor
    return floor
  }

  /**
   * remote-* modes: the LSN the required backups have flushed (remote-flush)
   * or applied (remote-apply). What was released stays released: a backup that
   * disconnects takes nothing back (a reply that already left may have shown
   * that position to a client); with too few backups nothing new is released.
   */
  remoteReleased(): number {
    if (this.syncBackups === 0) return Number.MAX_SAFE_INTEGER
    const flush = this.primary.options.commit === 'remote-flush'
    // Called as replies are marked: reuses one array (at most BACKUPS_MAX entries) and a module-level comparator.
    const positions = this.positions
    positions.length = 0
    for (const s of this.senders) if (!s.closed) positions.push(flush ? s.flushedLsn : s.appliedLsn)
    if (positions.length < this.syncBackups) return this.remoteReleasedMax
    positions.sort(descending)
    if (positions[this.syncBackups - 1] > this.remoteReleasedMax) this.remoteReleasedMax = positions[this.syncBackups - 1]
    return this.remoteReleasedMax
  }


  /** Backups past their handshake and still connected. */
  connectedCount(): number {
    let n = 0
    for (const s of this.senders) if (!s.closed) n++
    return n
  }

  /**
   * The primary's `syncShortage` hook: in remote-* modes, once fewer backups
   * than --sync-backups have been connected for --sync-timeout, writes are
   * refused at once (as Redis's min-replicas-to-write refuses), instead of
   * each waiting out the timeout.
   */
  syncShortage(): string | null {
    if (!isRemoteMode(this.primary.options.commit) || this.syncBackups === 0) return null
    const connected = this.connectedCount()
    if (connected >= this.syncBackups) { this.shortSinceMs = 0; return null }
    const now = nowMs()
    if (this.shortSinceMs === 0) this.shortSinceMs = now
    const timeoutMs = this.primary.options.syncTimeoutMs ?? SYNC_TIMEOUT_MS_DEFAULT
    if (now - this.shortSinceMs < timeoutMs) return null
    this.refusedTotal++
    return `Not enough good replicas to write: ${connected} of ${this.syncBackups} sync backups connected for ${Math.round(now - this.shortSinceMs)} ms (--sync-timeout ${timeoutMs} ms)`
  }

  /** The primary's replication commands: the handshake, the agreement check, WAIT, FRESHET.FENCE. */
  commands(): CommandSpec[] {
    return [this.syncCommand(), this.checkCommand(), this.waitCommand(), this.fenceCommand()]
  }

  /** FRESHET.FENCE <epoch>: another node is (or is about to be) the primary of `epoch`; this one stops acknowledging. */
  private fenceCommand(): CommandSpec {
    return {
      name: 'freshet.fence', arity: 2, flags: F_ADMIN,
      run: (s, a) => {
        const epoch = argInt(a, 1)
        const p = this.primary
        if (!(epoch >= 1)) { s.conn.out.error('ERR FRESHET.FENCE epoch'); return }
        if (epoch <= p.epoch) { s.conn.out.error(`EPOCH epoch ${epoch} is not above this primary's epoch ${p.epoch}`); return }
        p.fence(`told of epoch ${epoch} by ${s.conn.addr}`)
        s.conn.out.simple('OK')
      },
    }
  }

  infoSections(): InfoSections {
    return { replication: () => this.infoReplication() }
  }

  private tick(): void {
    const now = nowMs()
    for (const s of this.senders) s.heartbeat(now)
    if (this.waiters.size > 0) this.checkWaiters(now)
  }

  private acked(): void {
    this.checkWaiters(nowMs())
    if (isRemoteMode(this.primary.options.commit)) this.hooks.released()
  }

  /** Backups that flushed at least `lsn`. */
  flushedCount(lsn: number): number {
    let n = 0
    for (const s of this.senders) if (!s.closed && s.flushedLsn >= lsn) n++
    return n
  }

  private checkWaiters(now: number): void {
    this.waiters.settle(now, (w) => {
      const n = this.flushedCount(w.target)
      if (n < w.count) return false
      w.session.conn.out.integer(n)
      return true
    }, (w) => w.session.conn.out.integer(this.flushedCount(w.target)))
  }

  private syncCommand(): CommandSpec {
    return {
      name: SYNC_COMMAND, arity: -4, flags: 0,
      run: (s, a) => {
        const out = s.conn.out
        const epoch = argInt(a, 1)
        const fromLsn = argInt(a, 2)
        const listenPort = argInt(a, 3)
        const usage = 'ERR FRESHET.SYNC epoch from-lsn listen-port checksum [RESYNC] [HISTORY epoch:lsn,...]'
        if (!(epoch >= 0) || !(fromLsn >= 0) || !(listenPort >= 0) || a.argc > 8) { out.error(usage); return }
        if (this.connectedCount() >= BACKUPS_MAX) { out.error('ERR too many backups'); return }
        const p = this.primary
        const checksum = a.argc > 4 ? argInt(a, 4) : -1
        // A backup in a full resync says so: it loads (-LOADING) and so may skip the holes.
        let resyncing = false
        let theirs: EpochHistory | null = null
        for (let i = 5; i < a.argc; i++) {
          const word = argString(a, i).toUpperCase()
          if (word === 'RESYNC') resyncing = true
          else if (word === 'HISTORY' && i + 1 < a.argc && (theirs = parseHistory(argString(a, i + 1))) !== null) i++
          else { out.error(usage); return }
        }
        const refuse = (text: string): void => {
          out.error(text)
          s.conn.closing = true
        }
        if (p.fenced !== null) { refuse(`EPOCH this primary (epoch ${p.epoch}) is fenced: ${p.fenced}`); return }
        if (theirs === null) {
          // A backup from before epoch histories: the same epoch or none.
          if (epoch !== 0 && epoch !== p.epoch) { refuse(`EPOCH backup is at epoch ${epoch}, primary at epoch ${p.epoch}`); return }
        } else {
          const theirEpoch = currentEpoch(theirs)
          if (theirEpoch > p.epoch) {
            // Someone was promoted past this primary: it must not acknowledge another write.
            p.fence(`a backup (port ${listenPort}) follows epoch ${theirEpoch}, above this primary's epoch ${p.epoch}`)
            refuse(`EPOCH backup is at epoch ${theirEpoch}, above this primary's epoch ${p.epoch}: this primary is fenced`)
            return
          }
          const point = commonPoint(p.history, p.commitLsn(), historyUpTo(theirs, fromLsn), fromLsn)
          if (point >= 0 && point < fromLsn) {
            // The histories part at `point`: the backup cuts its log there and resumes (one round trip, no search).
            refuse(`CUT ${point} ${p.epoch} the backup's log (to LSN ${fromLsn}, epoch ${theirEpoch}) leaves this primary's history at LSN ${point}`)
            return
          }
          if (point < 0 && fromLsn > p.store.horizonLsn()) {
            refuse(`CUT ${p.store.horizonLsn()} ${p.epoch} the backup's epoch history (${formatHistory(theirs)}) shares no epoch with this primary's (${formatHistory(p.history)})`)
            return
          }
        }
        const store = p.store
        const horizon = store.horizonLsn()
        const contiguous = store.contiguousFromLsn()
        // An empty log that starts at the horizon (checksum 0) needs nothing below it; past holes only while loading.
        const emptyAtHorizon = fromLsn === horizon && checksum === 0
        const followsFromStart = emptyAtHorizon && (resyncing || contiguous === horizon)
        // Otherwise the block ending at from-lsn must be one the primary still holds, with the log after it whole.
        const resumable = fromLsn > contiguous || (fromLsn === 0 && contiguous === 0)
        if (!followsFromStart && !resumable) {
          const reason = contiguous === horizon
            ? `its log ends at LSN ${fromLsn}, and the primary released the log below LSN ${horizon} ` +
              '(the backup is new, or fell further behind than --retain-bytes)'
            : `its log ends at LSN ${fromLsn}, and the primary released segments of its log up to LSN ${contiguous} ` +
              '(the backup is new, or fell further behind than --retain-bytes)'
          p.options.log(`backup on port ${argString(a, 3)}: full resync from LSN ${horizon}: ${reason}`)
          out.simple(`FULLRESYNC ${p.epoch} ${horizon} ${p.commitLsn()} ${p.store.segmentBytes} ${reason}`)
          s.conn.closing = true
          return
        }
        // Agreement: the primary's log has the block the backup's log ends with (same checksum).
        const ours = followsFromStart ? 0 : checksumEndingAt(p.store, fromLsn)
        if (ours < 0 || (fromLsn > 0 && checksum !== ours)) {
          const what = ours < 0 ? 'which is not a block end of the primary\'s log' : `whose block checksum ${checksum} is not the primary's (${ours})`
          out.error(`DIVERGED backup log ends at LSN ${fromLsn}, ${what}; primary commit LSN ${p.commitLsn()}, durable LSN ${p.durableLsn()}`)
          s.conn.closing = true
          return
        }
        out.simple(`SYNC ${p.epoch} ${p.commitLsn()} ${p.store.segmentBytes} ${formatHistory(p.history)}`)
        const conn = s.conn
        conn.sendable = conn.out.length
        conn.markEnd.length = 0
        conn.markLsn.length = 0
        conn.flush()
        conn.detached = true
        conn.socket.removeAllListeners('data')
        const sender = new ShipSender(this.nextId++, conn.socket, p, fromLsn, listenPort, () => this.acked())
        conn.socket.on('close', () => {
          sender.closed = true
          this.senders.splice(this.senders.indexOf(sender), 1)
          this.acked()
        })
        this.senders.push(sender)
        p.options.log(`backup ${sender.addr} (${argString(a, 3)}) synced from LSN ${fromLsn}`)
        // Every hole first: the backup releases those it holds, and a loading one skips the rest.
        if (store.holes.size > 0) sender.writeRelease([...store.holes].sort((x, y) => x - y), p.cleaner.holesAfterLsn)
        // pump() ends with a heartbeat: the backup learns the safe LSN at once.
        sender.pump()
      },
    }
  }

  /** FRESHET.CHECK <lsn> <checksum>: 1 if this log has a block ending at lsn with that checksum; -1 if it released the log there. */
  private checkCommand(): CommandSpec {
    return {
      name: CHECK_COMMAND, arity: 3, flags: 0,
      run: (s, a) => {
        const lsn = argInt(a, 1)
        const checksum = argInt(a, 2)
        if (!(lsn >= 0) || !(checksum >= 0)) { s.conn.out.error('ERR FRESHET.CHECK lsn checksum'); return }
        const store = this.primary.store
        const contiguous = store.contiguousFromLsn()
        // -1: released (a hole or below the horizon, or the log after it is not whole): the backup must resync.
        if (lsn > 0 && lsn <= contiguous) { s.conn.out.integer(-1); return }
        s.conn.out.integer(checksumEndingAt(store, lsn) === checksum ? 1 : 0)
      },
    }
  }

  private waitCommand(): CommandSpec {
    return {
      name: 'wait', arity: 3, flags: F_BLOCKING,
      run: (s, a) => {
        const count = argInt(a, 1)
        const timeoutMs = argInt(a, 2)
        if (!(count >= 0) || !(timeoutMs >= 0)) { s.conn.out.error('ERR value is not an integer or out of range'); return }
        const target = s.conn.lastWriteBlockStart >= 0 ? this.primary.blockEndOf(s.conn.lastWriteBlockStart) : 0
        for (const sender of this.senders) sender.pump()
        const n = this.flushedCount(target)
        if (n >= count) { s.conn.out.integer(n); return }
        this.waiters.park(s, target, count, timeoutMs, () => this.checkWaiters(nowMs()))
      },
    }
  }

  infoReplication(): InfoLines {
    const p = this.primary
    const commit = p.commitLsn()
    const lines: InfoLines = [
      ['role', 'primary'], ['epoch', p.epoch, EPOCH], ['epoch_history', formatHistory(p.history)], ['fenced', p.fenced === null ? 0 : 1],
      ['commit_lsn', commit, M.commit], ['durable_lsn', p.durableLsn(), M.durable], ['released_lsn', p.releasedLsn(), M.released],
      ['connected_backups', this.senders.length, M.backups], ['commit_mode', p.options.commit], ['sync_backups', this.syncBackups],
      ['sync_timeout_ms', p.options.syncTimeoutMs ?? SYNC_TIMEOUT_MS_DEFAULT],
      ['sync_short_ms', this.shortSinceMs > 0 && isRemoteMode(p.options.commit) && this.connectedCount() < this.syncBackups ? Math.round(nowMs() - this.shortSinceMs) : 0],
      ['writes_refused_noreplicas_total', this.refusedTotal, M.refused],
    ]
    // One line per backup; /metrics labels BACKUP_METRICS's fields of it by addr.
    this.senders.forEach((s, i) => {
      lines.push([`backup${i}`, `addr=${s.addr},flushed_lsn=${s.flushedLsn},applied_lsn=${s.appliedLsn},lag_bytes=${Math.max(0, commit - s.appliedLsn)},lag_ms=${s.lagMs.toFixed(3)}`])
    })
    // Redis's per-replica lines (Sentinel-aware tools and client libraries read them).
    this.senders.forEach((s, i) => {
      const host = s.addr.slice(0, s.addr.lastIndexOf(':')).replace(/^::ffff:/, '')
      lines.push([`slave${i}`, `ip=${host},port=${s.listenPort},state=online,offset=${s.flushedLsn},lag=${Math.floor((nowMs() - s.lastAckMs) / 1000)}`])
    })
    return lines
  }

  close(): void {
    clearInterval(this.timer)
    for (const s of this.senders) s.close('primary shutting down')
  }
}

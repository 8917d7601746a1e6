/**
 * Replication link protocol. It shares the node's one port with clients:
 *
 *   1. The backup connects and speaks RESP: `AUTH <password>` if the primary
 *      has one, then `FRESHET.SYNC <epoch> <from-lsn> <listen-port> <checksum>`:
 *      from-lsn is the end of its log (received, not only visible) and
 *      checksum the checksum of the block that ends there (0 for LSN 0).
 *   2. The primary checks the epoch (a backup of another epoch is refused
 *      with -EPOCH) and that its own log has a block ending at from-lsn with
 *      that checksum (ship/agreement.ts): both logs then agree up to from-lsn.
 *      Otherwise it answers `-DIVERGED ...` naming both positions and closes
 *      the connection. On agreement it replies
 *      `+SYNC <epoch> <commit-lsn> <segment-bytes>` (the backup refuses a
 *      segment size other than its own), and from then on the connection
 *      carries binary frames only. A backup whose log ends below the
 *      primary's horizon (it fell further behind than --retain-bytes, or it
 *      is new and the primary has released its first segment) is answered
 *      `+FULLRESYNC <epoch> <horizon> <commit-lsn> <segment-bytes> <reason>`
 *      and the connection closes: the backup discards its log and index and
 *      reconnects with from-lsn = horizon and checksum 0 (an empty log that
 *      starts there), which the primary accepts; it answers reads with
 *      -LOADING until it has made visible the commit LSN of that reply.
 *   3. Primary -> backup: BLOCKS frames (whole, checksummed blocks, in LSN
 *      order, never straddling a segment) and HEARTBEAT frames (commit LSN,
 *      time, safe LSN, horizon, horizon-after). The horizon is the oldest
 *      LSN the primary retains (the cleaner released everything below it);
 *      a backup releases its segments below it once its log is flushed and
 *      visible up to horizon-after (the end of the relocations that moved it). The safe LSN is the position below which the primary
 *      never loses what it shipped: its durable LSN (local and remote-* modes;
 *      blocks are shipped before they are fsynced) or its commit LSN (async).
 *      A heartbeat goes out right after +SYNC, whenever the safe LSN advances,
 *      and whenever nothing else was sent for HEARTBEAT_INTERVAL_MS.
 *      A backup makes visible only min(received, safe): a block the primary
 *      may still lose in a crash is held received-but-unconfirmed.
 *      RELEASE frames (horizon, release-after, then segment ids) name the
 *      segments the primary released above its horizon (holes: the cleaner
 *      picks victims by cost-benefit). One goes right after +SYNC with every
 *      hole the primary has, and one after each cleaning that made holes; a
 *      backup releases the named segments it holds once its horizon reached
 *      the frame's and its log is flushed and visible up to release-after,
 *      and simply records those it never held. A cleaning that releases a
 *      segment a connected backup has not been sent whole closes that link
 *      (the backup resyncs). A backup whose log ends below the newest hole
 *      gets +FULLRESYNC too; during a full resync it adds `RESYNC` to its
 *      FRESHET.SYNC, and the stream skips the holes (blocks jump to the next
 *      held segment), which only a loading backup accepts.
 *   4. Backup -> primary: ACK frames with its received, flushed and applied
 *      LSNs and its current replay lag.
 *
 * Divergence (after a primary crash the backup may hold blocks the restarted
 * primary never made durable, and the primary may since have written other
 * blocks at those LSNs). On -DIVERGED the backup reconnects and, instead of
 * FRESHET.SYNC, asks `FRESHET.CHECK <lsn> <checksum>` (answer :1 if the
 * primary's log has that block end with that checksum, else :0), one round
 * trip per step of a binary search over its unconfirmed block ends, for the
 * last block both logs hold (answer :-1: the primary released the log there;
 * the backup cuts back to its confirmed LSN and gets +FULLRESYNC). It first checks its confirmed position (what it
 * may have made visible): if the logs disagree there it never continues; it
 * refuses (DIVERGED, logged and in INFO as link_error) and retries at the
 * reconnect interval. Otherwise it cuts its log back to the last common
 * block (memory and files; the cut LSN range and op count are logged) and
 * resumes with FRESHET.SYNC from there.
 *
 * Frame = header (8 bytes: type u8, 3 zero bytes, payload length u32 LE) +
 * payload. A frame of unknown type, bad length, or whose blocks fail
 * validation closes the link; nothing from it is applied.
 */
export const FRAME_HEADER_BYTES = 8
export const FRAME_BLOCKS = 1
export const FRAME_HEARTBEAT = 2
export const FRAME_ACK = 3
export const FRAME_RELEASE = 4

/** commitLsn f64, commitTimeMs f64, safeLsn f64, horizonLsn f64, horizonAfterLsn f64 */
export const HEARTBEAT_PAYLOAD_BYTES = 40
export const ACK_PAYLOAD_BYTES = 32 // received f64, flushed f64, applied f64, lagMs f64
/** horizonLsn f64, afterLsn f64, then segment ids (f64 each), at least one */
export const RELEASE_FIXED_BYTES = 16
/** A RELEASE frame names at most this many segments (a sender splits longer lists). */
export const RELEASE_IDS_MAX = 4096

/** Primary sends a heartbeat when nothing else went out for this long. */
export const HEARTBEAT_INTERVAL_MS = 50
/** A BLOCKS frame carries at most this many bytes (whole blocks; one block may exceed it). */
export const FRAME_BLOCKS_BYTES_TARGET = 4 * 1024 * 1024
/** Primary stops shipping to a backup while this much is queued on its socket. */
export const SHIP_INFLIGHT_BYTES_MAX = 32 * 1024 * 1024
/**
 * Either end treats the link as dead after this long without hearing from the
 * other: a backup without any frame, a primary without an ACK.
 */
export const LINK_TIMEOUT_MS = 3000
/** A backup acks at least this often, even when nothing changed (the primary's liveness check). */
export const ACK_INTERVAL_MS = 250

export const SYNC_COMMAND = 'freshet.sync'
export const CHECK_COMMAND = 'freshet.check'

export function encodeFrameHeader(buf: Buffer, at: number, type: number, payloadBytes: number): void {
  buf[at] = type
  buf[at + 1] = 0
  buf[at + 2] = 0
  buf[at + 3] = 0
  buf.writeUInt32LE(payloadBytes, at + 4)
}

export function encodeHeartbeat(commitLsn: number, commitTimeMs: number, safeLsn: number, horizonLsn: number, horizonAfterLsn: number): Buffer {
  const b = Buffer.allocUnsafe(FRAME_HEADER_BYTES + HEARTBEAT_PAYLOAD_BYTES)
  encodeFrameHeader(b, 0, FRAME_HEARTBEAT, HEARTBEAT_PAYLOAD_BYTES)
  b.writeDoubleLE(commitLsn, 8)
  b.writeDoubleLE(commitTimeMs, 16)
  b.writeDoubleLE(safeLsn, 24)
  b.writeDoubleLE(horizonLsn, 32)
  b.writeDoubleLE(horizonAfterLsn, 40)
  return b
}

export function encodeRelease(horizonLsn: number, afterLsn: number, ids: readonly number[]): Buffer {
  const payload = RELEASE_FIXED_BYTES + 8 * ids.length
  const b = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload)
  encodeFrameHeader(b, 0, FRAME_RELEASE, payload)
  b.writeDoubleLE(horizonLsn, 8)
  b.writeDoubleLE(afterLsn, 16)
  for (let i = 0; i < ids.length; i++) b.writeDoubleLE(ids[i], 24 + 8 * i)
  return b
}

export function encodeAck(buf: Buffer, received: number, flushed: number, applied: number, lagMs: number): void {
  encodeFrameHeader(buf, 0, FRAME_ACK, ACK_PAYLOAD_BYTES)
  buf.writeDoubleLE(received, 8)
  buf.writeDoubleLE(flushed, 16)
  buf.writeDoubleLE(applied, 24)
  buf.writeDoubleLE(lagMs, 32)
}

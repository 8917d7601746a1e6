/**
 * Replication link protocol. It shares the node's one port with clients:
 *
 *   1. The backup connects and speaks RESP: `AUTH <password>` if the primary
 *      has one, then `FRESHET.SYNC <epoch> <from-lsn> <listen-port>`.
 *   2. The primary checks the epoch (a backup of another epoch is refused
 *      with -EPOCH) and that from-lsn is a block boundary it has (else
 *      -DIVERGED), replies `+SYNC <epoch> <commit-lsn> <segment-bytes>` (the
 *      backup refuses a segment size other than its own), and from then on the
 *      connection carries binary frames only.
 *   3. Primary -> backup: BLOCKS frames (whole, checksummed blocks, in LSN
 *      order, never straddling a segment) and HEARTBEAT frames (commit LSN and
 *      time) whenever nothing else was sent for HEARTBEAT_INTERVAL_MS.
 *   4. Backup -> primary: ACK frames with its received, flushed and applied
 *      LSNs and its current replay lag.
 *
 * Frame = header (8 bytes: type u8, 3 zero bytes, payload length u32 LE) +
 * payload. A frame of unknown type, bad length, or whose blocks fail
 * validation closes the link; nothing from it is applied.
 */
export const FRAME_HEADER_BYTES = 8
export const FRAME_BLOCKS = 1
export const FRAME_HEARTBEAT = 2
export const FRAME_ACK = 3

export const HEARTBEAT_PAYLOAD_BYTES = 16 // commitLsn f64, commitTimeMs f64
export const ACK_PAYLOAD_BYTES = 32 // received f64, flushed f64, applied f64, lagMs f64

/** Primary sends a heartbeat when nothing else went out for this long. */
export const HEARTBEAT_INTERVAL_MS = 50
/** A BLOCKS frame carries at most this many bytes (whole blocks; one block may exceed it). */
export const FRAME_BLOCKS_BYTES_TARGET = 4 * 1024 * 1024
/** Primary stops shipping to a backup while this much is queued on its socket. */
export const SHIP_INFLIGHT_BYTES_MAX = 32 * 1024 * 1024
/** A backup treats the link as dead after this long without any frame. */
export const LINK_TIMEOUT_MS = 3000

export const SYNC_COMMAND = 'freshet.sync'

export function encodeFrameHeader(buf: Buffer, at: number, type: number, payloadBytes: number): void {
  buf[at] = type
  buf[at + 1] = 0
  buf[at + 2] = 0
  buf[at + 3] = 0
  buf.writeUInt32LE(payloadBytes, at + 4)
}

export function encodeHeartbeat(commitLsn: number, commitTimeMs: number): Buffer {
  const b = Buffer.allocUnsafe(FRAME_HEADER_BYTES + HEARTBEAT_PAYLOAD_BYTES)
  encodeFrameHeader(b, 0, FRAME_HEARTBEAT, HEARTBEAT_PAYLOAD_BYTES)
  b.writeDoubleLE(commitLsn, 8)
  b.writeDoubleLE(commitTimeMs, 16)
  return b
}

export function encodeAck(buf: Buffer, received: number, flushed: number, applied: number, lagMs: number): void {
  encodeFrameHeader(buf, 0, FRAME_ACK, ACK_PAYLOAD_BYTES)
  buf.writeDoubleLE(received, 8)
  buf.writeDoubleLE(flushed, 16)
  buf.writeDoubleLE(applied, 24)
  buf.writeDoubleLE(lagMs, 32)
}

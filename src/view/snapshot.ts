/**
 * Snapshots: a read view fixed at one LSN that stays consistent while the
 * cleaner relocates and releases segments, for readers that span event-loop
 * turns (a snapshot writer, a long scan). A snapshot pins its LSN in the
 * segment store (ref-counted): a release that moved versions a view at that
 * LSN can still reach (the originals of relocations after it, versions
 * superseded after it) waits until the last snapshot at or below the release's
 * LSN is closed. The cleaner keeps relocating meanwhile; memory grows by what
 * the pins hold (INFO: snapshots_open, oldest_snapshot_lsn).
 *
 * Close every snapshot: a leaked one stops reclamation.
 */
import { assert } from '../assert.js'
import type { Index } from '../index/indirection.js'
import type { SegmentStore } from '../log/segment_store.js'
import { ReadView } from './read_view.js'

export class Snapshot {
  readonly lsn: number
  readonly view: ReadView
  private readonly store: SegmentStore
  private closed: boolean

  private constructor(store: SegmentStore, index: Index, lsn: number, timeMs: number) {
    this.store = store
    this.lsn = lsn
    this.view = new ReadView(store, index, lsn, timeMs)
    this.closed = false
    store.pin(lsn)
  }

  /** A snapshot of everything below `lsn` (a block end at or below the node's visible LSN), with expiry decided at `timeMs`. */
  static open(store: SegmentStore, index: Index, lsn: number, timeMs: number): Snapshot {
    assert(lsn >= store.horizonLsn() && lsn <= store.endLsn, 'a snapshot lies within the retained log')
    assert(timeMs >= 0, 'a snapshot decides expiry at one fixed time')
    return new Snapshot(store, index, lsn, timeMs)
  }

  close(): void {
    if (this.closed) return
    this.closed = true
    this.store.unpin(this.lsn)
  }
}

/** INFO memory lines about open snapshots. */
export function snapshotInfo(store: SegmentStore): Array<[string, number]> {
  const oldest = store.oldestPin()
  return [['snapshots_open', store.pinCount()], ['oldest_snapshot_lsn', oldest === Number.MAX_SAFE_INTEGER ? -1 : oldest]]
}

/**
 * RDB snapshots of a node, in either role (meant for backups, so the primary
 * is never disturbed): SAVE (answers when the file is written), BGSAVE
 * (answers at once), LASTSAVE, INFO persistence's rdb_* fields, and the
 * replication handshake Redis's tools use to fetch one (`redis-cli --rdb`:
 * REPLCONF, then SYNC or PSYNC answered with the RDB payload, then the
 * connection closes).
 *
 * A save writes one snapshot (view/snapshot.ts, pinned at the node's visible
 * LSN) with writer.ts to `<dir>/temp-<pid>-<n>.rdb`, fsyncs it, renames it to
 * `<dir>/<dbfilename>` and fsyncs the directory: a crash never leaves a half
 * file under the real name. At most one save runs at a time; what it costs in
 * memory is what the pinned view holds (INFO memory pinned_bytes).
 */
import fs from 'node:fs'
import path from 'node:path'
import { randomBytes } from 'node:crypto'
import type { Socket } from 'node:net'
import { syncDirAsync } from '../log/manifest.js'
import { argIs } from '../server/args.js'
import { F_ADMIN, F_BLOCKING, type CommandSpec, type Session } from '../server/commands.js'
import type { InfoSections } from '../node.js'
import { counter, gauge } from '../metrics/metric.js'
import type { Snapshot } from '../view/snapshot.js'
import { SAVE_LONG_STEP_MS, writeRdb, type RdbWriteResult } from './writer.js'
import { nowMs } from '../io/clock.js'

/** What a save reads of the node served now. */
export interface SaveSource {
  snapshot(): Snapshot
  keyCount(): number
  /** Why a snapshot cannot be taken now (a backup loading a full resync), or null. */
  loading(): string | null
  /** Writes (primary) or replayed ops (backup) so far: rdb_changes_since_last_save. */
  changesTotal(): number
}

export interface SaveOptions {
  dir: string
  dbfilename: string
  redisVersion: string
  /** Longest piece of work between two yields to the event loop. */
  stepMs: number
  log: (line: string) => void
}

/** Yield to the event loop after this much writing work (the main thread's longest stall). */
export const SAVE_STEP_MS_DEFAULT = 1

/** The snapshot writer's figures /metrics shows (metrics/metric.ts). */
const M = {
  inProgress: gauge('freshet_rdb_save_in_progress', 'An RDB snapshot is being written'),
  lastSave: gauge('freshet_rdb_last_save_timestamp_seconds', 'When the last RDB snapshot completed', 'timestamp_s'),
  saves: counter('freshet_rdb_saves_total', 'RDB snapshots written'),
  lastBytes: gauge('freshet_rdb_last_save_bytes', 'Bytes of the last RDB snapshot', 'bytes'),
  lastTime: gauge('freshet_rdb_last_save_duration_seconds', 'How long the last RDB snapshot took', 'ms'),
  lastStep: gauge('freshet_rdb_last_save_max_step_seconds', 'The longest the last snapshot held the main thread between two yields', 'ms'),
  lastLongSteps: gauge('freshet_rdb_last_save_long_steps', `Steps of the last snapshot that held the main thread over ${SAVE_LONG_STEP_MS} ms`),
}

export class RdbSaves {
  readonly options: SaveOptions
  private readonly source: () => SaveSource
  private running: Promise<RdbWriteResult> | null
  private runningSinceMs: number
  private lastSaveS: number
  private lastStatus: 'ok' | 'err'
  private last: RdbWriteResult | null
  private changesAtLastSave: number
  private savesTotal: number
  private tempSeq: number

  constructor(options: SaveOptions, source: () => SaveSource) {
    this.options = options
    this.source = source
    this.running = null
    this.runningSinceMs = 0
    // As Redis: LASTSAVE before any save is the start time.
    this.lastSaveS = Math.floor(nowMs() / 1000)
    this.lastStatus = 'ok'
    this.last = null
    this.changesAtLastSave = 0
    this.savesTotal = 0
    this.tempSeq = 0
  }

  /** Saves to `<dir>/<dbfilename>` (one at a time). */
  save(): Promise<RdbWriteResult> {
    if (this.running !== null) return Promise.reject(new SaveBusy())
    const source = this.source()
    const loading = source.loading()
    if (loading !== null) return Promise.reject(new Error(`cannot save while loading: ${loading}`))
    const file = path.join(this.options.dir, this.options.dbfilename)
    const changes = source.changesTotal()
    this.runningSinceMs = nowMs()
    const run = this.writeFile(source, file).then((r) => {
      this.running = null
      this.lastSaveS = Math.floor(nowMs() / 1000)
      this.lastStatus = 'ok'
      this.last = r
      this.changesAtLastSave = changes
      this.savesTotal++
      this.options.log(`RDB saved to ${file}: ${r.keys} keys, ${r.bytes} bytes at LSN ${r.lsn} in ${r.ms.toFixed(0)} ms (longest step ${r.maxStepMs.toFixed(2)} ms, ${r.longSteps} of ${r.steps} steps over ${SAVE_LONG_STEP_MS} ms)`)
      return r
    }, (err: unknown) => {
      this.running = null
      this.lastStatus = 'err'
      this.options.log(`RDB save to ${file} failed: ${String(err)}`)
      throw err
    })
    this.running = run
    return run
  }

  /** One snapshot into `file`, through a temp name (fsync, rename, directory fsync). */
  private async writeFile(source: SaveSource, file: string): Promise<RdbWriteResult> {
    const temp = this.tempName('temp')
    try {
      const r = await this.writeTemp(source, temp)
      // On the thread pool, like the file's own fsync: a directory fsync waits for the file system's
      // journal, and on the main thread that wait would stall the node at the end of every save.
      await fs.promises.rename(temp, file)
      await syncDirAsync(path.dirname(file))
      return r
    } catch (err) {
      fs.rmSync(temp, { force: true })
      throw err
    }
  }

  private tempName(prefix: string): string {
    return path.join(this.options.dir, `${prefix}-${process.pid}-${++this.tempSeq}.rdb`)
  }

  /** A snapshot of the node now, written and fsynced to `temp` (the snapshot is closed when done). */
  private async writeTemp(source: SaveSource, temp: string): Promise<RdbWriteResult> {
    const snapshot = source.snapshot()
    const keyCount = source.keyCount()
    try {
      const fh = await fs.promises.open(temp, 'w', 0o644)
      try {
        const r = await writeRdb(snapshot, async (chunk) => { await fh.write(chunk) }, { aux: this.aux(snapshot.lsn), keyCount, stepMs: this.options.stepMs })
        await fh.sync()
        return r
      } finally {
        await fh.close()
      }
    } finally {
      snapshot.close()
    }
  }

  private aux(lsn: number): Array<[string, string]> {
    return [
      ['redis-ver', this.options.redisVersion], ['redis-bits', '64'], ['ctime', String(Math.floor(nowMs() / 1000))],
      ['used-mem', String(process.memoryUsage().rss)], ['aof-base', '0'], ['freshet-lsn', String(lsn)],
    ]
  }

  commands(): CommandSpec[] {
    return [
      {
        // Answered when the file is written (the connection waits): refused inside MULTI.
        name: 'save', arity: 1, flags: F_ADMIN | F_BLOCKING,
        run: (s) => {
          s.server.answerWhenDone(s.conn, this.save(), () => s.conn.out.simple('OK'),
            (err) => err instanceof SaveBusy ? 'ERR Background save already in progress' : `ERR ${err instanceof Error ? err.message : String(err)}`)
        },
      },
      {
        name: 'bgsave', arity: -1, flags: F_ADMIN,
        run: (s, a) => {
          if (a.argc > 2 || (a.argc === 2 && !argIs(a, 1, 'schedule'))) { s.conn.out.error('ERR syntax error'); return }
          if (this.running !== null) {
            if (a.argc === 2) { s.conn.out.simple('Background saving scheduled'); return }
            s.conn.out.error('ERR Background save already in progress')
            return
          }
          const started = this.save()
          started.catch(() => { /* logged and shown in INFO (rdb_last_bgsave_status:err) */ })
          s.conn.out.simple('Background saving started')
        },
      },
      { name: 'lastsave', arity: 1, flags: 0, run: (s) => s.conn.out.integer(this.lastSaveS) },
      // redis-cli --rdb: REPLCONF capa eof / rdb-only 1, then SYNC (PSYNC from replicas): the RDB, then the connection closes.
      { name: 'replconf', arity: -1, flags: F_ADMIN, run: (s) => s.conn.out.simple('OK') },
      { name: 'sync', arity: 1, flags: F_ADMIN | F_BLOCKING, run: (s) => this.sendRdb(s, null) },
      { name: 'psync', arity: 3, flags: F_ADMIN | F_BLOCKING, run: (s) => this.sendRdb(s, `FULLRESYNC ${randomBytes(20).toString('hex')} 0`) },
    ]
  }

  infoSections(): InfoSections {
    return {
      persistence: () => {
        const last = this.last
        const inProgress = this.running !== null
        return [
          ['rdb_changes_since_last_save', Math.max(0, this.source().changesTotal() - this.changesAtLastSave)],
          ['rdb_bgsave_in_progress', inProgress ? 1 : 0, M.inProgress], ['rdb_last_save_time', this.lastSaveS, M.lastSave],
          ['rdb_last_bgsave_status', this.lastStatus], ['rdb_last_bgsave_time_sec', last === null ? -1 : Math.round(last.ms / 1000)],
          ['rdb_current_bgsave_time_sec', inProgress ? Math.round((nowMs() - this.runningSinceMs) / 1000) : -1],
          ['rdb_saves', this.savesTotal, M.saves], ['rdb_last_cow_size', 0],
          ['rdb_last_lsn', last === null ? -1 : last.lsn], ['rdb_last_keys', last === null ? 0 : last.keys],
          ['rdb_last_bytes', last === null ? 0 : last.bytes, M.lastBytes], ['rdb_last_ms', last === null ? 0 : Math.round(last.ms), M.lastTime],
          ['rdb_last_max_step_ms', last === null ? '0' : last.maxStepMs.toFixed(3), M.lastStep],
          ['rdb_last_steps', last === null ? 0 : last.steps], ['rdb_last_long_steps', last === null ? 0 : last.longSteps, M.lastLongSteps],
          ['rdb_dir', this.options.dir], ['rdb_filename', this.options.dbfilename],
        ]
      },
    }
  }

  /**
   * SYNC / PSYNC: writes a snapshot to a temp file, sends it as the RDB
   * payload (`$<length>` then the bytes, after `+<psyncLine>` for PSYNC) and
   * closes the connection. The connection leaves the RESP server first.
   */
  private sendRdb(s: Session, psyncLine: string | null): void {
    const conn = s.conn
    const source = this.source()
    const loading = source.loading()
    if (loading !== null) { conn.out.error(`LOADING ${loading}`); return }
    if (psyncLine !== null) conn.out.simple(psyncLine)
    conn.sendable = conn.out.length
    conn.flush()
    conn.detached = true
    const socket: Socket = conn.socket
    socket.removeAllListeners('data')
    socket.on('data', () => { /* a replica's REPLCONF ACKs: nothing follows the payload */ })
    const temp = this.tempName('temp-sync')
    const done = (err: unknown): void => {
      fs.rmSync(temp, { force: true })
      if (err !== null) this.options.log(`RDB for ${conn.addr} (SYNC) failed: ${String(err)}`)
      socket.end()
    }
    void (async () => {
      const r = await this.writeTemp(source, temp)
      if (socket.destroyed) { done(null); return }
      socket.write(`$${r.bytes}\r\n`)
      const stream = fs.createReadStream(temp)
      stream.on('error', done)
      stream.on('end', () => done(null))
      stream.pipe(socket, { end: false })
      this.options.log(`RDB sent to ${conn.addr} (SYNC): ${r.keys} keys, ${r.bytes} bytes at LSN ${r.lsn}`)
    })().catch(done)
  }
}

class SaveBusy extends Error {
  constructor() {
    super('Background save already in progress')
  }
}

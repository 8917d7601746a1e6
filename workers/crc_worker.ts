/**
 * CRC-64 of a shared buffer's first bytes, off the main thread: a restore
 * (cli/restore.ts) checks an RDB file's trailer while it loads the keys.
 * workerData: { bytes: SharedArrayBuffer, end: number }; posts the CRC's hex.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { crc64 } from '../src/rdb/crc64.js'

const { bytes, end } = workerData as { bytes: SharedArrayBuffer, end: number }
parentPort!.postMessage(crc64(new Uint8Array(bytes), 0, end).hex())

/**
 * A backup holds every key its primary holds, so a backup of a protected
 * primary is protected by default: it requires the password it follows the
 * primary with (--primaryauth), unless --requirepass sets another or "" opens
 * it explicitly.
 */
import { afterAll, beforeAll, expect, test } from 'vitest'
import { Cluster, cleanupClusters, connect, disconnect, errorCode, lsnOf, waitApplied } from '../helpers/cluster.js'

let cluster: Cluster
let lsn = 0

beforeAll(async () => {
  cluster = await Cluster.start({ workers: [1] })
  const p = cluster.primaryClient()
  try {
    await p.set('auth:secret', 'classified')
    lsn = await lsnOf(p)
  } finally {
    disconnect(p)
  }
  await waitApplied(cluster.backups[0].port, lsn)
})

afterAll(async () => {
  await cleanupClusters()
})

test('by default a backup requires the password it authenticates to the primary with', async () => {
  const password = cluster.password!
  const anonymous = connect(cluster.backups[0].port, { password: '', extra: { enableOfflineQueue: true } })
  const authed = connect(cluster.backups[0].port, { password })
  try {
    expect(await errorCode(anonymous.get('auth:secret'))).toBe('NOAUTH')
    expect(await errorCode(anonymous.call('AUTH', 'wrong'))).toBe('WRONGPASS')
    expect(await authed.get('auth:secret')).toBe('classified')
  } finally {
    disconnect(anonymous)
    disconnect(authed)
  }
})

test('--requirepass sets the backup\'s own password; --requirepass "" opens it explicitly', async () => {
  const own = await cluster.addBackup({ workers: 1, args: ['--requirepass', 'backup-only'] })
  const open = await cluster.addBackup({ workers: 1, args: ['--requirepass', ''] })
  await cluster.waitConnectedBackups(3)
  const withPrimaryPassword = connect(own.port, { password: cluster.password!, extra: { enableOfflineQueue: true } })
  const withOwn = connect(own.port, { password: 'backup-only' })
  const anonymous = connect(open.port, { password: '' })
  try {
    // ioredis reports the failed AUTH (WRONGPASS) or the refused command (NOAUTH): either way nothing is served.
    expect(['NOAUTH', 'WRONGPASS']).toContain(await errorCode(withPrimaryPassword.get('auth:secret')))
    expect(await withOwn.call('WAITLSN', String(lsn), '10000')).toBeGreaterThanOrEqual(lsn)
    expect(await withOwn.get('auth:secret')).toBe('classified')
    expect(await anonymous.call('WAITLSN', String(lsn), '10000')).toBeGreaterThanOrEqual(lsn)
    expect(await anonymous.get('auth:secret')).toBe('classified')
  } finally {
    disconnect(withPrimaryPassword)
    disconnect(withOwn)
    disconnect(anonymous)
  }
})

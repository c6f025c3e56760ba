// Backup health per participating PVC from its ReplicationSource's status, read through the same
// reducer both cluster sources use (cluster/cluster-objects.ts).
import t from 'tap'
import { goDurationSeconds, replicationSourceInfo } from '../../src/cluster/cluster-objects.ts'
import { backupHealth, isOverdue, participatingBackupHealth } from '../../src/volsync/backup-health.ts'
import { NOW, snapshotOf } from '../support/snapshot.ts'

const H = 3_600_000
const iso = (ms: number): string => new Date(ms).toISOString()

function pvc(name: string, labels: Record<string, string> = { backup: 'hourly' }, namespace = 'media') {
  return { apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name, namespace, labels, creationTimestamp: iso(NOW - 100 * H) }, spec: {} }
}

function rs(name: string, sourcePVC: string, options: { schedule?: string; lastSync?: number; next?: number; result?: string; duration?: string; created?: number; paused?: boolean; namespace?: string } = {}) {
  return {
    apiVersion: 'volsync.backube/v1alpha1', kind: 'ReplicationSource',
    metadata: { name, namespace: options.namespace ?? 'media', creationTimestamp: iso(options.created ?? NOW - 50 * H) },
    spec: { sourcePVC, ...(options.schedule ? { trigger: { schedule: options.schedule } } : {}), ...(options.paused ? { paused: true } : {}), kopia: {} },
    status: {
      ...(options.lastSync !== undefined ? { lastSyncTime: iso(options.lastSync) } : {}),
      ...(options.duration ? { lastSyncDuration: options.duration } : {}),
      ...(options.next !== undefined ? { nextSyncTime: iso(options.next) } : {}),
      ...(options.result ? { latestMoverStatus: { result: options.result, logs: 'Snapshot saved: a secret-looking line' } } : {}),
    },
  }
}

t.test('the reducer keeps the RS status fields (both cluster sources use it)', async (t) => {
  const info = replicationSourceInfo(rs('jellyfin', 'jellyfin', { schedule: '17 * * * *', lastSync: NOW - H, next: NOW + 0.5 * H, result: 'Successful', duration: '1m30.5s', created: NOW - 10 * H }) as never, 'media', 'jellyfin')
  t.match(info, { schedule: '17 * * * *', lastSyncTime: NOW - H, nextSyncTime: NOW + 0.5 * H, lastResult: 'Successful', lastSyncDurationSeconds: 90.5, createdAt: NOW - 10 * H })
  t.notOk(JSON.stringify(info).includes('Snapshot saved'), 'the mover logs are not kept')
  const bare = replicationSourceInfo({ metadata: { name: 'x' }, spec: {}, status: { lastSyncTime: 'not a time', lastSyncDuration: 'soon' } }, 'media', 'x')
  t.match(bare, { schedule: null, lastSyncTime: null, nextSyncTime: null, lastResult: null, lastSyncDurationSeconds: null, createdAt: null })
})

t.test('Go durations as metav1.Duration writes them', async (t) => {
  t.equal(goDurationSeconds('0s'), 0)
  t.equal(goDurationSeconds('850ms'), 0.85)
  t.equal(goDurationSeconds('2h0m0s'), 7200)
  t.equal(goDurationSeconds('1h2m3.5s'), 3723.5)
  t.equal(goDurationSeconds('1m500ms'), 60.5)
  t.equal(goDurationSeconds('1.5us'), 1.5e-6)
  for (const bad of ['', '5', '5x', 'm5', '1h 2m', 5]) t.equal(goDurationSeconds(bad), null, JSON.stringify(bad))
})

t.test('healthy, failed, overdue, never succeeded, paused, unscheduled', async (t) => {
  const snapshot = snapshotOf({
    objects: [
      pvc('healthy'), rs('healthy', 'healthy', { schedule: '17 * * * *', lastSync: NOW - 0.7 * H, next: NOW + 0.3 * H, result: 'Successful', duration: '42s' }),
      // One failed run after a success 1.5 h ago: within 2 periods, not overdue yet.
      pvc('failed-once'), rs('failed-once', 'failed-once', { schedule: '0 * * * *', lastSync: NOW - 1.5 * H, result: 'Failed' }),
      // No success for 2 h 1 min on an hourly schedule: overdue.
      pvc('overdue'), rs('overdue', 'overdue', { schedule: '0 * * * *', lastSync: NOW - 2 * H - 60_000, result: 'Failed' }),
      // Daily, last success 30 h ago: 2 days allowed.
      pvc('daily'), rs('daily', 'daily', { schedule: '5 3 * * *', lastSync: NOW - 30 * H, result: 'Successful' }),
      // Never succeeded: counted from its creation.
      pvc('never-new'), rs('never-new', 'never-new', { schedule: '0 * * * *', created: NOW - H }),
      pvc('never-old'), rs('never-old', 'never-old', { schedule: '0 * * * *', created: NOW - 3 * H, result: 'Failed' }),
      // Paused for a day: no backup runs, so it is overdue too.
      pvc('paused'), rs('paused', 'paused', { schedule: '0 * * * *', lastSync: NOW - 24 * H, paused: true }),
      // Manual trigger only: no period, never overdue.
      pvc('manual'), rs('manual', 'manual', { lastSync: NOW - 1000 * H }),
      // Not a schedule VolSync accepts: no period.
      pvc('odd'), rs('odd', 'odd', { schedule: '@every 1h', lastSync: NOW - 1000 * H }),
      // No RS: no health row.
      pvc('no-rs'),
      // Not participating (no backup label), and a VolSync-owned PVC: no row even with an RS.
      pvc('other', {}), rs('other', 'other', { schedule: '0 * * * *', lastSync: NOW - 100 * H }),
      pvc('volsync-cache', { backup: 'x', 'app.kubernetes.io/created-by': 'volsync' }), rs('cache', 'volsync-cache', { schedule: '0 * * * *' }),
    ],
  })
  const rows = participatingBackupHealth(snapshot, NOW)
  t.same(rows.map((r) => r.pvc), ['daily', 'failed-once', 'healthy', 'manual', 'never-new', 'never-old', 'odd', 'overdue', 'paused'])
  const by = new Map(rows.map((r) => [r.pvc, r]))
  t.match(by.get('healthy'), { source: 'healthy', sources: 1, periodSeconds: 3600, lastSuccess: NOW - 0.7 * H, nextSync: NOW + 0.3 * H, lastResult: 'Successful', lastSyncDurationSeconds: 42, overdue: false, paused: false })
  t.match(by.get('failed-once'), { lastResult: 'Failed', overdue: false })
  t.match(by.get('overdue'), { lastResult: 'Failed', overdue: true })
  t.match(by.get('daily'), { periodSeconds: 86400, overdue: false })
  t.match(by.get('never-new'), { lastSuccess: null, lastResult: null, overdue: false })
  t.match(by.get('never-old'), { lastSuccess: null, overdue: true })
  t.match(by.get('paused'), { paused: true, overdue: true })
  t.match(by.get('manual'), { schedule: null, periodSeconds: null, overdue: false })
  t.match(by.get('odd'), { schedule: '@every 1h', periodSeconds: null, overdue: false })
})

t.test('several RSs of one PVC: the most recently successful one speaks for it', async (t) => {
  const snapshot = snapshotOf({
    objects: [
      pvc('app'),
      rs('app-old', 'app', { schedule: '0 * * * *', lastSync: NOW - 10 * H }),
      rs('app', 'app', { schedule: '0 * * * *', lastSync: NOW - 0.5 * H }),
      rs('app-never', 'app', { schedule: '0 * * * *' }),
      // Same PVC name in another namespace: not this PVC's.
      rs('app', 'app', { schedule: '0 * * * *', lastSync: NOW, namespace: 'home' }),
    ],
  })
  const health = backupHealth(snapshot, snapshot.cluster.pvcs.get('media/app')!, NOW)
  t.match(health, { source: 'app', sources: 3, lastSuccess: NOW - 0.5 * H, overdue: false })
})

t.test('isOverdue: strictly more than two periods', async (t) => {
  t.equal(isOverdue(H, NOW - 2 * H, null, NOW), false)
  t.equal(isOverdue(H, NOW - 2 * H - 1, null, NOW), true)
  t.equal(isOverdue(H, null, NOW - 2 * H - 1, NOW), true)
  t.equal(isOverdue(H, null, null, NOW), false, 'nothing to count from')
  t.equal(isOverdue(null, NOW - 1000 * H, null, NOW), false, 'no period')
})

// Backup health in /status (JSON and HTML, every value escaped) and in the metrics: last success as an
// age, last result, next sync, the overdue flag and gauge; only participating PVCs are labelled.
import { spawnSync } from 'node:child_process'
import t from 'tap'
import { createMetrics } from '../../src/server/metrics.ts'
import { readiness } from '../../src/server/readiness.ts'
import { renderStatusPage } from '../../src/server/status-page.ts'
import { statusDocument } from '../../src/server/status.ts'
import type { LoopHealth } from '../../src/loop.ts'
import { metricSample } from '../support/live-webhook.ts'
import { NOW, snapshotOf } from '../support/snapshot.ts'

const LOADED: LoopHealth[] = ['cluster', 'catalog'].map((name) => ({ name, loaded: true, gatesReadiness: true, error: null, lastSuccess: null }))
const EXTRAS = { configError: null, clusterError: null, tlsReloads: 0, tlsFailures: 0, loops: LOADED, readiness: readiness(LOADED) }
const H = 3_600_000
const iso = (ms: number): string => new Date(ms).toISOString()
const ODD = `odd-<i>&"'name`

function pvc(name: string, labels: Record<string, string> = { backup: 'hourly' }) {
  return { apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name, namespace: 'media', labels }, spec: {} }
}
function rs(name: string, sourcePVC: string, status: Record<string, unknown>, schedule = '0 * * * *') {
  return { apiVersion: 'volsync.backube/v1alpha1', kind: 'ReplicationSource', metadata: { name, namespace: 'media', creationTimestamp: iso(NOW - 100 * H) }, spec: { sourcePVC, trigger: { schedule } }, status }
}

const snapshot = snapshotOf({
  objects: [
    pvc('jellyfin'), rs('jellyfin', 'jellyfin', { lastSyncTime: iso(NOW - 0.5 * H), lastSyncDuration: '1m5s', nextSyncTime: iso(NOW + 0.5 * H), latestMoverStatus: { result: 'Successful' } }),
    pvc('sonarr'), rs('sonarr', 'sonarr', { lastSyncTime: iso(NOW - 5 * H), nextSyncTime: iso(NOW - 60_000), latestMoverStatus: { result: 'Failed', logs: 'ERROR: s3 says no' } }),
    pvc('newapp'),
    pvc('fresh'), rs(ODD, 'fresh', { nextSyncTime: iso(NOW + 2 * H) }, '<b>'),
    // Not participating: never in /status's table nor a metric label.
    pvc('plain', {}), rs('plain', 'plain', { lastSyncTime: iso(NOW - 50 * H) }),
  ],
})

t.test('/status JSON: a backupHealth per participating PVC, overdue in the summary', async (t) => {
  const doc = statusDocument(snapshot, NOW, EXTRAS)
  const by = new Map(doc.pvcs.map((p) => [p.name, p.backupHealth]))
  t.same([...by.keys()], ['fresh', 'jellyfin', 'newapp', 'sonarr'])
  t.strictSame(by.get('jellyfin'), {
    source: 'jellyfin', sources: 1, paused: false, schedule: '0 * * * *', periodSeconds: 3600,
    lastSuccess: iso(NOW - 0.5 * H), lastSuccessAgeSeconds: 1800, lastSyncDurationSeconds: 65, lastResult: 'Successful',
    nextSync: iso(NOW + 0.5 * H), nextSyncInSeconds: 1800, overdue: false,
  })
  t.match(by.get('sonarr'), { lastResult: 'Failed', lastSuccessAgeSeconds: 5 * 3600, nextSyncInSeconds: -60, overdue: true })
  t.equal(by.get('newapp'), null, 'no ReplicationSource')
  t.match(by.get('fresh'), { source: ODD, lastSuccess: null, lastSuccessAgeSeconds: null, periodSeconds: null, overdue: false })
  t.ok(doc.summary.warnings.includes("1 PVC: backup overdue (no successful sync within twice the schedule's period; see the PVC table)"), doc.summary.warnings.join(' | '))
  t.notOk(JSON.stringify(doc).includes('s3 says no'), 'mover logs are not shown')
})

t.test('/status HTML: the Backups column, escaped', async (t) => {
  const page = renderStatusPage(statusDocument(snapshot, NOW, EXTRAS))
  t.match(page, '<th>Backups (ReplicationSource)</th>')
  const row = (name: string): string => {
    const start = page.indexOf(`data-pvc="media/${name}"`)
    return page.slice(start, page.indexOf('</tr>', start))
  }
  t.match(row('jellyfin'), /<td class="backup-health"><code>jellyfin<\/code><div>last success <time datetime="[^"]+" title="[^"]+">30 min ago<\/time>, last run <span class="ok">Successful<\/span><\/div><div class="reason">next <time[^>]*>in 30 min<\/time> \(<code>0 \* \* \* \*<\/code>\)<\/div><\/td>/)
  t.match(row('sonarr'), /5 h ago<\/time>, last run <span class="error">Failed<\/span>/)
  t.match(row('sonarr'), /60 s late/)
  t.match(row('sonarr'), /<div class="backup-overdue error"><strong>backup overdue:<\/strong> no successful sync within twice the schedule's period \(60 min\)<\/div>/)
  t.notMatch(row('jellyfin'), /backup-overdue/)
  t.match(row('newapp'), '<span class="muted">no ReplicationSource</span>')
  t.match(row('fresh'), '<code>odd-&lt;i&gt;&amp;&quot;&#39;name</code>')
  t.match(row('fresh'), 'last success <span class="muted">never</span>')
  t.match(row('fresh'), 'in 2 h</time> (<code>&lt;b&gt;</code>)', 'the schedule is escaped')
  t.notMatch(page, '<b>')
  t.notMatch(page, ODD, 'no raw name')
})

t.test('metrics: last success age, overdue, result counts; bounded to participating PVCs', async (t) => {
  const metrics = createMetrics({ readSnapshot: () => snapshot })
  const text = await metrics.registry.metrics()
  const age = metricSample(text, 'volsync_autorestore_backup_last_success_age_seconds', { namespace: 'media', pvc: 'jellyfin' })
  t.ok(age !== undefined && age >= (Date.now() - (NOW - 0.5 * H)) / 1000 - 5, `age ${age} is measured to the scrape's clock`)
  t.equal(metricSample(text, 'volsync_autorestore_backup_last_success_age_seconds', { namespace: 'media', pvc: 'fresh' }), -1, 'never succeeded')
  t.notMatch(text, /pvc="plain"/, 'a non-participating PVC is never a label')
  t.notMatch(text, /pvc="newapp"/, 'a PVC without a ReplicationSource has no series')
  t.equal(metricSample(text, 'volsync_autorestore_backup_overdue', { namespace: 'media', pvc: 'sonarr' }), 1)
  t.equal(metricSample(text, 'volsync_autorestore_backup_overdue', { namespace: 'media', pvc: 'fresh' }), 0, 'no readable schedule: never overdue')
  t.equal(metricSample(text, 'volsync_autorestore_backup_last_results', { result: 'Successful' }), 1)
  t.equal(metricSample(text, 'volsync_autorestore_backup_last_results', { result: 'Failed' }), 1)
  t.equal(metricSample(text, 'volsync_autorestore_backup_last_results', { result: 'none' }), 1)
  t.equal(metricSample(text, 'volsync_autorestore_backup_last_results', { result: 'other' }), 0)
  const probe = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 20_000 })
  if (!probe.error) t.equal(`${probe.stdout}${probe.stderr}`.trim(), '', 'promtool check metrics: no finding')
})

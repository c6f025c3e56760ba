// The missed-restore guard: which PVCs missed a restore (pure), and the Event / pause it writes
// through the real client against the fake API server.
import t from 'tap'
import { kubeWrites } from '../../src/controllers/kube-writes.ts'
import { MissedRestoreGuard, PAUSED_ANNOTATION } from '../../src/controllers/missed-restore-guard.ts'
import { findMissedRestores } from '../../src/controllers/missed-restores.ts'
import { FakeKubeApi, field } from '../support/fake-kube-api.ts'
import { NOW, snapshotOf, source } from '../support/snapshot.ts'

const silent = { info() {}, warn() {} }
const pvc = (name: string, createdAt: string, extra: Record<string, unknown> = {}, labels: Record<string, string> = { backup: 'daily' }) => ({
  apiVersion: 'v1', kind: 'PersistentVolumeClaim',
  metadata: { name, namespace: 'media', uid: `uid-${name}`, labels, creationTimestamp: createdAt },
  spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } }, ...extra },
})
const rs = (name: string, sourcePVC: string, paused = false) => ({
  apiVersion: 'volsync.backube/v1alpha1', kind: 'ReplicationSource',
  metadata: { name, namespace: 'media' }, spec: { sourcePVC, ...(paused ? { paused: true } : {}), kopia: { repository: 'x' } },
})
const backup = (name: string, newest: string) => ({ namespace: 'media', pvc: name, kind: 'kopia' as const, snapshots: 4, newest })
const DATA_SOURCE = { dataSourceRef: { apiGroup: 'volsync.backube', kind: 'ReplicationDestination', name: 'x-dst' } }

const objects = [
  pvc('jellyfin', '2026-03-16T08:00:00Z'), // backup from the 15th: missed
  pvc('sonarr', '2026-03-16T08:00:00Z', DATA_SOURCE), // restored
  pvc('radarr', '2026-03-10T08:00:00Z'), // its backups came after it: a live app, not a miss
  pvc('lidarr', '2026-03-16T08:00:00Z'), // no backup at all: a fresh app
  pvc('scratch', '2026-03-16T08:00:00Z', {}, {}), // not participating
  rs('jellyfin', 'jellyfin'), rs('radarr', 'radarr'),
]
const sources = [source({ entries: [backup('jellyfin', '2026-03-15T02:00:00.000Z'), backup('sonarr', '2026-03-15T02:00:00.000Z'), backup('radarr', '2026-03-15T02:00:00.000Z'), backup('scratch', '2026-03-15T02:00:00.000Z')] })]

t.test('only participating PVCs without a dataSourceRef, created after a backup existed', async (t) => {
  const missed = findMissedRestores(snapshotOf({ objects, sources }), NOW)
  t.same(missed.map((m) => m.pvc.name), ['jellyfin'])
  t.match(missed[0]?.message, /PersistentVolumeClaim media\/jellyfin was created 2026-03-16T08:00:00\.000Z without a dataSourceRef although the kopia backup in source test \(4 snapshot\(s\), newest 2026-03-15T02:00:00\.000Z\) existed/)
  t.same(findMissedRestores(snapshotOf({ objects, sources: [source({ entries: sources[0]!.entries, ageMs: 60 * 60_000 })] }), NOW), [], 'a stale catalog proves nothing')
})

t.test('the guard reports each miss once with an Event, and pauses its ReplicationSource when configured', async (t) => {
  const fake = await FakeKubeApi.start()
  t.teardown(() => fake.close())
  fake.seed({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'media' } }, ...objects)
  const lease = new AbortController()
  const run = async (config: string) => new MissedRestoreGuard({ writes: kubeWrites(fake.kubeConfig()), readSnapshot: () => snapshotOf({ config, objects, sources }), log: silent, now: () => NOW, instance: 'pod-a' })

  const reportOnly = await run('{}')
  await reportOnly.run(lease.signal)
  await reportOnly.run(lease.signal)
  const events = fake.list('events', 'media')
  t.equal(events.length, 1, 'one Event, however many passes')
  t.equal(field(events[0]!, 'reason'), 'MissedRestore')
  t.equal(field(events[0]!, 'type'), 'Warning')
  t.equal(field(events[0]!, 'involvedObject.name'), 'jellyfin')
  t.equal(field(events[0]!, 'involvedObject.uid'), 'uid-jellyfin')
  t.equal(field(fake.get('replicationsources', 'media', 'jellyfin')!, 'spec.paused'), undefined, 'pauseSource is off by default')

  const pausing = await run('guard: { pauseSource: true }')
  await pausing.run(lease.signal)
  const paused = fake.get('replicationsources', 'media', 'jellyfin')!
  t.equal(field(paused, 'spec.paused'), true)
  t.match((field(paused, 'metadata.annotations') as Record<string, string>)[PAUSED_ANNOTATION], /missed restore of PVC jellyfin .* remove spec.paused/)
  t.equal(field(fake.get('replicationsources', 'media', 'radarr')!, 'spec.paused'), undefined, 'a healthy app is left alone')

  lease.abort()
  const late = await run('guard: { pauseSource: true }')
  fake.clearRequests()
  await late.run(lease.signal)
  t.same(fake.requests.filter((r) => r.method !== 'GET'), [], 'not leading: no write at all')
})

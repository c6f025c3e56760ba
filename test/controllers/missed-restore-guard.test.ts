// The missed-restore guard: which PVCs missed a restore (pure), and the Event / pause it writes
// through the real client against the fake API server.
import t from 'tap'
import { kubeWrites } from '../../src/controllers/kube-writes.ts'
import { MissedRestoreGuard, missedRestoreEventName, PAUSED_ANNOTATION, PAUSED_FOR_ANNOTATION } from '../../src/controllers/missed-restore-guard.ts'
import type { PvcInfo } from '../../src/state/cluster-state.ts'
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
  t.match(missed[0]?.message, /PersistentVolumeClaim media\/jellyfin was created 2026-03-16T08:00:00\.000Z without a dataSourceRef although the kopia backup in source test \(4 snapshots, newest 2026-03-15T02:00:00\.000Z\) existed/)
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
  t.match(field(events[0]!, 'metadata.name'), /^jellyfin\.missed-restore\.[0-9a-f]{10}$/, 'named after the PVC, not generated')
  t.equal(field(fake.get('replicationsources', 'media', 'jellyfin')!, 'spec.paused'), undefined, 'pauseSource is off by default')

  const pausing = await run('guard: { pauseSource: true }')
  await pausing.run(lease.signal)
  const paused = fake.get('replicationsources', 'media', 'jellyfin')!
  t.equal(field(paused, 'spec.paused'), true)
  t.match((field(paused, 'metadata.annotations') as Record<string, string>)[PAUSED_ANNOTATION], /missed restore of PVC jellyfin .* remove spec.paused/)
  t.equal((field(paused, 'metadata.annotations') as Record<string, string>)[PAUSED_FOR_ANNOTATION], 'uid-jellyfin', 'which PVC it was paused for')
  t.equal(field(fake.get('replicationsources', 'media', 'radarr')!, 'spec.paused'), undefined, 'a healthy app is left alone')

  lease.abort()
  const late = await run('guard: { pauseSource: true }')
  fake.clearRequests()
  await late.run(lease.signal)
  t.same(fake.requests.filter((r) => r.method !== 'GET'), [], 'not leading: no write at all')
})

const SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/
const pvcInfo = (name: string, uid: string | null = `uid-${name}`): PvcInfo => ({ namespace: 'media', name, uid, labels: {}, annotations: {}, dataSourceRef: null, createdAt: null })

t.test('Event names: derived from the PVC, a valid DNS subdomain of at most 253 characters', async (t) => {
  t.equal(missedRestoreEventName(pvcInfo('jellyfin')), missedRestoreEventName(pvcInfo('jellyfin')), 'the same on every replica')
  t.not(missedRestoreEventName(pvcInfo('jellyfin')), missedRestoreEventName(pvcInfo('jellyfin', 'uid-2')), 'a PVC created again (new uid) is another miss')
  t.not(missedRestoreEventName(pvcInfo('jellyfin', null)), missedRestoreEventName({ ...pvcInfo('jellyfin', null), namespace: 'other' }), 'without a uid: namespace/name')
  const longest = `${'a'.repeat(200)}.${'b'.repeat(52)}` // 253: the longest PVC name there is
  const cutAtDash = `${'c'.repeat(226)}-${'d'.repeat(26)}` // the cut leaves a trailing '-'
  const cutAtDot = `${'e'.repeat(226)}.${'f'.repeat(26)}` // ... or a trailing '.'
  for (const name of ['jellyfin', 'app.v2', longest, cutAtDash, cutAtDot]) {
    const eventName = missedRestoreEventName(pvcInfo(name))
    t.ok(eventName.length <= 253 && SUBDOMAIN.test(eventName), `${name.length} characters -> ${eventName.length}: valid`)
  }
  t.equal(missedRestoreEventName(pvcInfo(cutAtDash)).split('.')[0], 'c'.repeat(226), 'no trailing dash before the suffix')
  const sharedPrefix = [`${'g'.repeat(240)}-one`, `${'g'.repeat(240)}-two`]
  t.not(missedRestoreEventName(pvcInfo(sharedPrefix[0]!)), missedRestoreEventName(pvcInfo(sharedPrefix[1]!)), 'long names that share the kept prefix stay apart')
})

t.test('a leader change reports each miss exactly once: the second create answers 409', async (t) => {
  const fake = await FakeKubeApi.start()
  t.teardown(() => fake.close())
  const longName = `${'k'.repeat(240)}.config-data`
  const missedObjects = [...objects, pvc('bazarr', '2026-03-16T08:00:00Z'), pvc(longName, '2026-03-16T08:00:00Z')]
  const missedSources = [source({ entries: [...sources[0]!.entries, backup('bazarr', '2026-03-15T02:00:00.000Z'), backup(longName, '2026-03-15T02:00:00.000Z')] })]
  fake.seed({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'media' } }, ...missedObjects)
  const logged: string[] = []
  const log = { info: (_: object, msg: string) => logged.push(`info ${msg}`), warn: (_: object, msg: string) => logged.push(`warn ${msg.slice(0, 40)}`) }
  /** A guard as a new leader starts it: nothing remembered. */
  const leader = () => new MissedRestoreGuard({ writes: kubeWrites(fake.kubeConfig()), readSnapshot: () => snapshotOf({ objects: missedObjects, sources: missedSources }), log, now: () => NOW, instance: 'pod' })
  const lease = new AbortController()
  const posts = () => fake.requests.filter((r) => r.method === 'POST' && r.path === '/api/v1/namespaces/media/events').map((r) => `${String(field(r.body, 'involvedObject.name')).slice(0, 12)} ${String(r.status)}`)

  const first = leader()
  await first.run(lease.signal)
  t.same(posts(), ['bazarr 201', 'jellyfin 201', 'kkkkkkkkkkkk 201'], 'each miss reported; the long name made a valid Event')
  await first.run(lease.signal)
  t.equal(posts().length, 3, 'the same leader does not even ask again')

  await leader().run(lease.signal)
  t.same(posts().slice(3), ['bazarr 409', 'jellyfin 409', 'kkkkkkkkkkkk 409'], 'the next leader finds them reported')
  t.equal(fake.list('events', 'media').length, 3, 'one Event per missed PVC')
  t.equal(logged.filter((line) => line.startsWith('warn')).length, 3, 'a 409 is no failure and no second warning')
  const longEvent = fake.list('events', 'media').find((e) => field(e, 'involvedObject.name') === longName)
  t.ok(longEvent && String(field(longEvent, 'metadata.name')).length <= 253)

  // Two passes at once (the periodic tick and a state change) do not race each other.
  fake.clearRequests()
  const third = leader()
  await Promise.all([third.run(lease.signal), third.run(lease.signal)])
  t.same(posts(), ['bazarr 409', 'jellyfin 409', 'kkkkkkkkkkkk 409'], 'passes never overlap')
})

t.test('pauses read back from the cluster: not again after a leader change, nor after a person unpaused', async (t) => {
  const fake = await FakeKubeApi.start()
  t.teardown(() => fake.close())
  fake.seed({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'media' } }, ...objects)
  const clusterObjects = () => [...fake.list('persistentvolumeclaims', 'media'), ...fake.list('replicationsources', 'media')]
  const leader = (readObjects: () => unknown[]) => new MissedRestoreGuard({ writes: kubeWrites(fake.kubeConfig()), readSnapshot: () => snapshotOf({ config: 'guard: { pauseSource: true }', objects: readObjects(), sources }), log: silent, now: () => NOW })
  const lease = new AbortController()
  const patches = () => fake.requests.filter((r) => r.method === 'PATCH').map((r) => r.path.split('/').pop())

  // The snapshot lags our patch by a watch event: a pass before it arrives patches again, the same merge patch.
  const lagging = leader(() => objects)
  await lagging.run(lease.signal)
  const once = fake.get('replicationsources', 'media', 'jellyfin')
  await lagging.run(lease.signal)
  t.same(patches(), ['jellyfin', 'jellyfin'])
  t.same(field(fake.get('replicationsources', 'media', 'jellyfin'), 'metadata.annotations'), field(once, 'metadata.annotations'), 'the second patch changed nothing')
  t.equal(field(fake.get('replicationsources', 'media', 'jellyfin'), 'spec.paused'), true)

  fake.clearRequests()
  await leader(clusterObjects).run(lease.signal)
  t.same(patches(), [], 'a new leader sees it paused')

  // A person accepts the empty volume and removes spec.paused; our annotations stay.
  const rsNow = fake.get('replicationsources', 'media', 'jellyfin')!
  fake.seed({ ...rsNow, spec: { ...(rsNow.spec as object), paused: false } })
  await leader(clusterObjects).run(lease.signal)
  t.same(patches(), [], 'not paused again for the same PVC')
  t.equal(field(fake.get('replicationsources', 'media', 'jellyfin'), 'spec.paused'), false)

  // The PVC is deleted and created again (a new uid), and misses its restore again: that is a new miss.
  const pvcNow = fake.get('persistentvolumeclaims', 'media', 'jellyfin')!
  fake.seed({ ...pvcNow, metadata: { ...(pvcNow.metadata as object), uid: 'uid-jellyfin-2' } })
  await leader(clusterObjects).run(lease.signal)
  t.same(patches(), ['jellyfin'], 'paused for the new PVC')
  t.equal((field(fake.get('replicationsources', 'media', 'jellyfin'), 'metadata.annotations') as Record<string, string>)[PAUSED_FOR_ANNOTATION], 'uid-jellyfin-2')
})

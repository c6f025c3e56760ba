// The pre-warm controller: the plan as a pure function of the snapshot, and its writes through the
// real @kubernetes/client-node against the fake API server.
import t from 'tap'
import { kubeWrites } from '../../src/controllers/kube-writes.ts'
import { PrewarmController } from '../../src/controllers/prewarm.ts'
import { planPrewarm, PREWARM_LABEL } from '../../src/controllers/prewarm-plan.ts'
import { gibibytes, quantityBytes } from '../../src/controllers/quantity.ts'
import type { Snapshot } from '../../src/state/snapshot.ts'
import { FakeKubeApi, field } from '../support/fake-kube-api.ts'
import { NOW, snapshotOf, source } from '../support/snapshot.ts'

const silent = { info() {}, warn() {} }
const ns = (name: string) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } })
const secret = (namespace: string, name: string) => ({ apiVersion: 'v1', kind: 'Secret', metadata: { namespace, name }, data: { KOPIA_PASSWORD: 'eA==' } })
const TEMPLATE = `prewarm: { template: { kopia: { repository: "{{pvc}}-volsync-secret", capacity: 2Gi, storageClassName: fast, accessModes: [ReadWriteOnce] } } }`
const kopiaBackup = { namespace: 'media', pvc: 'jellyfin', kind: 'kopia' as const, snapshots: 3, newest: '2026-03-15T02:00:00.000Z', sizeBytes: 5 * 2 ** 30 + 1, identity: { username: 'jellyfin', hostname: 'media' } }

t.test('quantities', async (t) => {
  t.equal(quantityBytes('2Gi'), 2 * 2 ** 30)
  t.equal(quantityBytes('500M'), 500e6)
  t.equal(quantityBytes('1.5Ti'), 1.5 * 2 ** 40)
  t.equal(quantityBytes('1073741824'), 2 ** 30)
  t.equal(quantityBytes('lots'), null)
  t.equal(gibibytes(5 * 2 ** 30 + 1), '6Gi')
  t.equal(gibibytes(10), '1Gi')
})

t.test('plan: create the RD for a proven backup, with the backup identity and a capacity that fits', async (t) => {
  const snapshot = snapshotOf({ config: TEMPLATE, objects: [ns('media')], sources: [source({ entries: [kopiaBackup] })] })
  const [action, ...rest] = planPrewarm(snapshot, NOW, 'prewarm-1')
  t.same(rest, [])
  t.equal(action?.type, 'create')
  if (action?.type !== 'create') return
  t.equal(action.name, 'jellyfin-dst')
  t.same(action.body.metadata, {
    name: 'jellyfin-dst', namespace: 'media',
    labels: { 'app.kubernetes.io/managed-by': 'volsync-autorestore', [PREWARM_LABEL]: 'true' },
    annotations: { 'volsync-autorestore.io/backup': 'kopia backup in source test: 3 snapshot(s), newest 2026-03-15T02:00:00.000Z' },
  })
  t.same(action.body.spec, {
    trigger: { manual: 'prewarm-1' },
    kopia: {
      repository: 'jellyfin-volsync-secret', capacity: '6Gi', storageClassName: 'fast', accessModes: ['ReadWriteOnce'],
      copyMethod: 'Snapshot', sourceIdentity: { sourceName: 'jellyfin', sourceNamespace: 'media' },
    },
  }, 'template merged, names rendered, the larger capacity, copyMethod Snapshot, the identity of the backup')
  const small = snapshotOf({ config: TEMPLATE, objects: [ns('media')], sources: [source({ entries: [{ ...kopiaBackup, sizeBytes: 10 }] })] })
  const [smallAction] = planPrewarm(small, NOW, 'x')
  t.equal(smallAction?.type === 'create' && (smallAction.body.spec as { kopia: { capacity: string } }).kopia.capacity, '2Gi', 'the template capacity when the backup is smaller')
})

t.test('plan: nothing without proof, without the namespace, without the required Secret, or from a stale catalog', async (t) => {
  const plan = (snapshot: Snapshot) => planPrewarm(snapshot, NOW, 'x').map((a) => `${a.type} ${a.namespace}/${a.name}`)
  t.same(plan(snapshotOf({ objects: [ns('media')], sources: [source({ entries: [{ ...kopiaBackup, snapshots: 0 }] })] })), [], 'a repository without snapshots')
  t.same(plan(snapshotOf({ objects: [ns('media')], sources: [source({ entries: [{ ...kopiaBackup, snapshots: null }] })] })), [], 'an unreadable repository')
  t.same(plan(snapshotOf({ objects: [], sources: [source({ entries: [kopiaBackup] })] })), [], 'the namespace does not exist yet')
  t.same(plan(snapshotOf({ objects: [ns('media')], sources: [source({ entries: [kopiaBackup], ageMs: 60 * 60_000 })] })), [], 'a stale source')
  const requireSecret = 'prewarm: { requireSecret: "{{pvc}}-volsync-secret" }'
  t.same(plan(snapshotOf({ config: requireSecret, objects: [ns('media')], sources: [source({ entries: [kopiaBackup] })] })), [], 'the repository Secret is missing')
  t.same(plan(snapshotOf({ config: requireSecret, objects: [ns('media'), secret('media', 'jellyfin-volsync-secret')], sources: [source({ entries: [kopiaBackup] })] })), ['create media/jellyfin-dst'])
  t.same(plan(snapshotOf({ config: 'prewarm: { enabled: false }', objects: [ns('media')], sources: [source({ entries: [kopiaBackup] })] })), [], 'disabled')
})

t.test('plan: re-trigger only our own idle RD that has no image; never touch anyone else\'s', async (t) => {
  const rd = (labels: Record<string, string>, manual: string, last: string | undefined, image: boolean) => ({
    apiVersion: 'volsync.backube/v1alpha1', kind: 'ReplicationDestination',
    metadata: { name: 'jellyfin-dst', namespace: 'media', labels },
    spec: { trigger: { manual }, kopia: { copyMethod: 'Snapshot' } },
    status: { ...(last ? { lastManualSync: last } : {}), ...(image ? { latestImage: { apiGroup: 'snapshot.storage.k8s.io', kind: 'VolumeSnapshot', name: 's' } } : {}) },
  })
  const ours = { 'app.kubernetes.io/managed-by': 'volsync-autorestore' }
  const plan = (object: unknown) => planPrewarm(snapshotOf({ objects: [ns('media'), object], sources: [source({ entries: [kopiaBackup] })] }), NOW, 'prewarm-2')
  t.same(plan(rd(ours, 'prewarm-1', 'prewarm-1', false)).map((a) => a.type === 'trigger' && a.manual), ['prewarm-2'], 'ours, finished, no image: trigger')
  t.same(plan(rd(ours, 'prewarm-1', undefined, false)), [], 'still syncing')
  t.same(plan(rd(ours, 'prewarm-1', 'prewarm-1', true)), [], 'has an image')
  t.same(plan(rd({}, 'restore-once', 'restore-once', false)), [], 'not ours')
})

t.test('controller: creates through the API, once; a nudge acts at once; losing the lease stops writing', async (t) => {
  const fake = await FakeKubeApi.start()
  t.teardown(() => fake.close())
  fake.seed(ns('media'))
  let snapshot = snapshotOf({ config: TEMPLATE, objects: [ns('media')], sources: [source({ entries: [kopiaBackup] })] })
  let clock = NOW
  const controller = new PrewarmController({ writes: kubeWrites(fake.kubeConfig()), readSnapshot: () => snapshot, log: silent, now: () => clock, intervalMs: 3_600_000 })
  controller.nudge('media', 'jellyfin')
  t.equal(fake.list('replicationdestinations', 'media').length, 0, 'not leading: a nudge does nothing')

  const lease = new AbortController()
  t.teardown(() => lease.abort())
  controller.lead(lease.signal)
  await fake.waitFor(() => fake.list('replicationdestinations', 'media').length === 1)
  const created = fake.get('replicationdestinations', 'media', 'jellyfin-dst')!
  t.equal(field(created, 'spec.kopia.sourceIdentity.sourceName'), 'jellyfin')
  t.equal((field(created, 'metadata.labels') as Record<string, string>)[PREWARM_LABEL], 'true', 'labelled as ours')

  // A second PVC appears in the catalog; a nudge (a `wait` decision) creates its RD without waiting for the tick.
  snapshot = snapshotOf({ config: TEMPLATE, objects: [ns('media'), created], sources: [source({ entries: [kopiaBackup, { ...kopiaBackup, pvc: 'sonarr', identity: { username: 'sonarr', hostname: 'media' } }] })] })
  controller.nudge('media', 'sonarr')
  await fake.waitFor(() => fake.get('replicationdestinations', 'media', 'sonarr-dst') !== undefined)
  await controller.run()
  t.equal(fake.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/replicationdestinations')).length, 2, 'each RD created once')

  lease.abort()
  clock += 60 * 60_000
  snapshot = snapshotOf({ config: TEMPLATE, objects: [ns('media'), created], sources: [source({ entries: [kopiaBackup, { ...kopiaBackup, pvc: 'radarr' }], ageMs: 1000 })] })
  await controller.run()
  t.equal(fake.get('replicationdestinations', 'media', 'radarr-dst'), undefined, 'no write after the lease is lost')
})

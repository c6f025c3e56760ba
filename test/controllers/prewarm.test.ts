// The pre-warm controller: the plan as a pure function of the snapshot, and its writes through the
// real @kubernetes/client-node against the fake API server.
import t from 'tap'
import { kubeWrites } from '../../src/controllers/kube-writes.ts'
import { PrewarmController } from '../../src/controllers/prewarm.ts'
import { type KubeWrites } from '../../src/controllers/kube-writes.ts'
import { planPrewarm, PREWARM_LABEL, prewarmTrigger, prewarmTriggeredAt } from '../../src/controllers/prewarm-plan.ts'
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
  const [action, ...rest] = planPrewarm(snapshot, { now: NOW })
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
    trigger: { manual: `prewarm-${NOW}` },
    kopia: {
      repository: 'jellyfin-volsync-secret', capacity: '6Gi', storageClassName: 'fast', accessModes: ['ReadWriteOnce'],
      copyMethod: 'Snapshot', sourceIdentity: { sourceName: 'jellyfin', sourceNamespace: 'media' },
    },
  }, 'template merged, names rendered, the larger capacity, copyMethod Snapshot, the identity of the backup')
  const small = snapshotOf({ config: TEMPLATE, objects: [ns('media')], sources: [source({ entries: [{ ...kopiaBackup, sizeBytes: 10 }] })] })
  const [smallAction] = planPrewarm(small, { now: NOW })
  t.equal(smallAction?.type === 'create' && (smallAction.body.spec as { kopia: { capacity: string } }).kopia.capacity, '2Gi', 'the template capacity when the backup is smaller')
})

t.test('plan: nothing without proof, without the namespace, without the required Secret, or from a stale catalog', async (t) => {
  const plan = (snapshot: Snapshot) => planPrewarm(snapshot, { now: NOW }).map((a) => `${a.type} ${a.namespace}/${a.name}`)
  t.same(plan(snapshotOf({ objects: [ns('media')], sources: [source({ entries: [{ ...kopiaBackup, snapshots: 0 }] })] })), [], 'a repository without snapshots')
  t.same(plan(snapshotOf({ objects: [ns('media')], sources: [source({ entries: [{ ...kopiaBackup, snapshots: null }] })] })), [], 'an unreadable repository')
  t.same(plan(snapshotOf({ objects: [], sources: [source({ entries: [kopiaBackup] })] })), [], 'the namespace does not exist yet')
  t.same(plan(snapshotOf({ objects: [ns('media')], sources: [source({ entries: [kopiaBackup], ageMs: 60 * 60_000 })] })), [], 'a stale source')
  const requireSecret = 'prewarm: { requireSecret: "{{pvc}}-volsync-secret" }'
  t.same(plan(snapshotOf({ config: requireSecret, objects: [ns('media')], sources: [source({ entries: [kopiaBackup] })] })), [], 'the repository Secret is missing')
  t.same(plan(snapshotOf({ config: requireSecret, objects: [ns('media'), secret('media', 'jellyfin-volsync-secret')], sources: [source({ entries: [kopiaBackup] })] })), ['create media/jellyfin-dst'])
  t.same(plan(snapshotOf({ config: 'prewarm: { enabled: false }', objects: [ns('media')], sources: [source({ entries: [kopiaBackup] })] })), [], 'disabled')
})

const MINUTE = 60_000
const ours = { 'app.kubernetes.io/managed-by': 'volsync-autorestore' }
const rd = (labels: Record<string, string>, manual: string, last: string | undefined, image: boolean) => ({
  apiVersion: 'volsync.backube/v1alpha1', kind: 'ReplicationDestination',
  metadata: { name: 'jellyfin-dst', namespace: 'media', labels },
  spec: { trigger: { manual }, kopia: { copyMethod: 'Snapshot' } },
  status: { ...(last ? { lastManualSync: last } : {}), ...(image ? { latestImage: { apiGroup: 'snapshot.storage.k8s.io', kind: 'VolumeSnapshot', name: 's' } } : {}) },
})
/** Our RD, idle without an image, last triggered at `at`. */
const idleRd = (at: number) => rd(ours, prewarmTrigger(at), prewarmTrigger(at), false)

t.test('trigger values carry the time they were written', async (t) => {
  t.equal(prewarmTrigger(NOW), `prewarm-${NOW}`)
  t.equal(prewarmTriggeredAt(prewarmTrigger(NOW)), NOW)
  t.equal(prewarmTriggeredAt('restore-once'), null, 'a value pre-warm did not write')
  t.equal(prewarmTriggeredAt('prewarm-12x'), null)
  t.equal(prewarmTriggeredAt(null), null)
})

t.test('plan: re-trigger only our own idle RD that has no image; never touch anyone else\'s', async (t) => {
  const plan = (object: unknown) => planPrewarm(snapshotOf({ objects: [ns('media'), object], sources: [source({ entries: [kopiaBackup] })] }), { now: NOW })
  t.same(plan(idleRd(NOW - 11 * MINUTE)).map((a) => a.type === 'trigger' && a.manual), [prewarmTrigger(NOW)], 'ours, finished 11 min after its trigger, no image: trigger with a new value')
  t.same(plan(rd(ours, prewarmTrigger(NOW - 11 * MINUTE), undefined, false)), [], 'still syncing')
  t.same(plan(rd(ours, prewarmTrigger(NOW - 11 * MINUTE), prewarmTrigger(NOW - 11 * MINUTE), true)), [], 'has an image')
  t.same(plan(rd({}, 'restore-once', 'restore-once', false)), [], 'not ours')
})

t.test('plan: when it last triggered is the time in the RD\'s trigger value', async (t) => {
  const plan = (object: unknown, retriggerAfterMs?: number) => planPrewarm(snapshotOf({ objects: [ns('media'), object], sources: [source({ entries: [kopiaBackup] })] }), { now: NOW, ...(retriggerAfterMs !== undefined ? { retriggerAfterMs } : {}) }).map((a) => a.type)
  t.same(plan(idleRd(NOW - MINUTE)), [], 'triggered 1 minute ago: not again')
  t.same(plan(idleRd(NOW - 10 * MINUTE + 1)), [], 'just inside the 10 minute default')
  t.same(plan(idleRd(NOW - 10 * MINUTE)), ['trigger'], 'the period is over')
  t.same(plan(idleRd(NOW - MINUTE), 30_000), ['trigger'], 'retriggerAfterMs is the period')
  t.same(plan(idleRd(NOW + 5_000)), [], 'a few seconds ahead (another replica\'s clock): recent')
  t.same(plan(idleRd(NOW + 11 * MINUTE)), ['trigger'], 'more than a period ahead: no time to wait for')
  t.same(plan(rd(ours, 'by-hand', 'by-hand', false)), ['trigger'], 'our RD with a value a person wrote: nothing says when, trigger')
})

t.test('controller: creates through the API, once; a nudge acts at once; losing the lease stops writing', async (t) => {
  const fake = await FakeKubeApi.start()
  t.teardown(() => fake.close())
  fake.seed(ns('media'))
  let snapshot = snapshotOf({ config: TEMPLATE, objects: [ns('media')], sources: [source({ entries: [kopiaBackup] })] })
  let clock = NOW
  const actions: string[] = []
  const controller = new PrewarmController({ writes: kubeWrites(fake.kubeConfig()), readSnapshot: () => snapshot, log: silent, now: () => clock, intervalMs: 3_600_000, onAction: (action, ok) => actions.push(`${action.type} ${ok}`) })
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
  // Our snapshot has not seen sonarr-dst yet (the watch lags our writes): the plan creates it
  // again, the API answers 409, and that is "already exists", not a failure.
  await controller.run()
  const posts = () => fake.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/replicationdestinations')).map((r) => `${String(field(r.body, 'metadata.name'))} ${String(r.status)}`)
  t.same(posts(), ['jellyfin-dst 201', 'sonarr-dst 201', 'sonarr-dst 409'])
  t.same(actions, ['create true', 'create true', 'create true'], 'the 409 counts as done')
  t.equal(fake.list('replicationdestinations', 'media').length, 2, 'each RD exists once')
  snapshot = snapshotOf({ config: TEMPLATE, objects: [ns('media'), created, fake.get('replicationdestinations', 'media', 'sonarr-dst')], sources: [source({ entries: [kopiaBackup, { ...kopiaBackup, pvc: 'sonarr', identity: { username: 'sonarr', hostname: 'media' } }] })] })
  await controller.run()
  t.equal(posts().length, 3, 'once the snapshot shows it, no create')

  lease.abort()
  clock += 60 * 60_000
  snapshot = snapshotOf({ config: TEMPLATE, objects: [ns('media'), created], sources: [source({ entries: [kopiaBackup, { ...kopiaBackup, pvc: 'radarr' }], ageMs: 1000 })] })
  await controller.run()
  t.equal(fake.get('replicationdestinations', 'media', 'radarr-dst'), undefined, 'no write after the lease is lost')
})

/** The cluster as the fake API server holds it now: what a caught-up watch would show. */
function clusterObjects(fake: FakeKubeApi): unknown[] {
  return [...fake.list('namespaces'), ...fake.list('replicationdestinations', 'media')]
}

/** Writes that count what goes through them. */
function countingWrites(writes: KubeWrites): { writes: KubeWrites; calls: string[] } {
  const calls: string[] = []
  return {
    calls,
    writes: {
      ...writes,
      createReplicationDestination: (namespace, body) => (calls.push(`create ${namespace}`), writes.createReplicationDestination(namespace, body)),
      triggerReplicationDestination: (namespace, name, manual) => (calls.push(`trigger ${namespace}/${name}`), writes.triggerReplicationDestination(namespace, name, manual)),
      pauseReplicationSource: (namespace, name, annotations) => (calls.push(`pause ${namespace}/${name}`), writes.pauseReplicationSource(namespace, name, annotations)),
      createEvent: (namespace, event) => (calls.push(`event ${namespace}`), writes.createEvent(namespace, event)),
    },
  }
}

t.test('controller: a restarted controller reads when it last triggered from the RD, not from memory', async (t) => {
  const fake = await FakeKubeApi.start()
  t.teardown(() => fake.close())
  const triggeredAt = NOW - MINUTE
  fake.seed(ns('media'), idleRd(triggeredAt))
  const sources = [source({ entries: [kopiaBackup] })]
  const writes = kubeWrites(fake.kubeConfig())
  let clock = NOW
  const patches = () => fake.requests.filter((r) => r.method === 'PATCH').map((r) => field(r.body, 'spec.trigger.manual'))
  /** A controller as a new leader starts it (nothing remembered), one pass at `clock`. */
  const newLeaderPass = async () => {
    const lease = new AbortController()
    const controller = new PrewarmController({ writes, readSnapshot: () => snapshotOf({ objects: clusterObjects(fake), sources }), log: silent, now: () => clock, intervalMs: 3_600_000 })
    controller.lead(lease.signal)
    await controller.run() // passes never overlap: after this, the pass lead() started is done too
    lease.abort()
  }

  await newLeaderPass()
  t.same(patches(), [], 'triggered 1 minute ago (the value in the RD): not again')
  clock = triggeredAt + 10 * MINUTE - 1
  await newLeaderPass()
  t.same(patches(), [], 'still within the 10 minutes')
  clock = triggeredAt + 10 * MINUTE
  await newLeaderPass()
  t.same(patches(), [prewarmTrigger(clock)], 'after the period: triggered, with the time in the value')
  t.equal(field(fake.get('replicationdestinations', 'media', 'jellyfin-dst'), 'spec.trigger.manual'), prewarmTrigger(clock))

  // VolSync finishes that sync without an image; the next leader knows it triggered it just now.
  const rdNow = fake.get('replicationdestinations', 'media', 'jellyfin-dst')!
  fake.seed({ ...rdNow, status: { lastManualSync: prewarmTrigger(clock) } })
  const triggered = clock
  clock += MINUTE
  await newLeaderPass()
  t.same(patches(), [prewarmTrigger(triggered)], 'the value written 1 minute ago holds it back')
})

t.test('controller: a nudge on a follower is dropped; the leader with the same snapshot creates the RD on its periodic pass', async (t) => {
  const fake = await FakeKubeApi.start()
  t.teardown(() => fake.close())
  fake.seed(ns('media'))
  const sonarr = { ...kopiaBackup, pvc: 'sonarr', identity: { username: 'sonarr', hostname: 'media' } }
  // Both replicas watch the same cluster and poll the same catalog: one snapshot for both.
  let entries = [kopiaBackup]
  const readSnapshot = () => snapshotOf({ config: TEMPLATE, objects: clusterObjects(fake), sources: [source({ entries })] })
  const leaderWrites = countingWrites(kubeWrites(fake.kubeConfig()))
  const followerWrites = countingWrites(kubeWrites(fake.kubeConfig()))
  // A short period so that the test sees a periodic pass soon; nothing here depends on how soon.
  const leader = new PrewarmController({ writes: leaderWrites.writes, readSnapshot, log: silent, now: () => NOW, intervalMs: 20 })
  const follower = new PrewarmController({ writes: followerWrites.writes, readSnapshot, log: silent, now: () => NOW, intervalMs: 20 })
  const lease = new AbortController()
  t.teardown(() => lease.abort())
  leader.lead(lease.signal)
  await fake.waitFor(() => fake.get('replicationdestinations', 'media', 'jellyfin-dst') !== undefined)

  // A PVC for sonarr is admitted by the follower (decision `wait`): it nudges its own controller.
  entries = [kopiaBackup, sonarr]
  t.equal(follower.leading, false)
  follower.nudge('media', 'sonarr')
  await fake.waitFor(() => fake.get('replicationdestinations', 'media', 'sonarr-dst') !== undefined)
  t.same(followerWrites.calls, [], 'the follower wrote nothing')
  t.same(leaderWrites.calls, ['create media', 'create media'], 'the leader created it without a nudge')
  t.equal(field(fake.get('replicationdestinations', 'media', 'sonarr-dst'), 'spec.kopia.sourceIdentity.sourceName'), 'sonarr')
})

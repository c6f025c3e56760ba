// The backup generator: its table of cases through the real @kubernetes/client-node against the fake
// API server (server-side apply included), each pass planned from what the fake holds.
import t from 'tap'
import { APPLIED_ANNOTATION, planBackups, SCHEDULE_ANNOTATION, scheduleLabelOf } from '../../src/controllers/backup-plan.ts'
import { BackupGenerator } from '../../src/controllers/backup.ts'
import { kubeWrites, APPLY_FIELD_MANAGER } from '../../src/controllers/kube-writes.ts'
import { PAUSED_ANNOTATION, PAUSED_FOR_ANNOTATION } from '../../src/controllers/missed-restore-guard.ts'
import { parseConfig } from '../../src/config/load.ts'
import { expandSchedule } from '../../src/volsync/schedule.ts'
import { FakeKubeApi, field, type JsonObject } from '../support/fake-kube-api.ts'
import { NOW, snapshotOf, source } from '../support/snapshot.ts'
import { CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node'

type Test = Parameters<NonNullable<Parameters<typeof t.test>[0]>>[0]

const silent = { info() {}, warn() {} }
const CONFIG = 'backup: { enabled: true, template: { kopia: { repository: "{{pvc}}-volsync-secret", copyMethod: Snapshot, retain: { hourly: 24 } } } }'
const OLD = '2026-03-01T00:00:00Z'
const pvc = (name: string, labels: Record<string, string> = { backup: 'hourly' }, extra: { annotations?: Record<string, string>; spec?: JsonObject; phase?: string; created?: string } = {}) => ({
  apiVersion: 'v1', kind: 'PersistentVolumeClaim',
  metadata: { name, namespace: 'media', uid: `uid-${name}`, labels, creationTimestamp: extra.created ?? OLD, ...(extra.annotations ? { annotations: extra.annotations } : {}) },
  spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } }, ...extra.spec },
  status: { phase: extra.phase ?? 'Bound' },
})
const userRs = (name: string, sourcePVC: string) => ({ apiVersion: 'volsync.backube/v1alpha1', kind: 'ReplicationSource', metadata: { name, namespace: 'media' }, spec: { sourcePVC, trigger: { schedule: '0 0 * * *' } } })
const RESTORING = { dataSourceRef: { apiGroup: 'volsync.backube', kind: 'ReplicationDestination', name: 'restored-dst' } }
const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch)

async function setup(t: Test, ...objects: unknown[]) {
  const fake = await FakeKubeApi.start()
  t.teardown(() => fake.close())
  fake.seed({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'media' } }, ...objects)
  const writes = kubeWrites(fake.kubeConfig())
  const snapshot = (config: string, sources = [source({ entries: [] })]) => snapshotOf({ config, sources, objects: [...fake.list('namespaces'), ...fake.list('persistentvolumeclaims', 'media'), ...fake.list('replicationsources', 'media')] })
  /** One pass of a generator as a new leader starts it (nothing remembered). */
  const pass = async (config = CONFIG, options: { sources?: ReturnType<typeof source>[]; signal?: AbortSignal; onAction?: ConstructorParameters<typeof BackupGenerator>[0]['onAction'] } = {}) => {
    const generator = new BackupGenerator({ writes, readSnapshot: () => snapshot(config, options.sources), log: silent, now: () => NOW, instance: 'pod-a', ...(options.onAction ? { onAction: options.onAction } : {}) })
    await generator.run(options.signal ?? new AbortController().signal)
  }
  const rs = (name: string) => fake.get('replicationsources', 'media', name)
  const writesSent = () => fake.requests.filter((r) => r.method !== 'GET')
  return { fake, pass, rs, snapshot, writesSent, api: fake.kubeConfig().makeApiClient(CustomObjectsApi) }
}

t.test('label values pick the schedule; H is expanded from namespace/PVC; the template, label and owner are written', async (t) => {
  const { pass, rs, writesSent, fake } = await setup(t, pvc('hourly-app'), pvc('daily-app', { backup: 'daily' }), pvc('weekly-app', { backup: 'weekly' }), pvc('zigbee2mqtt.data'))
  await pass()
  const expected = (template: string, name: string) => (expandSchedule(template, `media/${name}`) as { cron: string }).cron
  t.equal(field(rs('hourly-app'), 'spec.trigger.schedule'), expected('H * * * *', 'hourly-app'))
  t.match(field(rs('hourly-app'), 'spec.trigger.schedule'), /^\d{1,2} \* \* \* \*$/)
  t.equal(field(rs('daily-app'), 'spec.trigger.schedule'), expected('H H(0-5) * * *', 'daily-app'))
  t.match(field(rs('daily-app'), 'spec.trigger.schedule'), /^\d{1,2} [0-5] \* \* \*$/)
  t.equal(field(rs('weekly-app'), 'spec.trigger.schedule'), expected('H H(0-5) * * H', 'weekly-app'))
  const hourly = rs('hourly-app')!
  t.equal(field(hourly, 'spec.sourcePVC'), 'hourly-app')
  t.same(field(hourly, 'spec.kopia'), { repository: 'hourly-app-volsync-secret', copyMethod: 'Snapshot', retain: { hourly: 24 } }, 'backup.template, rendered')
  t.equal(field(hourly, 'spec.paused'), undefined, 'never written by the generator')
  t.equal((field(hourly, 'metadata.labels') as Record<string, string>)['app.kubernetes.io/managed-by'], 'volsync-autorestore')
  t.same(field(hourly, 'metadata.ownerReferences'), [{ apiVersion: 'v1', kind: 'PersistentVolumeClaim', name: 'hourly-app', uid: 'uid-hourly-app' }], 'owned by the PVC: deleting the app deletes its RS')
  t.same((field(hourly, 'metadata.managedFields') as JsonObject[]).map((e) => [e.manager, e.operation]), [[APPLY_FIELD_MANAGER, 'Apply']], 'server-side apply')
  t.ok(rs('zigbee2mqtt.data'), 'a dotted PVC name is a valid RS name')
  const applies = writesSent().filter((r) => r.contentType === 'application/apply-patch+yaml')
  t.equal(applies.length, 4)
  t.same(applies.map((r) => r.query.fieldManager), Array(4).fill(APPLY_FIELD_MANAGER))
  t.same(applies.map((r) => r.query.force), Array(4).fill('false'), 'not forced when nobody else owns a field')

  fake.clearRequests()
  await pass()
  t.same(writesSent(), [], 'a second pass (a new leader) sends nothing: every RS is what it would apply')
  t.same([...new Set(fake.list('replicationsources', 'media').map((o) => field(o, 'spec.trigger.schedule')))].length > 1, true, 'different PVCs, spread schedules')
})

t.test('scheduleLabel: backup.scheduleLabel, else pvc.selector\'s first key', async (t) => {
  t.equal(scheduleLabelOf(parseConfig('{}')), 'backup')
  t.equal(scheduleLabelOf(parseConfig('pvc: { selector: { matchLabels: { tier: gold } } }')), 'tier')
  t.equal(scheduleLabelOf(parseConfig('backup: { scheduleLabel: freq }')), 'freq')
})

t.test('an unknown label value or an invalid annotation: no RS, one warning Event (deterministic name)', async (t) => {
  const { pass, rs, fake } = await setup(t, pvc('monthly-app', { backup: 'monthly' }), pvc('bad-cron', { backup: 'hourly' }, { annotations: { [SCHEDULE_ANNOTATION]: '61 * * * *' } }), pvc('override', { backup: 'hourly' }, { annotations: { [SCHEDULE_ANNOTATION]: '30  2 * * 1-5' } }))
  await pass()
  await pass()
  t.equal(rs('monthly-app'), undefined)
  t.equal(rs('bad-cron'), undefined)
  t.equal(field(rs('override'), 'spec.trigger.schedule'), '30 2 * * 1-5', 'the annotation, a literal cron, wins')
  const events = fake.list('events', 'media')
  t.same(events.map((e) => [field(e, 'reason'), field(e, 'involvedObject.name'), field(e, 'type')]).sort(), [['InvalidBackupSchedule', 'bad-cron', 'Warning'], ['UnknownBackupSchedule', 'monthly-app', 'Warning']], 'one Event each, over two passes by two leaders')
  t.match(field(events.find((e) => field(e, 'reason') === 'UnknownBackupSchedule'), 'message'), /label backup="monthly" names no schedule in backup.schedules \(daily, hourly, weekly\)/)
  t.match(field(events.find((e) => field(e, 'reason') === 'InvalidBackupSchedule'), 'message'), /minute field "61"/)
  t.match(field(events[0], 'metadata.name'), /^[a-z-]+\.backup\.[0-9a-f]{10}$/)
})

t.test('an RS the server did not create is never written, nor a second RS for a PVC someone else backs up', async (t) => {
  const { pass, rs, writesSent, snapshot } = await setup(t, pvc('app'), userRs('app', 'app'), pvc('other'), userRs('other-backup', 'other'))
  const before = rs('app')
  await pass()
  t.same(writesSent().filter((r) => r.method === 'PATCH' || r.method === 'POST'), [], 'no write at all')
  t.same(rs('app'), before)
  t.equal(rs('other'), undefined)
  const skipped = planBackups(snapshot(CONFIG), NOW).skipped
  t.same(skipped.map((s) => [s.pvc, s.reason]), [['app', 'unmanaged'], ['other', 'unmanaged']], 'reported as unmanaged (for /status)')
  t.match(skipped[1]?.message, /backed up by ReplicationSource other-backup/)
})

t.test('a PVC still being restored gets its RS only once it is Bound', async (t) => {
  const { pass, rs, fake, snapshot } = await setup(t, pvc('restored', undefined, { spec: RESTORING, phase: 'Pending' }))
  await pass()
  t.equal(rs('restored'), undefined, 'no backup of a half-populated volume')
  t.match(planBackups(snapshot(CONFIG), NOW).skipped, [{ pvc: 'restored', reason: 'restore-populating' }])
  fake.seed(pvc('restored', undefined, { spec: RESTORING, phase: 'Bound' }))
  await pass()
  t.equal(field(rs('restored'), 'spec.sourcePVC'), 'restored', 'it comes when the PVC binds')
})

t.test('a missed restore gets its RS created paused with the guard\'s annotations, and the generator never unpauses it', async (t) => {
  const backup = { namespace: 'media', pvc: 'missed', kind: 'kopia' as const, snapshots: 4, newest: '2026-03-15T02:00:00.000Z' }
  const sources = [source({ entries: [backup] })]
  const { pass, rs, api, fake, writesSent } = await setup(t, pvc('missed', undefined, { created: '2026-03-16T08:00:00Z' }))
  await pass(CONFIG, { sources })
  const paused = rs('missed')!
  t.equal(field(paused, 'spec.paused'), true, 'never running')
  const annotations = field(paused, 'metadata.annotations') as Record<string, string>
  t.equal(annotations[PAUSED_FOR_ANNOTATION], 'uid-missed', 'what the guard reads: it will not pause it again once a person unpauses')
  t.match(annotations[PAUSED_ANNOTATION], /missed restore of PVC missed/)
  t.equal(writesSent().find((r) => r.method === 'POST' && r.path.endsWith('/replicationsources'))?.query.fieldManager, 'volsync-autorestore-guard', 'spec.paused is the guard manager\'s, never the generator\'s')

  // A person unpauses it; a template change makes the generator apply again: it leaves spec.paused alone.
  await api.patchNamespacedCustomObject({ group: 'volsync.backube', version: 'v1alpha1', namespace: 'media', plural: 'replicationsources', name: 'missed', body: { spec: { paused: false } } }, merge)
  fake.clearRequests()
  await pass(CONFIG.replace('hourly: 24', 'hourly: 48'), { sources })
  t.equal(writesSent().length, 1, 'one apply')
  t.equal(field(rs('missed'), 'spec.kopia.retain.hourly'), 48)
  t.equal(field(rs('missed'), 'spec.paused'), false, 'the person\'s decision stands')
})

t.test('the guard pauses with a merge patch; the generator\'s applies never reset it', async (t) => {
  const { pass, rs, api } = await setup(t, pvc('app'))
  await pass()
  await api.patchNamespacedCustomObject({ group: 'volsync.backube', version: 'v1alpha1', namespace: 'media', plural: 'replicationsources', name: 'app', body: { metadata: { annotations: { [PAUSED_ANNOTATION]: 'why' } }, spec: { paused: true } } }, merge)
  await pass(CONFIG.replace('hourly: 24', 'hourly: 12'))
  t.equal(field(rs('app'), 'spec.kopia.retain.hourly'), 12, 'applied')
  t.equal(field(rs('app'), 'spec.paused'), true, 'still paused')
  t.equal((field(rs('app'), 'metadata.annotations') as Record<string, string>)[PAUSED_ANNOTATION], 'why', 'the guard\'s annotation stays')
})

t.test('fields another manager took: a 409 without force, logged, then taken back with force', async (t) => {
  const { pass, rs, api, writesSent, fake } = await setup(t, pvc('app'))
  await pass()
  const body = { apiVersion: 'volsync.backube/v1alpha1', kind: 'ReplicationSource', metadata: { name: 'app', namespace: 'media' }, spec: { trigger: { schedule: '0 0 * * *' } } }
  await api.patchNamespacedCustomObject({ group: 'volsync.backube', version: 'v1alpha1', namespace: 'media', plural: 'replicationsources', name: 'app', body, fieldManager: 'kubectl', force: true }, setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply))
  fake.clearRequests()
  const warnings: string[] = []
  const generator = new BackupGenerator({ writes: kubeWrites(fake.kubeConfig()), readSnapshot: () => snapshotOf({ config: CONFIG, sources: [source({})], objects: [...fake.list('namespaces'), ...fake.list('persistentvolumeclaims', 'media'), ...fake.list('replicationsources', 'media')].map((o) => (field(o, 'kind') === 'PersistentVolumeClaim' ? { ...o, metadata: { ...(o.metadata as JsonObject), annotations: { [SCHEDULE_ANNOTATION]: '5 5 * * *' } } } : o)) }), log: { info() {}, warn: (_o: unknown, message?: string) => void warnings.push(message ?? '') }, now: () => NOW })
  await generator.run(new AbortController().signal)
  t.same(writesSent().map((r) => [r.status, r.query.force]), [[409, 'false'], [200, 'true']])
  t.match(warnings, [/changed by another field manager/])
  t.equal(field(rs('app'), 'spec.trigger.schedule'), '5 5 * * *')
})

t.test('a deleted RS of a still-participating PVC comes back the same; a deleted PVC\'s RS is its (ownerReference)', async (t) => {
  const { pass, rs, fake, api, snapshot } = await setup(t, pvc('app'), pvc('gone'))
  await pass()
  const first = rs('app')!
  await api.deleteNamespacedCustomObject({ group: 'volsync.backube', version: 'v1alpha1', namespace: 'media', plural: 'replicationsources', name: 'app' })
  t.equal(rs('app'), undefined)
  await pass()
  const again = rs('app')!
  t.not(field(again, 'metadata.uid'), field(first, 'metadata.uid'), 'a new object')
  t.same(field(again, 'spec'), field(first, 'spec'), 'the same spec, schedule included')
  t.same(field(again, 'metadata.annotations'), field(first, 'metadata.annotations'))
  // The fake has no garbage collector: what it would act on is the ownerReference to the PVC's uid.
  const gone = fake.get('persistentvolumeclaims', 'media', 'gone')!
  t.same(field(rs('gone'), 'metadata.ownerReferences'), [{ apiVersion: 'v1', kind: 'PersistentVolumeClaim', name: 'gone', uid: field(gone, 'metadata.uid') }])
  await fake.kubeConfig().makeApiClient((await import('@kubernetes/client-node')).CoreV1Api).deleteNamespacedPersistentVolumeClaim({ namespace: 'media', name: 'gone' })
  t.same(planBackups(snapshot(CONFIG), NOW).actions, [], 'nothing planned for a PVC that is gone')
})

t.test('leadership lost mid-pass: no write after the signal aborts', async (t) => {
  const { pass, fake, writesSent } = await setup(t, pvc('a'), pvc('b'), pvc('c'))
  const lease = new AbortController()
  await pass(CONFIG, { signal: lease.signal, onAction: () => lease.abort() })
  t.equal(writesSent().length, 1, 'the first apply, then nothing')
  t.same(fake.list('replicationsources', 'media').map((o) => field(o, 'metadata.name')), ['a'])
})

t.test('off by default; nothing before the cluster is listed', async (t) => {
  const { snapshot } = await setup(t, pvc('app'))
  t.same(planBackups(snapshot('{}'), NOW).actions, [])
  t.same(planBackups({ ...snapshot(CONFIG), cluster: { ...snapshot(CONFIG).cluster, synced: false } }, NOW).actions, [])
  t.equal(planBackups(snapshot(CONFIG), NOW).actions.length, 1)
  const body = planBackups(snapshot(CONFIG), NOW).actions[0]
  t.ok(body?.type === 'apply' && typeof (body.body.metadata as { annotations: Record<string, string> }).annotations[APPLIED_ANNOTATION] === 'string')
})

// The fake API server's server-side apply (test/support/fake-kube-api/apply.ts), through the real
// @kubernetes/client-node: create-if-absent, owned-field merge and removal, 409 Conflict between
// managers without force, and `create` checked by RBAC when an apply creates.
import { ApiException, CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node'
import t from 'tap'
import { FakeKubeApi, field, type JsonObject } from '../support/fake-kube-api.ts'

const VOLSYNC = { group: 'volsync.backube', version: 'v1alpha1', namespace: 'media', plural: 'replicationsources' }
const apply = setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply)
const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch)
const rs = (spec: JsonObject, metadata: JsonObject = {}): JsonObject => ({ apiVersion: 'volsync.backube/v1alpha1', kind: 'ReplicationSource', metadata: { name: 'app', namespace: 'media', ...metadata }, spec })

t.test('apply creates, merges owned fields, removes what its manager no longer applies, keeps what others set', async (t) => {
  const fake = await FakeKubeApi.start()
  t.teardown(() => fake.close())
  fake.seed({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'media' } })
  const api = fake.kubeConfig().makeApiClient(CustomObjectsApi)
  const send = (body: JsonObject, fieldManager: string, force = false) => api.patchNamespacedCustomObject({ ...VOLSYNC, name: 'app', body, fieldManager, force }, apply)

  await send(rs({ sourcePVC: 'app', trigger: { schedule: '7 * * * *' }, kopia: { repository: 'app-secret', copyMethod: 'Snapshot' } }, { labels: { a: '1' } }), 'gen')
  const created = fake.get('replicationsources', 'media', 'app')!
  t.equal(field(created, 'spec.trigger.schedule'), '7 * * * *', 'created from the applied object')
  t.ok(field(created, 'metadata.uid'), 'a created object gets its system fields')
  const entries = field(created, 'metadata.managedFields') as JsonObject[]
  t.same(entries.map((e) => [e.manager, e.operation]), [['gen', 'Apply']])
  t.same(field(entries[0], 'fieldsV1.f:spec.f:kopia'), { 'f:repository': {}, 'f:copyMethod': {} }, 'fieldsV1 in the API\'s f:<key> form')

  // Someone else pauses it with a merge patch: not part of what "gen" owns.
  await api.patchNamespacedCustomObject({ ...VOLSYNC, name: 'app', body: { spec: { paused: true } } }, merge)
  // "gen" applies again without copyMethod and with another schedule.
  await send(rs({ sourcePVC: 'app', trigger: { schedule: '9 * * * *' }, kopia: { repository: 'app-secret' } }, { labels: { a: '1' } }), 'gen')
  let now = fake.get('replicationsources', 'media', 'app')!
  t.equal(field(now, 'spec.trigger.schedule'), '9 * * * *')
  t.equal(field(now, 'spec.kopia.copyMethod'), undefined, 'a field the manager no longer applies is removed')
  t.equal(field(now, 'spec.paused'), true, 'a field it never applied is never reset')

  // A second manager sets a field "gen" owns to another value: 409 without force, naming who and what.
  const conflict = await send(rs({ trigger: { schedule: '0 0 * * *' } }), 'person').then(() => null, (e: unknown) => e)
  t.ok(conflict instanceof ApiException && conflict.code === 409, '409 Conflict')
  t.match(String((conflict as ApiException<unknown>).body), /Apply failed with 1 conflict: conflict with \\"gen\\": .spec.trigger.schedule/)
  t.equal(field(fake.get('replicationsources', 'media', 'app')!, 'spec.trigger.schedule'), '9 * * * *', 'nothing written')
  // The same value is shared, not a conflict.
  await send(rs({ sourcePVC: 'app' }), 'person')
  // With force the field moves to "person"; "gen" forcing takes it back.
  await send(rs({ sourcePVC: 'app', trigger: { schedule: '0 0 * * *' } }), 'person', true)
  now = fake.get('replicationsources', 'media', 'app')!
  t.equal(field(now, 'spec.trigger.schedule'), '0 0 * * *')
  const owners = (now: JsonObject) => Object.fromEntries((field(now, 'metadata.managedFields') as JsonObject[]).map((e) => [e.manager, e.fieldsV1]))
  t.same(field(owners(now).gen, 'f:spec.f:trigger'), undefined, 'taken from gen')
  await send(rs({ sourcePVC: 'app', trigger: { schedule: '9 * * * *' }, kopia: { repository: 'app-secret' } }, { labels: { a: '1' } }), 'gen', true)
  now = fake.get('replicationsources', 'media', 'app')!
  t.equal(field(now, 'spec.trigger.schedule'), '9 * * * *')
  t.equal(field(now, 'spec.sourcePVC'), 'app', 'a shared field stays')
  t.equal(field(now, 'spec.paused'), true, 'still paused')

  const missingManager = await api.patchNamespacedCustomObject({ ...VOLSYNC, name: 'app', body: rs({}) }, apply).then(() => null, (e: unknown) => e)
  t.ok(missingManager instanceof ApiException && missingManager.code === 422, 'fieldManager is required for apply')
})

t.test('RBAC: an apply that creates also needs create; one that updates needs only patch', async (t) => {
  const fake = await FakeKubeApi.start({ rbac: { cluster: [{ apiGroups: ['volsync.backube'], resources: ['replicationsources'], verbs: ['patch'] }], namespaced: {} } })
  t.teardown(() => fake.close())
  fake.seed({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'media' } })
  const api = fake.kubeConfig().makeApiClient(CustomObjectsApi)
  const denied = await api.patchNamespacedCustomObject({ ...VOLSYNC, name: 'app', body: rs({ sourcePVC: 'app' }), fieldManager: 'gen' }, apply).then(() => null, (e: unknown) => e)
  t.ok(denied instanceof ApiException && denied.code === 403)
  t.same(fake.forbidden.map((f) => f.verb), ['create'])
  t.equal(fake.get('replicationsources', 'media', 'app'), undefined)
  fake.seed(rs({ sourcePVC: 'app' }))
  await api.patchNamespacedCustomObject({ ...VOLSYNC, name: 'app', body: rs({ sourcePVC: 'app', trigger: { schedule: '1 * * * *' } }), fieldManager: 'gen' }, apply)
  t.equal(field(fake.get('replicationsources', 'media', 'app')!, 'spec.trigger.schedule'), '1 * * * *')
})

// RBAC in the fake API server, driven through the real @kubernetes/client-node: what the
// end-to-end scenarios rely on to prove that the server's declared permissions are enough (every
// call it makes is granted) and no more than it uses (anything else is a 403).
import t from 'tap'
import { ApiException, CoreV1Api, CustomObjectsApi, PatchStrategy, Watch, setHeaderOptions, type V1Secret } from '@kubernetes/client-node'
import type { PolicyRule, RbacRules, Verb } from '../../src/cluster/policy-rule.ts'
import { DEFAULT_RBAC_USER, FakeKubeApi, describeRequest, field, type JsonObject, type RequestAttributes } from '../support/fake-kube-api.ts'

type Test = Parameters<NonNullable<Parameters<typeof t.test>[0]>>[0]

const USER = DEFAULT_RBAC_USER
const RDS = { group: 'volsync.backube', version: 'v1alpha1', namespace: 'media', plural: 'replicationdestinations' }

async function startFake(t: Test, rbac?: RbacRules): Promise<FakeKubeApi> {
  const fake = await FakeKubeApi.start(rbac ? { rbac } : {})
  t.teardown(() => fake.close())
  fake.seed(
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'media' } },
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'apps' } },
    { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'tls', namespace: 'media' }, data: { k: 'dg==' } },
    { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'other', namespace: 'media' }, data: { k: 'dg==' } },
    { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'tls', namespace: 'apps' }, data: { k: 'dg==' } },
    { apiVersion: 'volsync.backube/v1alpha1', kind: 'ReplicationDestination', metadata: { name: 'x', namespace: 'media' }, spec: { trigger: { manual: 'one' } } },
  )
  return fake
}

/**
 * A rule on core secrets. Kubernetes also knows verbs this server never needs (deletecollection,
 * `*`); PolicyRule's type lists only the server's, so those are cast here.
 */
function secrets(verbs: readonly string[], resourceNames?: readonly string[]): PolicyRule {
  return { apiGroups: [''], resources: ['secrets'], verbs: verbs as readonly Verb[], ...(resourceNames ? { resourceNames } : {}) }
}

function clusterOnly(...rules: PolicyRule[]): RbacRules {
  return { cluster: rules, namespaced: {} }
}

/** The 403 (or other) Status a failed call carried; client-node gives the body as unparsed text. */
async function rejection(t: Test, call: Promise<unknown>): Promise<{ code: number; status: JsonObject; message: string }> {
  try {
    await call
  } catch (error) {
    if (error instanceof ApiException) {
      const body: unknown = typeof error.body === 'string' ? JSON.parse(error.body) : error.body
      return { code: error.code, status: body as JsonObject, message: error.message }
    }
    throw error
  }
  t.fail('expected the call to be rejected')
  return { code: 0, status: {}, message: '' }
}

/** Opens a client-node watch; resolves with what its done callback got (null for a normal end). */
async function openWatch(t: Test, fake: FakeKubeApi, path: string, query: Record<string, string> = {}): Promise<{ done: Promise<unknown> }> {
  let finish: (err: unknown) => void = () => {}
  const done = new Promise<unknown>((resolve) => {
    finish = resolve
  })
  const controller = await new Watch(fake.kubeConfig()).watch(path, query, () => {}, (err: unknown) => finish(err))
  t.teardown(() => controller.abort())
  return { done }
}

const ALL_VERBS = ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete', 'deletecollection'] as const
type AnyVerb = (typeof ALL_VERBS)[number]

function attrs(verb: AnyVerb, namespace: string, name = '', resource = 'secrets', group = '', subresource = ''): RequestAttributes {
  return { verb, group, resource, subresource, namespace, name }
}

t.test('each verb is allowed by a rule granting it and denied by rules granting every other verb', async (t) => {
  const fake = await startFake(t)
  const core = fake.kubeConfig().makeApiClient(CoreV1Api)
  const body = (name: string): V1Secret => ({ metadata: { name }, data: { k: 'dg==' } })
  // Each call, and the attributes the apiserver would authorize it with.
  const calls: Record<Exclude<AnyVerb, 'watch'>, { readonly run: () => Promise<unknown>; readonly name: string }> = {
    get: { run: () => core.readNamespacedSecret({ namespace: 'media', name: 'tls' }), name: 'tls' },
    list: { run: () => core.listNamespacedSecret({ namespace: 'media' }), name: '' },
    create: { run: () => core.createNamespacedSecret({ namespace: 'media', body: body('made') }), name: '' },
    update: {
      run: async () => core.replaceNamespacedSecret({ namespace: 'media', name: 'tls', body: { ...body('tls'), metadata: { name: 'tls', resourceVersion: String(field(fake.get('secrets', 'media', 'tls'), 'metadata.resourceVersion')) } } }),
      name: 'tls',
    },
    patch: { run: () => core.patchNamespacedSecret({ namespace: 'media', name: 'tls', body: [{ op: 'add', path: '/metadata/labels', value: { a: 'b' } }] }), name: 'tls' },
    delete: { run: () => core.deleteNamespacedSecret({ namespace: 'media', name: 'made' }), name: 'made' },
    deletecollection: { run: () => core.deleteCollectionNamespacedSecret({ namespace: 'media', labelSelector: 'nothing=here' }), name: '' },
  }
  for (const verb of ALL_VERBS) {
    if (verb === 'watch') continue // below: client-node watches report errors through their done callback
    if (verb === 'delete') fake.seed({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'made', namespace: 'media' } })
    fake.forbidden.length = 0
    fake.enforceRbac(clusterOnly(secrets(ALL_VERBS.filter((v) => v !== verb))))
    const denied = await rejection(t, calls[verb].run())
    t.equal(denied.code, 403, `${verb} without the verb is a 403`)
    t.equal(denied.status.message, `secrets${calls[verb].name ? ` "${calls[verb].name}"` : ''} is forbidden: User "${USER}" cannot ${verb} resource "secrets" in API group "" in the namespace "media"`)
    t.same(fake.forbidden, [attrs(verb, 'media', calls[verb].name)], `${verb} is recorded as forbidden`)
    t.equal(fake.requests.at(-1)?.status, 403)

    fake.enforceRbac(clusterOnly(secrets([verb])))
    await calls[verb].run()
    t.pass(`${verb} with only that verb is allowed`)
    t.equal(fake.forbidden.length, 1, `an allowed ${verb} is not recorded`)
  }
  t.ok(fake.get('secrets', 'media', 'made') === undefined && field(fake.get('secrets', 'media', 'tls'), 'metadata.labels.a') === 'b', 'allowed writes were served')

  fake.forbidden.length = 0
  fake.enforceRbac(clusterOnly(secrets(ALL_VERBS.filter((v) => v !== 'watch'))))
  const denied = await openWatch(t, fake, '/api/v1/namespaces/media/secrets')
  t.match(await denied.done, { statusCode: 403 }, 'watch without the verb is a 403')
  t.same(fake.forbidden, [attrs('watch', 'media')])
  fake.enforceRbac(clusterOnly(secrets(['watch'])))
  const allowed = await openWatch(t, fake, '/api/v1/namespaces/media/secrets')
  await fake.waitFor(() => fake.openWatches('secrets') === 1)
  fake.endWatches()
  t.equal(await allowed.done, null, 'watch with only that verb streams until the server ends it')
  t.equal(fake.forbidden.length, 1)
})

t.test('a denied request gets the Status kube-apiserver sends, and client-node surfaces it as ApiException 403', async (t) => {
  const fake = await startFake(t, clusterOnly({ apiGroups: ['volsync.backube'], resources: ['replicationdestinations'], verbs: ['get', 'list', 'watch'] }))
  const custom = fake.kubeConfig().makeApiClient(CustomObjectsApi)
  const denied = await rejection(t, custom.patchNamespacedCustomObject({ ...RDS, name: 'x', body: { spec: { trigger: { manual: 'two' } } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch)))
  const message = `replicationdestinations.volsync.backube "x" is forbidden: User "${USER}" cannot patch resource "replicationdestinations" in API group "volsync.backube" in the namespace "media"`
  t.equal(denied.code, 403)
  t.same(denied.status, {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason: 'Forbidden',
    details: { name: 'x', group: 'volsync.backube', kind: 'replicationdestinations' },
    code: 403,
  })
  // client-node's message embeds the body as an escaped JSON string, so only unquoted parts are compared.
  t.match(denied.message, /^HTTP-Code: 403\n[^]*is forbidden: User [^]*cannot patch resource [^]*in the namespace /, 'the ApiException message carries the code and the apiserver message')
  t.equal(field(fake.get('replicationdestinations', 'media', 'x'), 'spec.trigger.manual'), 'one', 'nothing was written')

  // Core group and no name: details leave out what is empty, as the apiserver's JSON does.
  const core = fake.kubeConfig().makeApiClient(CoreV1Api)
  const list = await rejection(t, core.listSecretForAllNamespaces())
  t.same(list.status.details, { kind: 'secrets' })
  t.equal(list.status.message, `secrets is forbidden: User "${USER}" cannot list resource "secrets" in API group "" at the cluster scope`)

  const named = await FakeKubeApi.start({ rbac: clusterOnly(), rbacUser: 'system:serviceaccount:x:y' })
  t.teardown(() => named.close())
  const other = await rejection(t, named.kubeConfig().makeApiClient(CoreV1Api).listNamespace())
  t.equal(other.status.message, 'namespaces is forbidden: User "system:serviceaccount:x:y" cannot list resource "namespaces" in API group "" at the cluster scope')
})

t.test('resourceNames: get, update, patch, delete by name; list, watch and create never match a named rule', async (t) => {
  const fake = await startFake(t, clusterOnly(secrets(['get', 'list', 'watch', 'create', 'patch'], ['tls'])))
  const core = fake.kubeConfig().makeApiClient(CoreV1Api)
  t.equal((await core.readNamespacedSecret({ namespace: 'media', name: 'tls' })).metadata?.name, 'tls', 'get of the named object')
  t.equal((await core.readNamespacedSecret({ namespace: 'apps', name: 'tls' })).metadata?.name, 'tls', 'a cluster rule names objects in every namespace')
  await core.patchNamespacedSecret({ namespace: 'media', name: 'tls', body: [{ op: 'add', path: '/metadata/labels', value: { a: 'b' } }] })

  t.equal((await rejection(t, core.readNamespacedSecret({ namespace: 'media', name: 'other' }))).code, 403, 'get of another name')
  t.equal((await rejection(t, core.listNamespacedSecret({ namespace: 'media' }))).code, 403, 'list')
  t.equal((await rejection(t, core.createNamespacedSecret({ namespace: 'media', body: { metadata: { name: 'tls2' } } }))).code, 403, 'create, even of a listed name')
  const watch = await openWatch(t, fake, '/api/v1/namespaces/media/secrets')
  t.match(await watch.done, { statusCode: 403 }, 'watch')
  t.same(fake.forbidden, [attrs('get', 'media', 'other'), attrs('list', 'media'), attrs('create', 'media'), attrs('watch', 'media')])

  // As in Kubernetes, a list or watch pinned by `metadata.name=` is authorized for that name.
  const pinned = await core.listNamespacedSecret({ namespace: 'media', fieldSelector: 'metadata.name=tls' })
  t.same(pinned.items.map((s) => s.metadata?.name), ['tls'], 'a list pinned to the name')
  const pinnedOther = await rejection(t, core.listNamespacedSecret({ namespace: 'media', fieldSelector: 'metadata.name=other' }))
  t.equal(pinnedOther.status.message, `secrets "other" is forbidden: User "${USER}" cannot list resource "secrets" in API group "" in the namespace "media"`)
  const pinnedWatch = await openWatch(t, fake, '/api/v1/namespaces/media/secrets', { fieldSelector: 'metadata.name=tls' })
  await fake.waitFor(() => fake.openWatches('secrets') === 1)
  t.pass('a watch pinned to the name opens')
  fake.endWatches()
  t.equal(await pinnedWatch.done, null)
})

t.test('subresources need their own rule: patching replicationdestinations/status is not patching replicationdestinations', async (t) => {
  const mainOnly: PolicyRule = { apiGroups: ['volsync.backube'], resources: ['replicationdestinations'], verbs: ['patch'] }
  const statusOnly: PolicyRule = { apiGroups: ['volsync.backube'], resources: ['replicationdestinations/status'], verbs: ['patch'] }
  const fake = await startFake(t, clusterOnly(mainOnly))
  const custom = fake.kubeConfig().makeApiClient(CustomObjectsApi)
  const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch)
  const statusBody = { status: { latestImage: { apiGroup: 'snapshot.storage.k8s.io', kind: 'VolumeSnapshot', name: 's' } } }

  const denied = await rejection(t, custom.patchNamespacedCustomObjectStatus({ ...RDS, name: 'x', body: statusBody }, merge))
  t.equal(denied.status.message, `replicationdestinations.volsync.backube "x" is forbidden: User "${USER}" cannot patch resource "replicationdestinations/status" in API group "volsync.backube" in the namespace "media"`)
  t.same(denied.status.details, { name: 'x', group: 'volsync.backube', kind: 'replicationdestinations' })
  await custom.patchNamespacedCustomObject({ ...RDS, name: 'x', body: { spec: { trigger: { manual: 'two' } } } }, merge)

  fake.enforceRbac(clusterOnly(statusOnly))
  await custom.patchNamespacedCustomObjectStatus({ ...RDS, name: 'x', body: statusBody }, merge)
  t.equal(field(fake.get('replicationdestinations', 'media', 'x'), 'status.latestImage.name'), 's')
  t.equal((await rejection(t, custom.patchNamespacedCustomObject({ ...RDS, name: 'x', body: { spec: {} } }, merge))).code, 403, 'the status rule does not grant the main resource')
  t.equal((await rejection(t, custom.getNamespacedCustomObjectStatus({ ...RDS, name: 'x' }))).code, 403, 'nor another verb on status')

  // `*/status` grants status of every resource; a group wildcard and a resource wildcard match anything.
  fake.enforceRbac(clusterOnly({ apiGroups: ['volsync.backube'], resources: ['*/status'], verbs: ['get'] }))
  t.equal(field(await custom.getNamespacedCustomObjectStatus({ ...RDS, name: 'x' }), 'metadata.name'), 'x')
  t.equal((await rejection(t, custom.getNamespacedCustomObject({ ...RDS, name: 'x' }))).code, 403)
  fake.enforceRbac(clusterOnly({ apiGroups: ['*'], resources: ['*'], verbs: ['get'] }))
  t.equal(field(await custom.getNamespacedCustomObject({ ...RDS, name: 'x' }), 'metadata.name'), 'x')
  t.equal((await fake.kubeConfig().makeApiClient(CoreV1Api).readNamespace({ name: 'media' })).metadata?.name, 'media')
  t.same(fake.forbidden.map((f) => `${f.verb} ${f.resource}/${f.subresource}`), ['patch replicationdestinations/status', 'patch replicationdestinations/', 'get replicationdestinations/status', 'get replicationdestinations/'])
})

t.test('namespaced rules apply only in their namespace; all-namespaces and cluster-scoped requests need cluster rules', async (t) => {
  const fake = await startFake(t, { cluster: [], namespaced: { media: [secrets(['list', 'watch', 'get'])] } })
  const core = fake.kubeConfig().makeApiClient(CoreV1Api)
  t.same((await core.listNamespacedSecret({ namespace: 'media' })).items.map((s) => s.metadata?.name), ['other', 'tls'])
  const elsewhere = await rejection(t, core.listNamespacedSecret({ namespace: 'apps' }))
  t.equal(elsewhere.status.message, `secrets is forbidden: User "${USER}" cannot list resource "secrets" in API group "" in the namespace "apps"`)
  const everywhere = await rejection(t, core.listSecretForAllNamespaces())
  t.equal(everywhere.code, 403, 'an all-namespaces list is not granted by a Role')
  const watchAll = await openWatch(t, fake, '/api/v1/secrets')
  t.match(await watchAll.done, { statusCode: 403 }, 'nor an all-namespaces watch')
  const watchLegacyAll = await openWatch(t, fake, '/api/v1/watch/secrets')
  t.match(await watchLegacyAll.done, { statusCode: 403 }, 'nor one on the legacy /watch/ path')
  t.equal((await rejection(t, core.listNamespace())).code, 403, 'cluster-scoped resources are never in a namespace')

  // Kubernetes counts a Namespace as in itself: a Role in media may grant reading that Namespace.
  fake.enforceRbac({ cluster: [], namespaced: { media: [{ apiGroups: [''], resources: ['namespaces'], verbs: ['get'] }] } })
  t.equal((await core.readNamespace({ name: 'media' })).metadata?.name, 'media')
  t.equal((await rejection(t, core.readNamespace({ name: 'apps' }))).code, 403)

  fake.enforceRbac(clusterOnly(secrets(['list', 'watch'])))
  t.equal((await core.listSecretForAllNamespaces()).items.length, 3, 'a cluster rule grants the all-namespaces list')
  t.equal((await core.listNamespacedSecret({ namespace: 'apps' })).items.length, 1, 'and lists in any namespace')
  const allowedWatch = await openWatch(t, fake, '/api/v1/secrets')
  await fake.waitFor(() => fake.openWatches('secrets') === 1)
  fake.endWatches()
  t.equal(await allowedWatch.done, null, 'and the all-namespaces watch')

  t.same(fake.forbidden, [
    attrs('list', 'apps'),
    attrs('list', ''),
    attrs('watch', ''),
    attrs('watch', ''),
    attrs('list', '', '', 'namespaces'),
    attrs('get', 'apps', 'apps', 'namespaces'),
  ])
})

t.test('a denied watch is a plain 403 before any stream opens', async (t) => {
  const fake = await startFake(t, clusterOnly(secrets(['list'])))
  const watch = await openWatch(t, fake, '/api/v1/namespaces/media/secrets', { resourceVersion: fake.resourceVersion })
  t.match(await watch.done, { statusCode: 403, message: 'Forbidden' }, 'client-node sees the HTTP status, not an ERROR event')
  t.equal(fake.openWatches(), 0)
  t.match(fake.requests.at(-1), { path: '/api/v1/namespaces/media/secrets', watch: true, status: 403 })

  const response = await fetch(`${fake.url}/api/v1/namespaces/media/secrets?watch=1`, { headers: { Authorization: 'Bearer fake-token' } })
  t.equal(response.status, 403)
  t.equal(response.headers.get('content-type'), 'application/json')
  t.match(await response.json(), { kind: 'Status', reason: 'Forbidden', code: 403, message: `secrets is forbidden: User "${USER}" cannot watch resource "secrets" in API group "" in the namespace "media"` })
  t.equal(fake.openWatches(), 0)
})

t.test('enforcement is off by default and can be switched at run time; test-side helpers bypass it', async (t) => {
  const fake = await startFake(t)
  const core = fake.kubeConfig().makeApiClient(CoreV1Api)
  t.equal((await core.listNamespace()).items.length, 2, 'no rules, no enforcement')
  fake.enforceRbac(clusterOnly())
  t.equal((await rejection(t, core.listNamespace())).code, 403, 'empty rules deny everything')
  t.equal(fake.list('namespaces').length, 2, 'list() bypasses RBAC')
  t.equal(fake.get('secrets', 'media', 'tls')?.kind, 'Secret', 'get() bypasses RBAC')
  fake.seed({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'seeded', namespace: 'media' } })
  t.ok(fake.get('secrets', 'media', 'seeded'), 'seed() bypasses RBAC')
  fake.enforceRbac(undefined)
  t.equal((await core.listNamespace()).items.length, 2, 'cleared')
  t.same(fake.forbidden, [attrs('list', '', '', 'namespaces')], 'only the denied request is recorded')
  t.same(fake.forbidden.map(describeRequest), ['list namespaces in API group "" at the cluster scope'], 'described for failure output')
  t.equal(describeRequest(attrs('patch', 'media', 'x', 'replicationdestinations', 'volsync.backube', 'status')), 'patch replicationdestinations/status "x" in API group "volsync.backube" in the namespace "media"')
})

t.test('discovery stays readable; authorization comes before routing, body decoding and injected failures', async (t) => {
  const fake = await startFake(t, clusterOnly(secrets(['get'])))
  const api = async (path: string, init: RequestInit = {}): Promise<{ status: number; body: JsonObject }> => {
    const response = await fetch(`${fake.url}${path}`, init)
    return { status: response.status, body: (await response.json()) as JsonObject }
  }
  t.equal((await api('/apis')).status, 200, 'discovery is a non-resource request every user may make')
  t.equal((await api('/apis/volsync.backube/v1alpha1')).status, 200)

  const unknown = await api('/apis/example.com/v1/widgets')
  t.match(unknown, { status: 403, body: { message: `widgets.example.com is forbidden: User "${USER}" cannot list resource "widgets" in API group "example.com" at the cluster scope` } })
  fake.enforceRbac(clusterOnly({ apiGroups: ['*'], resources: ['*'], verbs: ['list'] }))
  t.equal((await api('/apis/example.com/v1/widgets')).status, 404, 'an allowed request for an unknown resource is routed to a 404')

  fake.enforceRbac(clusterOnly(secrets(['get'])))
  const badBody = await api('/api/v1/namespaces/media/secrets', { method: 'POST', body: '{not json', headers: { 'Content-Type': 'application/json' } })
  t.equal(badBody.status, 403, 'a denied request with a bad body is still a 403')

  fake.injectFailure({ path: '/api/v1/namespaces/media/secrets/tls', code: 500, message: 'etcd is down' })
  const patch = await api('/api/v1/namespaces/media/secrets/tls', { method: 'PATCH', body: '[]', headers: { 'Content-Type': 'application/json-patch+json' } })
  t.equal(patch.status, 403, 'a denied request does not use up an injected failure')
  const injected = await api('/api/v1/namespaces/media/secrets/tls')
  t.match(injected, { status: 500, body: { message: 'etcd is down' } }, 'the next allowed request gets it')
  t.equal((await api('/api/v1/namespaces/media/secrets/tls')).status, 200)
  t.same(fake.forbidden, [
    { verb: 'list', group: 'example.com', resource: 'widgets', subresource: '', namespace: '', name: '' },
    attrs('create', 'media'),
    attrs('patch', 'media', 'tls'),
  ])
})

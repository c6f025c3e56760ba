// The fake API server, driven only through the real @kubernetes/client-node, so tests of cluster
// code can trust what it answers.
import t from 'tap'
import {
  AdmissionregistrationV1Api,
  ApiException,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  ListWatch,
  PatchStrategy,
  Watch,
  makeInformer,
  setHeaderOptions,
  type KubernetesObject,
  type V1Secret,
} from '@kubernetes/client-node'
import { Condition } from '../support/condition.ts'
import { FakeKubeApi, field, type JsonObject } from '../support/fake-kube-api.ts'

type Test = Parameters<NonNullable<Parameters<typeof t.test>[0]>>[0]

const VOLSYNC = { group: 'volsync.backube', version: 'v1alpha1' }

async function startFake(t: Test, options?: Parameters<typeof FakeKubeApi.start>[0]): Promise<FakeKubeApi> {
  const fake = await FakeKubeApi.start(options)
  t.teardown(() => fake.close())
  fake.seed({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'media' } })
  return fake
}

/** The Status a failed call carried; client-node gives the body as unparsed text. */
async function rejection(t: Test, call: Promise<unknown>): Promise<{ code: number; status: JsonObject }> {
  try {
    await call
  } catch (error) {
    if (error instanceof ApiException) {
      const body: unknown = typeof error.body === 'string' ? JSON.parse(error.body) : error.body
      return { code: error.code, status: body as JsonObject }
    }
    throw error
  }
  t.fail('expected the call to be rejected')
  return { code: 0, status: {} }
}

interface WatchEvent {
  readonly type: string
  readonly object: JsonObject
}

/** Collects events from a client-node Watch and the error its done callback got. */
class WatchLog {
  readonly events: WatchEvent[] = []
  readonly done: Promise<unknown>
  #finish: (err: unknown) => void = () => {}
  #waiters: Array<{ n: number; resolve: () => void }> = []

  constructor() {
    this.done = new Promise((resolve) => {
      this.#finish = resolve
    })
  }

  onEvent = (type: string, object: unknown): void => {
    this.events.push({ type, object: object as JsonObject })
    for (const w of [...this.#waiters]) {
      if (this.events.length >= w.n) {
        this.#waiters.splice(this.#waiters.indexOf(w), 1)
        w.resolve()
      }
    }
  }

  onDone = (err: unknown): void => this.#finish(err)

  count(n: number): Promise<void> {
    if (this.events.length >= n) return Promise.resolve()
    return new Promise((resolve) => this.#waiters.push({ n, resolve }))
  }
}


async function watch(t: Test, fake: FakeKubeApi, path: string, query: Record<string, string | number | boolean | undefined>): Promise<WatchLog> {
  const log = new WatchLog()
  const controller = await new Watch(fake.kubeConfig()).watch(path, query, log.onEvent, log.onDone)
  t.teardown(() => controller.abort())
  return log
}

function secret(name: string, labels?: Record<string, string>): V1Secret {
  return { metadata: { name, ...(labels ? { labels } : {}) }, data: { k: 'dg==' } }
}

function rd(name: string, extra: JsonObject = {}): JsonObject {
  return { apiVersion: 'volsync.backube/v1alpha1', kind: 'ReplicationDestination', metadata: { name, namespace: 'media' }, spec: { trigger: { manual: 'one' } }, ...extra }
}

t.test('list carries the global resourceVersion; label and field selectors filter', async (t) => {
  const fake = await startFake(t)
  const core = fake.kubeConfig().makeApiClient(CoreV1Api)
  await core.createNamespacedSecret({ namespace: 'media', body: secret('a', { app: 'jellyfin', tier: 'web' }) })
  await core.createNamespacedSecret({ namespace: 'media', body: secret('b', { app: 'sonarr' }) })
  await core.createNamespacedSecret({ namespace: 'media', body: secret('c') })

  const all = await core.listNamespacedSecret({ namespace: 'media' })
  t.equal(all.metadata?.resourceVersion, fake.resourceVersion)
  t.same(all.items.map((s) => s.metadata?.name), ['a', 'b', 'c'], 'sorted by name')
  t.ok(Number(all.items[2]!.metadata?.resourceVersion) > Number(all.items[0]!.metadata?.resourceVersion), 'one RV sequence across writes')
  t.equal(all.items[0]!.kind, undefined, 'typed list items carry no kind, as the real API sends them')

  const names = async (labelSelector?: string, fieldSelector?: string): Promise<(string | undefined)[]> =>
    (await core.listNamespacedSecret({ namespace: 'media', labelSelector, fieldSelector })).items.map((s) => s.metadata?.name)
  t.same(await names('app=jellyfin'), ['a'])
  t.same(await names('app'), ['a', 'b'])
  t.same(await names('!app'), ['c'])
  t.same(await names('app!=jellyfin'), ['b', 'c'], '!= also matches objects without the label')
  t.same(await names('app in (jellyfin, sonarr),tier'), ['a'])
  t.same(await names('app notin (jellyfin)'), ['b', 'c'])
  t.same(await names(undefined, 'metadata.name=b'), ['b'])
  t.same(await names(undefined, 'metadata.name!=b'), ['a', 'c'])

  const bad = await rejection(t, core.listNamespacedSecret({ namespace: 'media', fieldSelector: 'spec.nope=1' }))
  t.equal(bad.code, 400)
  t.equal(bad.status.reason, 'BadRequest')

  const everywhere = await core.listSecretForAllNamespaces()
  t.equal(everywhere.items.length, 3)
  t.equal(fake.listCalls('secrets'), 11)

  const page1 = await core.listNamespacedSecret({ namespace: 'media', limit: 2 })
  t.same(page1.items.map((s) => s.metadata?.name), ['a', 'b'])
  t.equal(page1.metadata?.remainingItemCount, 1)
  const page2 = await core.listNamespacedSecret({ namespace: 'media', limit: 2, _continue: page1.metadata?._continue })
  t.same(page2.items.map((s) => s.metadata?.name), ['c'])
  t.equal(page2.metadata?._continue, undefined)

  const future = await rejection(t, core.listNamespacedSecret({ namespace: 'media', resourceVersion: String(Number(fake.resourceVersion) + 10) }))
  t.match(future, { code: 504, status: { reason: 'Timeout', message: /^Too large resource version/ } })
})

t.test('create: AlreadyExists, generateName, missing namespace, invalid name', async (t) => {
  const fake = await startFake(t)
  const core = fake.kubeConfig().makeApiClient(CoreV1Api)
  const created = await core.createNamespacedSecret({ namespace: 'media', body: secret('s') })
  t.match(created.metadata, { name: 's', namespace: 'media', resourceVersion: /^\d+$/, uid: /^[0-9a-f-]{36}$/ })
  t.ok(created.metadata?.creationTimestamp instanceof Date)

  const dup = await rejection(t, core.createNamespacedSecret({ namespace: 'media', body: secret('s') }))
  t.equal(dup.code, 409)
  t.match(dup.status, { kind: 'Status', status: 'Failure', reason: 'AlreadyExists', message: 'secrets "s" already exists', details: { name: 's', kind: 'secrets' } })

  const generated = await core.createNamespacedSecret({ namespace: 'media', body: { metadata: { generateName: 'restore-' } } })
  t.match(generated.metadata?.name, /^restore-[a-z0-9]{5}$/)

  const noNamespace = await rejection(t, core.createNamespacedSecret({ namespace: 'nowhere', body: secret('s') }))
  t.equal(noNamespace.code, 404)
  t.equal(noNamespace.status.message, 'namespaces "nowhere" not found')

  const badName = await rejection(t, core.createNamespacedSecret({ namespace: 'media', body: secret('Not_Valid') }))
  t.equal(badName.code, 422)
  t.equal(badName.status.reason, 'Invalid')

  const withRv = await rejection(t, core.createNamespacedSecret({ namespace: 'media', body: { metadata: { name: 'x', resourceVersion: '5' } } }))
  t.equal(withRv.code, 500)
  t.equal(withRv.status.message, 'resourceVersion should not be set on objects to be created')

  const gone = await rejection(t, core.readNamespacedSecret({ namespace: 'media', name: 'missing' }))
  t.match(gone, { code: 404, status: { reason: 'NotFound', message: 'secrets "missing" not found' } })
  t.match(fake.requests.find((r) => r.method === 'POST'), { path: '/api/v1/namespaces/media/secrets', contentType: 'application/json', status: 201 })
})

t.test('watch from a list RV sees ADDED, MODIFIED, DELETED in order', async (t) => {
  const fake = await startFake(t)
  const core = fake.kubeConfig().makeApiClient(CoreV1Api)
  const list = await core.listNamespacedSecret({ namespace: 'media' })
  const log = await watch(t, fake, '/api/v1/namespaces/media/secrets', { resourceVersion: list.metadata?.resourceVersion })
  await fake.waitFor(() => fake.openWatches('secrets') === 1)
  t.equal(fake.requests.at(-1)?.query.watch, 'true')

  await core.createNamespacedSecret({ namespace: 'media', body: secret('s') })
  await core.patchNamespacedSecret({ namespace: 'media', name: 's', body: { metadata: { labels: { a: 'b' } } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch))
  await core.patchNamespacedSecret({ namespace: 'media', name: 's', body: { metadata: { labels: { a: 'b' } } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch))
  await core.deleteNamespacedSecret({ namespace: 'media', name: 's' })
  await log.count(3)
  t.same(log.events.map((e) => e.type), ['ADDED', 'MODIFIED', 'DELETED'], 'the no-op patch wrote nothing')
  t.equal(field(log.events[1]!.object, 'metadata.labels.a'), 'b')
  t.equal(log.events[0]!.object.kind, 'Secret', 'watch objects carry kind')
  const rvs = log.events.map((e) => Number(field(e.object, 'metadata.resourceVersion')))
  t.ok(rvs[0]! < rvs[1]! && rvs[1]! < rvs[2]!, 'increasing resourceVersions')
  t.equal(String(rvs[2]), fake.resourceVersion)

  // A watch from the first RV replays the history after it.
  const replay = await watch(t, fake, '/api/v1/namespaces/media/secrets', { resourceVersion: String(rvs[0]) })
  await replay.count(2)
  t.same(replay.events.map((e) => e.type), ['MODIFIED', 'DELETED'])
})

t.test('watch without an RV starts with ADDED for what exists; selectors turn transitions into ADDED/DELETED', async (t) => {
  const fake = await startFake(t)
  const core = fake.kubeConfig().makeApiClient(CoreV1Api)
  await core.createNamespacedSecret({ namespace: 'media', body: secret('one', { app: 'x' }) })
  await core.createNamespacedSecret({ namespace: 'media', body: secret('two') })
  const log = await watch(t, fake, '/api/v1/namespaces/media/secrets', { labelSelector: 'app=x' })
  await log.count(1)
  t.equal(field(log.events[0]!.object, 'metadata.name'), 'one')
  await core.patchNamespacedSecret({ namespace: 'media', name: 'two', body: [{ op: 'add', path: '/metadata/labels', value: { app: 'x' } }] })
  await core.patchNamespacedSecret({ namespace: 'media', name: 'one', body: [{ op: 'replace', path: '/metadata/labels/app', value: 'y' }] })
  await log.count(3)
  t.same(log.events.map((e) => [e.type, field(e.object, 'metadata.name')]), [['ADDED', 'one'], ['ADDED', 'two'], ['DELETED', 'one']])
  t.equal(field(log.events[2]!.object, 'metadata.labels.app'), 'x', 'DELETED carries the last state that matched')
})

t.test('a watch from a compacted RV gets an ERROR event with a 410 Status, then the stream ends', async (t) => {
  const fake = await startFake(t)
  const core = fake.kubeConfig().makeApiClient(CoreV1Api)
  const old = (await core.listNamespacedSecret({ namespace: 'media' })).metadata?.resourceVersion
  await core.createNamespacedSecret({ namespace: 'media', body: secret('s') })
  fake.compactHistory()
  const log = await watch(t, fake, '/api/v1/namespaces/media/secrets', { resourceVersion: old })
  t.equal(await log.done, null, 'client-node reports a clean end, not an error')
  t.equal(log.events.length, 1)
  t.equal(log.events[0]!.type, 'ERROR')
  t.match(log.events[0]!.object, { kind: 'Status', status: 'Failure', code: 410, reason: 'Expired', message: /^too old resource version: \d+ \(\d+\)$/ })

  // The current RV is still fine after compaction.
  const fresh = await watch(t, fake, '/api/v1/namespaces/media/secrets', { resourceVersion: fake.resourceVersion })
  await core.deleteNamespacedSecret({ namespace: 'media', name: 's' })
  await fresh.count(1)
  t.equal(fresh.events[0]!.type, 'DELETED')
})

t.test('history is bounded: watching from before the retained window is Expired', async (t) => {
  const fake = await startFake(t, { historyLimit: 2 })
  const core = fake.kubeConfig().makeApiClient(CoreV1Api)
  const start = fake.resourceVersion
  for (const name of ['a', 'b', 'c']) await core.createNamespacedSecret({ namespace: 'media', body: secret(name) })
  const log = await watch(t, fake, '/api/v1/namespaces/media/secrets', { resourceVersion: start })
  await log.done
  t.equal(field(log.events[0]!.object, 'code'), 410)
})

t.test('dropping watch connections ends the client watch with an error', async (t) => {
  const fake = await startFake(t)
  const log = await watch(t, fake, '/api/v1/namespaces/media/secrets', { resourceVersion: fake.resourceVersion })
  await fake.waitFor(() => fake.openWatches() === 1)
  fake.dropWatches()
  const err = await log.done
  t.ok(err instanceof Error, 'done(err) for a destroyed socket')
  await fake.waitFor(() => fake.openWatches() === 0)

  const graceful = await watch(t, fake, '/api/v1/namespaces/media/secrets', { resourceVersion: fake.resourceVersion })
  await fake.waitFor(() => fake.openWatches() === 1)
  fake.endWatches()
  t.equal(await graceful.done, null, 'done(null) for a server-side end')

  const timedOut = await watch(t, fake, '/api/v1/namespaces/media/secrets', { resourceVersion: fake.resourceVersion, timeoutSeconds: 1 })
  t.equal(await timedOut.done, null, 'timeoutSeconds ends the stream normally')

  // A watch refused before streaming: client-node keeps only the HTTP status, not the Status body.
  const refused = await watch(t, fake, '/api/v1/namespaces/media/secrets', { labelSelector: 'app in (' })
  t.match(await refused.done, { message: 'Bad Request', statusCode: 400 })
})

t.test('bookmarks go only to watches that allowed them, at the current RV', async (t) => {
  const fake = await startFake(t)
  const core = fake.kubeConfig().makeApiClient(CoreV1Api)
  const withBookmarks = await watch(t, fake, '/api/v1/namespaces/media/persistentvolumeclaims', { resourceVersion: fake.resourceVersion, allowWatchBookmarks: true })
  const without = await watch(t, fake, '/api/v1/namespaces/media/persistentvolumeclaims', { resourceVersion: fake.resourceVersion })
  await fake.waitFor(() => fake.openWatches('persistentvolumeclaims') === 2)
  await core.createNamespacedSecret({ namespace: 'media', body: secret('unrelated') }) // moves the global RV
  fake.sendBookmarks()
  await core.createNamespacedPersistentVolumeClaim({ namespace: 'media', body: { metadata: { name: 'data' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } } })
  await withBookmarks.count(2)
  await without.count(1)
  t.same(withBookmarks.events.map((e) => e.type), ['BOOKMARK', 'ADDED'])
  t.same(withBookmarks.events[0]!.object, { kind: 'PersistentVolumeClaim', apiVersion: 'v1', metadata: { resourceVersion: String(Number(fake.resourceVersion) - 1) } })
  t.same(without.events.map((e) => e.type), ['ADDED'], 'no bookmark was queued ahead of the ADDED')
  t.equal(field(without.events[0]!.object, 'status.phase'), 'Pending', 'PVCs start Pending')
})

t.test('paused watches hold events back until resumed', async (t) => {
  const fake = await startFake(t)
  const core = fake.kubeConfig().makeApiClient(CoreV1Api)
  const log = await watch(t, fake, '/api/v1/namespaces/media/secrets', { resourceVersion: fake.resourceVersion })
  await fake.waitFor(() => fake.openWatches() === 1)
  fake.pauseWatches()
  await core.createNamespacedSecret({ namespace: 'media', body: secret('a') })
  await core.createNamespacedSecret({ namespace: 'media', body: secret('b') })
  t.equal(log.events.length, 0)
  fake.resumeWatches()
  await log.count(2)
  t.same(log.events.map((e) => field(e.object, 'metadata.name')), ['a', 'b'])
})

t.test('merge patch and JSON patch, recorded with their content types', async (t) => {
  const fake = await startFake(t)
  const core = fake.kubeConfig().makeApiClient(CoreV1Api)
  await core.createNamespacedPersistentVolumeClaim({ namespace: 'media', body: { metadata: { name: 'data', labels: { keep: 'yes', drop: 'yes' } }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } } })
  fake.clearRequests()
  const merged = await core.patchNamespacedPersistentVolumeClaim(
    { namespace: 'media', name: 'data', body: { metadata: { labels: { drop: null, added: 'x' }, annotations: { a: '1' } } } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  )
  t.same(merged.metadata?.labels, { keep: 'yes', added: 'x' }, 'null removes a key')
  const patched = await core.patchNamespacedPersistentVolumeClaim({
    namespace: 'media',
    name: 'data',
    body: [
      { op: 'test', path: '/metadata/annotations/a', value: '1' },
      { op: 'add', path: '/spec/volumeName', value: 'pv-1' },
    ],
  })
  t.equal(patched.spec?.volumeName, 'pv-1')
  t.same(fake.requests.map((r) => [r.method, r.contentType]), [['PATCH', 'application/merge-patch+json'], ['PATCH', 'application/json-patch+json']])
  t.same(fake.requests[1]!.body, [{ op: 'test', path: '/metadata/annotations/a', value: '1' }, { op: 'add', path: '/spec/volumeName', value: 'pv-1' }])

  const failedTest = await rejection(t, core.patchNamespacedPersistentVolumeClaim({ namespace: 'media', name: 'data', body: [{ op: 'test', path: '/metadata/annotations/a', value: '2' }] }))
  t.equal(failedTest.code, 422)

  const stale = await rejection(t, core.patchNamespacedPersistentVolumeClaim(
    { namespace: 'media', name: 'data', body: { metadata: { resourceVersion: '1', labels: { x: 'y' } } } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  ))
  t.equal(stale.code, 409, 'a resourceVersion in a patch is a precondition')

  const missing = await rejection(t, core.patchNamespacedPersistentVolumeClaim({ namespace: 'media', name: 'nope', body: [] }))
  t.equal(missing.code, 404)
})

t.test('status subresource: only /status writes status; spec changes bump generation', async (t) => {
  const fake = await startFake(t)
  const custom = fake.kubeConfig().makeApiClient(CustomObjectsApi)
  const base = { ...VOLSYNC, namespace: 'media', plural: 'replicationdestinations' }
  const created = (await custom.createNamespacedCustomObject({ ...base, body: rd('jellyfin-dst', { status: { latestImage: { name: 'sneaky' } } }) })) as JsonObject
  t.equal(field(created, 'metadata.generation'), 1)
  t.equal(created.status, undefined, 'status in a create is dropped')

  const latestImage = { apiGroup: 'snapshot.storage.k8s.io', kind: 'VolumeSnapshot', name: 'snap-1' }
  const withStatus = (await custom.patchNamespacedCustomObjectStatus(
    { ...base, name: 'jellyfin-dst', body: { status: { latestImage }, spec: { trigger: { manual: 'ignored' } } } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  )) as JsonObject
  t.same(field(withStatus, 'status.latestImage'), latestImage)
  t.equal(field(withStatus, 'spec.trigger.manual'), 'one', 'spec is not written through /status')
  t.equal(field(withStatus, 'metadata.generation'), 1)

  const specChange = (await custom.patchNamespacedCustomObject(
    { ...base, name: 'jellyfin-dst', body: { spec: { trigger: { manual: 'two' } }, status: { latestImage: null } } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  )) as JsonObject
  t.equal(field(specChange, 'metadata.generation'), 2)
  t.same(field(specChange, 'status.latestImage'), latestImage, 'status is not written through the main resource')

  const listed = (await custom.listNamespacedCustomObject(base)) as JsonObject
  t.match(listed, { kind: 'ReplicationDestinationList', apiVersion: 'volsync.backube/v1alpha1', items: [{ kind: 'ReplicationDestination' }] })

  const noRv = await rejection(t, custom.replaceNamespacedCustomObject({ ...base, name: 'jellyfin-dst', body: rd('jellyfin-dst') }))
  t.equal(noRv.code, 422, 'custom resources need a resourceVersion on PUT')
  const noKind = await rejection(t, custom.createNamespacedCustomObject({ ...base, body: { metadata: { name: 'x' } } }))
  t.equal(noKind.code, 400)
  t.match(fake.get('replicationdestinations', 'media', 'jellyfin-dst'), { status: { latestImage } })
})

t.test('Lease contention: the second update with the same resourceVersion gets 409', async (t) => {
  const fake = await startFake(t)
  const [alice, bob] = [fake.kubeConfig().makeApiClient(CoordinationV1Api), fake.kubeConfig().makeApiClient(CoordinationV1Api)]
  await alice.createNamespacedLease({ namespace: 'media', body: { metadata: { name: 'leader' }, spec: { holderIdentity: 'nobody' } } })
  const [seenByAlice, seenByBob] = await Promise.all([
    alice.readNamespacedLease({ namespace: 'media', name: 'leader' }),
    bob.readNamespacedLease({ namespace: 'media', name: 'leader' }),
  ])
  t.equal(seenByAlice.metadata?.resourceVersion, seenByBob.metadata?.resourceVersion)
  const claim = (api: CoordinationV1Api, seen: typeof seenByAlice, who: string) =>
    api.replaceNamespacedLease({ namespace: 'media', name: 'leader', body: { ...seen, spec: { ...seen.spec, holderIdentity: who, leaseDurationSeconds: 15 } } })
  const results = await Promise.allSettled([claim(alice, seenByAlice, 'alice'), claim(bob, seenByBob, 'bob')])
  const won = results.filter((r) => r.status === 'fulfilled')
  const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected')
  t.equal(won.length, 1)
  t.equal(lost.length, 1)
  const loser = await rejection(t, Promise.reject(lost[0]!.reason))
  t.match(loser, { code: 409, status: { reason: 'Conflict', message: /^Operation cannot be fulfilled on leases.coordination.k8s.io "leader": the object has been modified/ } })
  const holder = (won[0] as PromiseFulfilledResult<typeof seenByAlice>).value.spec?.holderIdentity
  t.equal(field(fake.get('leases.coordination.k8s.io', 'media', 'leader'), 'spec.holderIdentity'), holder)
})

t.test('delete: Status for secrets, finalizers hold objects, namespaces terminate', async (t) => {
  const fake = await startFake(t)
  const core = fake.kubeConfig().makeApiClient(CoreV1Api)
  await core.createNamespacedSecret({ namespace: 'media', body: secret('plain') })
  const status = await core.deleteNamespacedSecret({ namespace: 'media', name: 'plain' })
  t.match(status, { kind: 'Status', status: 'Success', details: { name: 'plain', kind: 'secrets' } })

  await core.createNamespacedSecret({ namespace: 'media', body: { metadata: { name: 'held', finalizers: ['example.com/hold'] } } })
  await core.deleteNamespacedSecret({ namespace: 'media', name: 'held' })
  const held = await core.readNamespacedSecret({ namespace: 'media', name: 'held' })
  t.ok(held.metadata?.deletionTimestamp, 'pending deletion')

  await core.deleteNamespace({ name: 'media' })
  t.equal(field(fake.get('namespaces', undefined, 'media'), 'status.phase'), 'Terminating')
  const refused = await rejection(t, core.createNamespacedSecret({ namespace: 'media', body: secret('late') }))
  t.equal(refused.code, 403)

  await core.patchNamespacedSecret({ namespace: 'media', name: 'held', body: [{ op: 'remove', path: '/metadata/finalizers' }] })
  t.equal(fake.get('secrets', 'media', 'held'), undefined, 'removing the last finalizer deletes')
  t.equal(fake.get('namespaces', undefined, 'media'), undefined, 'an empty terminating namespace goes away')
})

t.test('an informer lists once, resumes after a graceful end, relists after 410', async (t) => {
  const fake = await startFake(t)
  const core = fake.kubeConfig().makeApiClient(CoreV1Api)
  await core.createNamespacedSecret({ namespace: 'media', body: secret('first') })
  const informer = new ListWatch<KubernetesObject>(
    '/api/v1/namespaces/media/secrets',
    new Watch(fake.kubeConfig()),
    () => core.listNamespacedSecret({ namespace: 'media' }),
    false,
    undefined,
    undefined,
    { delayFn: async () => {} }, // no reconnect backoff in tests
  )
  const added: string[] = []
  const errors: unknown[] = []
  const changed = new Condition()
  informer.on('add', (o) => {
    added.push(o.metadata?.name ?? '')
    changed.notify()
  })
  informer.on('error', (e) => {
    errors.push(e)
    changed.notify()
  })
  t.teardown(() => informer.stop())
  await informer.start()
  await fake.waitFor(() => fake.openWatches('secrets') === 1)
  t.same(added, ['first'])
  t.equal(fake.listCalls('secrets'), 1)

  await core.createNamespacedSecret({ namespace: 'media', body: secret('second') })
  await changed.until(() => informer.get('second', 'media') !== undefined)

  fake.endWatches()
  await fake.waitFor(() => fake.requests.filter((r) => r.watch).length === 2 && fake.openWatches('secrets') === 1)
  t.equal(fake.listCalls('secrets'), 1, 'resumed from its last RV without relisting')
  t.equal(fake.requests.filter((r) => r.watch)[1]!.query.resourceVersion, informer.latestResourceVersion())

  // Events it never saw are compacted away: its next watch gets 410 and it relists.
  fake.pauseWatches()
  await core.createNamespacedSecret({ namespace: 'media', body: secret('third') })
  fake.compactHistory()
  fake.endWatches()
  fake.resumeWatches()
  await fake.waitFor(() => fake.listCalls('secrets') === 2 && fake.openWatches('secrets') === 1)
  await changed.until(() => informer.get('third', 'media') !== undefined)
  t.same(added, ['first', 'second', 'third'])
  t.same(errors, [], 'neither the end nor the 410 reached the error handlers')

  // A destroyed socket is an error to ListWatch: it reports it and does not reconnect by itself.
  fake.dropWatches()
  await changed.until(() => errors.length === 1)
  t.equal(fake.openWatches('secrets'), 0)
})

t.test('makeInformer with a label selector sees only matching objects', async (t) => {
  const fake = await startFake(t)
  const core = fake.kubeConfig().makeApiClient(CoreV1Api)
  const informer = makeInformer<V1Secret>(fake.kubeConfig(), '/api/v1/namespaces/media/secrets', () => core.listNamespacedSecret({ namespace: 'media', labelSelector: 'app=x' }), 'app=x')
  const changed = new Condition()
  informer.on('add', changed.notify)
  t.teardown(() => informer.stop())
  await informer.start()
  await fake.waitFor(() => fake.openWatches('secrets') === 1)
  t.equal(fake.requests.find((r) => r.watch)?.query.labelSelector, 'app=x')
  await core.createNamespacedSecret({ namespace: 'media', body: secret('other') })
  await core.createNamespacedSecret({ namespace: 'media', body: secret('mine', { app: 'x' }) })
  await changed.until(() => informer.list('media').length === 1)
  t.same(informer.list('media').map((s) => s.metadata?.name), ['mine'])
})

t.test('webhook configurations are cluster-scoped; injected failures and discovery', async (t) => {
  const fake = await startFake(t)
  const kc = fake.kubeConfig()
  const admission = kc.makeApiClient(AdmissionregistrationV1Api)
  const created = await admission.createMutatingWebhookConfiguration({ body: { metadata: { name: 'volsync-autorestore' }, webhooks: [] } })
  t.equal(created.metadata?.namespace, undefined)
  t.equal(created.metadata?.generation, 1)
  const updated = await admission.replaceMutatingWebhookConfiguration({ name: 'volsync-autorestore', body: { ...created, webhooks: [{ name: 'a.example.com', admissionReviewVersions: ['v1'], sideEffects: 'None', clientConfig: {} }] } })
  t.equal(updated.metadata?.generation, 2)
  t.equal(fake.requests.at(-1)?.path, '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/volsync-autorestore')

  fake.injectFailure({ method: 'GET', path: /\/validatingwebhookconfigurations$/, code: 503, reason: 'ServiceUnavailable', message: 'etcd is sad' })
  const failed = await rejection(t, admission.listValidatingWebhookConfiguration())
  t.match(failed, { code: 503, status: { reason: 'ServiceUnavailable' } })
  t.same((await admission.listValidatingWebhookConfiguration()).items, [], 'only the next request fails')

  const core = kc.makeApiClient(CoreV1Api)
  const resources = await core.getAPIResources()
  t.ok(resources.resources.some((r) => r.name === 'persistentvolumeclaims/status'))
})

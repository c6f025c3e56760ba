// The live cluster-state source against the fake API server, through the real client-node; plus the
// label-selector string and the kubeconfig loading it is configured with.
import t from 'tap'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CoreV1Api, CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node'
import { ApiClusterSource, labelSelectorString, type ApiClusterSourceOptions } from '../../src/cluster/api-source.ts'
import { loadKubeConfig } from '../../src/cluster/kube-config.ts'
import type { ClusterState } from '../../src/state/cluster-state.ts'
import { FakeKubeApi } from '../support/fake-kube-api.ts'

type Test = Parameters<NonNullable<Parameters<typeof t.test>[0]>>[0]

const VOLSYNC = { group: 'volsync.backube', version: 'v1alpha1' }
const PASSWORD = 'correct-horse-battery-staple'

/** Every published state; until() re-checks on each publish. */
class Published {
  readonly states: ClusterState[] = []
  #waiters = new Set<{ predicate: (s: ClusterState) => boolean; resolve: (s: ClusterState) => void }>()

  publish = (state: ClusterState): void => {
    this.states.push(state)
    for (const w of [...this.#waiters]) {
      if (w.predicate(state)) {
        this.#waiters.delete(w)
        w.resolve(state)
      }
    }
  }

  get last(): ClusterState | undefined {
    return this.states.at(-1)
  }

  until(predicate: (s: ClusterState) => boolean): Promise<ClusterState> {
    const last = this.last
    if (last && predicate(last)) return Promise.resolve(last)
    return new Promise((resolve) => this.#waiters.add({ predicate, resolve }))
  }
}

/** JSON that shows Maps and Sets, which JSON.stringify would print as {}. */
function dump(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (v instanceof Map ? Object.fromEntries(v) : v instanceof Set ? [...v] : v))
}

function rd(name: string): object {
  return { apiVersion: 'volsync.backube/v1alpha1', kind: 'ReplicationDestination', metadata: { name, namespace: 'media' }, spec: { trigger: { manual: 'restore-once' }, kopia: { copyMethod: 'Snapshot' } } }
}

function pvc(name: string, labels: Record<string, string>): object {
  return { apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name, namespace: 'media', labels }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } }
}

async function setup(t: Test, options: ApiClusterSourceOptions = {}): Promise<{ fake: FakeKubeApi; source: ApiClusterSource; published: Published; logs: string[] }> {
  const fake = await FakeKubeApi.start()
  fake.seed({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'media' } })
  const published = new Published()
  const logs: string[] = []
  const log = { info: (o: object, m: string) => logs.push(`${m} ${JSON.stringify(o)}`), warn: (o: object, m: string) => logs.push(`${m} ${JSON.stringify(o)}`) }
  const source = new ApiClusterSource(fake.kubeConfig(), published.publish, log, { backoff: { initialMs: 5, maxMs: 20 }, publishIntervalMs: 10, ...options })
  t.teardown(async () => {
    await source.stop()
    await fake.close()
  })
  return { fake, source, published, logs }
}

t.test('the first complete sync publishes everything and flips loaded', async (t) => {
  const { fake, source, published } = await setup(t, { pvcLabelSelector: labelSelectorString({ matchExpressions: [{ key: 'backup', operator: 'Exists' }] }) })
  fake.seed(
    rd('jellyfin-dst'),
    { apiVersion: 'volsync.backube/v1alpha1', kind: 'ReplicationSource', metadata: { name: 'jellyfin', namespace: 'media' }, spec: { sourcePVC: 'jellyfin-config' } },
    pvc('jellyfin-config', { backup: 'daily' }),
    pvc('scratch', {}),
    { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'kopia', namespace: 'media' }, data: { KOPIA_PASSWORD: Buffer.from(PASSWORD).toString('base64') } },
  )
  t.equal(source.loaded, false)
  await source.start()
  const state = await published.until((s) => s.synced)
  t.equal(source.loaded, true)
  t.equal(source.lastError, null)
  t.equal(state.origin, `api-server ${fake.url}`)
  t.same([...state.namespaces], ['media'])
  t.match(state.replicationDestinations.get('media/jellyfin-dst'), { namespace: 'media', name: 'jellyfin-dst', latestImage: null, copyMethod: 'Snapshot' })
  t.match(state.replicationSources.get('media/jellyfin'), { sourcePVC: 'jellyfin-config', paused: false })
  t.same([...state.pvcs.keys()], ['media/jellyfin-config'], 'only participating PVCs are watched')
  t.type(state.pvcs.get('media/jellyfin-config')?.createdAt, 'number')
  t.same(state.secrets.get('media/kopia'), ['KOPIA_PASSWORD'])
  t.same(state.watches.map((w) => w.resource).sort(), ['namespaces', 'persistentvolumeclaims', 'replicationdestinations.volsync.backube', 'replicationsources.volsync.backube', 'secrets'])
  t.ok(state.watches.every((w) => w.lastList !== null && w.error === null && w.restarts === 0))
  t.ok(published.states.filter((s) => s.synced).length === 1 && published.states.indexOf(state) === published.states.length - 1, 'the synced state is published at once')
  await fake.waitFor(() => fake.openWatches('persistentvolumeclaims') === 1)
  t.equal(fake.requests.find((r) => r.watch && r.path === '/api/v1/persistentvolumeclaims')?.query.labelSelector, 'backup')
})

t.test('an RD gaining status.latestImage shows up in the next published state', async (t) => {
  const { fake, source, published } = await setup(t)
  fake.seed(rd('jellyfin-dst'))
  await source.start()
  const before = await published.until((s) => s.synced)
  const latestImage = { apiGroup: 'snapshot.storage.k8s.io', kind: 'VolumeSnapshot', name: 'snap-1' }
  const custom = fake.kubeConfig().makeApiClient(CustomObjectsApi)
  await custom.patchNamespacedCustomObjectStatus(
    { ...VOLSYNC, namespace: 'media', plural: 'replicationdestinations', name: 'jellyfin-dst', body: { status: { latestImage } } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  )
  const after = await published.until((s) => s.replicationDestinations.get('media/jellyfin-dst')?.latestImage !== null)
  t.same(after.replicationDestinations.get('media/jellyfin-dst')?.latestImage, latestImage)
  t.equal(before.replicationDestinations.get('media/jellyfin-dst')?.latestImage, null, 'published states are never changed afterwards')
  t.equal(after.namespaces, before.namespaces, 'unchanged resources keep their published collection')
})

t.test('a namespace created after start appears; a deleted one goes', async (t) => {
  const { fake, source, published } = await setup(t)
  await source.start()
  await published.until((s) => s.synced)
  const core = fake.kubeConfig().makeApiClient(CoreV1Api)
  await core.createNamespace({ body: { metadata: { name: 'late' } } })
  await published.until((s) => s.namespaces.has('late'))
  await core.deleteNamespace({ name: 'late' })
  await published.until((s) => !s.namespaces.has('late'))
  t.pass('both changes arrived')
})

t.test('Secrets are published as key names only; no value reaches the state or the log', async (t) => {
  const { fake, source, published, logs } = await setup(t, { secretLabelSelector: 'app.kubernetes.io/part-of=volsync' })
  const core = fake.kubeConfig().makeApiClient(CoreV1Api)
  await source.start()
  await published.until((s) => s.synced)
  const labels = { 'app.kubernetes.io/part-of': 'volsync' }
  const b64 = (s: string): string => Buffer.from(s).toString('base64')
  await core.createNamespacedSecret({ namespace: 'media', body: { metadata: { name: 'kopia', labels }, data: { KOPIA_PASSWORD: b64(PASSWORD), KOPIA_REPOSITORY: b64('s3://bucket/x') } } })
  // The fake keeps stringData as sent (the real API folds it into data): keys only, either way.
  await core.createNamespacedSecret({ namespace: 'media', body: { metadata: { name: 'plain', labels }, stringData: { RESTIC_PASSWORD: PASSWORD } } })
  await core.createNamespacedSecret({ namespace: 'media', body: { metadata: { name: 'unrelated' }, data: { token: Buffer.from(PASSWORD).toString('base64') } } })
  const state = await published.until((s) => s.secrets.has('media/kopia') && s.secrets.has('media/plain'))
  t.same(state.secrets.get('media/kopia'), ['KOPIA_PASSWORD', 'KOPIA_REPOSITORY'])
  t.same(state.secrets.get('media/plain'), ['RESTIC_PASSWORD'])
  t.equal(state.secrets.has('media/unrelated'), false, 'the label selector restricts the Secret watch')
  const text = dump(state)
  t.match(text, /KOPIA_PASSWORD/, 'the dump does show the maps')
  for (const secretText of [PASSWORD, b64(PASSWORD), 's3://bucket', b64('s3://bucket/x')]) {
    t.notOk(text.includes(secretText), `state has no ${secretText}`)
    t.notOk(logs.join('\n').includes(secretText), `log has no ${secretText}`)
  }
})

t.test('a failing list is retried, reported in health and lastError, then recovers', async (t) => {
  const { fake, source, published } = await setup(t)
  fake.injectFailure({ method: 'GET', path: '/apis/volsync.backube/v1alpha1/replicationdestinations', code: 500, message: 'etcd is sad', times: 3 })
  await source.start()
  const failing = await published.until((s) => s.watches.some((w) => w.error !== null))
  t.equal(failing.synced, false)
  t.match(failing.watches.find((w) => w.resource === 'replicationdestinations.volsync.backube'), { error: 'list: HTTP 500 InternalError: etcd is sad', lastList: null })
  const synced = await published.until((s) => s.synced)
  t.match(synced.watches.find((w) => w.resource === 'replicationdestinations.volsync.backube'), { error: null, restarts: 3 })
  t.equal(source.lastError, null)
  t.equal(source.loaded, true)
})

t.test('lastError names the failing resource while it fails', async (t) => {
  const { fake, source, published } = await setup(t)
  fake.injectFailure({ method: 'GET', path: '/api/v1/secrets', code: 403, reason: 'Forbidden', message: 'secrets is forbidden', times: 1000 })
  await source.start()
  await published.until((s) => s.watches.some((w) => w.restarts >= 2))
  t.equal(source.loaded, false)
  t.equal(source.lastError, 'secrets: list: HTTP 403 Forbidden: secrets is forbidden')
})

t.test('a dropped watch restarts and later changes still arrive; stop closes every watch', async (t) => {
  const { fake, source, published } = await setup(t)
  await source.start()
  await published.until((s) => s.synced)
  await fake.waitFor(() => fake.openWatches() === 5)
  fake.dropWatches()
  await published.until((s) => s.watches.every((w) => w.restarts === 1))
  await fake.waitFor(() => fake.openWatches() === 5)
  fake.seed(rd('later-dst'))
  await published.until((s) => s.replicationDestinations.has('media/later-dst'))
  t.ok(source.watches().every((w) => w.restarts === 1))
  await source.stop()
  await fake.waitFor(() => fake.openWatches() === 0)
  const count = published.states.length
  fake.seed(rd('after-stop'))
  t.equal(published.states.length, count, 'nothing is published after stop')
})

t.test('labelSelectorString: matchLabels and every operator', async (t) => {
  t.equal(labelSelectorString({}), '')
  t.equal(
    labelSelectorString({
      matchLabels: { app: 'jellyfin' },
      matchExpressions: [
        { key: 'tier', operator: 'In', values: ['web', 'db'] },
        { key: 'env', operator: 'NotIn', values: ['dev'] },
        { key: 'backup', operator: 'Exists' },
        { key: 'skip', operator: 'DoesNotExist' },
      ],
    }),
    'app=jellyfin,tier in (web,db),env notin (dev),backup,!skip',
  )
  t.throws(() => labelSelectorString({ matchExpressions: [{ key: 'tier', operator: 'In', values: [] }] }), /matchExpressions\[0\] \(tier In\) needs at least one value/)
})

t.test('loadKubeConfig: an explicit file, and errors that name what was tried but no secret', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'kubeconfig-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const token = 'very-secret-token-value'
  const good = join(dir, 'good.yaml')
  await writeFile(good, `apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://k8s.example:6443'}}]\nusers: [{name: u, user: {token: ${token}}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n`)
  t.equal(loadKubeConfig({ kubeconfig: good }).getCurrentCluster()?.server, 'https://k8s.example:6443')

  const broken = join(dir, 'broken.yaml')
  await writeFile(broken, `users:\n- name: u\n  user: {token: ${token}\n   bad: [\n`)
  const brokenError = t.throws(() => loadKubeConfig({ kubeconfig: broken })) as Error
  t.match(brokenError.message, /^cannot load kubeconfig .*broken\.yaml: /)
  t.notMatch(brokenError.message, token)

  const noContext = join(dir, 'empty.yaml')
  await writeFile(noContext, 'apiVersion: v1\nkind: Config\nclusters: []\n')
  t.throws(() => loadKubeConfig({ kubeconfig: noContext }), /has no current context with a cluster server/)
  t.throws(() => loadKubeConfig({ kubeconfig: join(dir, 'missing.yaml') }), /cannot load kubeconfig .*missing\.yaml: ENOENT/)

  const saved = { KUBECONFIG: process.env.KUBECONFIG, HOME: process.env.HOME, HOST: process.env.KUBERNETES_SERVICE_HOST }
  t.teardown(() => {
    for (const [key, value] of [['KUBECONFIG', saved.KUBECONFIG], ['HOME', saved.HOME], ['KUBERNETES_SERVICE_HOST', saved.HOST]] as const) {
      if (value === undefined) delete process.env[key]
      else process.env[key] = value
    }
  })
  delete process.env.KUBERNETES_SERVICE_HOST
  process.env.HOME = dir
  delete process.env.KUBECONFIG
  t.throws(() => loadKubeConfig(), /no Kubernetes API credentials found; tried: in-cluster service account \(KUBERNETES_SERVICE_HOST\/PORT not set\); .*\.kube\/config \(not found; KUBECONFIG not set\)/)
  process.env.KUBECONFIG = `${join(dir, 'nope.yaml')}:${good}`
  t.equal(loadKubeConfig().getCurrentCluster()?.server, 'https://k8s.example:6443', 'KUBECONFIG files that exist are used')
})

t.test('reconfigure: a new PVC selector lists in the background and replaces the old watch once synced; Secrets come and go with the selection', async (t) => {
  const { fake, source, published } = await setup(t, { pvcLabelSelector: 'backup', watchSecrets: false })
  fake.seed(pvc('jellyfin', { backup: 'hourly' }), pvc('grafana', { tier: 'gold' }))
  fake.seed({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'jellyfin-volsync', namespace: 'media' }, data: { KOPIA_PASSWORD: 'eA==' } })
  await source.start()
  await published.until((s) => s.synced && s.pvcs.has('media/jellyfin'))
  t.same([...published.last!.pvcs.keys()], ['media/jellyfin'])
  t.equal(published.last!.secrets.size, 0, 'no Secret watch without prewarm.requireSecret')
  t.equal(fake.openWatches('secrets'), 0)

  const listsBefore = fake.listCalls('persistentvolumeclaims')
  const rdLists = fake.listCalls('replicationdestinations')
  fake.pauseWatches() // hold the new PVC watch's events: the old state must keep serving meanwhile
  source.reconfigureWatches({ pvcLabelSelector: 'tier', watchSecrets: true })
  await fake.waitFor(() => fake.listCalls('persistentvolumeclaims') > listsBefore)
  fake.resumeWatches()
  const after = await published.until((s) => s.synced && s.pvcs.has('media/grafana') && s.secrets.size === 1)
  t.same([...after.pvcs.keys()], ['media/grafana'], 'the new selector\'s PVCs, and only them')
  t.same(after.secrets.get('media/jellyfin-volsync'), ['KOPIA_PASSWORD'], 'Secrets are watched now (key names only)')
  t.equal(fake.listCalls('replicationdestinations'), rdLists, 'the unchanged watches were not restarted')
  t.ok(published.states.every((s) => !s.synced || s.pvcs.size > 0), 'no synced state ever showed an empty PVC set during the switch')
  t.equal(source.loaded, true)

  source.reconfigureWatches({ pvcLabelSelector: 'tier', watchSecrets: false })
  await published.until((s) => s.secrets.size === 0)
  await fake.waitFor(() => fake.openWatches('secrets') === 0)
  t.equal(fake.openWatches('secrets'), 0, 'the Secret watch is closed')
})

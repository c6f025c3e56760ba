// One supervised list+watch against the fake API server, authenticated through the real client-node.
// No timed assertions: every wait is for a condition (fake.waitFor, or Changes.until on our side).
import t from 'tap'
import { CoreV1Api, type V1Secret } from '@kubernetes/client-node'
import { InformerSupervisor, backoffDelay, type InformerOptions, type KubeObject } from '../../src/cluster/informer-supervisor.ts'
import type { WatchHealth } from '../../src/state/cluster-state.ts'
import { Condition } from '../support/condition.ts'
import { FakeKubeApi } from '../support/fake-kube-api.ts'

type Test = Parameters<NonNullable<Parameters<typeof t.test>[0]>>[0]

/** Resolves waits on the supervisor's side, re-checked on every onChange. */
class Changes extends Condition {
  readonly health: WatchHealth[] = []
}

const silent = { info() {}, warn() {} }

function secret(name: string): V1Secret {
  return { metadata: { name }, data: { password: Buffer.from('hunter2').toString('base64') } }
}

/** Secrets reduced to their names; fast backoff so tests do not wait on real delays. */
async function setup(t: Test, options: Partial<InformerOptions<string>> = {}): Promise<{ fake: FakeKubeApi; core: CoreV1Api; supervisor: InformerSupervisor<string>; changes: Changes; names: () => string[] }> {
  const fake = await FakeKubeApi.start()
  fake.seed({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'media' } })
  const core = fake.kubeConfig().makeApiClient(CoreV1Api)
  const changes = new Changes()
  let supervisor: InformerSupervisor<string> | undefined
  supervisor = new InformerSupervisor<string>(fake.kubeConfig(), {
    resource: 'secrets',
    path: '/api/v1/secrets',
    reduce: (o: KubeObject) => String((o.metadata as { name?: unknown }).name),
    onChange: () => {
      if (supervisor) changes.health.push(supervisor.health())
      changes.notify()
    },
    log: silent,
    backoff: { initialMs: 5, maxMs: 20 },
    ...options,
  })
  t.teardown(async () => {
    await supervisor.stop()
    await fake.close()
  })
  return { fake, core, supervisor, changes, names: () => [...supervisor.entries()].map(([key]) => key).sort() }
}

async function started(fake: FakeKubeApi, supervisor: InformerSupervisor<string>): Promise<void> {
  supervisor.start()
  await fake.waitFor(() => fake.openWatches('secrets') === 1)
}

t.test('backoff doubles from initialMs up to maxMs, with equal jitter', async (t) => {
  const low = (): number => 0
  const high = (): number => 1
  t.same([1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, { initialMs: 1000, maxMs: 30_000 }, high)), [1000, 2000, 4000, 8000, 16000, 30000])
  t.same([1, 2, 3].map((n) => backoffDelay(n, { initialMs: 1000, maxMs: 30_000 }, low)), [500, 1000, 2000], 'never below half the step')
  t.equal(backoffDelay(1000, {}, high), 30_000, 'defaults 1 s..30 s; no overflow')
})

t.test('lists, then watches from the list resourceVersion with bookmarks; keeps reduced objects', async (t) => {
  const { fake, core, supervisor, changes, names } = await setup(t)
  await core.createNamespacedSecret({ namespace: 'media', body: secret('first') })
  t.equal(supervisor.synced, false)
  await started(fake, supervisor)
  t.equal(supervisor.synced, true)
  t.same(names(), ['media/first'])
  const watchRequest = fake.requests.find((r) => r.watch)
  t.match(watchRequest?.query, { allowWatchBookmarks: 'true', resourceVersion: fake.resourceVersion, timeoutSeconds: /^\d+$/ })
  t.equal(fake.requests.find((r) => !r.watch && r.path === '/api/v1/secrets')?.query.limit, '500', 'lists are paged')
  const health = supervisor.health()
  t.match(health, { resource: 'secrets', restarts: 0, error: null, lastEvent: null })
  t.type(health.lastList, 'number')

  const version = supervisor.version
  await core.createNamespacedSecret({ namespace: 'media', body: secret('second') })
  await changes.until(() => names().includes('media/second'))
  t.ok(supervisor.version > version, 'version moves with the objects')
  await core.deleteNamespacedSecret({ namespace: 'media', name: 'first' })
  await changes.until(() => !names().includes('media/first'))
  t.type(supervisor.health().lastEvent, 'number')
})

t.test('a bookmark counts as activity and moves the resourceVersion the next watch resumes from', async (t) => {
  const { fake, core, supervisor, changes } = await setup(t)
  await started(fake, supervisor)
  await core.createNamespace({ body: { metadata: { name: 'elsewhere' } } }) // moves the global RV only
  fake.sendBookmarks()
  await changes.until(() => supervisor.health().lastEvent !== null)
  const version = supervisor.version
  fake.endWatches()
  await fake.waitFor(() => fake.requests.filter((r) => r.watch).length === 2 && fake.openWatches('secrets') === 1)
  t.equal(fake.requests.filter((r) => r.watch)[1]!.query.resourceVersion, fake.resourceVersion)
  t.equal(fake.listCalls('secrets'), 1, 'a graceful end resumes without relisting')
  t.equal(supervisor.health().restarts, 0, 'nor counts as a restart')
  t.equal(supervisor.version, version, 'a bookmark changes no object')
})

t.test('a watch with no data for watchInactivityMs is reopened from its resourceVersion, not counted as a restart', async (t) => {
  const { fake, supervisor } = await setup(t, { watchInactivityMs: 50 })
  await started(fake, supervisor)
  await fake.waitFor(() => fake.requests.filter((r) => r.watch).length >= 3 && fake.openWatches('secrets') === 1)
  t.equal(fake.listCalls('secrets'), 1)
  t.match(supervisor.health(), { restarts: 0, error: null })
})

t.test('a dropped watch restarts from its resourceVersion and later changes still arrive', async (t) => {
  const { fake, core, supervisor, changes, names } = await setup(t)
  await started(fake, supervisor)
  fake.dropWatches()
  await changes.until(() => supervisor.health().restarts === 1)
  t.ok(changes.health.some((h) => h.error?.startsWith('watch: ')), `the drop was reported: ${JSON.stringify(changes.health.at(-1))}`)
  await fake.waitFor(() => fake.openWatches('secrets') === 1)
  await core.createNamespacedSecret({ namespace: 'media', body: secret('later') })
  await changes.until(() => names().includes('media/later'))
  t.equal(fake.listCalls('secrets'), 1, 'no relist was needed')
  t.equal(supervisor.health().error, null, 'the error clears once events flow again')
})

t.test('410 Gone after a drop: relists, and an object deleted meanwhile is gone', async (t) => {
  const { fake, core, supervisor, changes, names } = await setup(t)
  await core.createNamespacedSecret({ namespace: 'media', body: secret('keep') })
  await core.createNamespacedSecret({ namespace: 'media', body: secret('doomed') })
  await started(fake, supervisor)
  t.same(names(), ['media/doomed', 'media/keep'])
  // The DELETED event is held back, then lost with the socket; the history that held it is compacted.
  fake.pauseWatches()
  await core.deleteNamespacedSecret({ namespace: 'media', name: 'doomed' })
  fake.compactHistory()
  fake.dropWatches()
  fake.resumeWatches()
  await fake.waitFor(() => fake.listCalls('secrets') === 2 && fake.openWatches('secrets') === 1)
  await changes.until(() => !names().includes('media/doomed'))
  t.same(names(), ['media/keep'])
  t.equal(supervisor.health().restarts, 2, 'the drop, then the 410')
  await core.createNamespacedSecret({ namespace: 'media', body: secret('after') })
  await changes.until(() => names().includes('media/after'))
})

t.test('a refused watch is reported with its Status message and retried from its resourceVersion', async (t) => {
  const { fake, supervisor, changes } = await setup(t)
  await started(fake, supervisor)
  fake.injectFailure({ method: 'GET', path: '/api/v1/secrets', code: 403, reason: 'Forbidden', message: 'secrets is forbidden: User "x" cannot watch resource "secrets"', times: 2 })
  fake.endWatches()
  await changes.until(() => supervisor.health().restarts === 2)
  t.equal(changes.health.find((h) => h.error !== null)?.error, 'watch: HTTP 403 Forbidden: secrets is forbidden: User "x" cannot watch resource "secrets"')
  await fake.waitFor(() => fake.openWatches('secrets') === 1)
  await changes.until(() => supervisor.health().error === null)
  t.equal(fake.listCalls('secrets'), 1, 'no relist for a refusal')
})

t.test('410 Gone as an HTTP status relists at once, as the ERROR event does', async (t) => {
  const { fake, supervisor, changes } = await setup(t)
  await started(fake, supervisor)
  fake.injectFailure({ method: 'GET', path: '/api/v1/secrets', code: 410, reason: 'Expired', message: 'too old resource version' })
  fake.endWatches()
  await fake.waitFor(() => fake.listCalls('secrets') === 2 && fake.openWatches('secrets') === 1)
  await changes.until(() => supervisor.health().restarts === 1)
  t.match(supervisor.health(), { restarts: 1, error: null })
})

t.test('the watchdog relists when a live watch goes quiet', async (t) => {
  const { fake, core, supervisor, changes, names } = await setup(t, { watchdogMs: 200 })
  await started(fake, supervisor)
  fake.pauseWatches() // the watch stays open but delivers nothing, also after a reconnect
  await core.createNamespacedSecret({ namespace: 'media', body: secret('unseen') })
  await changes.until(() => names().includes('media/unseen'))
  t.ok(fake.listCalls('secrets') >= 2, 'it came from a relist')
  t.ok(supervisor.health().restarts >= 1, 'a watchdog relist counts as a restart')
  t.equal(supervisor.health().error, null)
})

t.test('a periodic full relist runs with no fault at all', async (t) => {
  const { fake, supervisor, names } = await setup(t, { relistMs: 50 })
  fake.seed({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'steady', namespace: 'media' } })
  await started(fake, supervisor)
  await fake.waitFor(() => fake.listCalls('secrets') >= 3)
  t.same(names(), ['media/steady'])
  t.match(supervisor.health(), { restarts: 0, error: null })
})

t.test('a failing list is retried with backoff, reports its error, then recovers', async (t) => {
  const { fake, supervisor, changes, names } = await setup(t)
  fake.seed({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'there', namespace: 'media' } })
  fake.injectFailure({ method: 'GET', path: '/api/v1/secrets', code: 500, message: 'etcd is sad', times: 2 })
  supervisor.start()
  await changes.until(() => supervisor.synced)
  t.same(changes.health.filter((h) => h.error !== null).map((h) => [h.error, h.restarts]), [
    ['list: HTTP 500 InternalError: etcd is sad', 1],
    ['list: HTTP 500 InternalError: etcd is sad', 2],
  ])
  t.equal(fake.requests.filter((r) => !r.watch && r.path === '/api/v1/secrets').length, 3)
  t.match(supervisor.health(), { error: null, restarts: 2 })
  t.same(names(), ['media/there'])
})

t.test('a label selector goes to the list and the watch; stop closes the watch', async (t) => {
  const { fake, core, supervisor, changes, names } = await setup(t, { labelSelector: 'app=x' })
  await core.createNamespacedSecret({ namespace: 'media', body: { metadata: { name: 'mine', labels: { app: 'x' } } } })
  await core.createNamespacedSecret({ namespace: 'media', body: secret('other') })
  await started(fake, supervisor)
  t.same(names(), ['media/mine'])
  t.equal(fake.requests.find((r) => r.watch)?.query.labelSelector, 'app=x')
  await core.patchNamespacedSecret({ namespace: 'media', name: 'mine', body: [{ op: 'replace', path: '/metadata/labels/app', value: 'y' }] })
  await changes.until(() => names().length === 0)
  await supervisor.stop()
  await fake.waitFor(() => fake.openWatches() === 0)
  t.pass('no watch left open')
})

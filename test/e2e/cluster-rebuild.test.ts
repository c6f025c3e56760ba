// Issue "live cluster", done when: with the fake API server, a cluster rebuild plays out end to
// end. The real runtime (TLS webhook, catalog poller over restic repositories that restic wrote,
// API-server watch, Lease, pre-warm controller, missed-restore guard) runs in this process against
// test/support/fake-kube-api.ts through the real @kubernetes/client-node.
import { cp, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { stringify } from 'yaml'
import { FakeKubeApi, field, type JsonObject } from '../support/fake-kube-api.ts'
import { RESTIC_FIXTURES, RESTIC_PASSWORD } from '../support/restic-layout.ts'
import { decodePatch, eventually, httpGet, makeCertificates, startTestRuntime, tempDir, WebhookClient, type Review } from '../support/live-webhook.ts'

/** Bound on every wait below: it only guards against a hang (a busy 2-core CI machine is slow). */
const WAIT_MS = 30_000

const dir = await tempDir(t, 'rebuild')
// The backups: media/jellyfin (3 snapshots), home/paperless (1), media/bazarr (initialized, none).
const repos = join(dir, 'repos')
await cp(join(RESTIC_FIXTURES, 'v2'), join(repos, 'media', 'jellyfin'), { recursive: true })
await cp(join(RESTIC_FIXTURES, 'v1'), join(repos, 'home', 'paperless'), { recursive: true })
await cp(join(RESTIC_FIXTURES, 'empty'), join(repos, 'media', 'bazarr'), { recursive: true })
await writeFile(join(dir, 'password'), RESTIC_PASSWORD)

const fake = await FakeKubeApi.start()
t.teardown(() => fake.close())
const namespace = (name: string) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } })
fake.seed(namespace('volsync-system'), namespace('media'))
// A PVC that slipped through while the webhook was down: no dataSourceRef, created after its backup.
fake.seed({
  apiVersion: 'v1', kind: 'PersistentVolumeClaim',
  metadata: { name: 'jellyfin-cache', namespace: 'media', uid: 'uid-cache', labels: { backup: 'hourly' }, creationTimestamp: new Date().toISOString() },
  spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
}, {
  apiVersion: 'volsync.backube/v1alpha1', kind: 'ReplicationSource',
  metadata: { name: 'jellyfin-cache', namespace: 'media' }, spec: { sourcePVC: 'jellyfin-cache', restic: { repository: 'x' } },
})
await cp(join(RESTIC_FIXTURES, 'v1'), join(repos, 'media', 'jellyfin-cache'), { recursive: true })

// A kubeconfig file as kubectl writes it, pointing at the fake.
await writeFile(join(dir, 'kubeconfig'), stringify({
  apiVersion: 'v1', kind: 'Config', 'current-context': 'fake',
  // client-node refuses plain HTTP unless TLS verification is off; the fake speaks HTTP.
  clusters: [{ name: 'fake', cluster: { server: fake.url, 'insecure-skip-tls-verify': true } }],
  users: [{ name: 'fake', user: { token: 'fake-token' } }],
  contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'fake' } }],
}))
const certs = await makeCertificates(join(dir, 'certs'))
const runtime = await startTestRuntime(t, {
  yaml: stringify({
    server: { host: '127.0.0.1', port: 0, metricsHost: '127.0.0.1', metricsPort: 0, tls: { certFile: certs.tlsCert, keyFile: certs.tlsKey } },
    kube: { kubeconfig: join(dir, 'kubeconfig'), namespace: 'volsync-system', leaseDuration: '3s', renewDeadline: '2s', retryPeriod: '200ms', identity: 'replica-a' },
    catalog: { interval: '60s', sources: [{ name: 'nas', type: 's3-prefix', filesystem: { path: repos }, resticPasswordFile: join(dir, 'password') }] },
    prewarm: { template: { restic: { repository: '{{pvc}}-restic-secret', capacity: '1Gi', storageClassName: 'fast', accessModes: ['ReadWriteOnce'] } } },
    guard: { pauseSource: true },
    log: { level: 'silent' },
  }),
})
const client = new WebhookClient(runtime.webhookUrl, { ca: certs.ca })
t.teardown(() => client.close())

const rd = (ns: string, name: string) => fake.get('replicationdestinations', ns, name)
function pvcReview(ns: string, name: string): Review {
  return {
    apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview',
    request: {
      uid: `uid-${ns}-${name}`, kind: { group: '', version: 'v1', kind: 'PersistentVolumeClaim' }, resource: { group: '', version: 'v1', resource: 'persistentvolumeclaims' },
      operation: 'CREATE', namespace: ns, name, userInfo: { username: 'flux' }, dryRun: false,
      object: { apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name, namespace: ns, labels: { backup: 'hourly' } }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } },
    },
  } as unknown as Review
}
const decisionOf = async (ns: string, name: string) => {
  const { review } = await client.review('/mutate', pvcReview(ns, name))
  const annotations = decodePatch(review).find((op) => op.path === '/metadata/annotations')
  return { review, decision: (annotations && 'value' in annotations ? (annotations.value as Record<string, string>)['volsync-autorestore.io/decision'] : undefined) }
}

t.test('the leader creates and triggers an RD for every backup whose namespace exists, and only those', async (t) => {
  await eventually('replica-a to lead', async () => (field(fake.get('leases.coordination.k8s.io', 'volsync-system', 'volsync-autorestore') ?? {}, 'spec.holderIdentity') === 'replica-a' ? true : undefined), WAIT_MS)
  const jellyfin = await eventually('jellyfin-dst to be created', async () => rd('media', 'jellyfin-dst'), WAIT_MS)
  t.match(field(jellyfin, 'spec.trigger.manual'), /^prewarm-\d+$/, 'a manual trigger: it restores once, now')
  t.equal(field(jellyfin, 'spec.restic.copyMethod'), 'Snapshot')
  t.equal(field(jellyfin, 'spec.restic.repository'), 'jellyfin-restic-secret', 'the template, rendered for the PVC')
  t.equal((field(jellyfin, 'metadata.labels') as Record<string, string>)['app.kubernetes.io/managed-by'], 'volsync-autorestore')
  t.equal(rd('media', 'bazarr-dst'), undefined, 'an initialized repository without a snapshot gets no RD')
  t.equal(rd('home', 'paperless-dst'), undefined, 'namespace home does not exist yet')
})

t.test('a PVC created before its RD is ready waits, and its RD is created at once', async (t) => {
  fake.seed(namespace('home'))
  await eventually('the namespace to reach the snapshot', async () => (runtime.store.current.cluster.namespaces.has('home') ? true : undefined), WAIT_MS)
  const { review, decision } = await decisionOf('home', 'paperless')
  t.equal(decision, 'wait')
  t.match(review.response.warnings?.[0], /waiting for ReplicationDestination paperless-dst to restore home\/paperless/)
  t.same(decodePatch(review)[0], { op: 'add', path: '/spec/dataSourceRef', value: { apiGroup: 'volsync.backube', kind: 'ReplicationDestination', name: 'paperless-dst' } })
  const created = await eventually('the nudged pre-warm to create paperless-dst', async () => rd('home', 'paperless-dst'), WAIT_MS)
  t.match(field(created, 'spec.trigger.manual'), /^prewarm-/)

  // The RD gains its latestImage while the PVC waits: the next decision for it (a retry, or the
  // populator's view) is a restore from that image.
  fake.seed({ ...created, status: { lastManualSync: field(created, 'spec.trigger.manual'), latestImage: { apiGroup: 'snapshot.storage.k8s.io', kind: 'VolumeSnapshot', name: 'volsync-paperless-dst-dest-1' } } })
  await eventually('the synced RD to reach the snapshot', async () => (runtime.store.current.cluster.replicationDestinations.get('home/paperless-dst')?.latestImage ? true : undefined), WAIT_MS)
  t.equal((await decisionOf('home', 'paperless')).decision, 'restore')
})

t.test('a PVC created after its RD synced is restored; a fresh app gets nothing', async (t) => {
  await fake.waitFor(() => rd('media', 'jellyfin-dst') !== undefined)
  const current = rd('media', 'jellyfin-dst') as JsonObject
  fake.seed({ ...current, status: { lastManualSync: field(current, 'spec.trigger.manual'), latestImage: { apiGroup: 'snapshot.storage.k8s.io', kind: 'VolumeSnapshot', name: 'volsync-jellyfin-dst-dest-1' } } })
  await eventually('the synced RD to reach the snapshot', async () => (runtime.store.current.cluster.replicationDestinations.get('media/jellyfin-dst')?.latestImage ? true : undefined), WAIT_MS)
  const restored = await decisionOf('media', 'jellyfin')
  t.equal(restored.decision, 'restore')
  t.same(decodePatch(restored.review)[0]?.path, '/spec/dataSourceRef')
  const fresh = await decisionOf('media', 'newapp')
  t.equal(fresh.decision, 'fresh')
  t.same(decodePatch(fresh.review).map((op) => op.path), ['/metadata/annotations'], 'no dataSourceRef for an app without a backup')
  t.equal(rd('media', 'newapp-dst'), undefined)
})

t.test('a PVC that slipped through is reported and its ReplicationSource paused', async (t) => {
  const event = await eventually('a MissedRestore Event', async () => fake.list('events', 'media').find((e) => field(e, 'reason') === 'MissedRestore'), WAIT_MS)
  t.equal(field(event, 'involvedObject.name'), 'jellyfin-cache')
  const paused = await eventually('the ReplicationSource to be paused', async () => (field(fake.get('replicationsources', 'media', 'jellyfin-cache') ?? {}, 'spec.paused') === true ? true : undefined), WAIT_MS)
  t.ok(paused)
  const status = JSON.parse((await httpGet(`${runtime.metricsUrl}/status`, { accept: 'application/json' })).text) as { pvcs: Array<{ name: string; missedRestore: boolean }> }
  t.same(status.pvcs.filter((p) => p.missedRestore).map((p) => p.name), ['jellyfin-cache'])
  const metrics = (await httpGet(`${runtime.metricsUrl}/metrics`)).text
  t.match(metrics, /^volsync_autorestore_missed_restores 1$/m)
  t.match(metrics, /^volsync_autorestore_leader 1$/m)
})

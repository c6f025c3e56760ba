// Issue "live cluster", done when: with the fake API server, a cluster rebuild plays out end to
// end. The real runtime (TLS webhook, catalog poller over restic repositories that restic wrote,
// API-server watch, Lease, pre-warm controller, missed-restore guard) runs in this process against
// test/support/fake-kube-api.ts through the real @kubernetes/client-node.
//
// The fake enforces RBAC: exactly the rules of permissions(config), anything else is 403 and
// recorded. Each variant ends by asserting that nothing was forbidden, so least privilege is
// proved by running, for three configs: the defaults; prewarm.requireSecret + guard.pauseSource
// (Secrets watched, ReplicationSources patched); and self-managed TLS (its Secret and caBundles).
import { cp, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { stringify } from 'yaml'
import { parseConfig } from '../../src/config/load.ts'
import { permissions, rbacRules } from '../../src/server/permissions.ts'
import { describeRequest, FakeKubeApi, field, type JsonObject } from '../support/fake-kube-api.ts'
import { RESTIC_FIXTURES, RESTIC_PASSWORD } from '../support/restic-layout.ts'
import { decodePatch, eventually, httpGet, makeCertificates, startTestRuntime, tempDir, WebhookClient, type Review } from '../support/live-webhook.ts'

/** Bound on every wait below: it only guards against a hang (a busy 2-core CI machine is slow). */
const WAIT_MS = 30_000

type Test = Parameters<NonNullable<Parameters<typeof t.test>[0]>>[0]

interface Variant {
  readonly name: string
  readonly requireSecret?: boolean
  readonly pauseSource?: boolean
  readonly selfManagedTls?: boolean
}

const namespace = (name: string) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } })
const webhookConfig = (kind: string) => ({ apiVersion: 'admissionregistration.k8s.io/v1', kind, metadata: { name: 'volsync-autorestore' }, webhooks: [{ name: 'pvc.volsync-autorestore.io', admissionReviewVersions: ['v1'], sideEffects: 'NoneOnDryRun', clientConfig: { service: { name: 'volsync-autorestore', namespace: 'volsync-system', path: '/mutate' } } }] })
const resticSecret = (ns: string, pvc: string) => ({ apiVersion: 'v1', kind: 'Secret', metadata: { name: `${pvc}-restic-secret`, namespace: ns }, stringData: { RESTIC_REPOSITORY: `s3:http://garage:3900/volsync/${ns}/${pvc}`, RESTIC_PASSWORD: 'x' } })

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

async function rebuild(t: Test, variant: Variant): Promise<void> {
  const dir = await tempDir(t, 'rebuild')
  // The backups: media/jellyfin (3 snapshots), home/paperless (1), media/bazarr (initialized, none).
  const repos = join(dir, 'repos')
  await cp(join(RESTIC_FIXTURES, 'v2'), join(repos, 'media', 'jellyfin'), { recursive: true })
  await cp(join(RESTIC_FIXTURES, 'v1'), join(repos, 'home', 'paperless'), { recursive: true })
  await cp(join(RESTIC_FIXTURES, 'empty'), join(repos, 'media', 'bazarr'), { recursive: true })
  await cp(join(RESTIC_FIXTURES, 'v1'), join(repos, 'media', 'jellyfin-cache'), { recursive: true })
  await writeFile(join(dir, 'password'), RESTIC_PASSWORD)

  const certs = variant.selfManagedTls ? undefined : await makeCertificates(join(dir, 'certs'))
  const yaml = stringify({
    server: { host: '127.0.0.1', port: 0, metricsHost: '127.0.0.1', metricsPort: 0, tls: certs ? { certFile: certs.tlsCert, keyFile: certs.tlsKey } : { selfManaged: {} } },
    kube: { kubeconfig: join(dir, 'kubeconfig'), namespace: 'volsync-system', leaseDuration: '3s', renewDeadline: '2s', retryPeriod: '200ms', identity: 'replica-a' },
    catalog: { interval: '60s', sources: [{ name: 'nas', type: 's3-prefix', filesystem: { path: repos }, resticPasswordFile: join(dir, 'password') }] },
    prewarm: { template: { restic: { repository: '{{pvc}}-restic-secret', capacity: '1Gi', storageClassName: 'fast', accessModes: ['ReadWriteOnce'] } }, ...(variant.requireSecret ? { requireSecret: '{{pvc}}-restic-secret' } : {}) },
    guard: { pauseSource: variant.pauseSource ?? false },
    log: { level: 'silent' },
  })
  const rules = rbacRules(permissions(parseConfig(yaml, 'test config')))
  const fake = await FakeKubeApi.start({ rbac: rules })
  t.teardown(() => fake.close())
  fake.seed(namespace('volsync-system'), namespace('media'))
  if (variant.selfManagedTls) fake.seed(webhookConfig('MutatingWebhookConfiguration'), webhookConfig('ValidatingWebhookConfiguration'))
  if (variant.requireSecret) fake.seed(resticSecret('media', 'jellyfin'))
  // A PVC that slipped through while the webhook was down: no dataSourceRef, created after its backup.
  fake.seed({
    apiVersion: 'v1', kind: 'PersistentVolumeClaim',
    metadata: { name: 'jellyfin-cache', namespace: 'media', uid: 'uid-cache', labels: { backup: 'hourly' }, creationTimestamp: new Date().toISOString() },
    spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
  }, {
    apiVersion: 'volsync.backube/v1alpha1', kind: 'ReplicationSource',
    metadata: { name: 'jellyfin-cache', namespace: 'media' }, spec: { sourcePVC: 'jellyfin-cache', restic: { repository: 'x' } },
  })
  await fake.writeKubeconfig(join(dir, 'kubeconfig'))
  const runtime = await startTestRuntime(t, { yaml })
  const ca = certs?.ca ?? Buffer.from(await eventually('the caBundle the leader wrote', async () => {
    const webhooks = field(fake.get('mutatingwebhookconfigurations', '', 'volsync-autorestore')!, 'webhooks') as Array<{ clientConfig: { caBundle?: string } }>
    return webhooks[0]?.clientConfig.caBundle
  }, WAIT_MS), 'base64').toString('utf8')
  const client = new WebhookClient(runtime.webhookUrl, { ca })
  t.teardown(() => client.close())

  const rd = (ns: string, name: string) => fake.get('replicationdestinations', ns, name)
  const decisionOf = async (ns: string, name: string) => {
    const { review } = await client.review('/mutate', pvcReview(ns, name))
    const annotations = decodePatch(review).find((op) => op.path === '/metadata/annotations')
    return { review, decision: (annotations && 'value' in annotations ? (annotations.value as Record<string, string>)['volsync-autorestore.io/decision'] : undefined) }
  }

  await t.test('the leader creates and triggers an RD for every backup whose namespace exists, and only those', async (t) => {
    await eventually('replica-a to lead', async () => (field(fake.get('leases.coordination.k8s.io', 'volsync-system', 'volsync-autorestore') ?? {}, 'spec.holderIdentity') === 'replica-a' ? true : undefined), WAIT_MS)
    const jellyfin = await eventually('jellyfin-dst to be created', async () => rd('media', 'jellyfin-dst'), WAIT_MS)
    t.match(field(jellyfin, 'spec.trigger.manual'), /^prewarm-\d+$/, 'a manual trigger: it restores once, now')
    t.equal(field(jellyfin, 'spec.restic.copyMethod'), 'Snapshot')
    t.equal(field(jellyfin, 'spec.restic.repository'), 'jellyfin-restic-secret', 'the template, rendered for the PVC')
    t.equal((field(jellyfin, 'metadata.labels') as Record<string, string>)['app.kubernetes.io/managed-by'], 'volsync-autorestore')
    t.equal(rd('media', 'bazarr-dst'), undefined, 'an initialized repository without a snapshot gets no RD')
    t.equal(rd('home', 'paperless-dst'), undefined, 'namespace home does not exist yet')
  })

  await t.test('a PVC created before its RD is ready waits, and its RD is created at once', async (t) => {
    fake.seed(namespace('home'))
    if (variant.requireSecret) fake.seed(resticSecret('home', 'paperless'))
    await eventually('the namespace to reach the snapshot', async () => (runtime.store.current.cluster.namespaces.has('home') ? true : undefined), WAIT_MS)
    if (variant.requireSecret) await eventually('the Secret to reach the snapshot', async () => (runtime.store.current.cluster.secrets.has('home/paperless-restic-secret') ? true : undefined), WAIT_MS)
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

  await t.test('a PVC created after its RD synced is restored; a fresh app gets nothing', async (t) => {
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

  await t.test(`a PVC that slipped through is reported${variant.pauseSource ? ' and its ReplicationSource paused' : ''}`, async (t) => {
    const event = await eventually('a MissedRestore Event', async () => fake.list('events', 'media').find((e) => field(e, 'reason') === 'MissedRestore'), WAIT_MS)
    t.equal(field(event, 'involvedObject.name'), 'jellyfin-cache')
    if (variant.pauseSource) {
      const paused = await eventually('the ReplicationSource to be paused', async () => (field(fake.get('replicationsources', 'media', 'jellyfin-cache') ?? {}, 'spec.paused') === true ? true : undefined), WAIT_MS)
      t.ok(paused)
    } else {
      t.equal(field(fake.get('replicationsources', 'media', 'jellyfin-cache') ?? {}, 'spec.paused'), undefined, 'without guard.pauseSource the source is left alone')
    }
    const status = JSON.parse((await httpGet(`${runtime.metricsUrl}/status`, { accept: 'application/json' })).text) as { pvcs: Array<{ name: string; missedRestore: boolean }> }
    t.same(status.pvcs.filter((p) => p.missedRestore).map((p) => p.name), ['jellyfin-cache'])
    const metrics = (await httpGet(`${runtime.metricsUrl}/metrics`)).text
    t.match(metrics, /^volsync_autorestore_missed_restores 1$/m)
    t.match(metrics, /^volsync_autorestore_leader 1$/m)
  })

  await t.test('nothing the server did was forbidden by the RBAC of permissions(config)', async (t) => {
    t.strictSame(fake.forbidden.map(describeRequest), [])
    t.ok(fake.requests.some((r) => r.status !== undefined && r.status < 300 && r.method !== 'GET'), 'the server did write (so the check saw writes)')
  })
}

const VARIANTS: readonly Variant[] = [
  { name: 'defaults' },
  { name: 'prewarm.requireSecret and guard.pauseSource', requireSecret: true, pauseSource: true },
  { name: 'self-managed TLS', selfManagedTls: true },
]
for (const variant of VARIANTS) await t.test(`cluster rebuild with RBAC enforced: ${variant.name}`, (t) => rebuild(t, variant))

t.test('permissions(config) grants only what the config uses', async (t) => {
  const minimal = rbacRules(permissions(parseConfig('kube: { namespace: volsync-system }\n', 'minimal')))
  const resources = (rules: typeof minimal.cluster) => rules.flatMap((r) => r.resources.map((res) => `${res}:${[...r.verbs].sort().join(',')}`)).sort()
  t.same(resources(minimal.cluster), [
    'events:create', 'namespaces:list,watch', 'persistentvolumeclaims:list,watch',
    'replicationdestinations:create,patch', 'replicationdestinations:list,watch', 'replicationsources:list,watch',
  ], 'no Secret, no ReplicationSource write, no webhook configuration by default')
  t.same(resources(minimal.namespaced['volsync-system'] ?? []), ['leases:create', 'leases:get,update'])
  const offline = permissions(parseConfig('state: { directory: examples/state }\n', 'offline'))
  t.same(offline.grants, [], 'offline it talks to no API server')
  const noPrewarm = rbacRules(permissions(parseConfig('prewarm: { enabled: false }\n', 'no-prewarm')))
  t.notOk(noPrewarm.cluster.some((r) => r.verbs.includes('create') && r.resources.includes('replicationdestinations')), 'no RD create with pre-warm off')
})

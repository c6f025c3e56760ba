// Issue "one lifecycle for every loop", done when: a running server's config file changes
// catalog.interval, then a source's S3 endpoint, then pvc.selector, then prewarm.requireSecret,
// then a restart-only key. After each change: no known backup ever turned unknown (every published
// snapshot is checked), /readyz stayed 200 (readiness is checked on every publish, and over HTTP),
// the cluster watches match the new config, and the decisions equal those of a fresh start with
// the same file. Real parts: the runtime in-process over TLS, the catalog against two s3rver
// processes holding restic-written repositories, the API server as the faithful fake.
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'

type Test = Parameters<NonNullable<Parameters<typeof t.test>[0]>>[0]
import { stringify } from 'yaml'
import { lookupBackup } from '../../src/admission/backup-lookup.ts'
import { createLogger } from '../../src/log.ts'
import { readiness } from '../../src/server/readiness.ts'
import type { Runtime } from '../../src/server/runtime.ts'
import { FakeKubeApi } from '../support/fake-kube-api.ts'
import { decodePatch, eventually, httpGet, LogSink, makeCertificates, startTestRuntime, tempDir, WebhookClient, type Review } from '../support/live-webhook.ts'
import { uploadPerPvcLayout } from '../support/restic-layout.ts'
import { LocalS3, S3RVER_KEY } from '../support/s3-server.ts'

/** Bound on every wait below: it only guards against a hang (a busy 2-core CI machine is slow). */
const WAIT_MS = 30_000

const dir = await tempDir(t, 'reload')
const certs = await makeCertificates(join(dir, 'certs'))
// Two S3 servers with the same backups: the source's endpoint moves from one to the other.
const [s3a, s3b] = await Promise.all([LocalS3.start(), LocalS3.start()])
t.teardown(() => Promise.all([s3a.close(), s3b.close()]))
for (const s3 of [s3a, s3b]) {
  await s3.createBucket('volsync-backups')
  await uploadPerPvcLayout(s3, 'volsync-backups', 'volsync/')
}

const fake = await FakeKubeApi.start()
t.teardown(() => fake.close())
const pvc = (name: string, labels: Record<string, string>) => ({ apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name, namespace: 'media', labels }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } })
fake.seed(
  { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'volsync-system' } },
  { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'media' } },
  pvc('jellyfin', { backup: 'hourly' }),
  pvc('grafana', { tier: 'gold' }),
  { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'jellyfin-volsync', namespace: 'media' }, stringData: { RESTIC_PASSWORD: 'x' } },
)
await fake.writeKubeconfig(join(dir, 'kubeconfig'))

interface Knobs {
  interval: string
  endpoint: string
  selector: Record<string, unknown>
  requireSecret?: string
  leaseName: string
}
const knobs: Knobs = { interval: '60s', endpoint: s3a.endpoint, selector: { matchExpressions: [{ key: 'backup', operator: 'Exists' }] }, leaseName: 'volsync-autorestore' }
const configText = (k: Knobs): string => stringify({
  server: { host: '127.0.0.1', port: 0, metricsHost: '127.0.0.1', metricsPort: 0, tls: { certFile: certs.tlsCert, keyFile: certs.tlsKey } },
  kube: { kubeconfig: join(dir, 'kubeconfig'), namespace: 'volsync-system', leaseName: k.leaseName, leaseDuration: '3s', renewDeadline: '2s', retryPeriod: '200ms' },
  pvc: { selector: k.selector },
  catalog: {
    interval: k.interval,
    sources: [{ name: 'garage', type: 's3-prefix', s3: { endpoint: k.endpoint, bucket: 'volsync-backups', prefix: 'volsync/', region: 'garage', accessKeyId: S3RVER_KEY, secretAccessKey: S3RVER_KEY, requestTimeout: '5s', maxAttempts: 1 } }],
  },
  // Pre-warm writes RDs, which would change the decisions under comparison; it is not what is tested here.
  prewarm: { enabled: false, ...(k.requireSecret ? { requireSecret: k.requireSecret } : {}) },
  log: { level: 'info' },
})
const file = join(dir, 'config.yaml')
await writeFile(file, configText(knobs))
const sink = new LogSink()
const runtime = await startTestRuntime(t, { yaml: configText(knobs), configFile: file, log: createLogger('info', sink) })
const client = new WebhookClient(runtime.webhookUrl, { ca: certs.ca })
t.teardown(() => client.close())
await eventually('the first catalog poll and cluster sync', async () => (readiness(runtime.supervisor.health()).ready ? true : undefined), WAIT_MS)

// From here on, every published snapshot is checked: a known backup never turns unknown, and the
// server never stops being ready.
const violations: string[] = []
runtime.store.subscribe((snapshot) => {
  const answer = lookupBackup(snapshot.catalog, 'media', 'jellyfin', Date.now(), snapshot.staleAfterMs)
  if (answer.state !== 'backup') violations.push(`generation ${snapshot.generation}: media/jellyfin is ${answer.state}`)
  const ready = readiness(runtime.supervisor.health())
  if (!ready.ready) violations.push(`generation ${snapshot.generation}: not ready: ${ready.pending.join('; ')}`)
})

function pvcReview(name: string, labels: Record<string, string>): Review {
  return {
    apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview',
    request: {
      uid: `uid-${name}`, kind: { group: '', version: 'v1', kind: 'PersistentVolumeClaim' }, resource: { group: '', version: 'v1', resource: 'persistentvolumeclaims' },
      operation: 'CREATE', namespace: 'media', name, userInfo: { username: 'flux' }, dryRun: false,
      object: pvc(name, labels),
    },
  } as unknown as Review
}
const REVIEWS = [
  pvcReview('jellyfin', { backup: 'hourly' }), pvcReview('sonarr', { backup: 'daily' }), pvcReview('bazarr', { backup: 'hourly' }),
  pvcReview('jellyfin', { tier: 'gold' }), pvcReview('newapp', { tier: 'gold' }),
]
async function decisions(target: Runtime, c: WebhookClient): Promise<unknown[]> {
  void target
  const out: unknown[] = []
  for (const review of REVIEWS) {
    const { review: answer } = await c.review('/mutate', review)
    out.push({ allowed: answer.response.allowed, patch: decodePatch(answer), warnings: answer.response.warnings ?? [] })
  }
  return out
}
/** The same file, started fresh (no reload history): its decisions are the reference. */
async function freshDecisions(t: Test): Promise<unknown[]> {
  const fresh = await startTestRuntime(t, { yaml: configText(knobs).replace('level: info', 'level: silent') })
  const c = new WebhookClient(fresh.webhookUrl, { ca: certs.ca })
  try {
    await eventually('the fresh server to be ready', async () => (readiness(fresh.supervisor.health()).ready ? true : undefined), WAIT_MS)
    return await decisions(fresh, c)
  } finally {
    c.close()
    await fresh.close()
  }
}
async function change(update: Partial<Knobs>, applied: (r: Runtime) => boolean): Promise<void> {
  Object.assign(knobs, update)
  await writeFile(file, configText(knobs))
  await eventually('the new config to be applied', async () => (applied(runtime) ? true : undefined), WAIT_MS)
}
async function afterEach(t: Test): Promise<void> {
  t.strictSame(violations, [], 'no published snapshot lost the known backup or readiness')
  const ready = await client.request('GET', '/readyz')
  t.equal(ready.status, 200, '/readyz is 200')
  t.strictSame(await decisions(runtime, client), await freshDecisions(t), 'decisions equal those of a fresh start with the same file')
}
const watchRequests = (resource: string) => fake.requests.filter((r) => r.watch && r.path === `/api/v1/${resource}`)

t.test('catalog.interval: applied without re-polling or forgetting', async (t) => {
  const pollsBefore = runtime.store.current.catalog.sources[0]!.lastSuccess
  await change({ interval: '30s' }, (r) => r.store.current.config.catalog.interval === '30s')
  t.equal(runtime.store.current.catalog.sources[0]!.lastSuccess, pollsBefore, 'an unchanged source is not re-polled')
  await afterEach(t)
})

t.test('a source\'s S3 endpoint: its entries stay known until the new endpoint answers', async (t) => {
  const before = runtime.store.current.catalog.sources[0]!
  await change({ endpoint: s3b.endpoint }, (r) => r.store.current.config.catalog.sources[0]!.type === 's3-prefix' && (r.store.current.catalog.sources[0]!.lastSuccess ?? 0) > (before.lastSuccess ?? 0))
  // Without a password the newest time is the upload time, which differs between the two servers.
  const backups = (entries: typeof before.entries) => entries.map((e) => [e.namespace, e.pvc, e.kind, e.snapshots])
  t.same(backups(runtime.store.current.catalog.sources[0]!.entries), backups(before.entries), 'the new endpoint holds the same backups')
  await afterEach(t)
})

t.test('pvc.selector: the PVC watch follows it; the other watches are not restarted', async (t) => {
  const rdLists = fake.listCalls('replicationdestinations')
  await change({ selector: { matchLabels: { tier: 'gold' } } }, (r) => r.store.current.cluster.pvcs.has('media/grafana') && !r.store.current.cluster.pvcs.has('media/jellyfin'))
  t.equal(watchRequests('persistentvolumeclaims').at(-1)?.query.labelSelector, 'tier=gold', 'the PVC watch now uses the new selector')
  await fake.waitFor(() => fake.openWatches('persistentvolumeclaims') === 1)
  t.equal(fake.openWatches('persistentvolumeclaims'), 1, 'the old PVC watch is closed')
  t.equal(fake.listCalls('replicationdestinations'), rdLists, 'the RD watch was not restarted')
  await afterEach(t)
})

t.test('prewarm.requireSecret: Secrets are watched from now on (key names only)', async (t) => {
  t.equal(fake.openWatches('secrets'), 0, 'no Secret watch before')
  await change({ requireSecret: '{{pvc}}-volsync' }, (r) => r.store.current.cluster.secrets.has('media/jellyfin-volsync'))
  t.same(runtime.store.current.cluster.secrets.get('media/jellyfin-volsync'), ['RESTIC_PASSWORD'])
  t.equal(fake.openWatches('secrets'), 1)
  await afterEach(t)
})

t.test('a restart-only key: named in the log and in /status, and not applied', async (t) => {
  const named = () => sink.lines.find((l) => /config key kube changed: it takes effect after a restart/.test(String(l.msg)))
  await change({ leaseName: 'renamed' }, () => named() !== undefined)
  t.equal(named()?.key, 'kube', 'the log line names the key (an innocent field called key is not redacted)')
  const status = JSON.parse((await httpGet(`${runtime.metricsUrl}/status`, { accept: 'application/json' })).text) as { config: { restartPending: string[] }; summary: { warnings: string[] } }
  t.same(status.config.restartPending, ['kube'])
  t.ok(status.summary.warnings.some((w) => /config key kube changed in the file: it takes effect after a restart/.test(w)), 'a /status warning names it')
  t.equal(runtime.store.current.config.kube.leaseName, 'volsync-autorestore', 'the config in force keeps the running Lease name')
  t.strictSame(violations, [], 'no published snapshot lost the known backup or readiness')
  t.equal((await client.request('GET', '/readyz')).status, 200)
})

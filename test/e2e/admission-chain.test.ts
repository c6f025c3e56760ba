// Issue 11 item 5: the fake API server calls the webhooks as a cluster would. The chart is rendered by
// real helm (tls.mode self, the default); the fake stores its Mutating/ValidatingWebhookConfigurations
// and enforces its ClusterRole/Role; the real runtime runs in-process against the fake with the
// rendered config, writes the caBundle into those configurations itself, and the fake's admission
// chain (test/support/fake-kube-api/admission-chain.ts) calls it over HTTPS, verifying that bundle
// for <service>.<namespace>.svc. Then: a PVC created through the fake is restored as in a real
// cluster, a fresh app starts empty, a VolSync mover Job UPDATE round-trips without drift, nothing
// is forbidden; with the server stopped, failurePolicy Ignore creates the PVC empty (and the next
// start's missed-restore guard reports it), while Fail (rebuild-safe mode) rejects it until the
// server is back, then creates it restored. First, the chain itself against a stub webhook.
import { createServer, type Server } from 'node:https'
import type { AddressInfo } from 'node:net'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { parse, stringify } from 'yaml'
import type { RbacRules } from '../../src/cluster/policy-rule.ts'
import { parseConfig } from '../../src/config/load.ts'
import { createLogger } from '../../src/log.ts'
import { startRuntime, type Runtime } from '../../src/server/runtime.ts'
import { helmTemplate, type K8sObject } from '../chart/helm.ts'
import { ApiError, describeRequest, FakeKubeApi, field, type JsonObject } from '../support/fake-kube-api.ts'
import { eventually, httpGet, makeCertificates, tempDir, waitReady, WebhookClient } from '../support/live-webhook.ts'

/** Bound on every wait below: it only guards against a hang (a busy 2-core CI machine is slow). */
const WAIT_MS = 30_000
const FULLNAME = 'volsync-autorestore'
const RELEASE_NAMESPACE = 'volsync-system'
const SERVICE_HOST = `${FULLNAME}.${RELEASE_NAMESPACE}.svc`
const BACKUP_NEWEST = new Date(Date.now() - 3_600_000).toISOString()

type Test = Parameters<NonNullable<Parameters<typeof t.test>[0]>>[0]

const dir = await tempDir(t, 'admission-chain')
const namespace = (name: string, labels: Record<string, string> = {}) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } })
const pvc = (ns: string, name: string, labels: Record<string, string> = { backup: 'hourly' }): JsonObject => ({
  apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name, namespace: ns, labels },
  spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
})
const annotationsOf = (object: JsonObject) => (field(object, 'metadata.annotations') ?? {}) as Record<string, string>
const rejection = (promise: Promise<unknown>) => promise.then(() => undefined, (error: unknown) => error)

// ---- the chain itself, against a stub webhook ----

t.test('the chain: timeoutSeconds, failurePolicy, the caBundle, denials, selectors', async (t) => {
  const certs = await makeCertificates(join(dir, 'stub-certs'))
  const other = await makeCertificates(join(dir, 'other-certs'))
  let answer: 'hang' | 'deny' | 'allow' = 'allow'
  const server: Server = createServer({ cert: await readFile(certs.tlsCert), key: await readFile(certs.tlsKey) }, (req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      if (answer === 'hang') return
      const review = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { request: { uid: string } }
      const response = answer === 'deny' ? { uid: review.request.uid, allowed: false, status: { message: 'no, because' } } : { uid: review.request.uid, allowed: true, warnings: ['looked at it'] }
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response }))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
  const fake = await FakeKubeApi.start({ admission: { services: (host) => (host === SERVICE_HOST ? `https://127.0.0.1:${(server.address() as AddressInfo).port}` : undefined) } })
  t.teardown(() => fake.close())
  const caBundle = Buffer.from(certs.ca).toString('base64')
  const hook = (name: string, failurePolicy: string, extra: JsonObject = {}) => ({
    name, failurePolicy, timeoutSeconds: 1, sideEffects: 'None', admissionReviewVersions: ['v1'],
    clientConfig: { service: { name: FULLNAME, namespace: RELEASE_NAMESPACE, path: '/validate' }, caBundle },
    rules: [{ apiGroups: [''], apiVersions: ['v1'], resources: ['configmaps', 'secrets'], operations: ['CREATE'], scope: 'Namespaced' }],
    ...extra,
  })
  const configure = (...webhooks: JsonObject[]) => fake.seed({ apiVersion: 'admissionregistration.k8s.io/v1', kind: 'ValidatingWebhookConfiguration', metadata: { name: 'stub' }, webhooks })
  const secret = (name: string, labels: Record<string, string> = {}): JsonObject => ({ apiVersion: 'v1', kind: 'Secret', metadata: { name, labels }, data: {} })
  fake.seed(namespace('apps', { team: 'a' }), namespace('other'))

  configure(hook('ignore.stub', 'Ignore'))
  answer = 'hang'
  const ignored = await fake.createAs('flux', 'secrets', 'apps', secret('s1'))
  t.equal(field(ignored.object, 'metadata.name'), 's1', 'Ignore: created as sent after the timeout')
  t.match(fake.admissionCalls.at(-1), { webhook: 'ignore.stub', outcome: 'ignored', message: /failed calling webhook "ignore\.stub": failed to call webhook: Post "https:\/\/volsync-autorestore\.volsync-system\.svc:443\/validate\?timeout=1s": context deadline exceeded/ })

  configure(hook('fail.stub', 'Fail'))
  const timedOut = await rejection(fake.createAs('flux', 'secrets', 'apps', secret('s2')))
  t.type(timedOut, ApiError)
  t.match(timedOut, { code: 500, reason: 'InternalError', message: /^Internal error occurred: failed calling webhook "fail\.stub": .*context deadline exceeded$/ }, 'Fail: rejected as kube-apiserver words it')
  t.equal(fake.get('secrets', 'apps', 's2'), undefined, 'and not stored')

  answer = 'allow'
  configure(hook('fail.stub', 'Fail', { clientConfig: { service: { name: FULLNAME, namespace: RELEASE_NAMESPACE, path: '/validate' }, caBundle: Buffer.from(other.ca).toString('base64') } }))
  const untrusted = await rejection(fake.createAs('flux', 'secrets', 'apps', secret('s3')))
  t.match(untrusted, { code: 500, message: /failed calling webhook "fail\.stub"/ }, 'a certificate the caBundle does not sign is a failed call')
  configure(hook('fail.stub', 'Fail', { clientConfig: { service: { name: 'elsewhere', namespace: RELEASE_NAMESPACE, path: '/validate' }, caBundle } }))
  t.match(await rejection(fake.createAs('flux', 'secrets', 'apps', secret('s4'))), { code: 500, message: /lookup elsewhere\.volsync-system\.svc: no such host/ }, 'a Service the test did not map')

  configure(hook('fail.stub', 'Fail'))
  const allowed = await fake.createAs('flux', 'secrets', 'apps', secret('s5'))
  t.same(allowed.warnings, ['looked at it'], 'warnings are relayed')
  // Over HTTP: a PATCH is admitted as an UPDATE of the patched object; warnings come back as headers.
  configure(hook('fail.stub', 'Fail', { rules: [{ apiGroups: [''], apiVersions: ['v1'], resources: ['secrets'], operations: ['UPDATE'] }] }))
  const patched = await fetch(`${fake.url}/api/v1/namespaces/apps/secrets/s5`, { method: 'PATCH', headers: { 'content-type': 'application/merge-patch+json' }, body: JSON.stringify({ metadata: { labels: { rotated: 'yes' } } }) })
  t.equal(patched.status, 200)
  t.equal(patched.headers.get('warning'), '299 - "looked at it"')
  t.match(fake.admissionCalls.at(-1), { webhook: 'fail.stub', operation: 'UPDATE', name: 's5', outcome: 'allowed' })
  t.equal(field(fake.get('secrets', 'apps', 's5')!, 'metadata.labels.rotated'), 'yes')
  configure(hook('fail.stub', 'Fail'))
  answer = 'deny'
  t.match(await rejection(fake.createAs('flux', 'secrets', 'apps', secret('s6'))), { code: 400, message: 'admission webhook "fail.stub" denied the request: no, because' }, 'a denial without a code is a 400 with the webhook\'s message')

  // Selectors: only Secrets labelled checked=yes, in namespaces labelled team In (a).
  configure(hook('fail.stub', 'Fail', {
    objectSelector: { matchExpressions: [{ key: 'checked', operator: 'In', values: ['yes'] }] },
    namespaceSelector: { matchLabels: { team: 'a' }, matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system'] }] },
  }))
  const calls = fake.admissionCalls.length
  await fake.createAs('flux', 'secrets', 'apps', secret('unlabelled'))
  await fake.createAs('flux', 'secrets', 'other', secret('elsewhere', { checked: 'yes' }))
  await fake.createAs('flux', 'secrets', 'apps', secret('no-match', { checked: 'no' }))
  t.equal(fake.admissionCalls.length, calls, 'objects and namespaces the selectors exclude are not sent')
  t.match(await rejection(fake.createAs('flux', 'secrets', 'apps', secret('selected', { checked: 'yes' }))), { code: 400 }, 'a selected object is sent (and denied)')
  t.equal(fake.admissionCalls.length, calls + 1)
})

// ---- the chart's configurations and the real server ----

interface Rendered {
  readonly configYaml: string
  readonly rbac: RbacRules
  readonly webhookConfigurations: K8sObject[]
}

const chartConfig = {
  catalog: { interval: '60s', sources: [{ name: 'declared', type: 'static', backups: [
    { namespace: 'media', pvc: 'jellyfin', snapshots: 3, newest: BACKUP_NEWEST, sizeBytes: 1073741824 },
    { namespace: 'media', pvc: 'sonarr', snapshots: 1, newest: BACKUP_NEWEST, sizeBytes: 1073741824 },
    { namespace: 'home', pvc: 'paperless', snapshots: 1, newest: BACKUP_NEWEST, sizeBytes: 1073741824 },
  ] }] },
  prewarm: { template: { restic: { repository: '{{pvc}}-restic-secret', capacity: '1Gi', storageClassName: 'fast', accessModes: ['ReadWriteOnce'] } } },
  movers: { repository: { nfs: { server: 'nas.lan', path: '/mnt/tank/kopia' }, mountPath: '/repository' } },
}

async function render(values: Record<string, unknown>): Promise<Rendered> {
  const objects = await helmTemplate({ fullnameOverride: FULLNAME, config: chartConfig, ...values }, { namespace: RELEASE_NAMESPACE })
  const one = (kind: string) => {
    const found = objects.find((o) => o.kind === kind && o.metadata.name === FULLNAME)
    if (!found) throw new Error(`the chart rendered no ${kind} ${FULLNAME}`)
    return found as K8sObject & { data?: Record<string, string>; rules?: RbacRules['cluster'] }
  }
  return {
    configYaml: one('ConfigMap').data?.['config.yaml'] ?? '',
    rbac: { cluster: one('ClusterRole').rules ?? [], namespaced: { [one('Role').metadata.namespace ?? '']: one('Role').rules ?? [] } },
    webhookConfigurations: objects.filter((o) => o.kind === 'MutatingWebhookConfiguration' || o.kind === 'ValidatingWebhookConfiguration'),
  }
}

const renders = { ignore: render({}), fail: render({ webhooks: { pvc: { failurePolicy: 'Fail' } } }) }
renders.ignore.catch(() => {})
renders.fail.catch(() => {})

/** A fake cluster with the chart's webhook configurations and RBAC, and a way to run the server in it. */
async function cluster(t: Test, rendered: Rendered) {
  const services = new Map<string, string>()
  const fake = await FakeKubeApi.start({ rbac: rendered.rbac, admission: { services: (host) => services.get(host) } })
  t.teardown(() => fake.close())
  fake.seed(namespace(RELEASE_NAMESPACE), namespace('kube-system'), namespace('media'), ...rendered.webhookConfigurations)
  const kubeconfig = join(await tempDir(t, 'kubeconfig'), 'kubeconfig')
  await fake.writeKubeconfig(kubeconfig)

  /** The rendered config on loopback ports with this identity; resolves once /readyz is 200 through the caBundle. */
  const startServer = async (identity: string): Promise<Runtime> => {
    const config = parse(rendered.configYaml) as { server: Record<string, unknown>; kube: Record<string, unknown>; log?: unknown }
    config.server = { ...config.server, host: '127.0.0.1', port: 0, metricsHost: '127.0.0.1', metricsPort: 0 }
    config.kube = { ...config.kube, kubeconfig, leaseDuration: '3s', renewDeadline: '2s', retryPeriod: '200ms', identity }
    config.log = { level: 'silent' }
    const runtime = await startRuntime({ config: parseConfig(stringify(config), 'rendered config.yaml'), log: createLogger('silent') })
    t.teardown(() => runtime.close())
    services.set(SERVICE_HOST, runtime.webhookUrl)
    const bundle = await eventually('the caBundle the server wrote into every webhook', async () => {
      const bundles = ['mutatingwebhookconfigurations', 'validatingwebhookconfigurations'].flatMap((r) => (field(fake.get(r, '', FULLNAME) ?? {}, 'webhooks') as { clientConfig: { caBundle?: string } }[]).map((w) => w.clientConfig.caBundle))
      return bundles.every((b) => b && b === bundles[0]) ? bundles[0] : undefined
    }, WAIT_MS)
    const client = new WebhookClient(runtime.webhookUrl, { ca: Buffer.from(bundle!, 'base64').toString('utf8'), servername: SERVICE_HOST })
    await waitReady(client)
    client.close()
    return runtime
  }

  /** VolSync's status write: the RD has synced an image (status writes skip admission). */
  const syncRd = async (runtime: Runtime, ns: string, name: string) => {
    const rd = await eventually(`${ns}/${name} created by pre-warm`, async () => fake.get('replicationdestinations', ns, name), WAIT_MS)
    fake.seed({ ...rd, status: { lastManualSync: field(rd, 'spec.trigger.manual'), latestImage: { apiGroup: 'snapshot.storage.k8s.io', kind: 'VolumeSnapshot', name: `volsync-${name}-dest-1` } } })
    await eventually(`${ns}/${name}'s latestImage in the snapshot`, async () => (runtime.store.current.cluster.replicationDestinations.get(`${ns}/${name}`)?.latestImage ? true : undefined), WAIT_MS)
  }
  return { fake, services, startServer, syncRd }
}

t.test('with the chart\'s webhook configurations and RBAC (failurePolicy Ignore, the default)', async (t) => {
  const { fake, startServer, syncRd } = await cluster(t, await renders.ignore)
  const first = await startServer('replica-a')

  await t.test('the server\'s own writes go through the chain: pre-warm\'s RD is validated', async (t) => {
    await syncRd(first, 'media', 'jellyfin-dst')
    // Pre-warm may create jellyfin-dst before the webhook port is up (self-managed TLS opens it once
    // the certificate exists): then that call fails and Ignore admits it, as in a cluster. A backup
    // whose namespace appears now is pre-warmed by a server that answers.
    fake.seed(namespace('home'))
    await eventually('home/paperless-dst created by pre-warm', async () => fake.get('replicationdestinations', 'home', 'paperless-dst'), WAIT_MS)
    t.match(fake.admissionCalls.filter((c) => c.name === 'paperless-dst'), [{ webhook: 'replicationdestinations.validate.volsync-autorestore.io', type: 'validating', operation: 'CREATE', namespace: 'home', outcome: 'allowed' }])
  })

  await t.test('a PVC created through the API server is restored from its RD', async (t) => {
    const { object, warnings } = await fake.createAs('flux', 'persistentvolumeclaims', 'media', pvc('media', 'jellyfin'))
    t.same(field(object, 'spec.dataSourceRef'), { apiGroup: 'volsync.backube', kind: 'ReplicationDestination', name: 'jellyfin-dst' }, 'stored with the dataSourceRef the webhook added')
    t.equal(annotationsOf(object)['volsync-autorestore.io/decision'], 'restore')
    t.same(fake.get('persistentvolumeclaims', 'media', 'jellyfin'), object, 'as stored')
    t.match(warnings, [/restoring media\/jellyfin from ReplicationDestination jellyfin-dst/])
    const calls = fake.admissionCalls.filter((c) => c.resource === 'persistentvolumeclaims' && c.name === 'jellyfin')
    t.same(calls.map((c) => [c.webhook, c.outcome]), [['pvc.volsync-autorestore.io', 'patched'], ['pvc.validate.volsync-autorestore.io', 'allowed']], 'mutated, then validated')
  })

  await t.test('a fresh app starts empty; PVCs the selectors exclude are not sent', async (t) => {
    const fresh = await fake.createAs('flux', 'persistentvolumeclaims', 'media', pvc('media', 'newapp'))
    t.equal(field(fresh.object, 'spec.dataSourceRef'), undefined, 'no dataSourceRef: no backup')
    t.equal(annotationsOf(fresh.object)['volsync-autorestore.io/decision'], 'fresh')
    const before = fake.admissionCalls.length
    const plain = await fake.createAs('flux', 'persistentvolumeclaims', 'media', pvc('media', 'scratch', {}))
    t.same(annotationsOf(plain.object), {}, 'not participating (objectSelector)')
    await fake.createAs('flux', 'persistentvolumeclaims', 'kube-system', pvc('kube-system', 'jellyfin'))
    t.equal(fake.admissionCalls.length, before, 'neither reached a webhook (objectSelector, namespaceSelector)')
  })

  await t.test('a VolSync mover Job: mutated on CREATE, its reconcile UPDATE round-trips without drift', async (t) => {
    const review = JSON.parse(await readFile(new URL('../../examples/admission/job-backup-create.json', import.meta.url), 'utf8')) as { request: { object: JsonObject } }
    const asVolSyncRendersIt = review.request.object
    const created = await fake.createAs('system:serviceaccount:volsync-system:volsync', 'jobs', 'media', asVolSyncRendersIt)
    const podSpec = field(created.object, 'spec.template.spec') as { initContainers?: { name: string }[]; volumes?: { name: string; nfs?: unknown }[] }
    t.ok((podSpec.initContainers ?? []).length > 0, 'the jitter initContainer')
    t.ok((podSpec.volumes ?? []).some((v) => v.nfs !== undefined), 'the NFS repository volume')
    // VolSync's reconcile: its own rendering of the spec again, on the live object's metadata.
    const update = { ...asVolSyncRendersIt, metadata: field(created.object, 'metadata') }
    const updated = await fake.updateAs('system:serviceaccount:volsync-system:volsync', 'jobs', 'media', 'volsync-src-jellyfin', update as JsonObject)
    t.match(fake.admissionCalls.at(-1), { webhook: 'mover-jobs.volsync-autorestore.io', operation: 'UPDATE', outcome: 'patched' }, 'the UPDATE was patched back')
    t.same(field(updated.object, 'spec'), field(created.object, 'spec'), 'the same spec as the oldObject: nothing for VolSync to delete and recreate')
    t.equal(field(updated.object, 'metadata.resourceVersion'), field(created.object, 'metadata.resourceVersion'), 'the first reconcile UPDATE writes nothing either (the same reason annotation)')
    // And the next one: the store writes nothing, no watch event, no new round.
    const again = await fake.updateAs('system:serviceaccount:volsync-system:volsync', 'jobs', 'media', 'volsync-src-jellyfin', { ...asVolSyncRendersIt, metadata: field(updated.object, 'metadata') } as JsonObject)
    t.equal(field(again.object, 'metadata.resourceVersion'), field(updated.object, 'metadata.resourceVersion'), 'the next reconcile UPDATE writes nothing (it converges)')
    t.same(again.object, updated.object)
  })

  await t.test('a stopped server: Ignore creates the PVC empty, and the next start reports it', async (t) => {
    await first.close()
    const { object } = await fake.createAs('flux', 'persistentvolumeclaims', 'media', pvc('media', 'sonarr'))
    t.equal(field(object, 'spec.dataSourceRef'), undefined, 'created without the restore')
    t.same(annotationsOf(object), {})
    t.match(fake.admissionCalls.filter((c) => c.name === 'sonarr').map((c) => c.outcome), ['ignored', 'ignored'], 'both webhooks failed and were ignored')
    const second = await startServer('replica-b')
    const event = await eventually('a MissedRestore Event for media/sonarr', async () => fake.list('events', 'media').find((e) => field(e, 'reason') === 'MissedRestore' && field(e, 'involvedObject.name') === 'sonarr'), WAIT_MS)
    t.ok(event, 'the missed-restore guard reported it')
    const metrics = (await httpGet(`${second.metricsUrl}/metrics`)).text
    t.match(metrics, /^volsync_autorestore_missed_restores 1$/m, 'and counts it (VolsyncAutorestoreMissedRestore fires)')
  })

  await t.test('nothing the server did was forbidden by the rendered RBAC, and every call it answered succeeded', async (t) => {
    t.strictSame(fake.forbidden.map(describeRequest), [])
    t.same(fake.admissionCalls.filter((c) => c.outcome === 'failed' || c.outcome === 'denied'), [])
    t.ok(fake.requests.some((r) => r.method === 'POST' && r.status === 201), 'the server wrote through the chain')
  })
})

t.test('rebuild-safe mode (webhooks.pvc.failurePolicy: Fail): rejected while the server is down, restored once it is back', async (t) => {
  const { fake, startServer, syncRd } = await cluster(t, await renders.fail)
  const first = await startServer('replica-a')
  await syncRd(first, 'media', 'jellyfin-dst')
  await first.close()

  const refused = await rejection(fake.createAs('flux', 'persistentvolumeclaims', 'media', pvc('media', 'jellyfin')))
  t.type(refused, ApiError)
  t.match(refused, { code: 500, reason: 'InternalError', message: /^Internal error occurred: failed calling webhook "pvc\.volsync-autorestore\.io": failed to call webhook: Post "https:\/\/volsync-autorestore\.volsync-system\.svc:443\/mutate\?timeout=5s": / })
  t.equal(fake.get('persistentvolumeclaims', 'media', 'jellyfin'), undefined, 'not created empty')
  const other = await fake.createAs('flux', 'persistentvolumeclaims', 'media', pvc('media', 'scratch', {}))
  t.ok(other.object, 'a PVC that does not participate is created meanwhile')

  const second = await startServer('replica-b')
  await eventually('the synced RD in the restarted server\'s snapshot', async () => (second.store.current.cluster.replicationDestinations.get('media/jellyfin-dst')?.latestImage ? true : undefined), WAIT_MS)
  const { object } = await fake.createAs('flux', 'persistentvolumeclaims', 'media', pvc('media', 'jellyfin'))
  t.same(field(object, 'spec.dataSourceRef'), { apiGroup: 'volsync.backube', kind: 'ReplicationDestination', name: 'jellyfin-dst' }, 'the retry is restored')
  t.strictSame(fake.forbidden.map(describeRequest), [])
})

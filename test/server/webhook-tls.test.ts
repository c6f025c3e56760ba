// The real runtime in-process, exercised over real HTTPS (generated CA, hostname verification,
// keep-alive) and plain HTTP on the metrics port: decisions for every example review, the one-line
// 400s, health, metrics, /status, audit mode, dry runs, config hot reload and certificate rotation.
import { readFile, rename, writeFile } from 'node:fs/promises'
import http from 'node:http'
import { join } from 'node:path'
import t from 'tap'
import { describeCertificate } from '../../src/tls/certificate-authority.ts'
import { writeCertificates } from '../../src/tls/write-certificates.ts'
import { createLogger } from '../../src/log.ts'
import {
  applyPatchTo, badRequestProblems, decodePatch, eventually, exampleConfigYaml, exampleReview, exampleText, httpGet, LogSink,
  makeCertificates, metricSample, metricSamples, NAMESPACE, portOf, responseProblems, SERVICE, SERVICE_DNS, startTestRuntime,
  tempDir, waitReady, WebhookClient, type Review, type ReviewResponse, type Teardown, type TestCertificates,
} from '../support/live-webhook.ts'

const ANNOTATION_DECISION = 'volsync-autorestore.io/decision'

type Pvc = { metadata: { annotations?: Record<string, string>; labels?: Record<string, string> }; spec: { dataSourceRef?: { apiGroup?: string; kind: string; name: string } } }
type PodSpec = {
  volumes?: { name: string; nfs?: { server: string; path: string } }[]
  containers: { name: string; volumeMounts?: { name: string; mountPath: string }[] }[]
  initContainers?: { name: string; image: string; command?: string[]; securityContext?: Record<string, unknown> }[]
}
type Job = { metadata: { annotations?: Record<string, string> }; spec: { template: { spec: PodSpec } } }

const certDir = await tempDir(t, 'certs')
const certs: TestCertificates = await makeCertificates(certDir)

/** A runtime on examples/config.yaml (or overrides of it) and a keep-alive client for it. */
async function serve(tt: Teardown, overrides?: Record<string, unknown>, log?: ReturnType<typeof createLogger>) {
  const yaml = await exampleConfigYaml({ certs, ...(overrides ? { overrides } : {}) })
  const runtime = await startTestRuntime(tt, { yaml, ...(log ? { log } : {}) })
  const client = new WebhookClient(runtime.webhookUrl, { ca: certs.ca })
  tt.teardown(() => client.close())
  await waitReady(client)
  return { runtime, client }
}

function checkValid(tt: Pick<typeof t, 'strictSame'>, review: Review, answer: ReviewResponse, what: string): void {
  tt.strictSame(responseProblems(review.request, answer), [], `${what}: a valid AdmissionReview response`)
}

t.test('POST /mutate: the decision for every example review, over HTTPS with hostname verification', async (t) => {
  const { client } = await serve(t)

  const mutate = async (name: Parameters<typeof exampleReview>[0]) => {
    const review = await exampleReview(name)
    const { result, review: answer } = await client.review('/mutate', review)
    t.equal(result.status, 200, `${name}: 200`)
    t.match(result.contentType, /^application\/json/, `${name}: JSON answer`)
    checkValid(t, review, answer, name)
    t.equal(answer.response.uid, review.request.uid, `${name}: uid echoed`)
    const patch = decodePatch(answer)
    const patched = patch.length > 0 ? applyPatchTo(review.request.object, patch) : review.request.object
    return { review, answer, patch, patched }
  }

  await t.test('pvc-restore: dataSourceRef -> jellyfin-dst', async (t) => {
    const { answer, patch, patched } = await mutate('pvc-restore')
    t.equal(answer.response.allowed, true)
    t.equal(answer.response.patchType, 'JSONPatch')
    t.strictSame(patch.find((op) => op.path === '/spec/dataSourceRef'), {
      op: 'add', path: '/spec/dataSourceRef', value: { apiGroup: 'volsync.backube', kind: 'ReplicationDestination', name: 'jellyfin-dst' },
    })
    t.equal((patched as Pvc).metadata.annotations?.[ANNOTATION_DECISION], 'restore')
    t.match(answer.response.warnings, [/restoring media\/jellyfin from ReplicationDestination jellyfin-dst/])
  })

  await t.test('pvc-wait: dataSourceRef -> sonarr-dst (RD not synced, backup known)', async (t) => {
    const { answer, patch, patched } = await mutate('pvc-wait')
    t.equal(answer.response.allowed, true)
    t.strictSame(patch.find((op) => op.path === '/spec/dataSourceRef'), {
      op: 'add', path: '/spec/dataSourceRef', value: { apiGroup: 'volsync.backube', kind: 'ReplicationDestination', name: 'sonarr-dst' },
    })
    t.equal((patched as Pvc).metadata.annotations?.[ANNOTATION_DECISION], 'wait')
    t.match(answer.response.warnings, [/waiting for ReplicationDestination sonarr-dst/])
  })

  await t.test('pvc-fresh: no dataSourceRef, only the decision annotation', async (t) => {
    const { answer, patch, patched } = await mutate('pvc-fresh')
    t.equal(answer.response.allowed, true)
    t.notOk(patch.some((op) => op.path.startsWith('/spec')), 'the spec is not touched')
    t.equal((patched as Pvc).spec.dataSourceRef, undefined)
    t.equal((patched as Pvc).metadata.annotations?.[ANNOTATION_DECISION], 'fresh')
  })

  await t.test('pvc-remove-datasource: the dangling dataSourceRef is removed', async (t) => {
    const { answer, patch, patched } = await mutate('pvc-remove-datasource')
    t.equal(answer.response.allowed, true)
    t.strictSame(patch.filter((op) => op.op === 'remove'), [{ op: 'remove', path: '/spec/dataSourceRef' }])
    t.equal((patched as Pvc).spec.dataSourceRef, undefined)
    t.match(answer.response.warnings, [/removed dataSourceRef to ReplicationDestination prowlarr-dst/])
  })

  for (const name of ['pvc-user-datasource', 'pvc-not-participating', 'pvc-update', 'rd-pitfalls', 'secret-kopia-pitfalls'] as const) {
    await t.test(`${name}: admitted unchanged`, async (t) => {
      const { answer } = await mutate(name)
      t.equal(answer.response.allowed, true)
      t.equal(answer.response.patch, undefined, 'no patch')
      t.equal(answer.response.patchType, undefined, 'no patchType')
      t.equal(answer.response.status, undefined, 'no status')
    })
  }

  await t.test('job-backup-create: jitter initContainer and repository volume', async (t) => {
    const { review, answer, patched } = await mutate('job-backup-create')
    t.equal(answer.response.allowed, true)
    const pod = (patched as Job).spec.template.spec
    const jitter = pod.initContainers?.find((c) => c.name === 'jitter')
    t.ok(jitter, 'a jitter initContainer')
    t.equal(jitter?.image, 'busybox:1.37')
    t.match(jitter?.command?.join(' '), /^sh -c sleep ([0-9]|[1-9][0-9]|[12][0-9][0-9]|300)$/, 'sleeps 0..300 s')
    t.match(jitter?.securityContext, { allowPrivilegeEscalation: false, runAsNonRoot: true, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' } })
    t.strictSame(pod.volumes?.find((v) => v.name === 'repository'), { name: 'repository', nfs: { server: 'nas.lan', path: '/mnt/tank/kopia' } })
    t.strictSame(pod.containers[0]?.volumeMounts?.find((m) => m.name === 'repository'), { name: 'repository', mountPath: '/repository' })
    // Everything VolSync put there is still there.
    const before = (review.request.object as Job).spec.template.spec
    t.strictSame(pod.volumes?.slice(0, before.volumes?.length), before.volumes)
    t.equal((patched as Job).metadata.annotations?.[ANNOTATION_DECISION], 'inject')
  })

  await t.test('job-backup-update-drift: the patched UPDATE equals what is already in the cluster', async (t) => {
    const { review, answer, patch, patched } = await mutate('job-backup-update-drift')
    t.equal(answer.response.allowed, true)
    t.ok(patch.length > 0, 'VolSync\'s re-applied spec is patched back')
    const after = (patched as Job).spec.template.spec
    const old = (review.request.oldObject as Job).spec.template.spec
    t.strictSame(after.volumes, old.volumes, 'volumes')
    t.strictSame(after.containers, old.containers, 'containers')
    t.strictSame(after.initContainers, old.initContainers, 'initContainers')
  })

  await t.test('an unknown kind is allowed untouched', async (t) => {
    for (const kind of [{ group: '', version: 'v1', kind: 'ConfigMap' }, { group: 'example.com', version: 'v1', kind: 'Widget' }]) {
      const review = {
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        request: { uid: `u-${kind.kind}`, kind, operation: 'CREATE', namespace: 'media', name: 'x', object: { apiVersion: 'v1', kind: kind.kind, metadata: { name: 'x', namespace: 'media', labels: { backup: 'hourly' } } }, oldObject: null },
      }
      for (const path of ['/mutate', '/validate'] as const) {
        const { review: answer } = await client.review(path, review)
        t.strictSame(answer, { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: `u-${kind.kind}`, allowed: true } }, `${kind.kind} ${path}`)
      }
    }
  })

  await t.test('a PVC DELETE (object null) is allowed untouched', async (t) => {
    const review = await exampleReview('pvc-restore')
    review.request.operation = 'DELETE'
    review.request.oldObject = review.request.object
    review.request.object = null
    const { review: answer } = await client.review('/mutate', review)
    t.strictSame(answer.response, { uid: review.request.uid, allowed: true })
  })

  await t.test('the certificate is checked against the name the client asked for', async (t) => {
    const wrongName = new WebhookClient(client.url, { ca: certs.ca, servername: 'wrong.example', keepAlive: false })
    t.teardown(() => wrongName.close())
    await t.rejects(wrongName.request('GET', '/healthz'), { code: 'ERR_TLS_CERT_ALTNAME_INVALID' }, 'a name not in the SANs is refused')
    const otherCa = await makeCertificates(await tempDir(t, 'other-ca'))
    const untrusting = new WebhookClient(client.url, { ca: otherCa.ca, keepAlive: false })
    t.teardown(() => untrusting.close())
    await t.rejects(untrusting.request('GET', '/healthz'), { code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' }, 'a client trusting another CA refuses it')
    for (const servername of [SERVICE_DNS, `${SERVICE}.${NAMESPACE}`, `${SERVICE}.${NAMESPACE}.svc.cluster.local`, 'localhost']) {
      const named = new WebhookClient(client.url, { ca: certs.ca, servername, keepAlive: false })
      t.teardown(() => named.close())
      const served = await named.request('GET', '/healthz')
      t.equal(served.status, 200, `verified as ${servername}`)
      t.ok(served.socket.authorized, `${servername}: authorized`)
      t.equal(served.fingerprint256, describeCertificate(await readFile(certs.tlsCert, 'utf8')).fingerprint256, 'the generated certificate is served')
    }
  })
})

t.test('POST /validate: the pitfall examples come back as warnings', async (t) => {
  const { client } = await serve(t)
  const secret = await exampleReview('secret-kopia-pitfalls')
  const { review: secretAnswer } = await client.review('/validate', secret)
  checkValid(t, secret, secretAnswer, 'secret')
  t.equal(secretAnswer.response.allowed, true, 'warnings only by default')
  t.equal(secretAnswer.response.patch, undefined)
  t.equal(secretAnswer.response.warnings?.length, 2)
  t.match(secretAnswer.response.warnings, [/Secret media\/radarr-volsync-secret: .*no KOPIA_PASSWORD/, /KOPIA_S3_ENDPOINT is the plain-HTTP endpoint http:\/\/garage\.lan:3900/])

  const rd = await exampleReview('rd-pitfalls')
  const { review: rdAnswer } = await client.review('/validate', rd)
  checkValid(t, rd, rdAnswer, 'rd')
  t.equal(rdAnswer.response.allowed, true)
  t.equal(rdAnswer.response.warnings?.length, 2)
  t.match(rdAnswer.response.warnings, [/ReplicationDestination media\/radarr-dst: .*sourceIdentity/, /ReplicationDestination media\/radarr-dst: spec\.trigger is not set/])

  const clean = await exampleReview('pvc-restore')
  const { review: cleanAnswer } = await client.review('/validate', clean)
  t.strictSame(cleanAnswer.response, { uid: clean.request.uid, allowed: true }, 'a PVC with nothing wrong: no warnings')
})

t.test('bad bodies: HTTP 4xx with one line naming the problem, never 5xx', async (t) => {
  const { runtime, client } = await serve(t)
  const valid = await exampleReview('pvc-restore')
  const without = (mutate: (request: Record<string, unknown>) => void): string => {
    const copy = structuredClone(valid) as unknown as { request: Record<string, unknown> }
    mutate(copy.request)
    return JSON.stringify(copy)
  }
  const json = { 'content-type': 'application/json' }
  // Today any Content-Type is parsed as JSON; a server that checks it names the Content-Type instead.
  const NOT_JSON_OR_WRONG_TYPE = /^(body is not JSON|Content-Type must be application\/json)/
  const cases: { what: string; body?: string | Buffer; headers?: Record<string, string>; message: RegExp }[] = [
    { what: 'not-a-review.json (v1beta1)', body: await exampleText('not-a-review'), headers: json, message: /^invalid AdmissionReview: apiVersion must be "admission\.k8s\.io\/v1"$/ },
    { what: 'non-JSON', body: 'hello, webhook', headers: json, message: /^body is not JSON: send an admission\.k8s\.io\/v1 AdmissionReview$/ },
    { what: 'truncated JSON', body: JSON.stringify(valid).slice(0, 200), headers: json, message: /^body is not JSON/ },
    { what: 'empty body', body: '', headers: json, message: /^body is not JSON/ },
    { what: 'no body, no content-type', headers: {}, message: NOT_JSON_OR_WRONG_TYPE },
    { what: 'non-JSON as text/plain', body: 'uid=1&kind=Pod', headers: { 'content-type': 'text/plain' }, message: NOT_JSON_OR_WRONG_TYPE },
    { what: 'non-JSON as form data', body: 'a=b', headers: { 'content-type': 'application/x-www-form-urlencoded' }, message: NOT_JSON_OR_WRONG_TYPE },
    { what: 'a JSON array', body: JSON.stringify([valid]), headers: json, message: /^body must be a JSON object/ },
    { what: 'a JSON string', body: '"AdmissionReview"', headers: json, message: /^body must be a JSON object/ },
    { what: 'JSON null', body: 'null', headers: json, message: /^body must be a JSON object/ },
    { what: 'a review without request', body: JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }), headers: json, message: /^invalid AdmissionReview: request is required$/ },
    { what: 'missing uid', body: without((r) => { delete r.uid }), headers: json, message: /^invalid AdmissionReview: request\.uid is required$/ },
    { what: 'empty uid', body: without((r) => { r.uid = '' }), headers: json, message: /^invalid AdmissionReview: request\.uid / },
    { what: 'numeric uid', body: without((r) => { r.uid = 42 }), headers: json, message: /^invalid AdmissionReview: request\.uid must be string$/ },
    { what: 'missing kind', body: without((r) => { delete r.kind }), headers: json, message: /^invalid AdmissionReview: request\.kind is required$/ },
    { what: 'kind as a string', body: without((r) => { r.kind = 'PersistentVolumeClaim' }), headers: json, message: /^invalid AdmissionReview: request\.kind must be object$/ },
    { what: 'missing object on CREATE', body: without((r) => { delete r.object }), headers: json, message: /^invalid AdmissionReview: request\.object is required for CREATE$/ },
    { what: 'object null on UPDATE', body: without((r) => { r.operation = 'UPDATE'; r.object = null }), headers: json, message: /^invalid AdmissionReview: request\.object is required for UPDATE$/ },
    { what: 'object as an array', body: without((r) => { r.object = [] }), headers: json, message: /^invalid AdmissionReview: request\.object / },
    { what: 'unknown operation', body: without((r) => { r.operation = 'PATCH' }), headers: json, message: /^invalid AdmissionReview: request\.operation / },
    { what: 'dryRun as a string', body: without((r) => { r.dryRun = 'true' }), headers: json, message: /^invalid AdmissionReview: request\.dryRun must be boolean$/ },
  ]
  for (const path of ['/mutate', '/validate']) {
    for (const c of cases) {
      const result = await client.request('POST', path, c.body, c.headers ?? {})
      t.equal(result.status, 400, `${path} ${c.what}: 400`)
      t.strictSame(badRequestProblems(result), [], `${path} ${c.what}: one line of text`)
      t.match(result.text.trimEnd(), c.message, `${path} ${c.what}: names the problem`)
    }
  }
  const metrics = (await httpGet(`${runtime.metricsUrl}/metrics`)).text
  t.equal(metricSample(metrics, 'volsync_autorestore_admission_invalid_requests_total', { webhook: 'mutate' }), cases.length, 'every 400 counted (mutate)')
  t.equal(metricSample(metrics, 'volsync_autorestore_admission_invalid_requests_total', { webhook: 'validate' }), cases.length, 'every 400 counted (validate)')
  t.equal(metricSample(metrics, 'volsync_autorestore_admission_requests_total', { webhook: 'mutate' }), undefined, 'no decision was counted')

  // Rejected by Fastify before the route runs: still 4xx, still one line.
  const malformedType = await client.request('POST', '/mutate', JSON.stringify(valid), { 'content-type': ';;;' })
  t.equal(malformedType.status, 415, 'a malformed Content-Type header: 415')
  t.strictSame(badRequestProblems(malformedType), [])
  const huge = await client.request('POST', '/mutate', Buffer.alloc(8 * 1024 * 1024 + 1, 0x20), json)
  t.equal(huge.status, 413, 'a body over 8 MiB: 413')
  t.strictSame(badRequestProblems(huge), [])
  t.match(huge.text, /too large/)
  const get = await client.request('GET', '/mutate')
  t.equal(get.status, 404, 'GET /mutate: 404')

  // The server is still fine after all of that, on the same connection.
  const after = await client.review('/mutate', valid)
  t.equal(after.review.response.allowed, true)
  t.ok(after.result.reusedSocket, 'the keep-alive connection survived the 4xx answers')
})


t.test('a valid review with a non-JSON Content-Type', async (t) => {
  const { client } = await serve(t)
  for (const contentType of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
    const result = await client.request('POST', '/mutate', await exampleText('pvc-restore'), { 'content-type': contentType })
    t.not(result.status, 500, `${contentType}: never 5xx`)
    t.equal(result.status, 400, `${contentType}: not an AdmissionReview body`)
    t.match(result.text, /content-type/i, `${contentType}: the 400 names the Content-Type`)
  }
})

t.test('GET /healthz and /readyz', async (t) => {
  const { client } = await serve(t)
  const health = await client.request('GET', '/healthz')
  t.equal(health.status, 200)
  t.equal(health.text, 'ok\n')
  const ready = await client.request('GET', '/readyz')
  t.equal(ready.status, 200)
  t.equal(ready.text, 'ready\n')

  await t.test('/readyz is 503 with one line naming what is missing while the cluster state cannot be read', async (t) => {
    const missing = join(await tempDir(t, 'nostate'), 'does-not-exist')
    const yaml = await exampleConfigYaml({ certs, stateDir: missing })
    const runtime = await startTestRuntime(t, { yaml })
    const c = new WebhookClient(runtime.webhookUrl, { ca: certs.ca })
    t.teardown(() => c.close())
    t.equal((await c.request('GET', '/healthz')).status, 200, 'alive')
    // The loops start in the background: until the first read of the directory has failed, the
    // line names what it waits for without the error; then with it.
    const first = await c.request('GET', '/readyz')
    t.equal(first.status, 503)
    t.strictSame(badRequestProblems(first), [])
    t.match(first.text, /^not ready: cluster: state directory .*does-not-exist not read yet/)
    const notReady = await eventually('the read error in /readyz', async () => {
      const answer = await c.request('GET', '/readyz')
      return answer.text.includes('ENOENT') ? answer : undefined
    }, 30_000)
    t.equal(notReady.status, 503)
    // The first catalog poll may still be running too.
    t.match(notReady.text, /^not ready: cluster: state directory .*does-not-exist not read yet \(.*ENOENT.*\)(; catalog: first catalog poll not finished)?\n$/)
  })
})

t.test('metrics (plain HTTP): request counter labels, the duration histogram; /status JSON', async (t) => {
  const { runtime, client } = await serve(t)
  const send = async (path: '/mutate' | '/validate', name: Parameters<typeof exampleReview>[0]) => client.review(path, await exampleReview(name))
  await send('/mutate', 'pvc-restore')
  await send('/mutate', 'pvc-restore')
  await send('/mutate', 'pvc-wait')
  await send('/mutate', 'pvc-not-participating')
  await send('/mutate', 'job-backup-create')
  await send('/mutate', 'job-backup-update-drift')
  await send('/validate', 'secret-kopia-pitfalls')
  await client.request('POST', '/mutate', 'nope')

  const scraped = await httpGet(`${runtime.metricsUrl}/metrics`)
  t.equal(scraped.status, 200)
  t.match(scraped.contentType, /^text\/plain; version=0\.0\.4/)
  const text = scraped.text
  const requests = metricSamples(text, 'volsync_autorestore_admission_requests_total')
  const sorted = (rows: { labels: Record<string, string>; value: number }[]) => rows.map((r) => `${r.labels.webhook} ${r.labels.kind} ${r.labels.operation} ${r.labels.decision} = ${r.value}`).sort()
  t.strictSame(sorted(requests), [
    'mutate Job CREATE inject = 1',
    'mutate Job UPDATE inject = 1',
    'mutate PersistentVolumeClaim CREATE restore = 2',
    'mutate PersistentVolumeClaim CREATE skip = 1',
    'mutate PersistentVolumeClaim CREATE wait = 1',
    'validate Secret CREATE warn = 1',
  ], 'one series per webhook/kind/operation/decision, with exact counts')
  t.equal(metricSample(text, 'volsync_autorestore_admission_invalid_requests_total', { webhook: 'mutate' }), 1)

  const buckets = metricSamples(text, 'volsync_autorestore_admission_duration_seconds_bucket').filter((s) => s.labels.webhook === 'mutate')
  const bounds = buckets.map((b) => (b.labels.le === '+Inf' ? Infinity : Number(b.labels.le)))
  t.ok(bounds.includes(5e-5), 'a 5e-05 (50 µs) bucket')
  t.equal(bounds.at(-1), Infinity, 'ends with +Inf')
  t.ok(buckets.every((b, i) => i === 0 || b.value >= buckets[i - 1]!.value), 'cumulative')
  t.equal(buckets.at(-1)?.value, 6, '+Inf holds every mutate decision')
  t.equal(metricSample(text, 'volsync_autorestore_admission_duration_seconds_count', { webhook: 'mutate' }), 6)
  t.equal(metricSample(text, 'volsync_autorestore_admission_duration_seconds_count', { webhook: 'validate' }), 1)
  const sum = metricSample(text, 'volsync_autorestore_admission_duration_seconds_sum', { webhook: 'mutate' }) ?? -1
  t.ok(sum > 0 && sum < 6, `plausible total decision time (${sum} s)`)
  t.equal(metricSample(text, 'volsync_autorestore_catalog_entries', { source: 'nas' }), 2)
  t.equal(metricSample(text, 'volsync_autorestore_catalog_source_up', { source: 'nas' }), 1)
  const age = metricSample(text, 'volsync_autorestore_catalog_last_success_age_seconds', { source: 'nas' }) ?? -1
  t.ok(age >= 0 && age < 60, `the catalog's age is exported (${age} s)`)
  t.equal(metricSample(text, 'volsync_autorestore_replication_destinations', { ready: 'true' }), 1)
  t.equal(metricSample(text, 'volsync_autorestore_replication_destinations', { ready: 'false' }), 2)
  t.equal(metricSample(text, 'volsync_autorestore_cluster_state_synced'), 1)

  const status = await httpGet(`${runtime.metricsUrl}/status`, { accept: 'application/json' })
  t.equal(status.status, 200)
  t.match(status.contentType, /^application\/json/)
  const doc = JSON.parse(status.text) as {
    mode: string
    config: { lastReloadError: string | null }
    cluster: { synced: boolean; namespaces: string[]; replicationDestinations: { namespace: string; name: string; ready: boolean }[] }
    catalog: { sources: { name: string; type: string; ok: boolean; stale: boolean; entries: { namespace: string; pvc: string; snapshots: number }[] }[] }
  }
  t.equal(doc.mode, 'enforce')
  t.equal(doc.config.lastReloadError, null)
  t.equal(doc.cluster.synced, true)
  t.strictSame(doc.cluster.namespaces, ['home', 'media', 'secure', 'volsync-system'])
  t.strictSame(doc.cluster.replicationDestinations.map((rd) => `${rd.namespace}/${rd.name} ready=${rd.ready}`).sort(), [
    'media/jellyfin-dst ready=true', 'media/radarr-dst ready=false', 'media/sonarr-dst ready=false',
  ])
  t.equal(doc.catalog.sources.length, 1)
  t.match(doc.catalog.sources[0], { name: 'nas', type: 's3-prefix', ok: true, stale: false })
  t.strictSame(doc.catalog.sources[0]?.entries.map((e) => `${e.namespace}/${e.pvc}:${e.snapshots}`), ['media/jellyfin:3', 'media/sonarr:1'])
})

t.test('no plaintext on the webhook port', async (t) => {
  const { client } = await serve(t)
  const port = portOf(client.url)
  const viaHttp = await new Promise<{ error?: NodeJS.ErrnoException; status?: number }>((done) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/mutate', headers: { 'content-type': 'application/json' }, agent: false }, (res) => {
      res.resume()
      done({ status: res.statusCode })
    })
    req.setTimeout(5000, () => req.destroy(new Error('timed out')))
    req.on('error', (error: NodeJS.ErrnoException) => done({ error }))
    req.end(JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }))
  })
  t.equal(viaHttp.status, undefined, 'no HTTP answer at all')
  t.ok(viaHttp.error, `the plain HTTP request fails (${viaHttp.error?.code ?? viaHttp.error?.message})`)
  t.not(viaHttp.error?.message, 'timed out', 'the server closes the connection rather than hanging')
  // The TLS port still works afterwards.
  t.equal((await client.request('GET', '/healthz')).status, 200)
})

t.test('keep-alive: many requests over one TLS connection', async (t) => {
  const { runtime } = await serve(t)
  const client = new WebhookClient(runtime.webhookUrl, { ca: certs.ca })
  t.teardown(() => client.close())
  const review = await exampleReview('pvc-restore')
  const sockets = new Set<unknown>()
  let handshakes = 0
  const reused: boolean[] = []
  for (let i = 0; i < 30; i++) {
    const result = i % 3 === 2 ? await client.request('GET', '/healthz') : (await client.review('/mutate', review)).result
    t.equal(result.status, 200)
    if (!sockets.has(result.socket)) {
      handshakes += 1
      sockets.add(result.socket)
    }
    reused.push(result.reusedSocket)
  }
  t.strictSame(reused, [false, ...new Array<boolean>(29).fill(true)], 'every request after the first reused the socket')
  // Concurrent requests queue on the agent's one socket.
  const parallel = await Promise.all(Array.from({ length: 10 }, () => client.review('/mutate', review)))
  for (const { result } of parallel) sockets.add(result.socket)
  t.ok(parallel.every(({ review: answer }) => answer.response.uid === review.request.uid))
  t.equal(handshakes, 1, 'one TLS handshake')
  t.equal(sockets.size, 1, 'one TLS connection for 40 requests')
})

t.test('mode: audit decides and reports but never patches or denies', async (t) => {
  const strict = { pvc: { whenBackupNotReady: 'deny' }, validation: { kopiaSecretKeys: 'deny', rdTrigger: 'deny' } }

  await t.test('the same config in enforce mode denies (the contrast)', async (t) => {
    const { client } = await serve(t, strict)
    const wait = await exampleReview('pvc-wait')
    const { review: denied } = await client.review('/mutate', wait)
    checkValid(t, wait, denied, 'enforce deny')
    t.equal(denied.response.allowed, false)
    t.equal(denied.response.status?.code, 403)
    t.match(denied.response.status?.message, /sonarr/)
    const { review: secretDenied } = await client.review('/validate', await exampleReview('secret-kopia-pitfalls'))
    t.equal(secretDenied.response.allowed, false)
  })

  const { runtime, client } = await serve(t, { mode: 'audit', ...strict })
  for (const name of ['pvc-restore', 'pvc-wait', 'pvc-fresh', 'pvc-remove-datasource', 'job-backup-create', 'job-backup-update-drift'] as const) {
    const review = await exampleReview(name)
    const { review: answer } = await client.review('/mutate', review)
    checkValid(t, review, answer, name)
    t.equal(answer.response.allowed, true, `${name}: allowed`)
    t.equal(answer.response.patch, undefined, `${name}: no patch`)
    t.equal(answer.response.status, undefined, `${name}: no status`)
  }
  const { review: restore } = await client.review('/mutate', await exampleReview('pvc-restore'))
  t.equal(restore.response.warnings?.[0], 'audit mode: would restore; no change made')
  const { review: wait } = await client.review('/mutate', await exampleReview('pvc-wait'))
  t.match(wait.response.warnings, [/^audit mode: would deny: .*sonarr/])
  for (const name of ['secret-kopia-pitfalls', 'rd-pitfalls'] as const) {
    const { review: answer } = await client.review('/validate', await exampleReview(name))
    t.equal(answer.response.allowed, true, `${name}: not denied in audit mode`)
    t.ok(answer.response.warnings?.some((w) => w.startsWith('audit mode: would deny: ')), `${name}: says what it would deny`)
  }
  // Audit mode still reports the decision it would have made.
  const metrics = (await httpGet(`${runtime.metricsUrl}/metrics`)).text
  t.equal(metricSample(metrics, 'volsync_autorestore_admission_requests_total', { webhook: 'mutate', kind: 'PersistentVolumeClaim', operation: 'CREATE', decision: 'deny' }), 2)
  t.equal(metricSample(metrics, 'volsync_autorestore_admission_requests_total', { webhook: 'mutate', kind: 'PersistentVolumeClaim', operation: 'CREATE', decision: 'restore' }), 2)
  t.equal(metricSample(metrics, 'volsync_autorestore_admission_requests_total', { webhook: 'validate', kind: 'Secret', operation: 'CREATE', decision: 'deny' }), 1)
  t.equal(JSON.parse((await httpGet(`${runtime.metricsUrl}/status`)).text).mode, 'audit')
})

t.test('dryRun: true gets the same answer and triggers no side effect', async (t) => {
  const sink = new LogSink()
  const { client } = await serve(t, undefined, createLogger('info', sink))
  for (const name of ['pvc-wait', 'pvc-restore', 'pvc-remove-datasource', 'job-backup-create', 'pvc-not-participating'] as const) {
    const review = await exampleReview(name)
    const dry = structuredClone(review)
    dry.request.dryRun = true
    const nudgesBefore = sink.messages('pre-warm requested').length
    const { review: dryAnswer } = await client.review('/mutate', dry)
    t.equal(sink.messages('pre-warm requested').length, nudgesBefore, `${name}: no pre-warm for the dry run`)
    const { review: realAnswer } = await client.review('/mutate', review)
    t.strictSame(dryAnswer, realAnswer, `${name}: identical response`)
  }
  t.strictSame(sink.messages('pre-warm requested').map((line) => line.nudge), [
    { type: 'prewarm', namespace: 'media', pvc: 'sonarr', destination: 'sonarr-dst' },
  ], 'exactly one pre-warm: the non-dry-run wait decision')
  t.ok(sink.messages('admission decision').some((line) => line.dryRun === true && line.name === 'sonarr'), 'the dry-run decision is still logged')
})

/** The way a ConfigMap volume or an editor that renames replaces a file: never half-written. */
async function writeAtomically(file: string, text: string): Promise<void> {
  await writeFile(`${file}.tmp`, text)
  await rename(`${file}.tmp`, file)
}

t.test('config hot reload: a valid change takes effect, an invalid file keeps the last good config', async (t) => {
  const { runtime, client, file, reloads, lastReloadError } = await serveFromFile(t)
  const wait = await exampleReview('pvc-wait')
  const before = await client.review('/mutate', wait)
  t.equal(before.review.response.allowed, true, 'wait: allowed before the change')

  await writeAtomically(file, await exampleConfigYaml({ certs, overrides: { pvc: { whenBackupNotReady: 'deny' } } }))
  const denied = await eventually('pvc-wait to be denied after the reload', async () => {
    const { review } = await client.review('/mutate', wait)
    return review.response.allowed ? undefined : review
  })
  t.equal(denied.response.status?.code, 403)
  t.match(denied.response.status?.message, /restic backup in source nas .* exists for media\/sonarr .*; retry in a minute/, 'the denial names the backup and says to retry')
  t.strictSame(await reloads(), { success: 1, failure: 0 }, 'volsync_autorestore_config_reloads_total{result="success"} counted')
  t.equal(runtime.store.current.config.pvc.whenBackupNotReady, 'deny')

  await writeAtomically(file, (await readFile(file, 'utf8')).replace('whenBackupNotReady: deny', 'whenBackupNotReady: later'))
  const counted = await eventually('the failed reload to be counted', async () => {
    const counts = await reloads()
    return counts.failure === 1 ? counts : undefined
  })
  t.strictSame(counted, { success: 1, failure: 1 }, 'volsync_autorestore_config_reloads_total{result="failure"} incremented, no success for the bad file')
  const still = await client.review('/mutate', wait)
  t.equal(still.review.response.allowed, false, 'the last good config (deny) stays in force')
  t.equal(runtime.store.current.config.pvc.whenBackupNotReady, 'deny')
  t.match(await lastReloadError(), /pvc\.whenBackupNotReady: must be one of "wait", "deny", "fresh"/, '/status names the bad key')
  t.equal((await client.request('GET', '/readyz')).status, 200, 'still ready')
})

t.test('certificate hot swap: new connections get the new certificate, an open keep-alive connection keeps working', async (t) => {
  const dir = await tempDir(t, 'rotate')
  const first = await makeCertificates(dir)
  const yaml = await exampleConfigYaml({ certs: first })
  const runtime = await startTestRuntime(t, { yaml })
  const old = new WebhookClient(runtime.webhookUrl, { ca: first.ca })
  t.teardown(() => old.close())
  await waitReady(old)
  const review = await exampleReview('pvc-restore')
  const opened = (await old.review('/mutate', review)).result
  const oldFingerprint = describeCertificate(await readFile(first.tlsCert, 'utf8')).fingerprint256
  t.equal(opened.fingerprint256, oldFingerprint)

  // A new CA and serving certificate written over the same files.
  const rotated = await writeCertificates({ outDir: dir, service: SERVICE, namespace: NAMESPACE, dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], newCa: true })
  const newCa = await readFile(rotated.caCert, 'utf8')
  const newFingerprint = describeCertificate(await readFile(rotated.tlsCert, 'utf8')).fingerprint256
  t.not(newFingerprint, oldFingerprint)

  const fresh = await eventually('a new connection to see the new certificate', async () => {
    const client = new WebhookClient(runtime.webhookUrl, { ca: newCa, keepAlive: false })
    try {
      const result = await client.request('GET', '/healthz')
      return result.fingerprint256 === newFingerprint ? result : undefined
    } finally {
      client.close()
    }
  })
  t.equal(fresh.status, 200)
  t.ok(fresh.socket.authorized, 'verified against the new CA')

  const again = (await old.review('/mutate', review)).result
  t.equal(again.status, 200, 'the open connection still answers')
  t.ok(again.reusedSocket, 'over the connection opened before the swap')
  t.equal(again.socket, opened.socket, 'the very same socket')
  t.equal(again.fingerprint256, oldFingerprint, 'which still carries the old certificate')

  const stale = new WebhookClient(runtime.webhookUrl, { ca: first.ca, keepAlive: false })
  t.teardown(() => stale.close())
  await t.rejects(stale.request('GET', '/healthz'), { code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' }, 'a new connection trusting only the old CA now fails')

  const metrics = (await httpGet(`${runtime.metricsUrl}/metrics`)).text
  t.equal(metricSample(metrics, 'volsync_autorestore_tls_certificate_reloads_total', { result: 'success' }), 1)
  const status = JSON.parse((await httpGet(`${runtime.metricsUrl}/status`)).text) as { tls: { reloads: number } }
  t.equal(status.tls.reloads, 1)
  t.equal(runtime.tls.current().cert, await readFile(rotated.tlsCert, 'utf8'))
})

/** A runtime watching a config file written from examples/config.yaml with `overrides`. */
async function serveFromFile(tt: Teardown, overrides?: Record<string, unknown>) {
  const dir = await tempDir(tt, 'config')
  const file = join(dir, 'config.yaml')
  const yaml = await exampleConfigYaml({ certs, ...(overrides ? { overrides } : {}) })
  await writeFile(file, yaml)
  const runtime = await startTestRuntime(tt, { yaml, configFile: file })
  const client = new WebhookClient(runtime.webhookUrl, { ca: certs.ca })
  tt.teardown(() => client.close())
  await waitReady(client)
  const reloads = async () => {
    const text = (await httpGet(`${runtime.metricsUrl}/metrics`)).text
    return {
      success: metricSample(text, 'volsync_autorestore_config_reloads_total', { result: 'success' }) ?? 0,
      failure: metricSample(text, 'volsync_autorestore_config_reloads_total', { result: 'failure' }) ?? 0,
    }
  }
  const lastReloadError = async () => (JSON.parse((await httpGet(`${runtime.metricsUrl}/status`)).text) as { config: { lastReloadError: string | null } }).config.lastReloadError
  return { runtime, client, file, yaml, reloads, lastReloadError }
}

t.test('config hot reload: /status clears the reload error once the file is fixed back', async (t) => {
  const { file, yaml, reloads, lastReloadError } = await serveFromFile(t)
  await writeAtomically(file, yaml.replace('whenBackupNotReady: wait', 'whenBackupNotReady: later'))
  await eventually('the failed reload', async () => ((await reloads()).failure === 1 ? true : undefined))
  t.match(await lastReloadError(), /pvc\.whenBackupNotReady/)
  await writeAtomically(file, yaml)
  const cleared = await eventually('lastReloadError to clear', async () => ((await lastReloadError()) === null ? true : undefined), 1500).catch(() => false)
  t.equal(cleared, true, '/status no longer reports an error for a file that is valid again')
})


t.test('config hot reload: an empty file (a truncated write) keeps the last good config', async (t) => {
  const { client, file, reloads, runtime } = await serveFromFile(t, { pvc: { whenBackupNotReady: 'deny' } })
  await writeAtomically(file, '')
  const after = await eventually('the empty file to be handled', async () => {
    const counts = await reloads()
    return counts.success + counts.failure > 0 ? counts : undefined
  })
  t.strictSame(after, { success: 0, failure: 1 }, 'rejected as a failed reload')
  t.equal(runtime.store.current.config.catalog.sources.length, 1, 'the catalog sources are still configured')
  const { review } = await client.review('/mutate', await exampleReview('pvc-wait'))
  t.equal(review.response.allowed, false, 'whenBackupNotReady: deny still in force')
})

// Issue 12, the end-to-end test and its done-when: the seeds' four scenarios (new app, delete and
// re-add; fresh install, rebuild) with only this server and (simulated) VolSync, no Kyverno.
// The real runtime (TLS webhook, catalog poller over a directory of per-PVC restic repositories,
// API-server watch, Lease, backup generator with its repository Secret, pre-warm, guard) runs in this
// process against the fake API server with RBAC enforced to exactly permissions(config).
//
// A new app's PVC is admitted `fresh` and gets its ReplicationSource and repository Secret; the
// "mover" then does what VolSync's restic mover does with them - the real restic (Debian's package)
// with RESTIC_REPOSITORY and RESTIC_PASSWORD from the Secret the RS names, `--host volsync`, the
// volume's directory as `.` - and the catalog finds that backup. The app is deleted and re-added: its
// PVC is admitted `wait`, pre-warm's RD is given a latestImage (VolSync's part), the next review says
// `restore`, and the restored PVC gets its RS only once it binds, with the same schedule. Fresh
// install: apps running before the server get RSs that run and are backed up; rebuild: a new
// cluster over the same repositories pre-warms, restores them, and gives them the same schedules.
import { execFile } from 'node:child_process'
import { access, constants, mkdir, writeFile } from 'node:fs/promises'
import { delimiter, join } from 'node:path'
import { promisify } from 'node:util'
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node'
import t from 'tap'
import { stringify } from 'yaml'
import { parseConfig } from '../../src/config/load.ts'
import { permissions, rbacRules } from '../../src/server/permissions.ts'
import { describeRequest, FakeKubeApi, field, type JsonObject } from '../support/fake-kube-api.ts'
import { applyPatchTo, decodePatch, eventually, makeCertificates, startTestRuntime, tempDir, WebhookClient, type Review } from '../support/live-webhook.ts'

/** Bound on every wait below: it only guards against a hang (a busy 2-core CI machine is slow). */
const WAIT_MS = 30_000
const PASSWORD = 'lifecycle-password'
const DECISION = 'volsync-autorestore.io/decision'

const run = promisify(execFile)

/** Whether an executable named `name` is on PATH (no spawn: a missing binary is the common case). */
async function onPath(name: string): Promise<boolean> {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue
    try {
      await access(join(dir, name), constants.X_OK)
      return true
    } catch {
      // not in this directory
    }
  }
  return false
}

const namespace = (name: string) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } })

function pvcObject(name: string, labels: Record<string, string> = { backup: 'hourly' }): JsonObject {
  return { apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name, namespace: 'media', labels }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } }
}

function pvcReview(object: JsonObject, uid: string): Review {
  const name = String(field(object, 'metadata.name'))
  return {
    apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview',
    request: {
      uid, kind: { group: '', version: 'v1', kind: 'PersistentVolumeClaim' }, resource: { group: '', version: 'v1', resource: 'persistentvolumeclaims' },
      operation: 'CREATE', namespace: 'media', name, userInfo: { username: 'flux' }, dryRun: false, object,
    },
  } as unknown as Review
}

/** The Secret's `data` (base64, as the API holds it) decoded. */
function secretValues(secret: JsonObject): Record<string, string> {
  const data = (field(secret, 'data') ?? {}) as Record<string, string>
  return Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]))
}

const RESTIC_SKIP = (await onPath('restic')) ? false : 'restic is not on PATH: install Debian\'s package (apt-get install -y restic; .ci/run does) to run this end-to-end test'

type Test = Parameters<NonNullable<Parameters<typeof t.test>[0]>>[0]

/**
 * A cluster that runs only this server (and VolSync, simulated by the test): a fake API server with the
 * RBAC of permissions(config) enforced, namespaces volsync-system and media, the shared restic
 * credentials, and the runtime over the per-PVC repositories in `repos`. Everything stops at t's end.
 */
async function startCluster(t: Test, dir: string, repos: string) {
  const certs = await makeCertificates(join(dir, 'certs'))
  const yaml = stringify({
    server: { host: '127.0.0.1', port: 0, metricsHost: '127.0.0.1', metricsPort: 0, tls: { certFile: certs.tlsCert, keyFile: certs.tlsKey } },
    kube: { kubeconfig: join(dir, 'kubeconfig'), namespace: 'volsync-system', leaseDuration: '3s', renewDeadline: '2s', retryPeriod: '200ms', identity: 'replica-a' },
    catalog: { interval: '1s', sources: [{ name: 'nas', type: 's3-prefix', filesystem: { path: repos }, resticPasswordFile: join(repos, '..', 'password') }] },
    prewarm: { template: { restic: { repository: '{{pvc}}-restic-secret', capacity: '1Gi', accessModes: ['ReadWriteOnce'] } } },
    backup: {
      enabled: true,
      template: { restic: { repository: '{{pvc}}-restic-secret', copyMethod: 'Snapshot', retain: { hourly: 24, daily: 7 } } },
      // The seeds' Kyverno-generated per-app Secret: the shared password, the app's own repository.
      secret: { name: '{{pvc}}-restic-secret', from: 'restic-credentials', keys: ['RESTIC_PASSWORD'], values: { RESTIC_REPOSITORY: `${repos}/{{namespace}}/{{pvc}}` } },
    },
    log: { level: 'silent' },
  })
  const rules = rbacRules(permissions(parseConfig(yaml, 'test config')))
  const fake = await FakeKubeApi.start({ rbac: rules })
  t.teardown(() => fake.close())
  fake.seed(namespace('volsync-system'), namespace('media'), {
    apiVersion: 'v1', kind: 'Secret', metadata: { name: 'restic-credentials', namespace: 'volsync-system' },
    data: { RESTIC_PASSWORD: Buffer.from(PASSWORD).toString('base64') },
  })
  await fake.writeKubeconfig(join(dir, 'kubeconfig'))
  const runtime = await startTestRuntime(t, { yaml })
  const client = new WebhookClient(runtime.webhookUrl, { ca: certs.ca })
  t.teardown(() => client.close())
  await eventually('the cluster state to sync', async () => (runtime.store.current.cluster.synced ? true : undefined), WAIT_MS)

  /** The API server's part of a create: the webhook's patch applied, then stored with a uid, creation time and status. */
  const admit = async (object: JsonObject, uid: string, status: JsonObject, created = new Date().toISOString()) => {
    const { review } = await client.review('/mutate', pvcReview(object, `review-${uid}`))
    if (review.response.allowed !== true) throw new Error(`the webhook denied ${uid}: ${JSON.stringify(review.response)}`)
    const admitted = applyPatchTo(structuredClone(object), decodePatch(review)) as JsonObject
    const decision = ((field(admitted, 'metadata.annotations') ?? {}) as Record<string, string>)[DECISION]
    return { review, decision, admitted: { ...admitted, metadata: { ...(admitted.metadata as JsonObject), uid, creationTimestamp: created }, status } }
  }
  /** A person's write (test side: RBAC is the server's, lifted for this one request). */
  const asAdmin = async (write: () => Promise<unknown>) => {
    fake.enforceRbac(undefined)
    try {
      await write()
    } finally {
      fake.enforceRbac(rules)
    }
  }
  /** VolSync's restic mover for an RS: its Secret's RESTIC_REPOSITORY and RESTIC_PASSWORD, init if needed, `restic backup --host volsync .` in the volume. */
  const mover = async (source: JsonObject, volume: string) => {
    const secret = await eventually(`the repository Secret of RS ${String(field(source, 'metadata.name'))}`, async () => fake.get('secrets', 'media', String(field(source, 'spec.restic.repository'))), WAIT_MS)
    const values = secretValues(secret)
    const env = { HOME: dir, PATH: process.env.PATH ?? '', RESTIC_REPOSITORY: values.RESTIC_REPOSITORY ?? '', RESTIC_PASSWORD: values.RESTIC_PASSWORD ?? '' }
    const initialized = await run('restic', ['--no-cache', 'cat', 'config'], { env }).then(() => true, () => false)
    if (!initialized) await run('restic', ['--no-cache', '--quiet', 'init'], { cwd: volume, env })
    await run('restic', ['--no-cache', '--quiet', 'backup', '--host', 'volsync', '.'], { cwd: volume, env })
    return values
  }
  const rs = (name: string) => fake.get('replicationsources', 'media', name)
  const rd = (name: string) => fake.get('replicationdestinations', 'media', name)
  /** A catalog entry for media/<pvc> read exactly (not from the listing) with at least one snapshot. */
  const backupOf = (pvc: string) => eventually(`the catalog to read media/${pvc} with its snapshot`, async () =>
    runtime.store.current.catalog.byPvc.get(`media/${pvc}`)?.find((e) => e.exact !== false && (e.snapshots ?? 0) >= 1), WAIT_MS)
  /** VolSync's part of a restore: the RD's Job ran, and its status shows the image. */
  const synced = async (destination: JsonObject) => {
    fake.seed({ ...destination, status: { lastManualSync: field(destination, 'spec.trigger.manual'), latestImage: { apiGroup: 'snapshot.storage.k8s.io', kind: 'VolumeSnapshot', name: `volsync-${String(field(destination, 'metadata.name'))}-dest-1` } } })
    await eventually('the synced RD to reach the snapshot', async () => (runtime.store.current.cluster.replicationDestinations.get(`media/${String(field(destination, 'metadata.name'))}`)?.latestImage ? true : undefined), WAIT_MS)
  }
  return { fake, runtime, rules, admit, asAdmin, mover, rs, rd, backupOf, synced }
}

/** Writes a small volume's files into dir/<name>, for the mover to back up. */
async function volume(dir: string, name: string): Promise<string> {
  const path = join(dir, 'volumes', name)
  await mkdir(path, { recursive: true })
  await writeFile(join(path, 'app.db'), `${name}'s data`)
  return path
}

t.test('new app, then delete and re-add: backed up by restic, restored, its RS only after it binds', { skip: RESTIC_SKIP }, async (t) => {
  const dir = await tempDir(t, 'backup-lifecycle')
  const repos = join(dir, 'repos')
  await mkdir(repos, { recursive: true })
  await writeFile(join(dir, 'password'), PASSWORD)
  const { fake, runtime, admit, asAdmin, mover, rs, rd, backupOf, synced } = await startCluster(t, dir, repos)

  let schedule: unknown
  await t.test('a new app gets a ReplicationSource and its repository Secret, and the mover backs it up with restic', async (t) => {
    const { decision, admitted } = await admit(pvcObject('app'), 'uid-app-1', { phase: 'Bound' }, new Date(Date.now() - 60_000).toISOString())
    t.equal(decision, 'fresh', 'no backup yet')
    t.equal(field(admitted, 'spec.dataSourceRef'), undefined)
    fake.seed(admitted)
    const source = await eventually('the new app\'s RS', async () => rs('app'), WAIT_MS)
    schedule = field(source, 'spec.trigger.schedule')
    t.match(schedule, /^\d{1,2} \* \* \* \*$/, 'hourly, its minute from the H expansion')
    t.equal(field(source, 'spec.sourcePVC'), 'app')
    t.equal(field(source, 'spec.paused'), undefined, 'a fresh app\'s RS runs')
    t.equal(field(source, 'spec.restic.repository'), 'app-restic-secret')

    // The mover runs: the repository and password from the Secret the RS names (VolSync's secretKeyRefs).
    const env = await mover(source, await volume(dir, 'app'))
    t.equal(env.RESTIC_REPOSITORY, join(repos, 'media', 'app'), 'the per-PVC repository')
    t.equal(env.RESTIC_PASSWORD, PASSWORD, 'copied from the shared Secret')
  })

  await t.test('the catalog finds the backup the mover wrote', async (t) => {
    const entry = await backupOf('app')
    t.equal(entry.kind, 'restic')
    t.equal(entry.snapshots, 1)
    t.equal(entry.source, 'nas')
  })

  await t.test('deleted and re-added: wait, then restore once the pre-warmed RD has an image; its RS only after it binds', async (t) => {
    const pvcs = () => runtime.store.current.cluster.pvcs
    // Kubernetes would garbage-collect the RS with its owner; the fake does not, so both go.
    await asAdmin(() => fake.kubeConfig().makeApiClient(CoreV1Api).deleteNamespacedPersistentVolumeClaim({ namespace: 'media', name: 'app' }))
    await eventually('the deleted PVC to leave the snapshot', async () => ([...pvcs().values()].some((p) => p.name === 'app') ? undefined : true), WAIT_MS)
    await asAdmin(() => fake.kubeConfig().makeApiClient(CustomObjectsApi).deleteNamespacedCustomObject({ group: 'volsync.backube', version: 'v1alpha1', namespace: 'media', plural: 'replicationsources', name: 'app' }))
    await eventually('the deleted RS to leave the snapshot', async () => (runtime.store.current.cluster.replicationSources.has('media/app') ? undefined : true), WAIT_MS)

    const waiting = await admit(pvcObject('app'), 'uid-app-2', { phase: 'Pending' })
    t.equal(waiting.decision, 'wait', 'a backup is known and its RD has no image yet')
    t.match(waiting.review.response.warnings?.[0], /waiting for ReplicationDestination app-dst to restore media\/app/)
    const destination = await eventually('pre-warm\'s RD for the app', async () => rd('app-dst'), WAIT_MS)
    t.equal(field(destination, 'spec.restic.repository'), 'app-restic-secret', 'restores from the repository the RS writes')
    t.equal(field(destination, 'spec.restic.copyMethod'), 'Snapshot')
    t.match(field(destination, 'spec.trigger.manual'), /^prewarm-\d+$/)

    await synced(destination)
    const restoring = await admit(pvcObject('app'), 'uid-app-2', { phase: 'Pending' })
    t.equal(restoring.decision, 'restore')
    t.same(field(restoring.admitted, 'spec.dataSourceRef'), { apiGroup: 'volsync.backube', kind: 'ReplicationDestination', name: 'app-dst' })

    // The populator fills the volume: Pending. A second new app is stored after it, so the pass that
    // creates the canary's RS planned from a snapshot that already held the populating PVC (one watch,
    // in order): no RS for it there is the generator's choice, not a pass that has not happened yet.
    fake.seed(restoring.admitted)
    const canary = await admit(pvcObject('canary'), 'uid-canary', { phase: 'Bound' })
    t.equal(canary.decision, 'fresh')
    fake.seed(canary.admitted)
    await eventually('the canary\'s RS', async () => rs('canary'), WAIT_MS)
    t.equal(rs('app'), undefined, 'no RS while the restore populates the PVC')

    fake.seed({ ...restoring.admitted, status: { phase: 'Bound' } })
    const source = await eventually('the restored app\'s RS once it binds', async () => rs('app'), WAIT_MS)
    t.equal(field(source, 'spec.trigger.schedule'), schedule, 'the same schedule as before: H expands from namespace/PVC')
    t.equal(field(source, 'spec.paused'), undefined, 'restored, not missed: it runs')
    t.equal((field(source, 'metadata.ownerReferences') as Array<{ uid: string }>)[0]?.uid, 'uid-app-2', 'owned by the new PVC')
  })

  await t.test('nothing the server did was forbidden by the RBAC of permissions(config)', async (t) => {
    t.strictSame(fake.forbidden.map(describeRequest), [])
    t.ok(fake.requests.some((r) => r.status !== undefined && r.status < 300 && r.method === 'PATCH' && r.path.includes('/replicationsources/')), 'the generator did write RSs (so the check saw its writes)')
  })
})

t.test('fresh install, then a cluster rebuild: the apps\' backups are made, found, and restored in the new cluster with the same schedules', { skip: RESTIC_SKIP }, async (t) => {
  const dir = await tempDir(t, 'backup-rebuild')
  const repos = join(dir, 'repos')
  await mkdir(repos, { recursive: true })
  await writeFile(join(dir, 'password'), PASSWORD)
  const apps = ['sonarr', 'radarr']
  const schedules = new Map<string, unknown>()

  await t.test('fresh install: apps running before the server get RSs that run, the mover backs them up, the catalog finds them', async (t) => {
    const cluster = await startCluster(t, join(dir, 'old'), repos)
    // Bound long ago, before the server was installed, with no backup anywhere.
    for (const app of apps) cluster.fake.seed({ ...pvcObject(app), metadata: { ...(pvcObject(app).metadata as JsonObject), uid: `uid-old-${app}`, creationTimestamp: '2026-01-01T00:00:00Z' }, status: { phase: 'Bound' } })
    for (const app of apps) {
      const source = await eventually(`${app}'s RS`, async () => cluster.rs(app), WAIT_MS)
      t.equal(field(source, 'spec.paused'), undefined, `${app}: no backup, not a missed restore: it runs`)
      t.match(field(source, 'spec.trigger.schedule'), /^\d{1,2} \* \* \* \*$/)
      schedules.set(app, field(source, 'spec.trigger.schedule'))
      await cluster.mover(source, await volume(dir, app))
    }
    for (const app of apps) t.equal((await cluster.backupOf(app)).snapshots, 1, `${app}'s backup found`)
    t.strictSame(cluster.fake.forbidden.map(describeRequest), [], 'nothing forbidden')
  })

  await t.test('rebuild: a new cluster, the same repositories: pre-warm, restore, RSs after binding with the same schedules', async (t) => {
    const cluster = await startCluster(t, join(dir, 'new'), repos)
    const destinations = await Promise.all(apps.map((app) => eventually(`pre-warm's RD for ${app}`, async () => cluster.rd(`${app}-dst`), WAIT_MS)))
    for (const destination of destinations) await cluster.synced(destination)
    const restoring = []
    for (const app of apps) {
      const admitted = await cluster.admit(pvcObject(app), `uid-new-${app}`, { phase: 'Pending' })
      t.equal(admitted.decision, 'restore', `${app} is restored`)
      t.equal(field(admitted.admitted, 'spec.dataSourceRef.name'), `${app}-dst`)
      cluster.fake.seed(admitted.admitted)
      restoring.push(admitted.admitted)
    }
    // A new app stored after them: its RS proves a pass saw the populating PVCs (see above).
    const fresh = await cluster.admit(pvcObject('bazarr'), 'uid-new-bazarr', { phase: 'Bound' })
    t.equal(fresh.decision, 'fresh', 'an app without a backup starts empty')
    cluster.fake.seed(fresh.admitted)
    await eventually('the new app\'s RS', async () => cluster.rs('bazarr'), WAIT_MS)
    for (const app of apps) t.equal(cluster.rs(app), undefined, `no RS for ${app} while its restore populates`)
    for (const object of restoring) cluster.fake.seed({ ...object, status: { phase: 'Bound' } })
    for (const app of apps) {
      const source = await eventually(`${app}'s RS once it binds`, async () => cluster.rs(app), WAIT_MS)
      t.equal(field(source, 'spec.trigger.schedule'), schedules.get(app), `${app}: the same schedule as in the old cluster`)
      t.equal(field(source, 'spec.paused'), undefined)
    }
    t.strictSame(cluster.fake.forbidden.map(describeRequest), [], 'nothing forbidden')
  })
})

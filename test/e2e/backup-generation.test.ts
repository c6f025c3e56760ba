// Backup generation end to end (issue 12 items 1-2): the real runtime (API-server watch, Lease, the
// backup loop, pre-warm and guard) in this process against the fake API server with RBAC enforced to
// exactly permissions(config), through the real @kubernetes/client-node. A fresh app gets its RS; a
// restored app's RS comes only once its PVC binds; a missed restore's RS is created paused; a user's
// RS is never written; a deleted RS comes back; nothing the server does is forbidden.
import { CustomObjectsApi } from '@kubernetes/client-node'
import { join } from 'node:path'
import t from 'tap'
import { stringify } from 'yaml'
import { parseConfig } from '../../src/config/load.ts'
import { PAUSED_FOR_ANNOTATION } from '../../src/controllers/missed-restore-guard.ts'
import { permissions, rbacRules } from '../../src/server/permissions.ts'
import { describeRequest, FakeKubeApi, field, type JsonObject } from '../support/fake-kube-api.ts'
import { eventually, httpGet, makeCertificates, startTestRuntime, tempDir } from '../support/live-webhook.ts'

/** Bound on every wait below: it only guards against a hang (a busy 2-core CI machine is slow). */
const WAIT_MS = 30_000

const namespace = (name: string) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } })
const pvc = (name: string, extra: { spec?: JsonObject; phase?: string; created?: string } = {}) => ({
  apiVersion: 'v1', kind: 'PersistentVolumeClaim',
  metadata: { name, namespace: 'media', uid: `uid-${name}`, labels: { backup: 'hourly' }, creationTimestamp: extra.created ?? '2026-01-01T00:00:00Z' },
  spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } }, ...extra.spec },
  status: { phase: extra.phase ?? 'Bound' },
})

t.test('backup generation with RBAC enforced', async (t) => {
  const dir = await tempDir(t, 'backup-gen')
  const certs = await makeCertificates(join(dir, 'certs'))
  const yaml = stringify({
    server: { host: '127.0.0.1', port: 0, metricsHost: '127.0.0.1', metricsPort: 0, tls: { certFile: certs.tlsCert, keyFile: certs.tlsKey } },
    kube: { kubeconfig: join(dir, 'kubeconfig'), namespace: 'volsync-system', leaseDuration: '3s', renewDeadline: '2s', retryPeriod: '200ms', identity: 'replica-a' },
    // A backup of media/missed older than its PVC: a missed restore. Of media/restored too (its PVC restores it).
    catalog: { interval: '60s', sources: [{ name: 'declared', type: 'static', backups: [{ namespace: 'media', pvc: 'missed', snapshots: 3, newest: '2026-01-01T00:00:00Z' }, { namespace: 'media', pvc: 'restored', snapshots: 3, newest: '2026-01-01T00:00:00Z' }] }] },
    prewarm: { enabled: false },
    backup: { enabled: true, template: { kopia: { repository: '{{pvc}}-volsync-secret', copyMethod: 'Snapshot' } } },
    log: { level: 'silent' },
  })
  const fake = await FakeKubeApi.start({ rbac: rbacRules(permissions(parseConfig(yaml, 'test config'))) })
  t.teardown(() => fake.close())
  fake.seed(namespace('volsync-system'), namespace('media'),
    pvc('fresh'),
    pvc('restored', { spec: { dataSourceRef: { apiGroup: 'volsync.backube', kind: 'ReplicationDestination', name: 'restored-dst' } }, phase: 'Pending', created: new Date().toISOString() }),
    pvc('missed', { created: new Date().toISOString() }),
    pvc('mine'),
    { apiVersion: 'volsync.backube/v1alpha1', kind: 'ReplicationSource', metadata: { name: 'mine', namespace: 'media' }, spec: { sourcePVC: 'mine', trigger: { schedule: '0 0 * * *' } } },
  )
  await fake.writeKubeconfig(join(dir, 'kubeconfig'))
  const runtime = await startTestRuntime(t, { yaml })
  const rs = (name: string) => fake.get('replicationsources', 'media', name)

  const fresh = await eventually('the fresh app\'s RS', async () => rs('fresh'), WAIT_MS)
  t.match(field(fresh, 'spec.trigger.schedule'), /^\d{1,2} \* \* \* \*$/)
  t.equal(field(fresh, 'spec.sourcePVC'), 'fresh')
  t.equal(field(fresh, 'spec.paused'), undefined)
  const missed = await eventually('the missed restore\'s RS', async () => rs('missed'), WAIT_MS)
  t.equal(field(missed, 'spec.paused'), true, 'created paused, never running')
  t.equal((field(missed, 'metadata.annotations') as Record<string, string>)[PAUSED_FOR_ANNOTATION], 'uid-missed')
  t.equal(rs('restored'), undefined, 'no RS while the restore populates')
  t.equal(field(rs('mine'), 'spec.trigger.schedule'), '0 0 * * *', 'the user\'s RS untouched')
  t.same(fake.requests.filter((r) => r.method !== 'GET' && r.path.endsWith('/replicationsources/mine')), [], 'not a single write to it')

  fake.seed(pvc('restored', { spec: { dataSourceRef: { apiGroup: 'volsync.backube', kind: 'ReplicationDestination', name: 'restored-dst' } }, phase: 'Bound', created: String(field(fake.get('persistentvolumeclaims', 'media', 'restored')!, 'metadata.creationTimestamp')) }))
  const restored = await eventually('the restored app\'s RS once it binds', async () => rs('restored'), WAIT_MS)
  t.equal(field(restored, 'spec.paused'), undefined, 'restored, not missed: it runs')

  const schedule = field(fresh, 'spec.trigger.schedule')
  const uid = field(fresh, 'metadata.uid')
  // A person deletes it (test side: RBAC is the server's, so it is lifted for this one request).
  const rules = rbacRules(permissions(parseConfig(yaml, 'test config')))
  fake.enforceRbac(undefined)
  await fake.kubeConfig().makeApiClient(CustomObjectsApi).deleteNamespacedCustomObject({ group: 'volsync.backube', version: 'v1alpha1', namespace: 'media', plural: 'replicationsources', name: 'fresh' })
  fake.enforceRbac(rules)
  const back = await eventually('the deleted RS to come back', async () => { const o = rs('fresh'); return o && field(o, 'metadata.uid') !== uid ? o : undefined }, WAIT_MS)
  t.equal(field(back, 'spec.trigger.schedule'), schedule, 'with the same schedule')

  const status = JSON.parse((await httpGet(`${runtime.metricsUrl}/status`, { accept: 'application/json' })).text) as { pvcs: Array<{ name: string; backupGenerator: { state: string; source: string | null; schedule: string | null; message: string | null } | null }> }
  const generator = Object.fromEntries(status.pvcs.map((p) => [p.name, p.backupGenerator]))
  t.match(generator.mine, { state: 'unmanaged', source: 'mine', message: /not created by volsync-autorestore/ }, '/status shows the user\'s RS as unmanaged')
  t.match(generator.fresh, { state: 'managed', source: 'fresh', schedule: schedule })
  t.match(generator.missed, { state: 'managed', source: 'missed' })
  t.strictSame(fake.forbidden.map(describeRequest), [], 'nothing the server did was forbidden by the RBAC of permissions(config)')
  t.ok(runtime.supervisor.health().some((h) => h.name === 'backup'), 'the backup loop runs')
})

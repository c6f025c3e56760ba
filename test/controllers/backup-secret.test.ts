// backup.secret against the fake API server enforcing exactly permissions(config): a repository Secret
// per participating PVC, named keys copied byte for byte from the shared Secret, templated values
// rendered, a Secret someone else made left alone, a changed shared Secret propagated, a deleted one
// recreated on the resync, and no value in any log line (real pino output).
import { CoreV1Api } from '@kubernetes/client-node'
import t from 'tap'
import { parseConfig } from '../../src/config/load.ts'
import { BackupSecretController, secretWrites } from '../../src/controllers/backup-secret.ts'
import { planBackupSecrets } from '../../src/controllers/backup-secret-plan.ts'
import { createLogger } from '../../src/log.ts'
import { permissions, rbacRules } from '../../src/server/permissions.ts'
import { describeRequest, FakeKubeApi, field } from '../support/fake-kube-api.ts'
import { LogSink } from '../support/live-webhook.ts'
import { snapshotOf } from '../support/snapshot.ts'

const CONFIG = `
kube: { namespace: volsync-system }
backup:
  secret:
    name: "{{pvc}}-volsync-secret"
    from: volsync-credentials
    keys: [AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, KOPIA_PASSWORD]
    values: { KOPIA_REPOSITORY: "s3://bucket/{{namespace}}/{{pvc}}/", APP: '{{label "app"}}' }
`
const b64 = (text: string | Buffer): string => Buffer.from(text).toString('base64')
// Bytes no text encoding would keep: every byte value, a NUL, invalid UTF-8.
const BINARY_PASSWORD = Buffer.from([...Array(256).keys()].reverse())
const SHARED = { AWS_ACCESS_KEY_ID: b64('AKIA-shared-id'), AWS_SECRET_ACCESS_KEY: b64('s3cr3t/with+signs='), KOPIA_PASSWORD: b64(BINARY_PASSWORD), UNRELATED: b64('not copied') }
const SECRET_TEXTS = ['AKIA-shared-id', 's3cr3t/with+signs=', 'rotated-secret-key', 'not copied', ...Object.values(SHARED), b64('rotated-secret-key'), b64('s3://bucket/media/jellyfin/')]

function sharedSecret(data: Record<string, string>) {
  return { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'volsync-credentials', namespace: 'volsync-system' }, type: 'Opaque', data }
}
function pvc(name: string, uid: string, labels: Record<string, string> = { backup: 'hourly', app: name }) {
  return { apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name, namespace: 'media', uid, labels }, spec: {} }
}

t.test('repository Secrets through the API, with exactly the RBAC of permissions(config)', async (t) => {
  const config = parseConfig(CONFIG, 'test')
  const rules = rbacRules(permissions(config))
  const fake = await FakeKubeApi.start({ rbac: rules })
  t.teardown(() => fake.close())
  fake.seed(
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'volsync-system' } }, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'media' } },
    sharedSecret(SHARED),
    // A Secret of the same name that a person made: never written.
    { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'sonarr-volsync-secret', namespace: 'media', labels: { team: 'media' } }, type: 'Opaque', data: { KOPIA_PASSWORD: b64('their own') } },
  )
  let snapshot = snapshotOf({ config: CONFIG, objects: [pvc('jellyfin', 'uid-jellyfin'), pvc('sonarr', 'uid-sonarr'), pvc('plain', 'uid-plain', {})] })
  const sink = new LogSink()
  const log = createLogger('debug', sink)
  let now = 1_000_000
  const controller = new BackupSecretController({ writes: secretWrites(fake.kubeConfig()), readSnapshot: () => snapshot, log, resyncMs: 60_000, now: () => now })
  controller.lead()
  const signal = new AbortController().signal
  const secret = (name: string) => fake.get('secrets', 'media', name)

  await t.test('created for each participating PVC: keys byte for byte, values rendered, ours by label, owned by the PVC', async (t) => {
    await controller.run(signal)
    const jellyfin = secret('jellyfin-volsync-secret')!
    t.ok(jellyfin, 'created')
    const data = field(jellyfin, 'data') as Record<string, string>
    t.strictSame(Object.keys(data).sort(), ['APP', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'KOPIA_PASSWORD', 'KOPIA_REPOSITORY'])
    for (const key of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'KOPIA_PASSWORD'] as const) t.equal(data[key], SHARED[key], `${key}: the same base64 text`)
    t.ok(Buffer.from(data.KOPIA_PASSWORD!, 'base64').equals(BINARY_PASSWORD), 'the binary password, byte for byte')
    t.equal(Buffer.from(data.KOPIA_REPOSITORY!, 'base64').toString('utf8'), 's3://bucket/media/jellyfin/')
    t.equal(Buffer.from(data.APP!, 'base64').toString('utf8'), 'jellyfin', '{{label "app"}}')
    t.equal((field(jellyfin, 'metadata.labels') as Record<string, string>)['app.kubernetes.io/managed-by'], 'volsync-autorestore')
    t.match(field(jellyfin, 'metadata.ownerReferences'), [{ kind: 'PersistentVolumeClaim', name: 'jellyfin', uid: 'uid-jellyfin' }])
    t.equal(field(jellyfin, 'type'), 'Opaque')
    t.notOk(secret('plain-volsync-secret'), 'a PVC without the backup label gets none')
    t.notOk('UNRELATED' in data, 'only the named keys')
  })

  await t.test("a Secret someone else made is left alone, and said once", async (t) => {
    const sonarr = secret('sonarr-volsync-secret')!
    t.strictSame(field(sonarr, 'data'), { KOPIA_PASSWORD: b64('their own') })
    t.strictSame(field(sonarr, 'metadata.labels'), { team: 'media' })
    await controller.run(signal)
    const said = sink.lines.filter((l) => typeof l.msg === 'string' && l.msg.includes('sonarr-volsync-secret exists and was not created by volsync-autorestore'))
    t.equal(said.length, 1, 'one warning, not one per pass')
  })

  await t.test('a changed shared Secret is propagated; an unchanged pass writes nothing', async (t) => {
    fake.clearRequests()
    await controller.run(signal)
    t.strictSame(fake.requests.filter((r) => r.method !== 'GET').map((r) => `${r.method} ${r.path}`), [], 'nothing changed: no write')
    fake.seed(sharedSecret({ ...SHARED, AWS_SECRET_ACCESS_KEY: b64('rotated-secret-key') }))
    await controller.run(signal)
    t.equal((field(secret('jellyfin-volsync-secret')!, 'data') as Record<string, string>).AWS_SECRET_ACCESS_KEY, b64('rotated-secret-key'))
    t.strictSame(field(secret('sonarr-volsync-secret')!, 'data'), { KOPIA_PASSWORD: b64('their own') }, 'still not ours')
    t.equal(sink.lines.filter((l) => l.msg === 'updated repository Secret').length, 1)
  })

  await t.test('a deleted Secret comes back on the resync; a new PVC gets one at once', async (t) => {
    // A person deletes it (the server has no delete verb: RBAC off for this one call).
    fake.enforceRbac(undefined)
    await fake.kubeConfig().makeApiClient(CoreV1Api).deleteNamespacedSecret({ namespace: 'media', name: 'jellyfin-volsync-secret' })
    fake.enforceRbac(rules)
    t.notOk(secret('jellyfin-volsync-secret'), 'deleted')
    snapshot = snapshotOf({ config: CONFIG, objects: [pvc('jellyfin', 'uid-jellyfin'), pvc('sonarr', 'uid-sonarr'), pvc('bazarr', 'uid-bazarr')] })
    await controller.run(signal)
    t.ok(secret('bazarr-volsync-secret'), 'the new PVC: at once')
    t.notOk(secret('jellyfin-volsync-secret'), 'unchanged ones wait for the resync')
    now += 60_000
    await controller.run(signal)
    t.ok(secret('jellyfin-volsync-secret'), 'recreated on the resync')
  })

  await t.test('a missing key: no half Secret, the problem named once', async (t) => {
    const { KOPIA_PASSWORD: _dropped, ...withoutPassword } = SHARED
    fake.seed(sharedSecret(withoutPassword))
    snapshot = snapshotOf({ config: CONFIG, objects: [pvc('radarr', 'uid-radarr')] })
    await controller.run(signal)
    await controller.run(signal)
    t.notOk(secret('radarr-volsync-secret'))
    t.equal(sink.lines.filter((l) => l.msg === 'Secret volsync-system/volsync-credentials has no key KOPIA_PASSWORD (backup.secret.keys): no repository Secret is written').length, 1)
  })

  await t.test('the leader stops writing once its signal aborts', async (t) => {
    fake.seed(sharedSecret(SHARED))
    snapshot = snapshotOf({ config: CONFIG, objects: [pvc('lidarr', 'uid-lidarr')] })
    const aborted = new AbortController()
    aborted.abort()
    await controller.run(aborted.signal)
    t.notOk(secret('lidarr-volsync-secret'))
  })

  await t.test('nothing forbidden, and no value in any log line', async (t) => {
    t.strictSame(fake.forbidden.map(describeRequest), [])
    const text = sink.lines.map((l) => JSON.stringify(l)).join('\n')
    t.ok(sink.lines.length >= 4, `${sink.lines.length} log lines`)
    for (const value of SECRET_TEXTS) t.notOk(text.includes(value), `no log line holds ${value.slice(0, 6)}...`)
    t.match(sink.lines.find((l) => l.msg === 'created repository Secret'), { namespace: 'media', secret: 'jellyfin-volsync-secret', pvc: 'jellyfin', keys: ['APP', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'KOPIA_PASSWORD', 'KOPIA_REPOSITORY'] })
  })
})

t.test('plan: unrenderable names and values, two PVCs rendering one Secret, no shared Secret', async (t) => {
  const config = parseConfig(CONFIG, 'test').backup.secret!
  const snapshot = snapshotOf({ config: CONFIG, objects: [pvc('a', 'u1'), pvc('nolabel', 'u2', { backup: 'x' })] })
  const plan = planBackupSecrets(snapshot, config, SHARED, 'volsync-system')
  t.strictSame(plan.secrets.map((s) => s.name), ['a-volsync-secret'])
  t.strictSame(plan.problems, ['PVC media/nolabel: backup.secret.values.APP needs label "app" (the PVC has no such label)'])
  t.strictSame(planBackupSecrets(snapshot, config, null, 'volsync-system'), { secrets: [], problems: ['Secret volsync-system/volsync-credentials (backup.secret.from) does not exist: no repository Secret is written'] })
  const shared = { ...config, name: '{{namespace}}-volsync' }
  const both = planBackupSecrets(snapshotOf({ config: CONFIG, objects: [pvc('a', 'u1'), pvc('b', 'u2')] }), shared, SHARED, 'volsync-system')
  t.strictSame(both.secrets.map((s) => `${s.name} for ${s.pvc}`), ['media-volsync for a'])
  t.match(both.problems, [/Secret media\/media-volsync renders differently for PVCs a and b: kept a's/])
  t.notOk(JSON.stringify(both).includes('AKIA'), 'problems hold no value')
})

t.test('off: no grant and no pass', async (t) => {
  const config = parseConfig('kube: { namespace: volsync-system }', 'test')
  t.notOk(permissions(config).grants.some((g) => g.loop === 'backup-secret'))
  let reads = 0
  const controller = new BackupSecretController({
    writes: { async readShared() { reads++; return {} }, async create() { return true }, async patch() { return 'patched' } },
    readSnapshot: () => snapshotOf(), log: createLogger('silent'),
  })
  await controller.run(new AbortController().signal)
  t.equal(reads, 0)
})


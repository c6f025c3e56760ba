// Issue 12 item 3: one naming module (src/volsync/names.ts) makes backup, catalog and restore agree.
// A PVC backed up by a generated ReplicationSource, whose Kopia mover writes under the identity VolSync
// derives from the RS name, is found by the catalog (a shared Kopia repository written by the test
// writer, read by the real kopia source) and restored by the pre-warmed RD, whose identity fields
// VolSync resolves back to that same identity.
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { lookupPvcBackup } from '../../src/admission/backup-lookup.ts'
import { kopiaSource } from '../../src/catalog/kopia-source.ts'
import { clusterStateFromObjects } from '../../src/cluster/cluster-objects.ts'
import { parseConfig } from '../../src/config/load.ts'
import { planBackups } from '../../src/controllers/backup-plan.ts'
import { planPrewarm } from '../../src/controllers/prewarm-plan.ts'
import { isObject, type JsonObject } from '../../src/json.ts'
import { buildCatalogState } from '../../src/state/catalog-state.ts'
import { StateStore } from '../../src/state/store.ts'
import { describeKopiaIdentity, kopiaHostname, kopiaIdentityOfSource, kopiaUsername, type KopiaIdentity } from '../../src/volsync/names.ts'
import { directoryTarget } from '../support/kopia-target.ts'
import { KopiaTestWriter } from '../support/kopia-writer.ts'

const NOW = Date.parse('2026-03-16T09:00:00Z')
const never = new AbortController().signal
const PASSWORD = 'shared-kopia-password'

/** The identity a Kopia RD restores, resolved as the fork's FromDestination does (volsync-reference.md section 3). */
function identityVolSyncRestores(rd: JsonObject): KopiaIdentity {
  const kopia = (rd.spec as JsonObject).kopia as JsonObject
  const namespace = (rd.metadata as JsonObject).namespace as string
  if (typeof kopia.username === 'string' && typeof kopia.hostname === 'string') return { username: kopia.username, hostname: kopia.hostname }
  const source = isObject(kopia.sourceIdentity) ? kopia.sourceIdentity : {}
  const sourceName = String(source.sourceName)
  return { username: kopiaUsername(sourceName), hostname: kopiaHostname(typeof source.sourceNamespace === 'string' ? source.sourceNamespace : namespace, sourceName) }
}

const pvc = (namespace: string, name: string) => ({
  apiVersion: 'v1', kind: 'PersistentVolumeClaim',
  metadata: { name, namespace, uid: `uid-${name}`, labels: { backup: 'hourly' }, creationTimestamp: '2026-03-01T00:00:00Z' },
  spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } }, dataSourceRef: { apiGroup: 'volsync.backube', kind: 'ReplicationDestination', name: `${name}-dst` } },
  status: { phase: 'Bound' },
})

t.test('a generated RS -> the username VolSync writes -> the catalog entry -> the pre-warmed RD\'s identity', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'backup-naming-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await writeFile(join(dir, 'password'), PASSWORD)
  const target = await directoryTarget()
  t.teardown(() => target.cleanup())

  // Three PVC names VolSync's sanitizer changes: a dot dropped, a cut at 50, a cut that ends in '-'.
  // In namespace/name order, the generator's order.
  const pvcs = [['home', `${'b'.repeat(49)}-tail`], ['home', 'zigbee2mqtt.data'], ['monitoring', 'kube-prometheus-stack-prometheus-db-prometheus-kube-prometheus-0']] as const
  const config = parseConfig(`
backup: { enabled: true, template: { kopia: { repository: "{{pvc}}-volsync-secret", copyMethod: Snapshot } } }
prewarm: { template: { kopia: { repository: "{{pvc}}-volsync-secret", capacity: 1Gi, accessModes: [ReadWriteOnce] } } }
catalog: { sources: [{ name: nas, type: kopia, filesystem: { path: ${target.root} }, passwordFile: ${join(dir, 'password')} }] }
`)
  const objects = [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'home' } }, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'monitoring' } }, ...pvcs.map(([ns, name]) => pvc(ns, name))]
  const store = new StateStore(config)
  store.publish({ cluster: clusterStateFromObjects(objects, 'test').state })

  // 1. The generator's RSs, and what their Kopia movers write under.
  const applies = planBackups(store.current, NOW).actions.filter((a) => a.type === 'apply')
  t.same(applies.map((a) => `${a.namespace}/${a.name}`), pvcs.map(([ns, name]) => `${ns}/${name}`), 'one RS per PVC, named backup.sourceName = the PVC')
  const identities = applies.map((a) => kopiaIdentityOfSource(a.name, a.namespace))
  t.same(identities.map(describeKopiaIdentity), [`${'b'.repeat(49)}-@home`, 'zigbee2mqttdata@home', 'kube-prometheus-stack-prometheus-db-prometheus-kub@monitoring'])

  // 2. A backup as the mover writes it, under that identity, in a shared repository.
  const writer = await KopiaTestWriter.create({ password: PASSWORD, uniqueId: randomBytes(32), put: target.put })
  for (const identity of identities) writer.addSnapshot({ username: identity.username, hostname: identity.hostname, path: '/data', startTime: '2026-03-15T02:00:00Z', sizeBytes: 4096 })
  writer.flushManifests()
  await writer.flushIndex()
  const source = config.catalog.sources[0]
  if (source?.type !== 'kopia') throw new Error('expected the kopia source')
  const poll = await kopiaSource(source).poll(never)
  const snapshot = store.publish({ catalog: buildCatalogState([{ name: 'nas', type: 'kopia', lastSuccess: NOW - 1000, lastAttempt: NOW - 1000, error: null, entries: poll.entries, diagnostics: [], repositories: [] }]) })

  for (const [index, [namespace, name]] of pvcs.entries()) {
    const identity = identities[index]!
    // 3. The catalog finds it for the PVC, as admission and pre-warm look it up.
    const { answer } = lookupPvcBackup(snapshot, { namespace, name, labels: { backup: 'hourly' } }, NOW)
    t.equal(answer.state, 'backup', `${namespace}/${name}: the catalog finds the backup the generated RS wrote`)
    if (answer.state !== 'backup') continue
    t.same(answer.entry.identity, identity, 'under the identity the mover wrote')
    // 4. The pre-warmed RD restores exactly that identity.
    const create = planPrewarm(snapshot, { now: NOW }).find((a) => a.type === 'create' && a.namespace === namespace && a.pvc === name)
    t.ok(create?.type === 'create', 'pre-warm creates its RD')
    if (create?.type !== 'create') continue
    t.equal(create.name, `${name}-dst`)
    t.same(identityVolSyncRestores(create.body), identity, `${create.name} restores ${describeKopiaIdentity(identity)}`)
  }
})

// Issue 10 item 2 and 5: backups filed under VolSync's names are found by every consumer (the catalog's
// Kopia identity mapping, the PVC lookup and decision, pre-warm, the missed-restore guard), and a
// generateName PVC or a missing backup-name label is said in the decision.
import t from 'tap'
import { kopiaSourceOwner } from '../../src/catalog/kopia-source.ts'
import { decidePvcCreate } from '../../src/admission/pvc-restore.ts'
import type { AdmissionInput } from '../../src/admission/decision.ts'
import { lookupBackup, lookupPvcBackup } from '../../src/admission/backup-lookup.ts'
import { renderForPvc } from '../../src/admission/name-template.ts'
import { findMissedRestores } from '../../src/controllers/missed-restores.ts'
import { planPrewarm } from '../../src/controllers/prewarm-plan.ts'
import type { KopiaSourceSnapshots } from '../../src/kopia/repository.ts'
import type { CatalogEntry } from '../../src/state/catalog-state.ts'
import { catalogNamesOf, destinationIdentityFields, kopiaHostname, kopiaIdentityOfSource, kopiaUsername } from '../../src/volsync/names.ts'
import { parseConfig } from '../../src/config/load.ts'
import { NOW, snapshotOf, source } from '../support/snapshot.ts'

const PROMETHEUS = 'kube-prometheus-stack-prometheus-db-prometheus-kube-prometheus-0'
const FIFTY = 'a'.repeat(50)
const CUT_ON_DASH = `${'b'.repeat(49)}-tail` // the 50th character is '-': kept, the fork trims before it cuts

t.test('kopiaUsername / kopiaHostname follow builder.go (sanitize, trim, then cut at 50)', async (t) => {
  const cases: Array<[string, string, string]> = [
    // [object name, username, why]
    ['jellyfin', 'jellyfin', 'a valid name is kept'],
    ['zigbee2mqtt.data', 'zigbee2mqttdata', 'a dot is dropped'],
    ['app.v2-dst', 'appv2-dst', 'dots anywhere'],
    [PROMETHEUS, 'kube-prometheus-stack-prometheus-db-prometheus-kub', 'over 50: cut'],
    [FIFTY, FIFTY, 'exactly 50: kept'],
    [`${FIFTY}z`, FIFTY, '51: the 51st dropped'],
    [CUT_ON_DASH, `${'b'.repeat(49)}-`, 'a cut may end in "-"'],
    ['-_x_-', 'x', 'leading/trailing - and _ trimmed'],
    ['.app.', 'app', 'leading/trailing dots dropped'],
    ['my_app', 'my_app', '_ kept in usernames'],
    ['...', 'volsync-default', 'nothing left: the fork default'],
    ['Ünïcode-app', 'ncode-app', 'non-ASCII dropped'],
  ]
  for (const [name, username, why] of cases) {
    t.equal(kopiaUsername(name), username, `${name}: ${why}`)
    t.ok(username.length <= 50, `${name}: at most 50`)
  }
  t.equal(kopiaHostname('home', 'x'), 'home', 'a namespace is its own hostname')
  t.equal(kopiaHostname('my_ns', 'x'), 'my-ns', '_ becomes - in hostnames')
  t.equal(kopiaHostname('', 'app.v2'), 'app.v2', 'no namespace: the sanitized object name, dots kept')
  t.equal(kopiaHostname('', ''), 'volsync-default')
  t.same(kopiaIdentityOfSource('zigbee2mqtt.data', 'home'), { username: 'zigbee2mqttdata', hostname: 'home' })
})

t.test('catalogNamesOf: the name, then the Kopia username only when it differs', async (t) => {
  t.same(catalogNamesOf('jellyfin'), { name: 'jellyfin', kopiaUsername: null })
  t.same(catalogNamesOf('zigbee2mqtt.data'), { name: 'zigbee2mqtt.data', kopiaUsername: 'zigbee2mqttdata' })
  t.same(catalogNamesOf(PROMETHEUS), { name: PROMETHEUS, kopiaUsername: 'kube-prometheus-stack-prometheus-db-prometheus-kub' })
})

t.test('destinationIdentityFields: sourceIdentity when VolSync maps it back, else explicit username+hostname', async (t) => {
  t.same(destinationIdentityFields({ username: 'zigbee2mqttdata', hostname: 'home' }), { sourceIdentity: { sourceName: 'zigbee2mqttdata', sourceNamespace: 'home' } })
  const dashCut = kopiaUsername(CUT_ON_DASH)
  t.same(destinationIdentityFields({ username: dashCut, hostname: 'home' }), { username: dashCut, hostname: 'home' }, 'sourceName would lose the trailing "-" to the trim')
  t.same(destinationIdentityFields({ username: 'custom.user', hostname: 'home' }), { username: 'custom.user', hostname: 'home' }, 'an explicit username with a dot')
})

t.test('the Kopia catalog files every name VolSync writes (default identity)', async (t) => {
  const owner = kopiaSourceOwner({ username: '{{pvc}}', hostname: '{{namespace}}' })
  const src = (username: string, hostname: string): KopiaSourceSnapshots => ({ username, hostname, path: '/data' } as unknown as KopiaSourceSnapshots)
  for (const name of ['zigbee2mqtt.data', PROMETHEUS, FIFTY, `${FIFTY}z`, CUT_ON_DASH, 'my_app', 'jellyfin']) {
    const { username, hostname } = kopiaIdentityOfSource(name, 'home')
    t.same(owner(src(username, hostname)), { namespace: 'home', pvc: username }, `${name} -> ${username}`)
  }
  t.equal(owner(src('a@b', 'home')), null, 'not a username VolSync writes')
  const suffixed = kopiaSourceOwner({ username: '{{pvc}}-backup', hostname: '{{namespace}}' })
  t.same(suffixed(src('my_app-backup', 'home')), { namespace: 'home', pvc: 'my_app' }, 'a custom pattern with the Kopia charset')
})

const kopiaEntry = (namespace: string, username: string, extra: Partial<CatalogEntry> = {}): Partial<CatalogEntry> =>
  ({ namespace, pvc: username, kind: 'kopia', snapshots: 4, newest: '2026-03-16T03:00:00Z', identity: { username, hostname: namespace }, ...extra })

t.test('lookup: a PVC finds its backups under the name itself or its Kopia username', async (t) => {
  const cases: Array<{ pvc: string; filed: Partial<CatalogEntry>; expect: 'backup' | 'none'; why: string }> = [
    { pvc: 'zigbee2mqtt.data', filed: kopiaEntry('home', 'zigbee2mqttdata'), expect: 'backup', why: 'dotted name, shared Kopia repository' },
    { pvc: PROMETHEUS, filed: kopiaEntry('monitoring', kopiaUsername(PROMETHEUS)), expect: 'backup', why: 'long name, cut username' },
    { pvc: `${FIFTY}z`, filed: kopiaEntry('home', FIFTY), expect: 'backup', why: '51 characters' },
    { pvc: CUT_ON_DASH, filed: kopiaEntry('home', kopiaUsername(CUT_ON_DASH)), expect: 'backup', why: 'cut ending in "-"' },
    { pvc: 'jellyfin', filed: kopiaEntry('home', 'jellyfin'), expect: 'backup', why: 'a name VolSync keeps' },
    { pvc: 'zigbee2mqtt.data', filed: { namespace: 'home', pvc: 'zigbee2mqttdata', kind: 'restic', snapshots: 2 }, expect: 'none', why: 'restic files by the name as given: another PVC' },
    { pvc: 'zigbee2mqtt.data', filed: kopiaEntry('other', 'zigbee2mqttdata'), expect: 'none', why: 'another namespace' },
  ]
  for (const c of cases) {
    const namespace = c.filed.namespace === 'other' ? 'home' : c.filed.namespace!
    const snapshot = snapshotOf({ sources: [source({ entries: [c.filed] })] })
    const answer = lookupBackup(snapshot.catalog, namespace, c.pvc, NOW, snapshot.staleAfterMs)
    t.equal(answer.state, c.expect, `${c.pvc}: ${c.why}`)
    if (answer.state === 'backup' && c.filed.pvc !== c.pvc) t.match(answer.filedAs, /^Kopia username .+@.+ \(VolSync's name/, 'says where it was found')
  }
})

const pvcInput = (name: string, namespace: string, labels: Record<string, string> = { backup: 'hourly' }, generateName?: string): AdmissionInput => ({
  uid: 'u', kind: { group: '', version: 'v1', kind: 'PersistentVolumeClaim' }, operation: 'CREATE', namespace, name, dryRun: false, oldObject: null,
  object: { apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { ...(name ? { name } : { generateName }), namespace, labels }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } },
})

t.test('PVC decisions: the issue examples are no longer "fresh" with no warning', async (t) => {
  for (const [namespace, pvc] of [['home', 'zigbee2mqtt.data'], ['monitoring', PROMETHEUS]] as const) {
    const snapshot = snapshotOf({ sources: [source({ entries: [kopiaEntry(namespace, kopiaUsername(pvc))] })] })
    const decision = decidePvcCreate(snapshot, pvcInput(pvc, namespace), NOW)
    t.equal(decision.outcome, 'wait', `${namespace}/${pvc}: the backup is found, the RD is pre-warmed`)
    t.match(decision.reasons[0], `filed under Kopia username ${kopiaUsername(pvc)}@${namespace}`)
    t.match(decision.warnings[0], /waiting for ReplicationDestination/)
    t.same(decision.nudge, { type: 'prewarm', namespace, pvc, destination: `${pvc}-dst` })
  }
})

t.test('pvc.backupName with {{label "KEY"}}: present, missing, empty', async (t) => {
  const config = 'pvc: { backupName: \'{{label "app.kubernetes.io/instance"}}\' }'
  const sources = [source({ entries: [kopiaEntry('home', 'myapp')] })]
  const snapshot = snapshotOf({ config, sources })
  const labelled = decidePvcCreate(snapshot, pvcInput('config-myapp', 'home', { backup: 'daily', 'app.kubernetes.io/instance': 'myapp' }), NOW)
  t.equal(labelled.outcome, 'wait', 'config-myapp finds the backups of myapp')
  const dotted = decidePvcCreate(snapshotOf({ config, sources: [source({ entries: [kopiaEntry('home', 'myappv2')] })] }), pvcInput('config', 'home', { backup: 'daily', 'app.kubernetes.io/instance': 'myapp.v2' }), NOW)
  t.equal(dotted.outcome, 'wait', 'a label value VolSync sanitizes is found too')
  const missing = decidePvcCreate(snapshot, pvcInput('config-myapp', 'home', { backup: 'daily' }), NOW)
  t.equal(missing.outcome, 'fresh', 'whenCatalogUnknown: fresh')
  t.match(missing.reasons[0], /pvc\.backupName "\{\{label "app\.kubernetes\.io\/instance"\}\}" needs label "app\.kubernetes\.io\/instance" \(the PVC has no such label\)/)
  t.match(missing.warnings[0], /whether a backup exists is unknown/)
  const denied = decidePvcCreate(snapshotOf({ config: `${config.slice(0, -2)}, whenCatalogUnknown: deny }`, sources }), pvcInput('config-myapp', 'home', { backup: 'daily' }), NOW)
  t.equal(denied.outcome, 'deny', 'whenCatalogUnknown: deny refuses a PVC whose backup cannot be identified')
  t.same(renderForPvc('{{label "a"}}', { pvc: 'x', namespace: 'n', labels: { a: '' } }), { missing: 'label "a" (the PVC has no such label value)' })
  t.same(renderForPvc('{{namespace}}-{{pvc}}', { pvc: 'x', namespace: 'n', labels: {} }), { value: 'n-x' })
  t.throws(() => parseConfig('pvc: { backupName: "{{app}}" }'), /pvc\.backupName: must be a name template using only/)
})

t.test('generateName: said in the decision; a label-based backup name still finds the backup', async (t) => {
  const plain = decidePvcCreate(snapshotOf({ sources: [source({ entries: [kopiaEntry('home', 'data')] })] }), pvcInput('', 'home', { backup: 'daily' }, 'data-'), NOW)
  t.equal(plain.outcome, 'skip')
  t.match(plain.warnings[0], /^home\/data-<generated> is not restored by volsync-autorestore: its name is picked by the API server after admission \(generateName\)/)
  t.match(plain.reasons[0], /needs \{\{pvc\}\}/)
  const config = 'pvc: { backupName: \'{{label "app"}}\' }'
  const found = decidePvcCreate(snapshotOf({ config, sources: [source({ entries: [kopiaEntry('home', 'myapp')] })] }), pvcInput('', 'home', { backup: 'daily', app: 'myapp' }, 'data-'), NOW)
  t.equal(found.outcome, 'fresh')
  t.match(found.warnings[0], /starts EMPTY although the kopia backup .* exists for it \(backup name myapp\)/)
  t.match(found.warnings[0], /fixed metadata\.name/)
  const none = decidePvcCreate(snapshotOf({ config, sources: [source({ entries: [] })] }), pvcInput('', 'home', { backup: 'daily', app: 'myapp' }, 'data-'), NOW)
  t.equal(none.outcome, 'skip')
  t.match(none.reasons[0], /no backup is known under backup name myapp/)
})

t.test('pre-warm: one RD per PVC, named after the PVC, with an identity VolSync restores', async (t) => {
  const objects = (pvcs: Array<[string, Record<string, string>]>) => [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'home' } },
    ...pvcs.map(([name, labels]) => ({ apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name, namespace: 'home', labels, creationTimestamp: '2026-03-16T08:00:00Z' } })),
  ]
  const sources = [source({ entries: [kopiaEntry('home', 'zigbee2mqttdata'), kopiaEntry('home', kopiaUsername(CUT_ON_DASH))] })]
  // Before any PVC exists: planned under the filed names, the only guess there is.
  const before = planPrewarm(snapshotOf({ objects: objects([]), sources }), { now: NOW })
  t.same(before.map((a) => a.name).sort(), [`${kopiaUsername(CUT_ON_DASH)}-dst`, 'zigbee2mqttdata-dst'])
  // With the PVCs: planned for them, once each.
  const after = planPrewarm(snapshotOf({ objects: objects([['zigbee2mqtt.data', { backup: 'h' }], [CUT_ON_DASH, { backup: 'h' }]]), sources }), { now: NOW })
  t.same(after.map((a) => a.name).sort(), [`${CUT_ON_DASH}-dst`, 'zigbee2mqtt.data-dst'])
  const zigbee = after.find((a) => a.name === 'zigbee2mqtt.data-dst')!
  t.same((zigbee.type === 'create' && (zigbee.body.spec as { kopia: unknown }).kopia), { copyMethod: 'Snapshot', sourceIdentity: { sourceName: 'zigbee2mqttdata', sourceNamespace: 'home' } })
  const cut = after.find((a) => a.name === `${CUT_ON_DASH}-dst`)!
  t.same((cut.type === 'create' && (cut.body.spec as { kopia: unknown }).kopia), { copyMethod: 'Snapshot', username: kopiaUsername(CUT_ON_DASH), hostname: 'home' }, 'explicit identity where sourceName would be trimmed')
  // A nudge from admission, before the PVC is stored.
  const nudged = planPrewarm(snapshotOf({ objects: objects([]), sources }), { now: NOW, only: { namespace: 'home', pvc: 'zigbee2mqtt.data' } })
  t.same(nudged.map((a) => a.name), ['zigbee2mqtt.data-dst'])
})

t.test('missed-restore guard: finds PVCs by the same naming', async (t) => {
  const objects = [
    { apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name: 'zigbee2mqtt.data', namespace: 'home', labels: { backup: 'h' }, creationTimestamp: '2026-03-16T08:00:00Z' } },
    { apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name: 'config-myapp', namespace: 'home', labels: { backup: 'h', app: 'myapp' }, creationTimestamp: '2026-03-16T08:00:00Z' } },
  ]
  const sources = [source({ entries: [kopiaEntry('home', 'zigbee2mqttdata'), kopiaEntry('home', 'myapp')] })]
  t.same(findMissedRestores(snapshotOf({ objects, sources }), NOW).map((m) => m.pvc.name), ['zigbee2mqtt.data'])
  const byLabel = findMissedRestores(snapshotOf({ config: 'pvc: { backupName: \'{{label "app"}}\' }', objects, sources }), NOW)
  t.same(byLabel.map((m) => m.pvc.name), ['config-myapp'], 'with a label-based backup name')
  t.match(byLabel[0]?.message, /without a dataSourceRef although the kopia backup in source test/)
  const snapshot = snapshotOf({ objects, sources })
  t.equal(lookupPvcBackup(snapshot, { namespace: 'home', name: 'zigbee2mqtt.data', labels: {} }, NOW).backupName, 'zigbee2mqtt.data')
})

// Issue 10 item 1: the PVC rule decides on the PVC as the API server will store it. First the model
// of the API server's data-source rules (admission/data-source.ts), case by case; then the PVC rule
// on legacy `spec.dataSource` manifests, with every admitted patch checked to leave a pair the API
// server accepts and stores with the data source the decision says.
import t from 'tap'
import fastJsonPatch from 'fast-json-patch'
import { handleReview } from '../../src/admission/handle.ts'
import { DECISION_ANNOTATION } from '../../src/admission/annotations.ts'
import { readSentDataSources, storedDataSources, type DataSourceReference } from '../../src/admission/data-source.ts'
import { fixtureJson, fixtureObjects, NOW, snapshotOf, source } from '../support/snapshot.ts'

const RD = { apiGroup: 'volsync.backube', kind: 'ReplicationDestination', name: 'jellyfin-dst' }
const RD_NO_GROUP = { kind: 'ReplicationDestination', name: 'jellyfin-dst' }
const PVC = { kind: 'PersistentVolumeClaim', name: 'old-data' }
const SNAPSHOT = { apiGroup: 'snapshot.storage.k8s.io', kind: 'VolumeSnapshot', name: 'manual' }
const OTHER_POPULATOR = { apiGroup: 'cdi.kubevirt.io', kind: 'VolumeImportSource', name: 'img' }

t.test('the API server model: drop, mirror, must match', async (t) => {
  const cases: Array<[string, Record<string, unknown>, 'accepted' | 'rejected', DataSourceReference | null, DataSourceReference | null]> = [
    ['neither', {}, 'accepted', null, null],
    ['dataSourceRef to an RD only: kept (mirrored into dataSource)', { dataSourceRef: RD }, 'accepted', RD, null],
    ['dataSource to an RD only: dropped after admission', { dataSource: RD }, 'accepted', null, RD],
    ['dataSource to an RD without apiGroup only: dropped, never validated', { dataSource: RD_NO_GROUP }, 'accepted', null, RD_NO_GROUP],
    ['dataSource to a core PVC only: kept (copied into dataSourceRef)', { dataSource: PVC }, 'accepted', PVC, null],
    ['dataSource to a VolumeSnapshot only: kept', { dataSource: SNAPSHOT }, 'accepted', SNAPSHOT, null],
    ['dataSource to another populator only: dropped', { dataSource: OTHER_POPULATOR }, 'accepted', null, OTHER_POPULATOR],
    ['both equal to the RD: kept', { dataSource: RD, dataSourceRef: RD }, 'accepted', RD, null],
    ['both set, disagreeing: rejected', { dataSource: SNAPSHOT, dataSourceRef: RD }, 'rejected', null, null],
    ['both set, the dataSource without apiGroup: rejected', { dataSource: RD_NO_GROUP, dataSourceRef: RD }, 'rejected', null, null],
    ['both set, apiGroup "" against absent: rejected (nil and "" differ)', { dataSource: { ...PVC, apiGroup: '' }, dataSourceRef: PVC }, 'rejected', null, null],
    ['dataSourceRef to a kind without apiGroup: rejected', { dataSourceRef: RD_NO_GROUP }, 'rejected', null, null],
    ['dataSourceRef without a name: rejected', { dataSourceRef: { ...RD, name: '' } }, 'rejected', null, null],
    ['a cross-namespace dataSourceRef: dropped with its gate off; the lone dataSource then follows its own rule', { dataSourceRef: { ...RD, namespace: 'other' }, dataSource: RD }, 'accepted', null, RD],
  ]
  for (const [label, spec, state, source, dropped] of cases) {
    const stored = storedDataSources(readSentDataSources(spec))
    t.equal(stored.state, state, label)
    if (stored.state === 'accepted') {
      t.strictSame(stored.source, source, `${label}: source`)
      t.strictSame(stored.dropped, dropped, `${label}: dropped`)
    } else {
      t.match(stored.reason, /must match|must be 'PersistentVolumeClaim'|is required/, `${label}: the reason`)
    }
  }
  const rejected = storedDataSources(readSentDataSources({ dataSource: SNAPSHOT, dataSourceRef: RD }))
  t.match(rejected.state === 'rejected' && rejected.reason, /spec\.dataSource \(snapshot\.storage\.k8s\.io VolumeSnapshot manual\) must match spec\.dataSourceRef \(volsync\.backube ReplicationDestination jellyfin-dst\)/)
})

type Review = { request: { object: Record<string, unknown>; operation: string; uid: string; name: string } }
type Patched = { spec: Record<string, unknown>; metadata: { annotations?: Record<string, string> } }

function review(spec: Record<string, unknown>): Review {
  const r = fixtureJson<Review>('volsync/admissionreview-pvc-create.json')
  r.request.object = { ...r.request.object, spec: { ...(r.request.object.spec as object), ...spec } }
  return r
}

const RD_READY = fixtureObjects('volsync/rd-kopia-with-latestimage.yaml')
const RD_SYNCING = fixtureObjects('volsync/rd-kopia-no-latestimage.yaml').map((o) => ({ ...o, metadata: { ...(o.metadata as object), name: 'jellyfin-dst' } }))
const BACKUP = [source({ entries: [{ snapshots: 3, newest: '2026-03-16T03:00:00Z' }] })]
const NO_BACKUP = [source({ entries: [] })]

function run(options: Parameters<typeof snapshotOf>[0], r: Review) {
  const result = handleReview('mutate', snapshotOf(options), r, NOW)
  if (!result.ok) throw new Error(result.error)
  const response = result.review.response
  const patch = response.patch ? JSON.parse(Buffer.from(response.patch, 'base64').toString('utf8')) as fastJsonPatch.Operation[] : []
  const patched = (patch.length > 0 ? fastJsonPatch.applyPatch(structuredClone(r.request.object), patch, true, false).newDocument : r.request.object) as Patched
  return { decision: result.decision, response, patch, patched, stored: storedDataSources(readSentDataSources(patched.spec)) }
}

t.test('legacy spec.dataSource naming the RD: decided like dataSourceRef, patched to a pair the API server stores as decided', async (t) => {
  const cases: Array<{ label: string; spec: Record<string, unknown>; objects: unknown[]; sources: typeof BACKUP; config?: string; outcome: string; source: DataSourceReference | null }> = [
    // The example: before, `restore` with an annotations-only patch and the PVC bound empty.
    { label: 'issue example, RD ready: restore', spec: { dataSource: RD }, objects: RD_READY, sources: BACKUP, outcome: 'restore', source: RD },
    { label: 'RD syncing, backup known: wait', spec: { dataSource: RD }, objects: RD_SYNCING, sources: BACKUP, outcome: 'wait', source: RD },
    { label: 'no apiGroup, RD ready: restore (the dataSource is rewritten to match)', spec: { dataSource: RD_NO_GROUP }, objects: RD_READY, sources: BACKUP, outcome: 'restore', source: RD },
    { label: 'no apiGroup, RD syncing: wait', spec: { dataSource: RD_NO_GROUP }, objects: RD_SYNCING, sources: BACKUP, outcome: 'wait', source: RD },
    { label: 'no backup, no RD: fresh, the dropped dataSource removed', spec: { dataSource: RD }, objects: [], sources: NO_BACKUP, outcome: 'fresh', source: null },
    { label: 'whenBackupNotReady fresh: fresh, removed', spec: { dataSource: RD }, objects: RD_SYNCING, sources: BACKUP, config: 'pvc: {whenBackupNotReady: fresh}', outcome: 'fresh', source: null },
    { label: 'catalog unknown: fresh, removed', spec: { dataSource: RD }, objects: [], sources: [source({ ageMs: null })], outcome: 'fresh', source: null },
    { label: 'both fields naming the RD, ready: restore, nothing to change', spec: { dataSource: RD, dataSourceRef: RD }, objects: RD_READY, sources: BACKUP, outcome: 'restore', source: RD },
  ]
  for (const c of cases) {
    const { decision, patched, stored, response } = run({ objects: c.objects, sources: c.sources, ...(c.config ? { config: c.config } : {}) }, review(c.spec))
    t.equal(decision.outcome, c.outcome, `${c.label}: outcome`)
    t.equal(patched.metadata.annotations?.[DECISION_ANNOTATION], c.outcome, `${c.label}: the annotation says the outcome`)
    t.equal(stored.state, 'accepted', `${c.label}: the API server accepts the patched pair`)
    t.strictSame(stored.state === 'accepted' && stored.source, c.source, `${c.label}: and stores the data source the decision says`)
    t.equal(stored.state === 'accepted' && stored.dropped, null, `${c.label}: nothing left for the API server to drop`)
    if (!('dataSourceRef' in c.spec)) {
      t.match(response.warnings?.join(' '), /spec\.dataSource names ReplicationDestination jellyfin-dst.*drops any other kind after admission.*Name the RD in spec\.dataSourceRef/, `${c.label}: says why and what to change`)
    }
  }
})

t.test('the issue example patches dataSourceRef and keeps dataSource equal to it', async (t) => {
  const { patch, patched } = run({ objects: RD_READY, sources: BACKUP }, review({ dataSource: RD_NO_GROUP }))
  t.strictSame(patched.spec.dataSourceRef, RD)
  t.strictSame(patched.spec.dataSource, RD)
  t.same([...new Set(patch.map((op) => op.path.split('/').slice(0, 3).join('/')))].sort(), ['/metadata/annotations', '/spec/dataSource', '/spec/dataSourceRef'], 'only the pair and the annotations')
})

t.test('a data source of the user\'s own is left alone, as stored', async (t) => {
  for (const [label, spec] of [
    ['dataSource to a PVC (a clone)', { dataSource: PVC }],
    ['dataSource to a VolumeSnapshot', { dataSource: SNAPSHOT }],
    ['dataSourceRef to a VolumeSnapshot', { dataSourceRef: SNAPSHOT }],
    ['dataSource to another RD', { dataSource: { ...RD, name: 'other-dst' } }],
  ] as const) {
    for (const sources of [BACKUP, NO_BACKUP]) {
      const { decision, patch } = run({ objects: RD_READY, sources }, review(spec))
      t.equal(decision.outcome, 'skip', label)
      t.same(patch, [], `${label}: no patch`)
    }
  }
  const dropped = run({ objects: RD_READY, sources: BACKUP }, review({ dataSource: OTHER_POPULATOR }))
  t.equal(dropped.decision.outcome, 'skip', 'another populator in the legacy field: not ours')
  t.match(dropped.response.warnings?.[0], /spec\.dataSource cdi\.kubevirt\.io VolumeImportSource img is not a PersistentVolumeClaim or a VolumeSnapshot, so the API server drops it after admission and media\/jellyfin starts empty; put it in spec\.dataSourceRef/)
  const otherRd = run({ objects: RD_READY, sources: BACKUP }, review({ dataSource: { ...RD, name: 'other-dst' } }))
  t.match(otherRd.response.warnings?.[0], /ReplicationDestination other-dst .*drops it after admission/, 'a legacy reference to another RD is said too')
})

t.test('both fields set and disagreeing: the API server rejects it; left as sent and said', async (t) => {
  for (const [label, spec] of [
    ['VolumeSnapshot vs the RD', { dataSource: SNAPSHOT, dataSourceRef: RD }],
    ['the RD vs a PVC', { dataSource: RD, dataSourceRef: PVC }],
    ['the RD without apiGroup vs the RD', { dataSource: RD_NO_GROUP, dataSourceRef: RD }],
  ] as const) {
    for (const config of ['{}', 'mode: audit', 'pvc: {whenBackupNotReady: deny}']) {
      const { decision, patch, response } = run({ config, objects: RD_READY, sources: BACKUP }, review(spec))
      t.equal(decision.outcome, 'skip', `${label} (${config})`)
      t.same(patch, [], `${label}: no patch`)
      t.equal(response.allowed, true, `${label}: not denied by us either (the API server does it)`)
      t.match(response.warnings?.[0], /left unchanged: the API server rejects it because spec\.dataSource.*(must match spec\.dataSourceRef|must be 'PersistentVolumeClaim' when referencing the default apiGroup).*Set only spec\.dataSourceRef/, `${label}: says so`)
    }
  }
})

t.test('audit mode: the same decision and the legacy note, no patch', async (t) => {
  const { decision, response } = run({ config: 'mode: audit', objects: RD_READY, sources: BACKUP }, review({ dataSource: RD }))
  t.equal(decision.outcome, 'restore')
  t.equal(response.patch, undefined)
  t.match(response.warnings?.[0], /audit mode: would restore/)
  t.match(response.warnings?.join(' '), /drops any other kind after admission/)
})

t.test('enforce mode, whenBackupNotReady deny with a legacy dataSource: denied, naming the backup', async (t) => {
  const { decision, response } = run({ config: 'pvc: {whenBackupNotReady: deny}', objects: RD_SYNCING, sources: BACKUP }, review({ dataSource: RD }))
  t.equal(decision.outcome, 'deny')
  t.equal(response.allowed, false)
  t.match(response.status?.message, /backup in source test \(3 snapshots/)
})

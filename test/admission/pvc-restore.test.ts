import t from 'tap'
import fastJsonPatch from 'fast-json-patch'
import { handleReview } from '../../src/admission/handle.ts'
import { DECISION_ANNOTATION } from '../../src/admission/annotations.ts'
import { fixtureJson, fixtureObjects, NOW, snapshotOf, source } from '../support/snapshot.ts'

type Review = { request: { object: Record<string, unknown>; operation: string; dryRun?: boolean; uid: string; name: string } }

const RD_READY = fixtureObjects('volsync/rd-kopia-with-latestimage.yaml')
const RD_SYNCING = fixtureObjects('volsync/rd-kopia-no-latestimage.yaml')

function pvcReview(mutate?: (review: Review) => void): Review {
  const review = fixtureJson<Review>('volsync/admissionreview-pvc-create.json')
  mutate?.(review)
  return review
}

function run(options: Parameters<typeof snapshotOf>[0], review: Review = pvcReview()) {
  const result = handleReview('mutate', snapshotOf(options), review, NOW)
  if (!result.ok) throw new Error(result.error)
  const response = result.review.response
  const patch = response.patch ? JSON.parse(Buffer.from(response.patch, 'base64').toString('utf8')) as fastJsonPatch.Operation[] : []
  const patched = patch.length > 0 ? fastJsonPatch.applyPatch(structuredClone(review.request.object), patch, true, false).newDocument : review.request.object
  return { result, response, patch, patched: patched as { spec: Record<string, unknown>; metadata: { annotations?: Record<string, string> } } }
}

const backupFor = (pvc: string, extra: object = {}) => source({ entries: [{ namespace: 'media', pvc, snapshots: 3, newest: '2026-03-16T03:00:00Z', ...extra }] })

t.test('RD with latestImage: restore, exactly the documented first patch op', async (t) => {
  const expected = fixtureJson<{ decodedPatch: unknown[]; review: { response: { uid: string; warnings: string[] } } }>('volsync/admissionreview-pvc-create.expected-response.json')
  const { response, patch, patched, result } = run({ objects: RD_READY, sources: [backupFor('jellyfin')] })
  t.equal(result.ok && result.decision.outcome, 'restore')
  t.equal(response.uid, expected.review.response.uid)
  t.equal(response.allowed, true)
  t.equal(response.patchType, 'JSONPatch')
  t.same(patch[0], expected.decodedPatch[0], 'dataSourceRef op matches the fixture')
  t.same(response.warnings, expected.review.response.warnings)
  t.same(patched.spec.dataSourceRef, { apiGroup: 'volsync.backube', kind: 'ReplicationDestination', name: 'jellyfin-dst' })
  t.equal(patched.metadata.annotations?.[DECISION_ANNOTATION], 'restore')
})

t.test('RD with latestImage but the catalog knows no backup: still restores, warns about an empty image', async (t) => {
  const { response, patched } = run({ objects: RD_READY, sources: [source({ entries: [] })] })
  t.same(patched.spec.dataSourceRef, { apiGroup: 'volsync.backube', kind: 'ReplicationDestination', name: 'jellyfin-dst' })
  t.match(response.warnings?.[0], /may be of an empty restore/)
})

t.test('RD with latestImage wins even when the catalog is unknown', async (t) => {
  const { result } = run({ objects: RD_READY, sources: [source({ ageMs: null })] })
  t.equal(result.ok && result.decision.outcome, 'restore')
})

t.test('RD whose latestImage is a PVC (copyMethod Direct) is not usable', async (t) => {
  const rd = structuredClone(RD_READY)
  ;((rd[0] as { status: { latestImage: object } }).status).latestImage = { apiGroup: '', kind: 'PersistentVolumeClaim', name: 'jellyfin' }
  const { result, response } = run({ objects: rd, sources: [backupFor('jellyfin')] })
  t.equal(result.ok && result.decision.outcome, 'wait')
  t.match(response.warnings?.[0], /waiting for ReplicationDestination jellyfin-dst/)
})

t.test('backup exists, RD missing or not ready', async (t) => {
  const sonarr = pvcReview((r) => {
    r.request.name = 'sonarr'
    r.request.object = { ...r.request.object, metadata: { name: 'sonarr', namespace: 'media', labels: { backup: 'daily' } } }
  })
  for (const [label, objects] of [['RD missing', []], ['RD without latestImage', RD_SYNCING]] as const) {
    t.test(`${label}, wait (default): dataSourceRef added, pre-warm nudged`, async (t) => {
      const { result, patched, response } = run({ objects, sources: [backupFor('sonarr')] }, sonarr)
      t.equal(result.ok && result.decision.outcome, 'wait')
      t.same(patched.spec.dataSourceRef, { apiGroup: 'volsync.backube', kind: 'ReplicationDestination', name: 'sonarr-dst' })
      t.same(result.ok && result.decision.nudge, { type: 'prewarm', namespace: 'media', pvc: 'sonarr', destination: 'sonarr-dst' })
      t.match(response.warnings?.[0], /3 snapshots, newest 2026-03-16T03:00:00Z/)
    })
    t.test(`${label}, deny: rejected with a message naming the backup`, async (t) => {
      const { response, patch } = run({ config: 'pvc: {whenBackupNotReady: deny}', objects, sources: [backupFor('sonarr')] }, sonarr)
      t.equal(response.allowed, false)
      t.equal(response.status?.code, 403)
      t.match(response.status?.message, /static backup in source test \(3 snapshots.*retry/)
      t.same(patch, [])
    })
    t.test(`${label}, fresh: allowed without dataSourceRef, with a warning`, async (t) => {
      const { result, patched, response } = run({ config: 'pvc: {whenBackupNotReady: fresh}', objects, sources: [backupFor('sonarr')] }, sonarr)
      t.equal(result.ok && result.decision.outcome, 'fresh')
      t.equal(patched.spec.dataSourceRef, undefined)
      t.match(response.warnings?.[0], /starts EMPTY although/)
    })
  }
})

t.test('no backup, no RD: fresh volume, nothing but the decision annotation', async (t) => {
  const { result, patch, patched, response } = run({ sources: [source({ entries: [] })] })
  t.equal(result.ok && result.decision.outcome, 'fresh')
  t.same(patch.map((op) => op.path), ['/metadata/annotations'])
  t.equal(patched.spec.dataSourceRef, undefined)
  t.equal(response.warnings, undefined)
})

t.test('a snapshot count of 0 (initialized, empty repository) is not a backup', async (t) => {
  const { result } = run({ sources: [source({ entries: [{ snapshots: 0 }] })] })
  t.equal(result.ok && result.decision.outcome, 'fresh')
})

t.test('no backup and a dataSourceRef to the unready RD: removed with its mirrored dataSource', async (t) => {
  const ref = { apiGroup: 'volsync.backube', kind: 'ReplicationDestination', name: 'jellyfin-dst' }
  const review = pvcReview((r) => { (r.request.object.spec as Record<string, unknown>).dataSourceRef = ref; (r.request.object.spec as Record<string, unknown>).dataSource = ref })
  const { result, patched, response } = run({ objects: [], sources: [source({ entries: [] })] }, review)
  t.equal(result.ok && result.decision.outcome, 'remove-datasource')
  t.equal(patched.spec.dataSourceRef, undefined)
  t.equal(patched.spec.dataSource, undefined)
  t.match(response.warnings?.[0], /removed dataSourceRef to ReplicationDestination jellyfin-dst.*Pending forever/)
})

t.test('a user dataSourceRef to something else is never touched', async (t) => {
  const review = pvcReview((r) => { (r.request.object.spec as Record<string, unknown>).dataSourceRef = { apiGroup: 'snapshot.storage.k8s.io', kind: 'VolumeSnapshot', name: 'manual' } })
  for (const sources of [[source({ entries: [] })], [backupFor('jellyfin')]]) {
    const { patch, result } = run({ objects: RD_READY, sources }, review)
    t.equal(result.ok && result.decision.outcome, 'skip')
    t.same(patch, [])
  }
})

t.test('a dataSourceRef already pointing at the ready RD is kept, not duplicated', async (t) => {
  const ref = { apiGroup: 'volsync.backube', kind: 'ReplicationDestination', name: 'jellyfin-dst' }
  const review = pvcReview((r) => { (r.request.object.spec as Record<string, unknown>).dataSourceRef = ref })
  const { patch, result } = run({ objects: RD_READY, sources: [backupFor('jellyfin')] }, review)
  t.equal(result.ok && result.decision.outcome, 'restore')
  t.same(patch.map((op) => op.path), ['/metadata/annotations'])
})

t.test('catalog unknown: fresh by default, deny when configured', async (t) => {
  for (const [label, sources] of [
    ['never polled', [source({ ageMs: null, error: 'connection refused' })]],
    ['stale past staleAfter', [source({ ageMs: 11 * 60_000, entries: [{ snapshots: 2 }] })]],
    ['no sources configured', []],
    ['repository unreadable', [source({ entries: [{ snapshots: null, kind: 'kopia' }] })]],
  ] as const) {
    const fresh = run({ sources })
    t.equal(fresh.result.ok && fresh.result.decision.outcome, 'fresh', `${label}: fresh`)
    t.match(fresh.response.warnings?.[0], /unknown/, `${label}: warns`)
    const denied = run({ config: 'pvc: {whenCatalogUnknown: deny}', sources })
    t.equal(denied.response.allowed, false, `${label}: denied`)
    t.match(denied.response.status?.message, /cannot tell whether a backup exists/)
  }
  const fresh = run({ config: 'catalog: {staleAfter: 20m}', sources: [source({ ageMs: 11 * 60_000, entries: [{ snapshots: 2 }] })] })
  t.equal(fresh.result.ok && fresh.result.decision.outcome, 'wait', 'staleAfter is honoured')
})

t.test('one fresh source with the backup decides even when another is stale', async (t) => {
  const { result } = run({ sources: [backupFor('jellyfin'), source({ name: 'other', ageMs: null })] })
  t.equal(result.ok && result.decision.outcome, 'wait')
})

t.test('participation by pvc.selector', async (t) => {
  const unlabelled = pvcReview((r) => { (r.request.object.metadata as { labels: Record<string, string> }).labels = { app: 'x' } })
  t.equal(run({ objects: RD_READY }, unlabelled).result.ok && run({ objects: RD_READY }, unlabelled).patch.length, 0)
  const config = 'pvc: {selector: {matchLabels: {backup: hourly}, matchExpressions: [{key: tier, operator: NotIn, values: [scratch]}]}}'
  t.equal(run({ config, objects: RD_READY }).result.ok && run({ config, objects: RD_READY }).response.patch !== undefined, true, 'matchLabels hourly matches')
  const scratch = pvcReview((r) => { (r.request.object.metadata as { labels: Record<string, string> }).labels = { backup: 'hourly', tier: 'scratch' } })
  t.equal(run({ config, objects: RD_READY }, scratch).patch.length, 0, 'NotIn excludes')
})

t.test('VolSync-owned PVCs are never restored into', async (t) => {
  const own = pvcReview((r) => { (r.request.object.metadata as { labels: Record<string, string> }).labels = { backup: 'x', 'app.kubernetes.io/created-by': 'volsync' } })
  t.same(run({ objects: RD_READY }, own).patch, [])
})

t.test('pvc.destinationName template', async (t) => {
  const rd = structuredClone(RD_READY)
  ;(rd[0] as { metadata: { name: string } }).metadata.name = 'jellyfin-bootstrap'
  const { patched } = run({ config: 'pvc: {destinationName: "{{pvc}}-bootstrap"}', objects: rd })
  t.same(patched.spec.dataSourceRef, { apiGroup: 'volsync.backube', kind: 'ReplicationDestination', name: 'jellyfin-bootstrap' })
})

t.test('UPDATE is never mutated', async (t) => {
  const review = pvcReview((r) => { r.request.operation = 'UPDATE' })
  const { patch, result } = run({ objects: RD_READY }, review)
  t.same(patch, [])
  t.equal(result.ok && result.decision.outcome, 'skip')
})

t.test('audit mode: decides and warns but never patches or denies', async (t) => {
  const restore = run({ config: 'mode: audit', objects: RD_READY })
  t.equal(restore.response.patch, undefined)
  t.equal(restore.response.allowed, true)
  t.match(restore.response.warnings?.[0], /audit mode: would restore/)
  const deny = run({ config: 'mode: audit\npvc: {whenCatalogUnknown: deny}', sources: [] })
  t.equal(deny.response.allowed, true)
  t.match(deny.response.warnings?.join(' '), /audit mode: would deny/)
})

t.test('dryRun: same decision, no nudge is acted on (the decision still carries it)', async (t) => {
  const review = pvcReview((r) => { r.request.dryRun = true })
  const { result } = run({ sources: [backupFor('jellyfin')] }, review)
  t.ok(result.ok && result.input.dryRun)
  t.equal(result.ok && result.decision.outcome, 'wait')
})

t.test('the request object is never written: rules copy only what they change', async (t) => {
  const deepFreeze = (value: unknown): void => {
    if (value && typeof value === 'object' && !Object.isFrozen(value)) {
      Object.freeze(value)
      Object.values(value).forEach(deepFreeze)
    }
  }
  for (const name of ['volsync/admissionreview-pvc-create.json', 'volsync/admissionreview-job-create.json', 'volsync/admissionreview-job-update.json']) {
    const review = fixtureJson(name)
    deepFreeze(review)
    const config = 'movers: {repository: {nfs: {server: nas.lan, path: /mnt/tank/kopia}, mountPath: /repository}}'
    for (const sources of [[source({ entries: [] })], [backupFor('jellyfin')]]) {
      const result = handleReview('mutate', snapshotOf({ config, objects: RD_READY, sources }), review, NOW)
      t.ok(result.ok && result.decision.rule !== 'internal-error', `${name}: decided without writing into the frozen request`)
      t.ok(result.ok && result.review.response.patch, `${name}: and patched`)
    }
  }
})

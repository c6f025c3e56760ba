// Issue 10 item 3: an RD that can never give the volume populator an image is not "not ready yet".
// The PVC decision by whenBackupNotReady (never wait), the RD's own validation finding (rdNeverReady),
// and /status's flag, for each kind: copyMethod Direct/None/absent, destinationPVC, mover mismatch
// both ways; audit and enforce.
import t from 'tap'
import fastJsonPatch from 'fast-json-patch'
import { handleReview } from '../../src/admission/handle.ts'
import { readRdImageShape, whyNeverReady } from '../../src/admission/rd-never-ready.ts'
import { readSentDataSources, storedDataSources } from '../../src/admission/data-source.ts'
import { statusView } from '../../src/server/status-view.ts'
import { readiness } from '../../src/server/readiness.ts'
import { renderStatusPage } from '../../src/server/status-page.ts'
import { statusDocument } from '../../src/server/status.ts'
import type { LoopHealth } from '../../src/loop.ts'
import { fixtureJson, NOW, snapshotOf, source } from '../support/snapshot.ts'

type Mover = Record<string, unknown>
function rd(mover: 'kopia' | 'restic', options: Mover = {}, status: Record<string, unknown> = {}) {
  return {
    apiVersion: 'volsync.backube/v1alpha1',
    kind: 'ReplicationDestination',
    metadata: { name: 'jellyfin-dst', namespace: 'media' },
    spec: { trigger: { manual: 'restore-once' }, [mover]: { repository: 'jellyfin-volsync-secret', capacity: '10Gi', accessModes: ['ReadWriteOnce'], ...options } },
    status,
  }
}
const KOPIA_BACKUP = [source({ entries: [{ kind: 'kopia', snapshots: 3, newest: '2026-03-16T03:00:00Z' }] })]
const RESTIC_BACKUP = [source({ entries: [{ kind: 'restic', snapshots: 2, newest: '2026-03-16T03:00:00Z' }] })]
const NO_BACKUP = [source({ entries: [] })]

/** Each kind of RD that can never become ready, with the backup it is judged against and the fix asked for. */
const NEVER: Array<{ label: string; object: ReturnType<typeof rd>; sources: typeof KOPIA_BACKUP; why: RegExp; fix: RegExp }> = [
  { label: 'copyMethod Direct', object: rd('kopia', { copyMethod: 'Direct' }), sources: KOPIA_BACKUP, why: /copyMethod is Direct: its latestImage is its destination PVC, never a VolumeSnapshot/, fix: /Set spec\.kopia\.copyMethod: Snapshot/i },
  { label: 'copyMethod None', object: rd('restic', { copyMethod: 'None' }), sources: RESTIC_BACKUP, why: /copyMethod is None/, fix: /spec\.restic\.copyMethod: Snapshot/i },
  { label: 'no copyMethod', object: rd('kopia'), sources: KOPIA_BACKUP, why: /it has no copyMethod/, fix: /spec\.kopia\.copyMethod: Snapshot/i },
  { label: 'destinationPVC with Direct', object: rd('kopia', { copyMethod: 'Direct', destinationPVC: 'jellyfin-restore' }), sources: KOPIA_BACKUP, why: /copyMethod is Direct \(it restores straight into destinationPVC jellyfin-restore\)/, fix: /copyMethod: Snapshot/i },
  { label: 'destinationPVC = the PVC itself', object: rd('kopia', { copyMethod: 'Snapshot', destinationPVC: 'jellyfin' }), sources: KOPIA_BACKUP, why: /its destinationPVC is jellyfin itself/, fix: /remove spec\.kopia\.destinationPVC/i },
  { label: 'restic backup, kopia RD', object: rd('kopia', { copyMethod: 'Snapshot' }), sources: RESTIC_BACKUP, why: /the backup is in a restic repository and the RD runs the kopia mover, which cannot read it/, fix: /Use spec\.restic instead of spec\.kopia/i },
  { label: 'kopia backup, restic RD', object: rd('restic', { copyMethod: 'Snapshot' }), sources: KOPIA_BACKUP, why: /the backup is in a kopia repository and the RD runs the restic mover/, fix: /Use spec\.kopia instead of spec\.restic/i },
]

type Review = { request: { object: Record<string, unknown>; name: string; namespace: string; uid: string; kind: Record<string, string>; operation: string } }
const pvcReview = (spec: Record<string, unknown> = {}): Review => {
  const r = fixtureJson<Review>('volsync/admissionreview-pvc-create.json')
  r.request.object = { ...r.request.object, spec: { ...(r.request.object.spec as object), ...spec } }
  return r
}
const OWN_REF = { apiGroup: 'volsync.backube', kind: 'ReplicationDestination', name: 'jellyfin-dst' }

function mutate(options: Parameters<typeof snapshotOf>[0], r: Review = pvcReview()) {
  const result = handleReview('mutate', snapshotOf(options), r, NOW)
  if (!result.ok) throw new Error(result.error)
  const response = result.review.response
  const patch = response.patch ? JSON.parse(Buffer.from(response.patch, 'base64').toString('utf8')) as fastJsonPatch.Operation[] : []
  const patched = (patch.length > 0 ? fastJsonPatch.applyPatch(structuredClone(r.request.object), patch, true, false).newDocument : r.request.object) as { spec: Record<string, unknown> }
  return { decision: result.decision, response, patched, stored: storedDataSources(readSentDataSources(patched.spec)) }
}

t.test('whyNeverReady: an RD that may yet sync is not flagged', async (t) => {
  const ok = [
    ['kopia Snapshot, kopia backup', rd('kopia', { copyMethod: 'Snapshot' }), 'kopia'],
    ['restic Snapshot, restic backup', rd('restic', { copyMethod: 'Snapshot' }), 'restic'],
    ['destinationPVC of another volume, Snapshot', rd('kopia', { copyMethod: 'Snapshot', destinationPVC: 'scratch' }), 'kopia'],
    ['kopia Snapshot, a static (declared) backup', rd('kopia', { copyMethod: 'Snapshot' }), 'static'],
    ['kopia Snapshot, no backup known', rd('kopia', { copyMethod: 'Snapshot' }), null],
  ] as const
  for (const [label, object, backupKind] of ok) {
    t.strictSame(whyNeverReady(readRdImageShape(object.spec), { pvc: 'jellyfin', backupKind }), [], label)
  }
})

t.test('PVC CREATE over a backup: never wait; fresh (wait, fresh) or deny (deny), saying why and what to change', async (t) => {
  for (const c of NEVER) {
    for (const mode of ['wait', 'fresh', 'deny'] as const) {
      const label = `${c.label}, whenBackupNotReady ${mode}`
      const { decision, response, stored } = mutate({ config: `pvc: {whenBackupNotReady: ${mode}}`, objects: [c.object], sources: c.sources })
      t.not(decision.outcome, 'wait', `${label}: never wait`)
      t.notOk(decision.nudge, `${label}: no pre-warm nudge (pre-warm cannot fix an RD it did not make)`)
      if (mode === 'deny') {
        t.equal(decision.outcome, 'deny', label)
        t.equal(response.allowed, false, `${label}: rejected`)
        t.match(response.status?.message, c.why, `${label}: the denial says why`)
        t.match(response.status?.message, c.fix, `${label}: and what to change`)
        t.match(response.status?.message, /backup in source test/, `${label}: naming the backup`)
      } else {
        t.equal(decision.outcome, 'fresh', label)
        t.equal(response.allowed, true, `${label}: admitted`)
        t.match(response.warnings?.[0], /starts EMPTY although the (kopia|restic) backup in source test/, `${label}: warns it starts empty over the backup`)
        t.match(response.warnings?.[0], c.why, `${label}: why`)
        t.match(response.warnings?.[0], c.fix, `${label}: what to change`)
        t.equal(stored.state === 'accepted' && stored.source, null, `${label}: stored without a data source, as decided`)
        if (mode === 'wait') t.match(decision.reasons[0], /pvc\.whenBackupNotReady is wait, but an RD that cannot become ready is never waited on/, `${label}: the reason says why not wait`)
      }
    }
  }
})

t.test('a dataSourceRef (or legacy dataSource) to the never-ready RD is removed when admitted', async (t) => {
  for (const spec of [{ dataSourceRef: OWN_REF }, { dataSourceRef: OWN_REF, dataSource: OWN_REF }, { dataSource: OWN_REF }]) {
    for (const [sources, outcome] of [[KOPIA_BACKUP, 'fresh'], [NO_BACKUP, 'remove-datasource'], [[source({ ageMs: null })], 'fresh']] as const) {
      const { decision, patched, stored } = mutate({ objects: [rd('kopia', { copyMethod: 'Direct' })], sources }, pvcReview(spec))
      const label = `${Object.keys(spec).join('+')}, ${outcome}`
      const expected = 'dataSourceRef' in spec ? outcome : 'fresh' // a legacy dataSource alone never kept it Pending
      t.equal(decision.outcome, expected, label)
      t.equal(patched.spec.dataSourceRef, undefined, `${label}: no dataSourceRef`)
      t.equal(patched.spec.dataSource, undefined, `${label}: no dataSource`)
      t.equal(stored.state === 'accepted' && stored.source, null, `${label}: stored without a data source`)
    }
  }
})

t.test('no backup and no data source: fresh, as before; catalog unknown with deny: denied, the RD problem said too', async (t) => {
  const fresh = mutate({ objects: [rd('kopia', { copyMethod: 'Direct' })], sources: NO_BACKUP })
  t.equal(fresh.decision.outcome, 'fresh')
  const denied = mutate({ config: 'pvc: {whenCatalogUnknown: deny}', objects: [rd('kopia', { copyMethod: 'Direct' })], sources: [source({ ageMs: null })] })
  t.equal(denied.response.allowed, false)
  t.match(denied.response.status?.message, /cannot tell whether a backup exists.*copyMethod is Direct/)
})

t.test('an RD with a usable image still restores (the image is there, whatever its spec says now)', async (t) => {
  const image = { latestImage: { apiGroup: 'snapshot.storage.k8s.io', kind: 'VolumeSnapshot', name: 'snap-1' } }
  t.equal(mutate({ objects: [rd('kopia', { copyMethod: 'Direct' }, image)], sources: KOPIA_BACKUP }).decision.outcome, 'restore')
})

t.test('a latestImage that is a PVC under copyMethod Snapshot is not-ready-yet: still wait', async (t) => {
  const stale = { latestImage: { apiGroup: '', kind: 'PersistentVolumeClaim', name: 'jellyfin-dst-dest' } }
  t.equal(mutate({ objects: [rd('kopia', { copyMethod: 'Snapshot' }, stale)], sources: KOPIA_BACKUP }).decision.outcome, 'wait')
})

t.test('audit mode: the same decision, warned, never patched or denied', async (t) => {
  const fresh = mutate({ config: 'mode: audit', objects: [rd('kopia', { copyMethod: 'Direct' })], sources: KOPIA_BACKUP })
  t.equal(fresh.decision.outcome, 'fresh')
  t.equal(fresh.response.patch, undefined)
  t.match(fresh.response.warnings?.join(' '), /audit mode: would fresh.*copyMethod is Direct/)
  const deny = mutate({ config: 'mode: audit\npvc: {whenBackupNotReady: deny}', objects: [rd('kopia', { copyMethod: 'Direct' })], sources: KOPIA_BACKUP })
  t.equal(deny.response.allowed, true)
  t.match(deny.response.warnings?.join(' '), /audit mode: would deny: .*copyMethod is Direct/)
})

function rdReview(object: ReturnType<typeof rd>, operation = 'CREATE', oldObject: unknown = null) {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: 'u1', kind: { group: 'volsync.backube', version: 'v1alpha1', kind: 'ReplicationDestination' },
      resource: { group: 'volsync.backube', version: 'v1alpha1', resource: 'replicationdestinations' },
      name: object.metadata.name, namespace: 'media', operation, object, oldObject, dryRun: false,
    },
  }
}
const PVC_OBJECT = { apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name: 'jellyfin', namespace: 'media', labels: { backup: 'hourly' } }, spec: {} }

t.test('validation rdNeverReady: said on the RD, warn by default, deny when configured', async (t) => {
  for (const c of NEVER) {
    const result = handleReview('validate', snapshotOf({ sources: c.sources }), rdReview(c.object), NOW)
    if (!result.ok) throw new Error(result.error)
    const finding = result.decision.reasons.find((r) => r.startsWith('rdNeverReady'))
    t.ok(finding, `${c.label}: a finding`)
    t.match(finding, /rdNeverReady \(warn\): ReplicationDestination media\/jellyfin-dst is the restore source of PVC media\/jellyfin, which has the (kopia|restic) backup/, `${c.label}: names the RD and the PVC`)
    t.match(finding, c.why, `${c.label}: why`)
    t.match(finding, c.fix, `${c.label}: the fix`)
    t.equal(result.review.response.allowed, true, `${c.label}: warned, allowed`)
    const denied = handleReview('validate', snapshotOf({ config: 'validation: {rdNeverReady: deny}', sources: c.sources }), rdReview(c.object), NOW)
    t.equal(denied.ok && denied.review.response.allowed, false, `${c.label}: denied when configured`)
  }
  // Found through a participating PVC in cluster state, without any backup in the catalog.
  const viaPvc = handleReview('validate', snapshotOf({ objects: [PVC_OBJECT], sources: NO_BACKUP }), rdReview(rd('kopia', { copyMethod: 'Direct' })), NOW)
  t.match(viaPvc.ok && viaPvc.decision.reasons.join(' '), /rdNeverReady \(warn\): .*restore source of PVC media\/jellyfin, but/, 'a participating PVC in cluster state is enough')
})

t.test('validation rdNeverReady: silent for an RD that may sync, or that no participating PVC or backup is restored from', async (t) => {
  const silent = [
    ['Snapshot, matching mover', rd('kopia', { copyMethod: 'Snapshot' }), KOPIA_BACKUP],
    ['Direct into a destinationPVC, for no participating PVC (an in-place restore)', { ...rd('kopia', { copyMethod: 'Direct', destinationPVC: 'data' }), metadata: { name: 'restore-in-place', namespace: 'media' } }, KOPIA_BACKUP],
    ['Direct in another namespace than the backup', { ...rd('kopia', { copyMethod: 'Direct' }), metadata: { name: 'jellyfin-dst', namespace: 'other' } }, KOPIA_BACKUP],
  ] as const
  for (const [label, object, sources] of silent) {
    const review = rdReview(object as ReturnType<typeof rd>)
    review.request.namespace = object.metadata.namespace
    const result = handleReview('validate', snapshotOf({ sources }), review, NOW)
    t.notOk(result.ok && result.decision.reasons.some((r) => r.startsWith('rdNeverReady')), label)
  }
})

t.test('validation rdNeverReady on UPDATE: a problem the RD already had is not denied', async (t) => {
  const before = rd('kopia', { copyMethod: 'Direct' })
  const after = { ...before, metadata: { ...before.metadata, labels: { touched: 'yes' } } }
  const result = handleReview('validate', snapshotOf({ config: 'validation: {rdNeverReady: deny}', sources: KOPIA_BACKUP }), rdReview(after, 'UPDATE', before), NOW)
  t.equal(result.ok && result.review.response.allowed, true)
  t.match(result.ok && result.decision.reasons.join(' '), /rdNeverReady \(warn, pre-existing\)/)
})

const LOADED: LoopHealth[] = ['cluster', 'catalog', 'config'].map((name) => ({ name, loaded: true, gatesReadiness: name !== 'config', error: null, lastSuccess: null }))
const EXTRAS = { configError: null, clusterError: null, tlsReloads: 0, tlsFailures: 0, loops: LOADED, readiness: readiness(LOADED) }

t.test('/status: such PVCs are flagged "can never be restored as it stands", with why and the fix', async (t) => {
  const never = statusView(snapshotOf({ objects: [PVC_OBJECT, rd('kopia', { copyMethod: 'Snapshot' })], sources: RESTIC_BACKUP }), NOW, EXTRAS)
  t.match(never.pvcs[0], { name: 'jellyfin', decision: { outcome: 'fresh' }, neverRestorable: /ReplicationDestination jellyfin-dst can never give the volume populator an image: the backup is in a restic repository.*Use spec\.restic instead of spec\.kopia/ })
  t.match(never.summary.warnings.join(' '), /1 PVC can never be restored as it stands/)
  const page = renderStatusPage(statusDocument(snapshotOf({ objects: [PVC_OBJECT, rd('kopia', { copyMethod: 'Snapshot' })], sources: RESTIC_BACKUP }), NOW, EXTRAS))
  t.match(page, /<div class="never-restorable error"><strong>can never be restored as it stands:<\/strong> ReplicationDestination jellyfin-dst can never/)
  const fine = statusView(snapshotOf({ objects: [PVC_OBJECT, rd('kopia', { copyMethod: 'Snapshot' })], sources: KOPIA_BACKUP }), NOW, EXTRAS)
  t.equal(fine.pvcs[0]?.neverRestorable, null, 'an RD that may sync is not flagged')
  t.equal(fine.pvcs[0]?.decision.outcome, 'wait')
  t.notMatch(fine.summary.warnings.join(' '), /can never be restored/)
})

t.test('review --explain on the examples says why in words a person can act on', async (t) => {
  const { reviewCommand } = await import('../../src/commands/review.ts')
  const { PassThrough } = await import('node:stream')
  const explain = async (args: string[]) => {
    const out = new PassThrough()
    let text = ''
    out.on('data', (chunk: Buffer) => { text += chunk.toString('utf8') })
    await reviewCommand(['--config', 'examples/config.yaml', '--explain', ...args], out, { stderr: new PassThrough() })
    return JSON.parse(text) as { explain: { decision: string; reasons: string[]; warnings: string[]; patch: Array<{ path: string }> } }
  }
  const never = await explain(['--state', 'examples/state-never-ready', 'examples/admission/pvc-never-ready.json'])
  t.equal(never.explain.decision, 'fresh', 'pvc-never-ready.json: fresh, not wait (whenBackupNotReady: wait)')
  t.match(never.explain.warnings[0], /media\/sonarr starts EMPTY although the restic backup in source nas.*ReplicationDestination sonarr-dst can never give the volume populator an image: copyMethod is Direct.*runs the kopia mover.*On ReplicationDestination sonarr-dst: set spec\.kopia\.copyMethod: Snapshot.*use spec\.restic instead of spec\.kopia/)
  t.strictSame(never.explain.patch.map((op) => op.path), ['/metadata/annotations'])
  const rdFinding = await explain(['--webhook', 'validate', 'examples/admission/rd-never-ready.json'])
  t.equal(rdFinding.explain.decision, 'warn', 'rd-never-ready.json: a warning on the RD')
  t.match(rdFinding.explain.reasons.join(' '), /rdNeverReady \(warn\): ReplicationDestination media\/sonarr-dst is the restore source of PVC media\/sonarr/)
  const legacy = await explain(['examples/admission/pvc-legacy-datasource.json'])
  t.equal(legacy.explain.decision, 'restore', 'pvc-legacy-datasource.json: restore')
  t.strictSame(legacy.explain.patch.map((op) => op.path), ['/spec/dataSourceRef', '/metadata/annotations'], 'dataSourceRef added next to the equal dataSource')
  t.match(legacy.explain.warnings.join(' '), /spec\.dataSource names ReplicationDestination jellyfin-dst/)
})

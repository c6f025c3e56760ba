import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import t from 'tap'
import fastJsonPatch from 'fast-json-patch'
import { parse, parseAllDocuments } from 'yaml'
import { parseConfig } from '../../src/config/load.ts'
import { StateStore } from '../../src/state/store.ts'
import type { Snapshot } from '../../src/state/snapshot.ts'
import type { AdmissionInput, Decision } from '../../src/admission/decision.ts'
import { decideMoverJob } from '../../src/admission/mover-jobs.ts'
import { buildResponse, parseReview, patchOperations } from '../../src/admission/review.ts'
import { DECISION_ANNOTATION, REASON_ANNOTATION } from '../../src/admission/annotations.ts'
import type { JsonObject } from '../../src/json.ts'

// ---------- helpers ----------

function fixtureText(name: string): string {
  return readFileSync(new URL(`../fixtures/volsync/${name}`, import.meta.url), 'utf8')
}
function yamlJob(name: string): JsonObject {
  return parse(fixtureText(name)) as JsonObject
}
function yamlJobs(name: string): JsonObject[] {
  return parseAllDocuments(fixtureText(name)).map((doc) => doc.toJS() as JsonObject)
}
function review(name: string): AdmissionInput {
  const parsed = parseReview(JSON.parse(fixtureText(name)))
  if (!parsed.ok) throw new Error(parsed.error)
  return parsed.input
}

const NFS_CONFIG = `
movers:
  jitter: {enabled: true, maxSeconds: 300, image: ghcr.io/home-operations/busybox:1.38.0}
  repository:
    nfs: {server: nas.lan, path: /mnt/tank/kopia}
    mountPath: /repository
`
function snapshotFor(yamlText: string): Snapshot {
  return new StateStore(parseConfig(yamlText)).current
}
const nfs = snapshotFor(NFS_CONFIG)

function input(job: JsonObject | null, operation: AdmissionInput['operation'] = 'CREATE', oldObject: JsonObject | null = null): AdmissionInput {
  const metadata = (job?.metadata ?? {}) as { name?: string; namespace?: string }
  return {
    uid: 'test-uid',
    kind: { group: 'batch', version: 'v1', kind: 'Job' },
    operation,
    namespace: metadata.namespace ?? '',
    name: metadata.name ?? '',
    object: job,
    oldObject,
    dryRun: false,
  }
}

function at(value: unknown, ...path: (string | number)[]): unknown {
  let current = value
  for (const key of path) {
    if (current === null || typeof current !== 'object') return undefined
    current = (current as Record<string | number, unknown>)[key]
  }
  return current
}
function podSpec(job: unknown): JsonObject {
  return at(job, 'spec', 'template', 'spec') as JsonObject
}
function list(value: unknown): unknown[] {
  if (!Array.isArray(value)) throw new Error(`not a list: ${JSON.stringify(value)}`)
  return value
}

/** Applies the response patch exactly as the API server would (via buildResponse's base64 JSONPatch). */
function admitted(request: AdmissionInput, decision: Decision): JsonObject {
  const response = buildResponse(request, decision, 'enforce').response
  const object = structuredClone(request.object) as JsonObject
  if (!response.patch) return object
  const ops = JSON.parse(Buffer.from(response.patch, 'base64').toString('utf8')) as fastJsonPatch.Operation[]
  return fastJsonPatch.applyPatch(object, ops, true, false).newDocument
}

/** The independent expectation of the jitter delay (design: sha256, first 4 bytes BE, mod max+1). */
function expectedSleep(namespace: string, name: string, maxSeconds: number): number {
  const hex = createHash('sha256').update(`${namespace}/${name}`).digest('hex').slice(0, 8)
  return Number.parseInt(hex, 16) % (maxSeconds + 1)
}

function expectedJitter(seconds: number, image = 'ghcr.io/home-operations/busybox:1.38.0'): JsonObject {
  return {
    name: 'jitter',
    image,
    imagePullPolicy: 'IfNotPresent',
    command: ['sh', '-c', `sleep ${seconds}`],
    resources: { requests: { cpu: '1m', memory: '4Mi' }, limits: { memory: '16Mi' } },
    securityContext: {
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      runAsUser: 65534,
      seccompProfile: { type: 'RuntimeDefault' },
    },
  }
}
const NFS_VOLUME = { name: 'repository', nfs: { server: 'nas.lan', path: '/mnt/tank/kopia' } }
const NFS_MOUNT = { name: 'repository', mountPath: '/repository' }

/** Re-admits the patched Job as VolSync's next UPDATE would send it: must be a no-op. */
function assertIdempotent(t: Tap, snapshot: Snapshot, patched: JsonObject, label: string): void {
  const again = decideMoverJob(snapshot, input(patched, 'UPDATE', patched), 0)
  t.equal(again.outcome, 'unchanged', `${label}: second admission is unchanged`)
  t.equal(again.mutated, undefined, `${label}: no mutated object`)
  t.same(patchOperations(input(patched, 'UPDATE', patched), again), [], `${label}: no patch`)
}
/** The assertions the helper needs; the root TAP and subtests both provide them. */
type Tap = Pick<typeof t, 'equal' | 'same'>

// ---------- kopia src ----------

t.test('kopia src CREATE: jitter, repository volume and mount, appended at the end', async (t) => {
  const job = yamlJob('job-kopia-src.yaml')
  const request = input(job)
  const decision = decideMoverJob(nfs, request, 0)
  const sleep = expectedSleep('media', 'volsync-src-jellyfin', 300)
  const reason = `added jitter 0-300s (sleep ${sleep}) and repository volume nfs nas.lan:/mnt/tank/kopia at /repository`
  t.equal(decision.rule, 'mover-job')
  t.equal(decision.outcome, 'inject')
  t.same(decision.reasons, [reason])
  t.same(decision.warnings, [])
  const byPath = (a: { path: string }, b: { path: string }): number => a.path.localeCompare(b.path)
  t.strictSame([...patchOperations(request, decision)].sort(byPath), [
    { op: 'add', path: '/spec/template/spec/initContainers', value: [expectedJitter(sleep)] },
    { op: 'add', path: '/spec/template/spec/volumes/3', value: NFS_VOLUME },
    { op: 'add', path: '/spec/template/spec/containers/0/volumeMounts/3', value: NFS_MOUNT },
    { op: 'add', path: '/metadata/annotations', value: { [DECISION_ANNOTATION]: 'inject', [REASON_ANNOTATION]: reason } },
  ].sort(byPath), 'patch ops')
  const patched = admitted(request, decision)
  t.strictSame(list(podSpec(patched).initContainers), [expectedJitter(sleep)])
  t.strictSame(list(podSpec(patched).volumes).map((v) => at(v, 'name')), ['data', 'tempdir', 'cache', 'repository'])
  t.strictSame(list(podSpec(patched).volumes)[3], NFS_VOLUME)
  t.strictSame(list(at(podSpec(patched), 'containers', 0, 'volumeMounts')).at(-1), NFS_MOUNT)
  t.strictSame(job, yamlJob('job-kopia-src.yaml'), 'request object is not modified')
  assertIdempotent(t, nfs, patched, 'kopia src')
})

t.test('patch op set for kopia src, compared exactly', async (t) => {
  const request = input(yamlJob('job-kopia-src.yaml'))
  const decision = decideMoverJob(nfs, request, 0)
  const byPath = new Map(patchOperations(request, decision).map((op) => [op.path, op]))
  t.strictSame([...byPath.keys()].sort(), [
    '/metadata/annotations',
    '/spec/template/spec/containers/0/volumeMounts/3',
    '/spec/template/spec/initContainers',
    '/spec/template/spec/volumes/3',
  ])
  for (const op of byPath.values()) t.equal(op.op, 'add', `${op.path} is an add`)
  t.strictSame(at(byPath.get('/spec/template/spec/volumes/3'), 'value'), NFS_VOLUME)
  t.strictSame(at(byPath.get('/spec/template/spec/containers/0/volumeMounts/3'), 'value'), NFS_MOUNT)
})

t.test('admissionreview-job-create.json through parseReview and buildResponse', async (t) => {
  const request = review('admissionreview-job-create.json')
  t.equal(request.operation, 'CREATE')
  t.equal(at(request.object, 'metadata', 'uid'), undefined, 'no uid at CREATE')
  const decision = decideMoverJob(nfs, request, 0)
  t.equal(decision.outcome, 'inject')
  const response = buildResponse(request, decision, 'enforce').response
  t.equal(response.patchType, 'JSONPatch')
  const patched = admitted(request, decision)
  const sleep = expectedSleep('media', 'volsync-src-jellyfin', 300)
  t.strictSame(list(podSpec(patched).initContainers), [expectedJitter(sleep)])
  t.strictSame(list(podSpec(patched).volumes).at(-1), NFS_VOLUME)
  t.strictSame(list(at(podSpec(patched), 'containers', 0, 'volumeMounts')).at(-1), NFS_MOUNT)
  // the raw YAML and the defaulted review get the same pod-template additions
  const raw = decideMoverJob(nfs, input(yamlJob('job-kopia-src.yaml')), 0)
  t.same(decision.reasons, raw.reasons)
  assertIdempotent(t, nfs, patched, 'create review')
})

// ---------- kopia dst / restic src ----------

t.test('kopia dst: repository only, never jitter', async (t) => {
  const request = input(yamlJob('job-kopia-dst.yaml'))
  const decision = decideMoverJob(nfs, request, 0)
  t.equal(decision.outcome, 'inject')
  t.same(decision.reasons, ['added repository volume nfs nas.lan:/mnt/tank/kopia at /repository'])
  const ops = patchOperations(request, decision)
  t.notOk(ops.some((op) => op.path.includes('initContainers')), 'no initContainers op')
  const patched = admitted(request, decision)
  t.equal(podSpec(patched).initContainers, undefined)
  t.strictSame(list(podSpec(patched).volumes).map((v) => at(v, 'name')), ['data', 'tempdir', 'restore', 'cache', 'repository'])
  t.strictSame(list(at(podSpec(patched), 'containers', 0, 'volumeMounts')).map((m) => at(m, 'mountPath')),
    ['/restore/data', '/tmp', '/restore', '/cache', '/repository'])
  assertIdempotent(t, nfs, patched, 'kopia dst')
})

t.test('restic src: container restic gets jitter and the repository', async (t) => {
  const request = input(yamlJob('job-restic-src.yaml'))
  const decision = decideMoverJob(nfs, request, 0)
  const sleep = expectedSleep('home', 'volsync-src-home-assistant', 300)
  t.equal(decision.outcome, 'inject')
  t.same(decision.reasons, [`added jitter 0-300s (sleep ${sleep}) and repository volume nfs nas.lan:/mnt/tank/kopia at /repository`])
  const patched = admitted(request, decision)
  t.equal(at(podSpec(patched), 'containers', 0, 'name'), 'restic')
  t.strictSame(list(podSpec(patched).initContainers), [expectedJitter(sleep)])
  t.strictSame(list(at(podSpec(patched), 'containers', 0, 'volumeMounts')).map((m) => at(m, 'name')), ['data', 'cache', 'tempdir', 'repository'])
  assertIdempotent(t, nfs, patched, 'restic src')
})

// ---------- maintenance ----------

t.test('kopia maintenance Jobs (cron-spawned and manual)', async (t) => {
  const [cron, manual] = yamlJobs('job-kopia-maintenance.yaml')
  t.ok(cron && manual, 'two documents')
  const sleeps: number[] = []
  for (const job of [cron!, manual!]) {
    const name = at(job, 'metadata', 'name') as string
    const request = input(job)
    const decision = decideMoverJob(nfs, request, 0)
    // One stable offset per KopiaMaintenance (label maintenance-name), whatever the Job's name.
    const sleep = expectedSleep('volsync-system', 'daily', 300)
    sleeps.push(sleep)
    t.equal(decision.outcome, 'inject', name)
    t.same(decision.reasons, [`added jitter 0-300s (sleep ${sleep}) and repository volume nfs nas.lan:/mnt/tank/kopia at /repository`])
    const patched = admitted(request, decision)
    t.strictSame(list(podSpec(patched).initContainers), [expectedJitter(sleep)])
    t.strictSame(list(podSpec(patched).volumes).at(-1), NFS_VOLUME)
    t.strictSame(list(at(podSpec(patched), 'containers', 0, 'volumeMounts')).at(-1), NFS_MOUNT)
    t.equal(at(podSpec(patched), 'containers', 0, 'name'), 'kopia-maintenance')
    assertIdempotent(t, nfs, patched, name)
  }
  const renamed = structuredClone(cron!)
  ;(renamed.metadata as JsonObject).name = 'kopia-maint-daily-0123456789abcdef-29566260'
  t.same(decideMoverJob(nfs, input(renamed), 0).reasons, decideMoverJob(nfs, input(cron!), 0).reasons, 'the next scheduled run gets the same delay')
})

t.test('maintenance: the mover container is found by name, not position', async (t) => {
  const [cron] = yamlJobs('job-kopia-maintenance.yaml')
  const job = structuredClone(cron!)
  list(podSpec(job).containers).unshift({ name: 'sidecar', image: 'example/sidecar:1', volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }] })
  const request = input(job)
  const decision = decideMoverJob(nfs, request, 0)
  const byPath = patchOperations(request, decision).map((op) => op.path)
  t.ok(byPath.includes('/spec/template/spec/containers/1/volumeMounts/2'), 'mount added to kopia-maintenance at index 1')
  t.notOk(byPath.some((path) => path.startsWith('/spec/template/spec/containers/0')), 'sidecar untouched')
})

// ---------- selection ----------

t.test('selection: never by name; rsync-like and unrelated Jobs skipped', async (t) => {
  const src = yamlJob('job-kopia-src.yaml')
  const cases: [string, (job: JsonObject) => void, RegExp][] = [
    ['rsync mover', (job) => { (list(podSpec(job).containers)[0] as JsonObject).name = 'rsync' }, /rsync mover Job/],
    ['rclone mover', (job) => { (list(podSpec(job).containers)[0] as JsonObject).name = 'rclone' }, /rclone mover Job/],
    ['syncthing mover', (job) => { (list(podSpec(job).containers)[0] as JsonObject).name = 'syncthing' }, /syncthing/],
    ['no volsync label', (job) => { (job.metadata as JsonObject).labels = { app: 'jellyfin' } }, /not a VolSync mover Job/],
    ['no owner', (job) => { delete (job.metadata as JsonObject).ownerReferences }, /without a controlling ownerReference/],
    ['owner not controller', (job) => { (list(at(job, 'metadata', 'ownerReferences'))[0] as JsonObject).controller = false }, /controlling ownerReference/],
    ['owner in another group', (job) => { (list(at(job, 'metadata', 'ownerReferences'))[0] as JsonObject).apiVersion = 'example.com/v1' }, /not a ReplicationSource/],
    ['owner a CronJob', (job) => {
      (job.metadata as JsonObject).ownerReferences = [{ apiVersion: 'batch/v1', kind: 'CronJob', name: 'x', uid: 'u', controller: true }]
    }, /batch\/v1 CronJob/],
    ['maintenance label without the container', (job) => {
      (job.metadata as JsonObject).labels = { 'volsync.backube/kopia-maintenance': 'true' }
    }, /no container kopia-maintenance/],
    ['maintenance label not "true"', (job) => {
      (job.metadata as JsonObject).labels = { 'volsync.backube/kopia-maintenance': 'false' }
      ;(list(podSpec(job).containers)[0] as JsonObject).name = 'kopia-maintenance'
    }, /not a VolSync mover Job/],
  ]
  for (const [label, change, reason] of cases) {
    const job = structuredClone(src)
    change(job)
    const decision = decideMoverJob(nfs, input(job), 0)
    t.equal(decision.outcome, 'skip', label)
    t.match(decision.reasons[0], reason, label)
    t.equal(decision.mutated, undefined, label)
  }

  const unrelated = { apiVersion: 'batch/v1', kind: 'Job', metadata: { name: 'volsync-src-jellyfin', namespace: 'media' },
    spec: { template: { spec: { containers: [{ name: 'kopia', image: 'kopia/kopia' }] } } } }
  const decision = decideMoverJob(nfs, input(unrelated), 0)
  t.equal(decision.outcome, 'skip', 'a volsync-looking name alone selects nothing')
})

t.test('hashed long name: selected by owner kind and container', async (t) => {
  const job = structuredClone(yamlJob('job-kopia-src.yaml'))
  const longRs = 'a-very-long-replication-source-name-that-overflows-the-job-name-limit'
  const hashed = 'volsync-src-5d41402a'
  Object.assign(job.metadata as JsonObject, { name: hashed })
  ;(list(at(job, 'metadata', 'ownerReferences'))[0] as JsonObject).name = longRs
  const request = input(job)
  const decision = decideMoverJob(nfs, request, 0)
  t.equal(decision.outcome, 'inject')
  const sleep = expectedSleep('media', hashed, 300)
  t.strictSame(list(podSpec(admitted(request, decision)).initContainers), [expectedJitter(sleep)], 'delay from the Job name')

  // a restore whose name does not even look like VolSync's
  const dst = structuredClone(yamlJob('job-kopia-dst.yaml'))
  Object.assign(dst.metadata as JsonObject, { name: 'something-else' })
  const dstDecision = decideMoverJob(nfs, input(dst), 0)
  t.same(dstDecision.reasons, ['added repository volume nfs nas.lan:/mnt/tank/kopia at /repository'], 'still a restore')
})

// ---------- jitter ----------

t.test('jitter is deterministic and spread over the range', async (t) => {
  const request = input(yamlJob('job-kopia-src.yaml'))
  const first = patchOperations(request, decideMoverJob(nfs, request, 0))
  const second = patchOperations(request, decideMoverJob(nfs, input(yamlJob('job-kopia-src.yaml')), 12345))
  t.strictSame(second, first, 'same Job, same patch (time does not matter)')

  const seen: number[] = []
  for (let i = 0; i < 200; i++) {
    const job = structuredClone(yamlJob('job-kopia-src.yaml'))
    Object.assign(job.metadata as JsonObject, { name: `volsync-src-app-${i}` })
    const patched = admitted(input(job), decideMoverJob(nfs, input(job), 0))
    const command = at(podSpec(patched), 'initContainers', 0, 'command', 2) as string
    const seconds = Number(command.replace('sleep ', ''))
    t.equal(seconds, expectedSleep('media', `volsync-src-app-${i}`, 300), `app-${i}`)
    seen.push(seconds)
  }
  t.ok(seen.every((s) => Number.isInteger(s) && s >= 0 && s <= 300), 'all within 0..300')
  t.ok(new Set(seen).size > 100, `many distinct delays (${new Set(seen).size})`)
  t.ok(Math.min(...seen) < 30 && Math.max(...seen) > 270, 'covers the window')

  // the namespace counts too
  const other = structuredClone(yamlJob('job-kopia-src.yaml'))
  Object.assign(other.metadata as JsonObject, { namespace: 'other' })
  const otherSleep = at(podSpec(admitted(input(other), decideMoverJob(nfs, input(other), 0))), 'initContainers', 0, 'command', 2)
  t.equal(otherSleep, `sleep ${expectedSleep('other', 'volsync-src-jellyfin', 300)}`)
})

t.test('an existing jitter initContainer is kept exactly as it is', async (t) => {
  const job = structuredClone(yamlJob('job-kopia-src.yaml'))
  const custom = { name: 'jitter', image: 'example/sleeper:1', command: ['sleep', '5'] }
  podSpec(job).initContainers = [{ name: 'setup', image: 'example/setup:1' }, custom]
  const request = input(job)
  const decision = decideMoverJob(nfs, request, 0)
  t.same(decision.reasons, ['added repository volume nfs nas.lan:/mnt/tank/kopia at /repository'])
  t.notOk(patchOperations(request, decision).some((op) => op.path.includes('initContainers')))
  t.strictSame(list(podSpec(admitted(request, decision)).initContainers), [{ name: 'setup', image: 'example/setup:1' }, custom])
})

t.test('jitter appended after other initContainers', async (t) => {
  const job = structuredClone(yamlJob('job-kopia-src.yaml'))
  podSpec(job).initContainers = [{ name: 'setup', image: 'example/setup:1' }]
  const request = input(job)
  const ops = patchOperations(request, decideMoverJob(nfs, request, 0))
  const op = ops.find((o) => o.path === '/spec/template/spec/initContainers/1')
  t.ok(op, 'added at index 1')
  t.equal(at(op, 'value', 'name'), 'jitter')
})

t.test('UPDATE that restores the jitter CREATE computed gives the same reason: the reason annotation does not change on reconcile', async (t) => {
  const job = yamlJob('job-kopia-src.yaml')
  const create = decideMoverJob(nfs, input(job), 0)
  // The API server fills defaults into the stored container; the reason must not depend on them.
  const stored = admitted(input(job), create)
  const storedJitter = list(podSpec(stored).initContainers)[0] as JsonObject
  Object.assign(storedJitter, { terminationMessagePath: '/dev/termination-log', terminationMessagePolicy: 'File' })
  const update = decideMoverJob(nfs, input(structuredClone(job), 'UPDATE', stored), 0)
  t.same(update.reasons, create.reasons, 'the same reason text as CREATE')
  t.match(update.reasons[0], /^added jitter 0-300s \(sleep \d+\)/)
})

t.test('UPDATE copies the jitter from oldObject instead of re-computing', async (t) => {
  const stored = structuredClone(yamlJob('job-kopia-src.yaml'))
  const oldJitter = { ...expectedJitter(17), terminationMessagePath: '/dev/termination-log', terminationMessagePolicy: 'File' }
  podSpec(stored).initContainers = [oldJitter]
  const job = yamlJob('job-kopia-src.yaml') // without initContainers
  const update = input(job, 'UPDATE', stored)
  const decision = decideMoverJob(nfs, update, 0)
  t.same(decision.reasons, ['added jitter copied from the stored Job and repository volume nfs nas.lan:/mnt/tank/kopia at /repository'])
  t.strictSame(list(podSpec(admitted(update, decision)).initContainers), [oldJitter])

  const create = decideMoverJob(nfs, input(job, 'CREATE', stored), 0)
  t.strictSame(list(podSpec(create.mutated).initContainers), [expectedJitter(expectedSleep('media', 'volsync-src-jellyfin', 300))],
    'CREATE never looks at oldObject')
})

t.test('jitter disabled: repository only, also for maintenance', async (t) => {
  const snapshot = snapshotFor(`
movers:
  jitter: {enabled: false}
  repository: {nfs: {server: nas.lan, path: /mnt/tank/kopia}}
`)
  for (const job of [yamlJob('job-kopia-src.yaml'), yamlJobs('job-kopia-maintenance.yaml')[0]!]) {
    const request = input(job)
    const decision = decideMoverJob(snapshot, request, 0)
    t.same(decision.reasons, ['added repository volume nfs nas.lan:/mnt/tank/kopia at /repository'])
    t.equal(podSpec(admitted(request, decision)).initContainers, undefined)
  }
})

t.test('default jitter image and maxSeconds from the config defaults', async (t) => {
  const snapshot = snapshotFor('{}')
  const request = input(yamlJob('job-kopia-src.yaml'))
  const decision = decideMoverJob(snapshot, request, 0)
  const sleep = expectedSleep('media', 'volsync-src-jellyfin', snapshot.config.movers.jitter.maxSeconds)
  t.same(decision.reasons, [`added jitter 0-${snapshot.config.movers.jitter.maxSeconds}s (sleep ${sleep})`])
  t.strictSame(list(podSpec(decision.mutated).initContainers), [expectedJitter(sleep, snapshot.config.movers.jitter.image)])
})

// ---------- repository ----------

t.test('PVC repository with a custom mountPath', async (t) => {
  const snapshot = snapshotFor(`
movers:
  jitter: {enabled: false}
  repository: {pvc: {claimName: kopia-repository}, mountPath: /kopia}
`)
  const request = input(yamlJob('job-kopia-dst.yaml'))
  const decision = decideMoverJob(snapshot, request, 0)
  t.same(decision.reasons, ['added repository volume pvc kopia-repository at /kopia'])
  const ops = patchOperations(request, decision)
  t.strictSame(ops.find((op) => op.path === '/spec/template/spec/volumes/4'),
    { op: 'add', path: '/spec/template/spec/volumes/4', value: { name: 'repository', persistentVolumeClaim: { claimName: 'kopia-repository' } } })
  t.strictSame(ops.find((op) => op.path === '/spec/template/spec/containers/0/volumeMounts/4'),
    { op: 'add', path: '/spec/template/spec/containers/0/volumeMounts/4', value: { name: 'repository', mountPath: '/kopia' } })
  assertIdempotent(t, snapshot, admitted(request, decision), 'pvc')
})

t.test('repository unset: jitter only; a restore then needs nothing', async (t) => {
  const snapshot = snapshotFor('movers: {jitter: {maxSeconds: 60}}')
  const src = input(yamlJob('job-kopia-src.yaml'))
  const decision = decideMoverJob(snapshot, src, 0)
  t.same(decision.reasons, [`added jitter 0-60s (sleep ${expectedSleep('media', 'volsync-src-jellyfin', 60)})`])
  t.notOk(patchOperations(src, decision).some((op) => op.path.includes('volume')), 'no volume ops')

  const dst = decideMoverJob(snapshot, input(yamlJob('job-kopia-dst.yaml')), 0)
  t.equal(dst.outcome, 'unchanged')
  t.equal(dst.mutated, undefined)
  t.same(dst.reasons, ['restore Job media/volsync-dst-jellyfin-dst: nothing to add (no jitter on restores; no repository configured)'])
  t.same(dst.warnings, [])
})

t.test('existing repository volume: same source adds only the mount; another source is left with a warning', async (t) => {
  const same = structuredClone(yamlJob('job-kopia-dst.yaml'))
  list(podSpec(same).volumes).push({ name: 'repository', nfs: { server: 'nas.lan', path: '/mnt/tank/kopia', readOnly: false } })
  const sameRequest = input(same)
  const sameDecision = decideMoverJob(nfs, sameRequest, 0)
  t.same(sameDecision.reasons, ['added repository mount at /repository'])
  t.strictSame(patchOperations(sameRequest, sameDecision).map((op) => op.path).sort(),
    ['/metadata/annotations', '/spec/template/spec/containers/0/volumeMounts/4'])

  const mounted = structuredClone(yamlJob('job-kopia-dst.yaml'))
  list(at(podSpec(mounted), 'containers', 0, 'volumeMounts')).push(NFS_MOUNT)
  const mountedDecision = decideMoverJob(nfs, input(mounted), 0)
  t.same(mountedDecision.reasons, ['added repository volume nfs nas.lan:/mnt/tank/kopia'], 'volume only when the mount exists')

  const other = structuredClone(yamlJob('job-kopia-dst.yaml'))
  list(podSpec(other).volumes).push({ name: 'repository', nfs: { server: 'old-nas', path: '/kopia' } })
  const otherDecision = decideMoverJob(nfs, input(other), 0)
  t.equal(otherDecision.outcome, 'unchanged')
  t.equal(otherDecision.mutated, undefined)
  t.equal(otherDecision.warnings.length, 1)
  t.match(otherDecision.warnings[0], /restore Job media\/volsync-dst-jellyfin-dst already has a volume "repository" \(nfs old-nas:\/kopia\) that differs from movers.repository \(nfs nas.lan:\/mnt\/tank\/kopia\)/)

  const otherSrc = structuredClone(yamlJob('job-kopia-src.yaml'))
  list(podSpec(otherSrc).volumes).push({ name: 'repository', persistentVolumeClaim: { claimName: 'legacy' } })
  const otherSrcRequest = input(otherSrc)
  const otherSrcDecision = decideMoverJob(nfs, otherSrcRequest, 0)
  t.equal(otherSrcDecision.outcome, 'inject', 'jitter still added')
  t.match(otherSrcDecision.warnings[0], /\(pvc legacy\)/)
  t.notOk(patchOperations(otherSrcRequest, otherSrcDecision).some((op) => op.path.includes('volume')), 'foreign volume not mounted')
})

// ---------- the drift loop ----------

t.test('drift loop: the UPDATE patch restores the stored pod template, then nothing', async (t) => {
  const request = review('admissionreview-job-update.json')
  t.equal(request.operation, 'UPDATE')
  const decision = decideMoverJob(nfs, request, 0)
  t.equal(decision.outcome, 'inject')
  t.same(decision.reasons, ['added repository volume nfs nas.lan:/mnt/tank/kopia at /repository'])
  t.notOk(patchOperations(request, decision).some((op) => op.path.includes('initContainers')), 'jitter kept, not rebuilt')
  const patched = admitted(request, decision)
  const stored = podSpec(request.oldObject)
  for (const field of ['volumes', 'containers', 'initContainers']) {
    t.strictSame(podSpec(patched)[field], stored[field], `${field} equals oldObject's`)
  }
  // the full review once more, as the API server would send it after the patch
  const again = decideMoverJob(nfs, { ...request, object: patched }, 0)
  t.equal(again.outcome, 'unchanged')
  t.equal(buildResponse({ ...request, object: patched }, again, 'enforce').response.patch, undefined)
})

t.test('drift loop without the jitter in the object: copied from oldObject, equality still holds', async (t) => {
  const request = review('admissionreview-job-update.json')
  const object = structuredClone(request.object) as JsonObject
  delete podSpec(object).initContainers
  const update = { ...request, object }
  const decision = decideMoverJob(nfs, update, 0)
  const patched = admitted(update, decision)
  for (const field of ['volumes', 'containers', 'initContainers']) {
    t.strictSame(podSpec(patched)[field], podSpec(request.oldObject)[field], field)
  }
})

// ---------- operations, kinds, malformed objects ----------

t.test('DELETE, CONNECT, other kinds and no object are skipped', async (t) => {
  const job = yamlJob('job-kopia-src.yaml')
  for (const operation of ['DELETE', 'CONNECT'] as const) {
    const decision = decideMoverJob(nfs, input(job, operation), 0)
    t.equal(decision.outcome, 'skip', operation)
    t.match(decision.reasons[0], operation)
  }
  t.equal(decideMoverJob(nfs, { ...input(job), kind: { group: 'apps', version: 'v1', kind: 'Deployment' } }, 0).outcome, 'skip')
  const none = decideMoverJob(nfs, input(null), 0)
  t.equal(none.outcome, 'skip')
  t.same(none.reasons, ['no object'])
})

t.test('malformed objects are skipped with a reason, never thrown', async (t) => {
  const cases: [string, (job: JsonObject) => void, RegExp][] = [
    ['containers not a list', (job) => { podSpec(job).containers = { name: 'kopia' } }, /containers is not a list/],
    ['containers missing', (job) => { delete podSpec(job).containers }, /containers is not a list/],
    ['spec missing', (job) => { delete job.spec }, /containers is not a list/],
    ['template spec a string', (job) => { (at(job, 'spec', 'template') as JsonObject).spec = 'x' }, /containers is not a list/],
    ['initContainers null', (job) => { podSpec(job).initContainers = null }, /initContainers is not a list/],
    ['volumes a string', (job) => { podSpec(job).volumes = 'data' }, /volumes is not a list/],
    ['volumeMounts an object', (job) => { (list(podSpec(job).containers)[0] as JsonObject).volumeMounts = {} }, /volumeMounts is not a list/],
    ['container 0 a string', (job) => { podSpec(job).containers = ['kopia'] }, /unnamed mover Job/],
    ['labels a string', (job) => { (job.metadata as JsonObject).labels = 'volsync' }, /not a VolSync mover Job/],
    ['ownerReferences an object', (job) => { (job.metadata as JsonObject).ownerReferences = { kind: 'ReplicationSource' } }, /controlling ownerReference/],
    ['metadata null', (job) => { job.metadata = null }, /not a VolSync mover Job/],
  ]
  for (const [label, change, reason] of cases) {
    const job = structuredClone(yamlJob('job-kopia-src.yaml'))
    change(job)
    let decision: Decision | undefined
    t.doesNotThrow(() => { decision = decideMoverJob(nfs, input(job), 0) }, label)
    t.equal(decision?.outcome, 'skip', label)
    t.match(decision?.reasons[0], reason, label)
  }

  // a malformed field the rule does not touch is not its business
  const restore = structuredClone(yamlJob('job-kopia-dst.yaml'))
  podSpec(restore).initContainers = null
  t.equal(decideMoverJob(nfs, input(restore), 0).outcome, 'inject', 'restores never read initContainers')

  // malformed oldObject on UPDATE: ignored, jitter computed
  const job = yamlJob('job-kopia-src.yaml')
  const decision = decideMoverJob(nfs, input(job, 'UPDATE', { spec: { template: { spec: { initContainers: 'x' } } } }), 0)
  t.equal(decision.outcome, 'inject')
  t.equal(at(podSpec(decision.mutated), 'initContainers', 0, 'command', 2), `sleep ${expectedSleep('media', 'volsync-src-jellyfin', 300)}`)
})

t.test('frozen request objects are never written to', async (t) => {
  const job = structuredClone(yamlJob('job-kopia-src.yaml'))
  const deepFreeze = (value: unknown): void => {
    if (value && typeof value === 'object') { Object.freeze(value); Object.values(value).forEach(deepFreeze) }
  }
  deepFreeze(job)
  const decision = decideMoverJob(nfs, input(job), 0)
  t.equal(decision.outcome, 'inject')
  t.equal(podSpec(job).initContainers, undefined)
})

t.test('a Job without name in the request: name from metadata, else generateName', async (t) => {
  const job = structuredClone(yamlJob('job-kopia-src.yaml'))
  const named = decideMoverJob(nfs, { ...input(job), name: '', namespace: '' }, 0)
  t.equal(at(podSpec(named.mutated), 'initContainers', 0, 'command', 2), `sleep ${expectedSleep('media', 'volsync-src-jellyfin', 300)}`)
  const generated = structuredClone(job)
  Object.assign(generated.metadata as JsonObject, { name: undefined, generateName: 'volsync-src-jellyfin-' })
  const decision = decideMoverJob(nfs, { ...input(generated), name: '' }, 0)
  t.equal(at(podSpec(decision.mutated), 'initContainers', 0, 'command', 2), `sleep ${expectedSleep('media', 'volsync-src-jellyfin-', 300)}`)
})

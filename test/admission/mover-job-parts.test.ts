// The building blocks of the mover-job rule: classification, the jitter delay, the repository volume.
import { readFileSync } from 'node:fs'
import t from 'tap'
import { parse, parseAllDocuments } from 'yaml'
import { classifyMoverJob, moverJobKind } from '../../src/admission/mover-job-kind.ts'
import { findJitter, jitterContainer, jitterSeconds } from '../../src/admission/jitter.ts'
import {
  describeRepository,
  describeVolumeSource,
  isConfiguredRepository,
  repositoryMount,
  repositoryVolume,
} from '../../src/admission/repository-volume.ts'
import type { JsonObject } from '../../src/json.ts'

function fixtureText(name: string): string {
  return readFileSync(new URL(`../fixtures/volsync/${name}`, import.meta.url), 'utf8')
}

t.test('moverJobKind on every job fixture', async (t) => {
  t.equal(moverJobKind(parse(fixtureText('job-kopia-src.yaml')) as JsonObject), 'backup')
  t.equal(moverJobKind(parse(fixtureText('job-kopia-dst.yaml')) as JsonObject), 'restore')
  t.equal(moverJobKind(parse(fixtureText('job-restic-src.yaml')) as JsonObject), 'backup')
  const [cron, manual] = parseAllDocuments(fixtureText('job-kopia-maintenance.yaml')).map((d) => d.toJS() as JsonObject)
  t.equal(moverJobKind(cron!), 'maintenance', 'cron-spawned (CronJob owner, labels from Job defaulting)')
  t.equal(moverJobKind(manual!), 'maintenance', 'manual (KopiaMaintenance owner)')
  t.equal(moverJobKind({ metadata: { name: 'volsync-src-x' } }), null)
  t.equal(moverJobKind({}), null)

  const review = JSON.parse(fixtureText('admissionreview-job-update.json')) as { request: { object: JsonObject } }
  t.strictSame(classifyMoverJob(review.request.object), { job: { kind: 'backup', container: 'kopia', containerIndex: 0 } })
})

t.test('restic restore and rsync-tls', async (t) => {
  const dst = parse(fixtureText('job-kopia-dst.yaml')) as JsonObject
  const containers = ((dst.spec as JsonObject).template as { spec: { containers: { name: string }[] } }).spec.containers
  containers[0]!.name = 'restic'
  t.strictSame(classifyMoverJob(dst), { job: { kind: 'restore', container: 'restic', containerIndex: 0 } })
  containers[0]!.name = 'tls-client'
  const result = classifyMoverJob(dst)
  t.equal(result.job, null)
  t.match(result.reason, /VolSync tls-client mover Job/)
})

t.test('jitterSeconds: sha256 of namespace/name, first 4 bytes big-endian, mod max+1', async (t) => {
  // sha256("media/volsync-src-jellyfin") starts with c5a4408d (sha256sum); 0xc5a4408d % 301 = 82.
  t.equal(jitterSeconds('media', 'volsync-src-jellyfin', 300), 82)
  t.equal(jitterSeconds('media', 'volsync-src-jellyfin', 0xffffffff), 0xc5a4408d)
  t.equal(jitterSeconds('media', 'volsync-src-jellyfin', 0), 0, 'maxSeconds 0: always 0')
  t.not(jitterSeconds('media', 'volsync-src-jellyfin', 86400), jitterSeconds('media', 'volsync-src-jellyfin2', 86400))
  const container = jitterContainer('busybox:1.37', 42)
  t.strictSame(container.command, ['sh', '-c', 'sleep 42'])
  t.equal(container.imagePullPolicy, 'IfNotPresent')
  t.equal(findJitter([null, 'x', { name: 'other' }, container]), container)
  t.equal(findJitter([{ name: 'other' }]), undefined)
})

t.test('repository volume helpers', async (t) => {
  const nfs = { nfs: { server: 'nas.lan', path: '/mnt/tank/kopia' }, mountPath: '/repository' }
  const pvc = { pvc: { claimName: 'repo' }, mountPath: '/kopia' }
  t.strictSame(repositoryVolume(nfs), { name: 'repository', nfs: { server: 'nas.lan', path: '/mnt/tank/kopia' } })
  t.strictSame(repositoryVolume(pvc), { name: 'repository', persistentVolumeClaim: { claimName: 'repo' } })
  t.equal(repositoryVolume({ mountPath: '/x' }), null)
  t.strictSame(repositoryMount(pvc), { name: 'repository', mountPath: '/kopia' })
  t.equal(describeRepository(nfs), 'nfs nas.lan:/mnt/tank/kopia')
  t.equal(describeRepository(pvc), 'pvc repo')
  t.equal(describeRepository({ mountPath: '/x' }), 'no source')
  t.equal(describeVolumeSource({ name: 'repository', hostPath: { path: '/srv' } }), 'hostPath')
  t.equal(describeVolumeSource({ name: 'repository' }), 'no source')
  t.ok(isConfiguredRepository({ name: 'repository', nfs: { server: 'nas.lan', path: '/mnt/tank/kopia', readOnly: true } }, nfs))
  t.notOk(isConfiguredRepository({ name: 'repository', nfs: { server: 'nas.lan', path: '/other' } }, nfs))
  t.notOk(isConfiguredRepository({ name: 'repository', persistentVolumeClaim: { claimName: 'repo' } }, nfs))
  t.ok(isConfiguredRepository({ name: 'repository', persistentVolumeClaim: { claimName: 'repo' } }, pvc))
  t.notOk(isConfiguredRepository({ name: 'repository' }, { mountPath: '/x' }))
})

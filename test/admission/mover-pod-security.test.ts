// Issue 10 item 4: the NFS repository volume is never injected where the namespace's Pod Security
// forbids it; the PVC form and the jitter container pass every level.
import t from 'tap'
import { parse } from 'yaml'
import { readFileSync } from 'node:fs'
import { decideMoverJob } from '../../src/admission/mover-jobs.ts'
import type { AdmissionInput } from '../../src/admission/decision.ts'
import { buildResponse } from '../../src/admission/review.ts'
import { podSecurityLevel, volumeAllowed } from '../../src/admission/pod-security.ts'
import type { JsonObject } from '../../src/json.ts'
import { NOW, snapshotOf } from '../support/snapshot.ts'

const JOB = parse(readFileSync(new URL('../fixtures/volsync/job-kopia-src.yaml', import.meta.url), 'utf8')) as JsonObject
const NAMESPACE = String((JOB.metadata as { namespace: string }).namespace)
const NFS = 'movers: { repository: { nfs: { server: nas.lan, path: /mnt/tank/kopia }, mountPath: /repository } }'
const PVC = 'movers: { repository: { pvc: { claimName: kopia }, mountPath: /repository } }'

function input(operation: AdmissionInput['operation'] = 'CREATE'): AdmissionInput {
  const metadata = JOB.metadata as { name: string }
  return { uid: 'u', kind: { group: 'batch', version: 'v1', kind: 'Job' }, operation, namespace: NAMESPACE, name: metadata.name, object: structuredClone(JOB), oldObject: operation === 'UPDATE' ? structuredClone(JOB) : null, dryRun: false }
}

function decide(config: string, labels: Record<string, string> | null, operation: AdmissionInput['operation'] = 'CREATE') {
  const objects = labels === null ? [] : [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: NAMESPACE, labels } }]
  const decision = decideMoverJob(snapshotOf({ config, objects }), input(operation), NOW)
  const podSpec = ((decision.mutated?.spec as JsonObject | undefined)?.template as JsonObject | undefined)?.spec as { volumes?: JsonObject[]; initContainers?: JsonObject[] } | undefined
  return { decision, volumes: (podSpec?.volumes ?? []).filter((v) => v.name === 'repository'), jitter: (podSpec?.initContainers ?? []).some((c) => c.name === 'jitter') }
}

const ENFORCE = 'pod-security.kubernetes.io/enforce'
t.test('NFS repository volume by the namespace Pod Security labels', async (t) => {
  const cases: Array<{ labels: Record<string, string> | null; injected: boolean; warning: RegExp | null; why: string }> = [
    { labels: { [ENFORCE]: 'restricted' }, injected: false, warning: /NOT injected: namespace .* enforces Pod Security "restricted".*forbids nfs volumes.*movers\.repository\.pvc/, why: 'the issue example' },
    { labels: { [ENFORCE]: 'restricted', [`${ENFORCE}-version`]: 'v1.30' }, injected: false, warning: /movers\.repository\.pvc/, why: 'a pinned version' },
    { labels: { [ENFORCE]: 'Restricted!' }, injected: false, warning: /enforces Pod Security "restricted"/, why: 'an unknown level reads as restricted' },
    { labels: { [ENFORCE]: 'baseline' }, injected: true, warning: null, why: 'baseline forbids hostPath only' },
    { labels: { [ENFORCE]: 'privileged' }, injected: true, warning: null, why: 'privileged' },
    { labels: {}, injected: true, warning: null, why: 'unlabelled: the cluster default' },
    { labels: null, injected: true, warning: null, why: 'namespace not in the snapshot' },
    { labels: { 'pod-security.kubernetes.io/audit': 'restricted' }, injected: true, warning: /pod-security\.kubernetes\.io\/audit: restricted, which flags the injected nfs repository volume.*still created.*movers\.repository\.pvc/, why: 'audit mode never stops a pod' },
    { labels: { 'pod-security.kubernetes.io/warn': 'restricted', [ENFORCE]: 'baseline' }, injected: true, warning: /pod-security\.kubernetes\.io\/warn: restricted/, why: 'warn mode over baseline enforce' },
  ]
  for (const c of cases) {
    for (const operation of ['CREATE', 'UPDATE'] as const) {
      const { decision, volumes, jitter } = decide(NFS, c.labels, operation)
      t.equal(volumes.length, c.injected ? 1 : 0, `${c.why} (${operation}): ${c.injected ? 'injected' : 'not injected'}`)
      t.ok(jitter, `${c.why}: the jitter container is added in every namespace (it passes restricted)`)
      t.equal(decision.outcome, 'inject')
      if (c.warning) t.match(decision.warnings.join('\n'), c.warning, c.why)
      else t.same(decision.warnings, [], `${c.why}: no warning`)
    }
  }
})

t.test('the PVC form passes restricted', async (t) => {
  const { volumes, decision } = decide(PVC, { [ENFORCE]: 'restricted' })
  t.same(volumes, [{ name: 'repository', persistentVolumeClaim: { claimName: 'kopia' } }])
  t.same(decision.warnings, [])
})

t.test('mode: audit reports the same decision, patches nothing', async (t) => {
  const { decision } = decide(`mode: audit\n${NFS}`, { [ENFORCE]: 'restricted' })
  t.match(decision.warnings[0], /NOT injected/)
  const { response } = buildResponse(input(), decision, 'audit')
  t.notOk(response.patch, 'audit: no patch')
  t.match((response.warnings ?? []).join('\n'), /NOT injected/, 'the warning still reaches the client')
})

t.test('podSecurityLevel / volumeAllowed', async (t) => {
  t.equal(podSecurityLevel({ [ENFORCE]: 'baseline' }, 'enforce'), 'baseline')
  t.equal(podSecurityLevel({ [ENFORCE]: 'baseline' }, 'audit'), null)
  t.notOk(volumeAllowed('nfs', 'restricted'))
  t.ok(volumeAllowed('persistentVolumeClaim', 'restricted'))
  t.ok(volumeAllowed('nfs', 'baseline'))
  t.notOk(volumeAllowed('hostPath', 'baseline'))
  t.ok(volumeAllowed('hostPath', null))
})

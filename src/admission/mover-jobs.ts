// Mover Jobs CREATE and UPDATE: jitter initContainer and repository volume (design section 5).
// VolSync re-sends every mover Job on each reconcile with containers and volumes rebuilt, so this
// rule treats UPDATE exactly like CREATE, only ever appends, and returns no patch for a Job that
// already has everything: the same Job always gets the same patch (volsync-reference.md 2.4).
import { isDeepStrictEqual } from 'node:util'
import type { Config } from '../config/schema.ts'
import { annotate } from './annotations.ts'
import { skip, type AdmissionInput, type AdmissionRule, type Decision } from './decision.ts'
import { findJitter, jitterContainer, jitterSeconds } from './jitter.ts'
import { classifyMoverJob, type MoverJob } from './mover-job-kind.ts'
import { asArray, asObject, asString, type JsonObject } from '../json.ts'
import { stringMap } from './object-fields.ts'
import { podSecurityLevel, volumeAllowed, volumeType } from './pod-security.ts'
import { MAINTENANCE_NAME_LABEL } from './volsync-objects.ts'
import {
  describeRepository,
  describeVolumeSource,
  findNamed,
  isConfiguredRepository,
  REPOSITORY_VOLUME,
  repositoryMount,
  repositoryVolume,
} from './repository-volume.ts'
const RULE = 'mover-job'

/** What one feature did to the (cloned) pod spec: an added part, a state note, or a malformed field. */
type Step =
  | { readonly added: string; readonly warning?: string }
  | { readonly note: string; readonly warning?: string }
  | { readonly malformed: string }

/** A list field that may be absent; anything else that is not a list is malformed. */
function optionalList(owner: JsonObject, field: string): unknown[] | null {
  const value = owner[field]
  if (value === undefined) return []
  return Array.isArray(value) ? value : null
}

function podSpecOf(job: JsonObject | null): JsonObject | undefined {
  return asObject(asObject(asObject(job?.spec)?.template)?.spec)
}

function addJitter(podSpec: JsonObject, input: AdmissionInput, mover: MoverJob, jitter: Config['movers']['jitter']): Step {
  if (!jitter.enabled) return { note: 'jitter disabled' }
  if (mover.kind === 'restore') return { note: 'no jitter on restores' }
  const initContainers = optionalList(podSpec, 'initContainers')
  if (!initContainers) return { malformed: 'spec.template.spec.initContainers is not a list' }
  if (findJitter(initContainers)) return { note: 'jitter present' }

  const metadata = asObject(input.object?.metadata)
  const namespace = input.namespace || (asString(metadata?.namespace) ?? '')
  // Cron-spawned maintenance Jobs are named after their scheduled minute, so their name changes
  // every run; the KopiaMaintenance name keeps one stable offset per repository.
  const maintenanceName = mover.kind === 'maintenance' ? stringMap(input.object ?? undefined, 'labels')[MAINTENANCE_NAME_LABEL] : undefined
  const name = maintenanceName ?? (input.name || (asString(metadata?.name) ?? asString(metadata?.generateName) ?? ''))
  const seconds = jitterSeconds(namespace, name, jitter.maxSeconds)
  const computed = jitterContainer(jitter.image, seconds)
  const added = `jitter 0-${jitter.maxSeconds}s (sleep ${seconds})`
  // VolSync keeps initContainers from the live Job; if they went missing anyway, restore the stored
  // one rather than computing anew, so a Job never gets a second, different delay. When the stored
  // one is what would be computed now, the reason says the same as on CREATE: a different text
  // would rewrite the Job's reason annotation on its first reconcile.
  const stored = input.operation === 'UPDATE' ? findJitter(asArray(podSpecOf(input.oldObject)?.initContainers)) : undefined
  if (stored) {
    podSpec.initContainers = [...initContainers, structuredClone(stored)]
    // Image and command only: the API server fills defaults into stored containers.
    const same = stored.image === computed.image && isDeepStrictEqual(stored.command, computed.command)
    return { added: same ? added : 'jitter copied from the stored Job' }
  }
  podSpec.initContainers = [...initContainers, computed]
  return { added }
}

/**
 * Why the namespace's Pod Security would reject a pod with `volume`: a note and a warning naming the fix,
 * or, for an audit/warn level only, a warning beside the injection; null when nothing objects.
 */
function podSecurityObjection(volume: JsonObject, namespace: string, labels: Readonly<Record<string, string>>, jobRef: string, source: string): { readonly reject: boolean; readonly warning: string } | null {
  const type = volumeType(volume)
  const enforced = podSecurityLevel(labels, 'enforce')
  const fix = `use movers.repository.pvc (a PersistentVolumeClaim bound to the same share, e.g. an NFS PersistentVolume), which every Pod Security level allows`
  if (!volumeAllowed(type, enforced)) {
    return { reject: true, warning: `${jobRef}: repository volume (${source}) NOT injected: namespace ${namespace} enforces Pod Security "${enforced}" (label pod-security.kubernetes.io/enforce), which forbids ${type} volumes, so the mover pod would never be created; ${fix}` }
  }
  for (const mode of ['audit', 'warn'] as const) {
    const level = podSecurityLevel(labels, mode)
    if (!volumeAllowed(type, level)) {
      return { reject: false, warning: `${jobRef}: namespace ${namespace} has pod-security.kubernetes.io/${mode}: ${level ?? ''}, which flags the injected ${type} repository volume (${source}); the pod is still created; ${fix}` }
    }
  }
  return null
}

function addRepository(podSpec: JsonObject, mover: MoverJob, repository: Config['movers']['repository'], jobRef: string, namespace: string, namespaceLabels: Readonly<Record<string, string>>): Step {
  if (!repository) return { note: 'no repository configured' }
  const volume = repositoryVolume(repository)
  if (!volume) return { note: 'movers.repository has neither nfs nor pvc' }
  const volumes = optionalList(podSpec, 'volumes')
  if (!volumes) return { malformed: 'spec.template.spec.volumes is not a list' }
  const container = asObject(asArray(podSpec.containers)[mover.containerIndex])
  if (!container) return { malformed: `spec.template.spec.containers[${mover.containerIndex}] is not an object` }
  const mounts = optionalList(container, 'volumeMounts')
  if (!mounts) return { malformed: `container ${mover.container}: volumeMounts is not a list` }

  const source = describeRepository(repository)
  const existing = findNamed(volumes, REPOSITORY_VOLUME)
  if (existing && !isConfiguredRepository(existing, repository)) {
    // Someone else wired a different repository; mounting it at our path could back up to the wrong place.
    const found = describeVolumeSource(existing)
    return {
      note: `volume ${REPOSITORY_VOLUME} (${found}) differs from movers.repository; left as is`,
      warning: `${jobRef} already has a volume "${REPOSITORY_VOLUME}" (${found}) that differs from movers.repository (${source}); left as is, not mounted by volsync-autorestore`,
    }
  }
  const hasMount = findNamed(mounts, REPOSITORY_VOLUME) !== undefined
  if (existing && hasMount) return { note: 'repository volume and mount present' }
  // Never inject what the namespace's Pod Security will reject: the Job would exist, its pod never.
  const objection = existing ? null : podSecurityObjection(volume, namespace, namespaceLabels, jobRef, source)
  if (objection?.reject) return { note: `repository volume not injected: Pod Security of namespace ${namespace} forbids ${volumeType(volume)} volumes`, warning: objection.warning }
  if (!existing) podSpec.volumes = [...volumes, volume]
  if (!hasMount) container.volumeMounts = [...mounts, repositoryMount(repository)]
  if (existing) return { added: `repository mount at ${repository.mountPath}` }
  const added = hasMount ? `repository volume ${source}` : `repository volume ${source} at ${repository.mountPath}`
  return objection ? { added, warning: objection.warning } : { added }
}

/**
 * A copy of the Job in which only the nodes this rule may change are new objects (metadata, the
 * pod spec and the mover container); everything else is shared with the request's object and
 * never written. A deep clone of a mover Job costs more than the rest of the decision.
 */
function editablePodSpec(job: JsonObject, containerIndex: number): { mutated: JsonObject; podSpec: JsonObject } | undefined {
  const spec = asObject(job.spec)
  const template = asObject(spec?.template)
  const original = asObject(template?.spec)
  if (!spec || !template || !original) return undefined
  const podSpec: JsonObject = { ...original }
  if (Array.isArray(original.containers)) {
    podSpec.containers = original.containers.map((c: unknown, i) => (i === containerIndex && asObject(c) ? { ...(c as JsonObject) } : c))
  }
  const metadata = asObject(job.metadata)
  const mutated: JsonObject = { ...job, spec: { ...spec, template: { ...template, spec: podSpec } } }
  if (metadata) mutated.metadata = { ...metadata }
  return { mutated, podSpec }
}

/**
 * The /mutate rule for VolSync mover Jobs (CREATE and UPDATE alike): appends the jitter initContainer (not
 * on restores) and the `movers.repository` volume and mount when missing, so the same Job always gets the
 * same patch. `inject` when something was added, `unchanged` when all was present (no patch, no
 * annotation), `skip` for a Job that is not a mover or is malformed. A `repository` volume that points
 * elsewhere is left alone, with a warning. The repository volume is never injected where the Job's
 * namespace enforces a Pod Security level that forbids its type (an `nfs` volume under `restricted`,
 * read from the namespace's labels in the snapshot): the Job is admitted without it, with a warning
 * naming `movers.repository.pvc`; an audit/warn level that would flag it gives a warning only. Copies only the nodes it changes; never writes the request's
 * object.
 */
export const decideMoverJob: AdmissionRule = (snapshot, input) => {
  if (input.operation !== 'CREATE' && input.operation !== 'UPDATE') return skip(RULE, `${input.operation} is not mutated`)
  if (input.kind.group !== 'batch' || input.kind.kind !== 'Job') return skip(RULE, `not a Job (${input.kind.kind})`)
  const job = input.object
  if (!job) return skip(RULE, 'no object')
  const classified = classifyMoverJob(job)
  if (!classified.job) return skip(RULE, classified.reason)
  const mover = classified.job

  const jobRef = `${mover.kind} Job ${input.namespace}/${input.name}`
  const editable = editablePodSpec(job, mover.containerIndex)
  if (!editable) return skip(RULE, 'malformed Job: spec.template.spec is not an object')
  const { mutated, podSpec } = editable
  const { movers } = snapshot.config
  const namespaceLabels = snapshot.cluster.namespaceLabels?.get(input.namespace) ?? {}
  const steps = [addJitter(podSpec, input, mover, movers.jitter), addRepository(podSpec, mover, movers.repository, jobRef, input.namespace, namespaceLabels)]

  const added: string[] = []
  const notes: string[] = []
  const warnings: string[] = []
  for (const step of steps) {
    if ('malformed' in step) return skip(RULE, `malformed Job: ${step.malformed}`)
    if ('added' in step) added.push(step.added)
    else notes.push(step.note)
    if (step.warning) warnings.push(step.warning)
  }
  if (added.length === 0) {
    return { rule: RULE, outcome: 'unchanged', reasons: [`${jobRef}: nothing to add (${notes.join('; ')})`], warnings }
  }
  const reason = `added ${added.join(' and ')}`
  // Annotate only here: a Job that needed nothing must get no patch at all.
  annotate(mutated, 'inject', reason)
  return { rule: RULE, outcome: 'inject', mutated, reasons: [reason], warnings }
}

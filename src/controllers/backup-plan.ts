// What the backup generator should do now, as a pure function of the snapshot (design section 5,
// "Backup generation"): for every participating PVC, the ReplicationSource named `backup.sourceName`
// that backs it up on its schedule, and the safety gates that no Kyverno generate policy has:
// - no RS while the PVC is still being restored (a dataSourceRef to a ReplicationDestination and not
//   Bound yet): a backup of a half-populated volume would be pushed over the good snapshots;
// - a missed restore (controllers/missed-restores.ts) gets its RS created paused, with the
//   missed-restore guard's annotations, so it never runs until a person decides;
// - never a write to an RS the server did not create (no managed-by label), nor a second RS for a PVC
//   someone else already backs up: both reported as unmanaged;
// - an unknown schedule label value, an invalid schedule annotation or a name that cannot be
//   rendered: no RS, and a warning Event on the PVC.
// The applied object never holds spec.paused: the guard (a merge patch) and people own that field,
// and server-side apply then never resets it (controllers/kube-writes.ts applyReplicationSource).
// Whether an RS is up to date is read back from the RS itself (APPLIED_ANNOTATION, a digest of the
// applied object), so a pass sends nothing for an RS that already is what it would apply, and a new
// leader plans exactly what the old one would have.
import { createHash } from 'node:crypto'
import { matchesSelector } from '../admission/label-selector.ts'
import { renderForPvc } from '../admission/name-template.ts'
import type { Config } from '../config/schema.ts'
import { isObject, type JsonObject } from '../json.ts'
import { objectKey, type PvcInfo, type ReplicationSourceInfo } from '../state/cluster-state.ts'
import type { Snapshot } from '../state/snapshot.ts'
import { expandSchedule, validateCron } from '../volsync/schedule.ts'
import { PAUSED_ANNOTATION, PAUSED_FOR_ANNOTATION } from './missed-restore-guard.ts'
import { findMissedRestores } from './missed-restores.ts'
import { MANAGED_BY, MANAGED_BY_LABEL } from './prewarm-plan.ts'
import { mergeSpec, renderTemplate } from './spec-template.ts'

/** On a participating PVC: a literal cron (or `@daily`-style macro) that replaces the label's schedule. */
export const SCHEDULE_ANNOTATION = 'volsync-autorestore.io/schedule'
/** On a generated RS: sha256 (hex) of the object as applied, without this annotation. */
export const APPLIED_ANNOTATION = 'volsync-autorestore.io/applied'

/** Why a participating PVC has no RS from this pass. Events are written for the ones a person must fix. */
export type BackupSkipReason =
  /** A restore is still populating the PVC (dataSourceRef to an RD, not Bound): the RS comes once it binds. */
  | 'restore-populating'
  /** An RS the server did not create has the name, or backs this PVC: never written. */
  | 'unmanaged'
  /** The schedule label's value is not a key of backup.schedules (or the label is missing). */
  | 'unknown-schedule'
  /** The schedule annotation, or the configured schedule, is not a cron VolSync accepts. */
  | 'invalid-schedule'
  /** backup.sourceName cannot be rendered for this PVC (a `{{label "KEY"}}` it does not carry). */
  | 'invalid-name'
  /** No metadata.uid known, so no ownerReference can be written (the RS would outlive the PVC). */
  | 'no-uid'

export interface BackupSkip {
  readonly namespace: string
  readonly pvc: string
  /** The RS name, when it could be rendered. */
  readonly name: string | null
  readonly reason: BackupSkipReason
  readonly message: string
}

/** A warning Event on a PVC; `name` is derived from the PVC and the problem, so a second create answers 409. */
export interface BackupEvent {
  readonly type: 'event'
  readonly namespace: string
  readonly pvc: string
  readonly pvcUid: string | null
  readonly name: string
  readonly reason: 'UnknownBackupSchedule' | 'InvalidBackupSchedule' | 'BackupNameUnresolved'
  readonly message: string
}

export type BackupAction =
  /** Server-side apply of `body` (create or update; spec.paused is never in it). */
  | { readonly type: 'apply'; readonly namespace: string; readonly name: string; readonly pvc: string; readonly exists: boolean; readonly body: JsonObject }
  /** A missed restore without an RS: create it paused with the guard's annotations (a plain create: 409 if it appeared meanwhile). */
  | { readonly type: 'create-paused'; readonly namespace: string; readonly name: string; readonly pvc: string; readonly body: JsonObject }
  | BackupEvent

export interface BackupPlan {
  /** In PVC order (namespace/name). Empty when backup.enabled is off or the cluster is not listed yet. */
  readonly actions: readonly BackupAction[]
  /** Every participating PVC without an RS from this pass, and why. */
  readonly skipped: readonly BackupSkip[]
  /** The RS each participating PVC has or gets, by `namespace/pvc`: name and schedule (for /status). */
  readonly sources: ReadonlyMap<string, { readonly name: string; readonly schedule: string }>
}

/**
 * The PVC label whose value picks a schedule: backup.scheduleLabel, else the key of pvc.selector's first
 * matchExpressions entry, else of its first matchLabels entry; null when there is none.
 */
export function scheduleLabelOf(config: Config): string | null {
  return config.backup.scheduleLabel ?? config.pvc.selector.matchExpressions?.[0]?.key ?? Object.keys(config.pvc.selector.matchLabels ?? {})[0] ?? null
}

/** JSON with object keys sorted at every depth: the same object always gives the same text. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`
  if (isObject(value)) return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(',')}}`
  return JSON.stringify(value) ?? 'null'
}

/** The digest APPLIED_ANNOTATION carries for `body` (which must not carry it yet). */
export function appliedDigest(body: JsonObject): string {
  return createHash('sha256').update(canonical(body)).digest('hex')
}

const EVENT_INFIX = '.backup.'
/** metadata.name of an Event is a DNS subdomain: at most 253 characters. */
const MAX_NAME = 253

/**
 * The Event name for a backup problem of `pvc`: `<pvc name>.backup.<10 hex digits of sha256(uid or
 * namespace/name, reason, detail)>`. The same on every replica and pass, so a create that answers 409
 * means "already reported"; a different bad value (`detail`) is a new Event.
 */
export function backupEventName(pvc: PvcInfo, reason: string, detail: string): string {
  const hash = createHash('sha256').update(`${pvc.uid ?? objectKey(pvc.namespace, pvc.name)}\u0000${reason}\u0000${detail}`).digest('hex').slice(0, 10)
  return `${pvc.name.slice(0, MAX_NAME - EVENT_INFIX.length - 10).replace(/[-.]+$/, '')}${EVENT_INFIX}${hash}`
}

/**
 * The ReplicationSource the generator keeps for `pvc` (which must have a uid): `backup.template` with
 * `{{pvc}}`/`{{namespace}}` rendered, then `sourcePVC` and `trigger: { schedule }` (the template's
 * trigger and any `paused` dropped), our managed-by label, an ownerReference to the PVC (deleting the
 * app deletes its RS, never its backup data) and APPLIED_ANNOTATION. Pure.
 */
export function backupBody(config: Config, pvc: PvcInfo & { readonly uid: string }, name: string, schedule: string): JsonObject {
  const template = renderTemplate(config.backup.template, { pvc: pvc.name, namespace: pvc.namespace }) as JsonObject
  const { paused: _paused, trigger: _trigger, ...spec } = mergeSpec(template, { sourcePVC: pvc.name })
  const body: JsonObject = {
    apiVersion: 'volsync.backube/v1alpha1',
    kind: 'ReplicationSource',
    metadata: {
      name,
      namespace: pvc.namespace,
      labels: { [MANAGED_BY_LABEL]: MANAGED_BY },
      ownerReferences: [{ apiVersion: 'v1', kind: 'PersistentVolumeClaim', name: pvc.name, uid: pvc.uid }],
    },
    spec: { ...spec, trigger: { schedule } },
  }
  const digest = appliedDigest(body)
  return { ...body, metadata: { ...(body.metadata as JsonObject), annotations: { [APPLIED_ANNOTATION]: digest } } }
}

/** The schedule for `pvc`: its annotation, else backup.schedules[label value] with H expanded; or why not. */
function scheduleFor(config: Config, label: string | null, pvc: PvcInfo): { schedule: string } | { reason: 'unknown-schedule' | 'invalid-schedule'; message: string; detail: string } {
  const key = objectKey(pvc.namespace, pvc.name)
  const override = pvc.annotations[SCHEDULE_ANNOTATION]
  if (override !== undefined) {
    const result = validateCron(override)
    if ('error' in result) return { reason: 'invalid-schedule', detail: override, message: `PersistentVolumeClaim ${key}: annotation ${SCHEDULE_ANNOTATION} "${override}" is not a schedule VolSync accepts (${result.error}); no ReplicationSource until it is fixed or removed` }
    return { schedule: result.cron }
  }
  const known = Object.keys(config.backup.schedules).sort().join(', ')
  if (label === null) return { reason: 'unknown-schedule', detail: '', message: `PersistentVolumeClaim ${key}: no schedule label (pvc.selector names no key): set backup.scheduleLabel, or annotate the PVC with ${SCHEDULE_ANNOTATION}` }
  const value = pvc.labels[label]
  const template = value !== undefined && Object.hasOwn(config.backup.schedules, value) ? config.backup.schedules[value] : undefined
  if (template === undefined) return { reason: 'unknown-schedule', detail: value ?? '', message: `PersistentVolumeClaim ${key}: label ${label}=${JSON.stringify(value ?? '')} names no schedule in backup.schedules (${known}); no ReplicationSource until the label is one of those, or annotate the PVC with ${SCHEDULE_ANNOTATION}` }
  const result = expandSchedule(template, key)
  if ('error' in result) return { reason: 'invalid-schedule', detail: `${value}=${template}`, message: `PersistentVolumeClaim ${key}: backup.schedules.${value} "${template}" is not a schedule VolSync accepts (${result.error}); fix the configuration` }
  return { schedule: result.cron }
}

/** Whether the PVC is being populated from a ReplicationDestination (its restore) and not Bound yet. */
function restorePopulating(pvc: PvcInfo): boolean {
  return pvc.dataSourceRef?.kind === 'ReplicationDestination' && pvc.phase !== 'Bound'
}

function isOurs(rs: ReplicationSourceInfo): boolean {
  return rs.labels?.[MANAGED_BY_LABEL] === MANAGED_BY
}

/**
 * The backup generator's plan at `now` (epoch ms, for the missed-restore check): for every participating
 * PVC, in namespace/name order, an apply when its RS is absent or differs from what would be applied, a
 * paused create for a missed restore without an RS, or a skip with its reason (and a warning Event for
 * the ones a person must fix). Nothing while backup.enabled is off or before the cluster is listed
 * once (a partial list would show PVCs without their RS). Pure: reads only `snapshot`.
 */
export function planBackups(snapshot: Snapshot, now: number): BackupPlan {
  const { config, cluster } = snapshot
  const actions: BackupAction[] = []
  const skipped: BackupSkip[] = []
  const sources = new Map<string, { name: string; schedule: string }>()
  if (!config.backup.enabled || !cluster.synced) return { actions, skipped, sources }
  const label = scheduleLabelOf(config)
  const missed = new Set(findMissedRestores(snapshot, now).map((m) => objectKey(m.pvc.namespace, m.pvc.name)))
  // Who backs up what already: RSs the server did not create, by the PVC they read.
  const foreign = new Map<string, string>()
  for (const rs of cluster.replicationSources.values()) {
    if (rs.sourcePVC !== null && !isOurs(rs)) foreign.set(objectKey(rs.namespace, rs.sourcePVC), rs.name)
  }
  const pvcs = [...cluster.pvcs.values()].filter((pvc) => matchesSelector(config.pvc.selector, pvc.labels))
  pvcs.sort((a, b) => objectKey(a.namespace, a.name).localeCompare(objectKey(b.namespace, b.name)))
  for (const pvc of pvcs) {
    const key = objectKey(pvc.namespace, pvc.name)
    const skip = (name: string | null, reason: BackupSkipReason, message: string): void => {
      skipped.push({ namespace: pvc.namespace, pvc: pvc.name, name, reason, message })
    }
    const event = (reason: BackupEvent['reason'], detail: string, message: string): void => {
      actions.push({ type: 'event', namespace: pvc.namespace, pvc: pvc.name, pvcUid: pvc.uid, name: backupEventName(pvc, reason, detail), reason, message })
    }
    const rendered = renderForPvc(config.backup.sourceName, { pvc: pvc.name, namespace: pvc.namespace, labels: pvc.labels })
    if ('missing' in rendered) {
      const message = `PersistentVolumeClaim ${key}: backup.sourceName "${config.backup.sourceName}" needs ${rendered.missing}; no ReplicationSource`
      skip(null, 'invalid-name', message)
      event('BackupNameUnresolved', config.backup.sourceName, message)
      continue
    }
    const name = rendered.value
    const existing = cluster.replicationSources.get(objectKey(pvc.namespace, name))
    if (existing && !isOurs(existing)) {
      skip(name, 'unmanaged', `ReplicationSource ${pvc.namespace}/${name} was not created by volsync-autorestore (no ${MANAGED_BY_LABEL}=${MANAGED_BY} label): left as it is`)
      continue
    }
    const other = foreign.get(key)
    if (other !== undefined) {
      skip(name, 'unmanaged', `PersistentVolumeClaim ${key} is backed up by ReplicationSource ${other}, which volsync-autorestore did not create: no second one`)
      continue
    }
    const scheduled = scheduleFor(config, label, pvc)
    if ('reason' in scheduled) {
      skip(name, scheduled.reason, scheduled.message)
      event(scheduled.reason === 'unknown-schedule' ? 'UnknownBackupSchedule' : 'InvalidBackupSchedule', scheduled.detail, scheduled.message)
      continue
    }
    if (pvc.uid === null) {
      skip(name, 'no-uid', `PersistentVolumeClaim ${key} has no metadata.uid here, so its ReplicationSource could not be owned by it`)
      continue
    }
    if (restorePopulating(pvc)) {
      skip(name, 'restore-populating', `PersistentVolumeClaim ${key} is still being restored from ReplicationDestination ${pvc.dataSourceRef?.name} (${pvc.phase ?? 'phase unknown'}): its ReplicationSource comes once it is Bound`)
      continue
    }
    sources.set(key, { name, schedule: scheduled.schedule })
    const body = backupBody(config, { ...pvc, uid: pvc.uid }, name, scheduled.schedule)
    if (existing) {
      if (existing.annotations?.[APPLIED_ANNOTATION] !== (body.metadata as { annotations: Record<string, string> }).annotations[APPLIED_ANNOTATION]) {
        actions.push({ type: 'apply', namespace: pvc.namespace, name, pvc: pvc.name, exists: true, body })
      }
      continue
    }
    if (missed.has(key)) {
      const metadata = body.metadata as JsonObject
      actions.push({
        type: 'create-paused', namespace: pvc.namespace, name, pvc: pvc.name,
        body: {
          ...body,
          metadata: {
            ...metadata,
            annotations: {
              ...(metadata.annotations as Record<string, string>),
              [PAUSED_ANNOTATION]: `missed restore of PVC ${pvc.name}: created paused so no backup overwrites its backup with the volume it started with; restore the data or accept the empty volume, then remove spec.paused`,
              // What the guard writes when it pauses: it reads this back and leaves the RS to the person.
              [PAUSED_FOR_ANNOTATION]: pvc.uid,
            },
          },
          spec: { ...(body.spec as JsonObject), paused: true },
        },
      })
      continue
    }
    actions.push({ type: 'apply', namespace: pvc.namespace, name, pvc: pvc.name, exists: false, body })
  }
  return { actions, skipped, sources }
}

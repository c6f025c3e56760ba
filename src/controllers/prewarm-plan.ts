// What the pre-warm controller should do now, as a pure function of the snapshot: for every PVC
// whose backup the catalog proves (at least one snapshot, from a fresh source), whose namespace
// exists (and whose repository Secret exists, with prewarm.requireSecret), make sure its
// ReplicationDestination exists, and trigger a sync when it has none to show. Never for a
// repository without snapshots: VolSync's restore of an empty repository "succeeds" empty.
import { lookupBackup, lookupPvcBackup, type BackupAnswer } from '../admission/backup-lookup.ts'
import { matchesSelector } from '../admission/label-selector.ts'
import { renderName } from '../admission/name-template.ts'
import { isObject, type JsonObject } from '../json.ts'
import type { CatalogEntry } from '../state/catalog-state.ts'
import { objectKey } from '../state/cluster-state.ts'
import type { Snapshot } from '../state/snapshot.ts'
import { destinationIdentityFields } from '../volsync/names.ts'
import { gibibytes, quantityBytes } from './quantity.ts'
import { mergeSpec, renderTemplate } from './spec-template.ts'

export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by'
export const MANAGED_BY = 'volsync-autorestore'
export const PREWARM_LABEL = 'volsync-autorestore.io/prewarm'
/** spec.trigger.manual values pre-warm writes are `prewarm-<ms since epoch>`: the RD itself says when it was last triggered. */
export const PREWARM_TRIGGER_PREFIX = 'prewarm-'
/** How long a finished RD without an image waits before pre-warm triggers it again (10 min). */
export const DEFAULT_RETRIGGER_AFTER_MS = 10 * 60_000

/** The trigger.manual value for a create or a trigger at `now` (ms since epoch). */
export function prewarmTrigger(now: number): string {
  return `${PREWARM_TRIGGER_PREFIX}${now}`
}

/** When pre-warm wrote this trigger.manual value (ms since epoch); null for a value it did not write. */
export function prewarmTriggeredAt(manual: string | null | undefined): number | null {
  const match = manual == null ? null : /^prewarm-(\d{1,16})$/.exec(manual)
  return match ? Number(match[1]) : null
}

type Json = JsonObject

export type PrewarmAction =
  | { readonly type: 'create'; readonly namespace: string; readonly name: string; readonly pvc: string; readonly body: Json }
  | { readonly type: 'trigger'; readonly namespace: string; readonly name: string; readonly pvc: string; readonly manual: string }

/** The mover block: the backup's kind, or for a declared (static) backup whichever block the template has. */
function moverOf(entry: CatalogEntry, template: Json): 'kopia' | 'restic' {
  if (entry.kind === 'kopia' || entry.kind === 'restic') return entry.kind
  return isObject(template.restic) && !isObject(template.kopia) ? 'restic' : 'kopia'
}

/**
 * The ReplicationDestination pre-warm creates for `entry`'s PVC (named `pvc`, default the name the
 * backup is filed under): `prewarm.template` with `{{pvc}}`/`{{namespace}}` rendered, under our managed-by and pre-warm labels and a backup annotation,
 * with `trigger.manual: manual`, `copyMethod: Snapshot`, the larger of the template's capacity and the
 * backup's size (rounded up to whole Gi), and, for Kopia, the backup's identity: `sourceIdentity`, or
 * explicit username+hostname where VolSync would not map sourceIdentity back to that identity
 * (volsync/names.ts destinationIdentityFields). The generated fields win over the template's. Pure.
 */
export function prewarmBody(snapshot: Snapshot, entry: CatalogEntry, name: string, manual: string, pvc: string = entry.pvc): Json {
  const vars = { pvc, namespace: entry.namespace }
  const template = renderTemplate(snapshot.config.prewarm.template, vars) as Json
  const mover = moverOf(entry, template)
  const block = isObject(template[mover]) ? template[mover] : {}
  const templateBytes = typeof block.capacity === 'string' ? quantityBytes(block.capacity) : null
  // The larger of the template's capacity and the backup's size: a restore must fit.
  const capacity = entry.sizeBytes !== undefined && (templateBytes === null || entry.sizeBytes > templateBytes)
    ? gibibytes(entry.sizeBytes)
    : block.capacity
  const generated: Json = {
    trigger: { manual },
    [mover]: {
      copyMethod: 'Snapshot',
      ...(capacity !== undefined ? { capacity } : {}),
      // The identity of the backup itself: an RD named unlike its ReplicationSource restores nothing without it.
      ...(mover === 'kopia' && entry.identity ? destinationIdentityFields(entry.identity) : {}),
    },
  }
  return {
    apiVersion: 'volsync.backube/v1alpha1',
    kind: 'ReplicationDestination',
    metadata: {
      name,
      namespace: entry.namespace,
      labels: { [MANAGED_BY_LABEL]: MANAGED_BY, [PREWARM_LABEL]: 'true' },
      annotations: { 'volsync-autorestore.io/backup': `${entry.kind} backup in source ${entry.source}: ${entry.snapshots ?? '?'} snapshot(s), newest ${entry.newest ?? 'unknown'}` },
    },
    spec: mergeSpec(template, generated),
  }
}

export interface PrewarmPlanOptions {
  /** ms since epoch: catalog freshness, the trigger value written, and trigger ages. */
  readonly now: number
  /** A finished RD without an image is triggered again once its trigger is this old (default DEFAULT_RETRIGGER_AFTER_MS). */
  readonly retriggerAfterMs?: number
  /** Plan for this one PVC only (a nudge from a `wait` decision). */
  readonly only?: { readonly namespace: string; readonly pvc: string }
}

/**
 * Whether an idle RD of ours whose trigger is `manual` is due another trigger: when the time in
 * our value is at least `period` old. A value we did not write says nothing about when: due. A
 * time more than a period ahead of `now` is no clock skew between replicas but a value nobody
 * should wait for: due.
 */
function triggerDue(manual: string, now: number, period: number): boolean {
  const at = prewarmTriggeredAt(manual)
  if (at === null || at - now > period) return true
  return now - at >= period
}

/** A PVC (or the PVC a backup will be restored into) and the catalog's answer for it. */
interface RestoreTarget {
  readonly namespace: string
  readonly pvc: string
  readonly answer: BackupAnswer
}

/**
 * Whom pre-warm plans for: every participating PVC the cluster holds, by its own name and backup name
 * (`pvc.backupName`, VolSync's Kopia naming), and every other backup in the catalog, for a PVC not created
 * yet that is assumed to be named like the backup (as before the naming rules: the only guess there is).
 * A catalog entry a PVC already claims is not planned again under its filed name, so a backup filed as
 * `zigbee2mqttdata` (from PVC `zigbee2mqtt.data`) gets one RD, `zigbee2mqtt.data-dst`, not two. `only`
 * (a nudge, possibly for a PVC the watch has not delivered yet) plans that PVC by name alone.
 */
function restoreTargets(snapshot: Snapshot, now: number, only: PrewarmPlanOptions['only']): RestoreTarget[] {
  const { config, cluster, catalog } = snapshot
  const targets: RestoreTarget[] = []
  const claimed = new Set<CatalogEntry>()
  const wanted = (namespace: string, pvc: string): boolean => !only || (only.namespace === namespace && only.pvc === pvc)
  for (const pvc of cluster.pvcs.values()) {
    if (!matchesSelector(config.pvc.selector, pvc.labels)) continue
    const { answer } = lookupPvcBackup(snapshot, pvc, now)
    if (answer.state === 'backup') claimed.add(answer.entry)
    if (wanted(pvc.namespace, pvc.name)) targets.push({ namespace: pvc.namespace, pvc: pvc.name, answer })
  }
  const planned = new Set(targets.map((t) => objectKey(t.namespace, t.pvc)))
  for (const [key, entries] of catalog.byPvc) {
    if (entries.some((entry) => claimed.has(entry))) continue
    const slash = key.indexOf('/')
    const namespace = key.slice(0, slash)
    const pvc = key.slice(slash + 1)
    if (!wanted(namespace, pvc) || planned.has(key)) continue
    planned.add(key)
    targets.push({ namespace, pvc, answer: lookupBackup(catalog, namespace, pvc, now, snapshot.staleAfterMs) })
  }
  if (only && !planned.has(objectKey(only.namespace, only.pvc))) {
    // A nudge comes from admission, before the PVC is stored: its labels are not known here.
    targets.push({ namespace: only.namespace, pvc: only.pvc, answer: lookupPvcBackup(snapshot, { namespace: only.namespace, name: only.pvc, labels: {} }, now).answer })
  }
  return targets
}

/**
 * The actions that bring the cluster to the pre-warmed state, from the snapshot alone (no memory
 * of earlier passes: a new leader plans exactly what the old one would have). A create carries
 * the trigger `prewarmTrigger(now)`; an RD of ours that is idle, has no image and whose trigger is
 * older than the retrigger period gets a trigger with that value, so a re-trigger always changes it.
 */
export function planPrewarm(snapshot: Snapshot, options: PrewarmPlanOptions): PrewarmAction[] {
  const { config, cluster } = snapshot
  const { now, only } = options
  const period = options.retriggerAfterMs ?? DEFAULT_RETRIGGER_AFTER_MS
  const manual = prewarmTrigger(now)
  if (!config.prewarm.enabled || !cluster.synced) return []
  const actions: PrewarmAction[] = []
  for (const { namespace, pvc, answer } of restoreTargets(snapshot, now, only)) {
    if (answer.state !== 'backup' || answer.entry.snapshots === null || answer.entry.snapshots < 1) continue
    if (!cluster.namespaces.has(namespace)) continue
    const secret = config.prewarm.requireSecret
    if (secret !== undefined && !cluster.secrets.has(objectKey(namespace, renderName(secret, { pvc, namespace })))) continue
    const name = renderName(config.pvc.destinationName, { pvc, namespace })
    const rd = cluster.replicationDestinations.get(objectKey(namespace, name))
    if (!rd) {
      // The snapshot lags our own create by a watch event: a pass in between plans the create
      // again, and the API answers 409 (the controller takes that as "already exists").
      actions.push({ type: 'create', namespace, name, pvc, body: prewarmBody(snapshot, answer.entry, name, manual, pvc) })
      continue
    }
    // Only RDs it created, only when idle (the last manual sync finished), still without an image,
    // and not triggered within the period. The snapshot lags our own trigger by a watch event: a
    // pass in between (only possible once the period is over) writes a newer value once more,
    // which VolSync takes as the same pending sync.
    const ours = rd.labels?.[MANAGED_BY_LABEL] === MANAGED_BY
    const trigger = rd.manualTrigger
    const idle = trigger != null && trigger === rd.lastManualSync
    if (ours && idle && rd.latestImage === null && triggerDue(trigger, now, period)) actions.push({ type: 'trigger', namespace, name, pvc, manual })
  }
  return actions
}

// The /status view model: per participating PVC, what the catalog and the cluster say about it and
// what it would be decided if it were created now; plus the health of every loop. Pure, so the
// page and the JSON document show the same answers the webhook would give.
import { planBackups, type BackupSkipReason } from '../controllers/backup-plan.ts'
import { findMissedRestores } from '../controllers/missed-restores.ts'
import { lookupPvcBackup } from '../admission/backup-lookup.ts'
import type { AdmissionInput, Outcome } from '../admission/decision.ts'
import { matchesSelector } from '../admission/label-selector.ts'
import { renderName } from '../admission/name-template.ts'
import { decidePvcCreate } from '../admission/pvc-restore.ts'
import { describeFix, describeWhy, rdImageShapeOf, whyNeverReady } from '../admission/rd-never-ready.ts'
import { isVolSyncOwned } from '../admission/volsync-objects.ts'
import type { CatalogDiagnostic, CatalogEntry } from '../state/catalog-state.ts'
import { objectKey, type PvcInfo, type TypedReference } from '../state/cluster-state.ts'
import type { LoopHealth } from '../loop.ts'
import type { Snapshot } from '../state/snapshot.ts'
import type { ServedTlsState } from '../tls/reloading-context.ts'
import { backupHealth } from '../volsync/backup-health.ts'
import type { Readiness } from './readiness.ts'

export interface StatusExtras {
  /** The one readiness definition (server/readiness.ts), as /readyz answers it. */
  readonly readiness: Readiness
  /** Every loop's health, for the page's loop table. */
  readonly loops: readonly LoopHealth[]
  readonly configError: string | null
  readonly clusterError: string | null
  readonly tlsReloads: number
  readonly tlsFailures: number
  /** The served certificate and its last reload (undefined before the webhook serves one). */
  readonly tls?: ServedTlsState | undefined
  /** Config keys changed in the file that take effect only after a restart. */
  readonly restartPending?: readonly string[]
}

export type BackupView =
  | { readonly state: 'backup'; readonly source: string; readonly kind: string; readonly snapshots: number | null; readonly newest: string | null }
  | { readonly state: 'none' }
  | { readonly state: 'unknown'; readonly reason: string }

export interface DestinationView {
  readonly name: string
  /** ready: latestImage is a VolumeSnapshot; not-ready: exists without a usable image; missing: no such RD. */
  readonly state: 'ready' | 'not-ready' | 'missing'
  readonly latestImage: TypedReference | null
}

/**
 * The PVC's backup side, from its ReplicationSource's status (volsync/backup-health.ts). Times are
 * RFC 3339 with their age (or, for the next sync, the seconds until it) at generatedAt.
 */
export interface BackupHealthView {
  /** The ReplicationSource whose sourcePVC is this PVC (the most recently successful when several are). */
  readonly source: string
  readonly sources: number
  readonly paused: boolean
  readonly schedule: string | null
  /** The schedule's longest gap between fires; overdue is no success within twice it. Null: no readable schedule. */
  readonly periodSeconds: number | null
  /** The last successful backup (status.lastSyncTime); null before the first. */
  readonly lastSuccess: string | null
  readonly lastSuccessAgeSeconds: number | null
  readonly lastSyncDurationSeconds: number | null
  /** status.latestMoverStatus.result: Successful, Failed, or null before a mover finished. */
  readonly lastResult: string | null
  readonly nextSync: string | null
  /** Seconds from generatedAt to nextSync (negative when it is past); null when none is scheduled. */
  readonly nextSyncInSeconds: number | null
  readonly overdue: boolean
}

/** What the backup generator (backup.enabled) does for a PVC: controllers/backup-plan.ts. */
export interface BackupGeneratorView {
  /**
   * managed: the server keeps its ReplicationSource `source` (created or to be applied this pass);
   * unmanaged: a ReplicationSource the server did not create has the name or backs the PVC, and is
   * never written; skipped: no ReplicationSource from the server now, `reason` and `message` say why.
   */
  readonly state: 'managed' | 'unmanaged' | 'skipped'
  readonly source: string | null
  readonly schedule: string | null
  readonly reason: BackupSkipReason | null
  readonly message: string | null
}

export interface DecisionView {
  readonly outcome: Outcome
  readonly reason: string
  readonly warning: string | null
  readonly denial: string | null
}

export interface PvcView {
  readonly namespace: string
  readonly name: string
  readonly dataSourceRef: TypedReference | null
  readonly backup: BackupView
  readonly destination: DestinationView
  /** What a CREATE of this PVC (without dataSourceRef) would be decided now. */
  readonly decision: DecisionView
  /** Exists without a dataSourceRef although the catalog knows a backup: it started empty. */
  readonly missedRestore: boolean
  /**
   * Set when the PVC can never be restored as things stand: its RD exists without a usable image and
   * can never give the volume populator one (admission/rd-never-ready.ts). Why and what to change on the
   * RD, in one sentence; null otherwise.
   */
  readonly neverRestorable: string | null
  /** Its backup health; null when no ReplicationSource backs it up. */
  readonly backupHealth: BackupHealthView | null
  /** The backup generator's part; null when backup.enabled is off. */
  readonly backupGenerator: BackupGeneratorView | null
}

export interface SourceHealthView {
  readonly name: string
  readonly type: string
  readonly ok: boolean
  readonly stale: boolean
  readonly lastSuccessAgeSeconds: number | null
  readonly lastAttemptAgeSeconds: number | null
  readonly error: string | null
  readonly entries: readonly CatalogEntry[]
  readonly diagnostics: readonly CatalogDiagnostic[]
}

export interface WatchView {
  readonly resource: string
  readonly lastListAgeSeconds: number | null
  readonly lastEventAgeSeconds: number | null
  readonly restarts: number
  readonly error: string | null
}

export interface SummaryView {
  /** True when nothing is pending: the cluster state is synced and every catalog source is current. */
  readonly ready: boolean
  /** What keeps the answers from being trustworthy yet; empty when ready. */
  readonly pending: readonly string[]
  /** What a person should look at although decisions work: missed restores, rejected reloads, errors. */
  readonly warnings: readonly string[]
}

export interface StatusView {
  readonly generatedAt: string
  readonly summary: SummaryView
  readonly pvcs: readonly PvcView[]
  readonly sources: readonly SourceHealthView[]
  readonly watches: readonly WatchView[]
}

/** Whole seconds from `at` to `now` (both epoch ms), or null for a time that never happened. */
export const ageSeconds = (now: number, at: number | null): number | null => (at === null ? null : Math.round((now - at) / 1000))

/** A CREATE review as the API server would send it for this PVC, minus any dataSourceRef. */
function syntheticCreate(pvc: PvcInfo): AdmissionInput {
  return {
    uid: `status:${pvc.namespace}/${pvc.name}`,
    kind: { group: '', version: 'v1', kind: 'PersistentVolumeClaim' },
    operation: 'CREATE',
    namespace: pvc.namespace,
    name: pvc.name,
    object: {
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: { name: pvc.name, namespace: pvc.namespace, labels: { ...pvc.labels } },
      spec: {},
    },
    oldObject: null,
    dryRun: true,
  }
}

function backupHealthView(snapshot: Snapshot, pvc: PvcInfo, now: number): BackupHealthView | null {
  const health = backupHealth(snapshot, pvc, now)
  if (!health) return null
  const time = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString())
  return {
    source: health.source, sources: health.sources, paused: health.paused, schedule: health.schedule, periodSeconds: health.periodSeconds,
    lastSuccess: time(health.lastSuccess), lastSuccessAgeSeconds: ageSeconds(now, health.lastSuccess),
    lastSyncDurationSeconds: health.lastSyncDurationSeconds, lastResult: health.lastResult,
    nextSync: time(health.nextSync), nextSyncInSeconds: health.nextSync === null ? null : Math.round((health.nextSync - now) / 1000),
    overdue: health.overdue,
  }
}

function pvcView(snapshot: Snapshot, pvc: PvcInfo, now: number, missed: ReadonlySet<string>, generated: ReadonlyMap<string, BackupGeneratorView>): PvcView {
  // The PVC's backup as admission finds it: under pvc.backupName and VolSync's Kopia username.
  const answer = lookupPvcBackup(snapshot, { namespace: pvc.namespace, name: pvc.name, labels: pvc.labels }, now).answer
  const backup: BackupView = answer.state === 'backup'
    ? { state: 'backup', source: answer.entry.source, kind: answer.entry.kind, snapshots: answer.entry.snapshots, newest: answer.entry.newest ?? null }
    : answer
  const destinationName = renderName(snapshot.config.pvc.destinationName, { pvc: pvc.name, namespace: pvc.namespace })
  const rd = snapshot.cluster.replicationDestinations.get(objectKey(pvc.namespace, destinationName))
  const destination: DestinationView = {
    name: destinationName,
    state: !rd ? 'missing' : rd.latestImage?.kind === 'VolumeSnapshot' ? 'ready' : 'not-ready',
    latestImage: rd?.latestImage ?? null,
  }
  const decided = decidePvcCreate(snapshot, syntheticCreate(pvc), now)
  let neverRestorable: string | null = null
  if (rd && destination.state !== 'ready') {
    const reasons = whyNeverReady(rdImageShapeOf(rd), { pvc: pvc.name, backupKind: answer.state === 'backup' ? answer.entry.kind : null })
    if (reasons.length > 0) neverRestorable = `ReplicationDestination ${destinationName} can never give the volume populator an image: ${describeWhy(reasons)}. ${describeFix(reasons)}.`
  }
  return {
    namespace: pvc.namespace,
    name: pvc.name,
    dataSourceRef: pvc.dataSourceRef,
    backup,
    destination,
    decision: { outcome: decided.outcome, reason: decided.reasons.join('; '), warning: decided.warnings[0] ?? null, denial: decided.denial ?? null },
    // The guard's own rule: no dataSourceRef, created after a backup existed.
    missedRestore: missed.has(objectKey(pvc.namespace, pvc.name)),
    neverRestorable,
    backupHealth: backupHealthView(snapshot, pvc, now),
    backupGenerator: generated.get(objectKey(pvc.namespace, pvc.name)) ?? null,
  }
}

/** The backup generator's plan, per `namespace/pvc` (empty when backup.enabled is off). */
function generatorViews(snapshot: Snapshot, now: number): Map<string, BackupGeneratorView> {
  const views = new Map<string, BackupGeneratorView>()
  if (!snapshot.config.backup.enabled) return views
  const plan = planBackups(snapshot, now)
  for (const [key, { name, schedule }] of plan.sources) views.set(key, { state: 'managed', source: name, schedule, reason: null, message: null })
  for (const skip of plan.skipped) {
    views.set(objectKey(skip.namespace, skip.pvc), { state: skip.reason === 'unmanaged' ? 'unmanaged' : 'skipped', source: skip.name, schedule: null, reason: skip.reason, message: skip.message })
  }
  return views
}

/** The directory source holds every PVC; the API-server source only participating ones. Filter both alike. */
function participating(snapshot: Snapshot, pvc: PvcInfo): boolean {
  return !isVolSyncOwned(pvc.labels) && matchesSelector(snapshot.config.pvc.selector, pvc.labels)
}

function sourceViews(snapshot: Snapshot, now: number): SourceHealthView[] {
  return snapshot.catalog.sources.map((s) => ({
    name: s.name,
    type: s.type,
    ok: s.error === null && s.lastSuccess !== null,
    stale: s.lastSuccess === null || now - s.lastSuccess > snapshot.staleAfterMs,
    lastSuccessAgeSeconds: ageSeconds(now, s.lastSuccess),
    lastAttemptAgeSeconds: ageSeconds(now, s.lastAttempt),
    error: s.error,
    entries: s.entries,
    diagnostics: s.diagnostics,
  }))
}

/** A served certificate closer than this to its notAfter gets a /status warning (7 days). */
const EXPIRY_WARNING_MS = 7 * 24 * 3600 * 1000

function summary(extras: StatusExtras, view: Omit<StatusView, 'summary' | 'generatedAt'>, now: number): SummaryView {
  // Ready and pending are /readyz's answer, word for word; the rest is what a person should look at.
  const warnings: string[] = [...extras.readiness.degraded]
  for (const s of view.sources) {
    if (s.stale && s.lastAttemptAgeSeconds !== null) warnings.push(`catalog source ${s.name} is not current: its backups count as unknown${s.error !== null ? ` (${s.error})` : ''}`)
  }
  if ((extras.restartPending ?? []).length > 0) warnings.push(`config key${extras.restartPending!.length === 1 ? '' : 's'} ${extras.restartPending!.join(', ')} changed in the file: ${extras.restartPending!.length === 1 ? 'it takes' : 'they take'} effect after a restart`)
  // A refused certificate is the tls loop's error (in `degraded` above) until a good pair is served:
  // a count of past failures would warn forever. Expiry soon is worth a look before it is an outage.
  const tls = extras.tls
  if (tls && tls.problem === null && tls.notAfter.getTime() - now < EXPIRY_WARNING_MS) {
    warnings.push(`the served TLS certificate expires at ${tls.notAfter.toISOString()} (in ${Math.max(0, Math.round((tls.notAfter.getTime() - now) / 3_600_000))} h)`)
  }
  const missed = view.pvcs.filter((p) => p.missedRestore).length
  if (missed > 0) warnings.push(`${missed} PVC${missed === 1 ? '' : 's'} started empty although a backup exists`)
  const never = view.pvcs.filter((p) => p.neverRestorable !== null).length
  if (never > 0) warnings.push(`${never} PVC${never === 1 ? '' : 's'} can never be restored as ${never === 1 ? 'it stands' : 'they stand'}: ${never === 1 ? 'its' : 'their'} ReplicationDestination can never give the volume populator an image (see the PVC table)`)
  const overdue = view.pvcs.filter((p) => p.backupHealth?.overdue === true).length
  if (overdue > 0) warnings.push(`${overdue} PVC${overdue === 1 ? '' : 's'}: backup overdue (no successful sync within twice the schedule's period; see the PVC table)`)
  return { ready: extras.readiness.ready, pending: extras.readiness.pending, warnings }
}

/**
 * The per-PVC, per-source and per-watch view of /status at `now` (epoch ms): each participating PVC with
 * its backup, its RD and the decision a CREATE would get now, missed restores flagged; sources with ages
 * and staleness; the readiness summary with warnings. Pure: reads only its arguments.
 */
export function statusView(snapshot: Snapshot, now: number, extras: StatusExtras): StatusView {
  const missed = new Set(findMissedRestores(snapshot, now).map((m) => objectKey(m.pvc.namespace, m.pvc.name)))
  const generated = generatorViews(snapshot, now)
  const pvcs = [...snapshot.cluster.pvcs.values()]
    .filter((pvc) => participating(snapshot, pvc))
    .sort((a, b) => (a.namespace === b.namespace ? (a.name < b.name ? -1 : a.name > b.name ? 1 : 0) : a.namespace < b.namespace ? -1 : 1))
    .map((pvc) => pvcView(snapshot, pvc, now, missed, generated))
  const watches: WatchView[] = snapshot.cluster.watches.map((w) => ({
    resource: w.resource,
    lastListAgeSeconds: ageSeconds(now, w.lastList),
    lastEventAgeSeconds: ageSeconds(now, w.lastEvent),
    restarts: w.restarts,
    error: w.error,
  }))
  const partial = { pvcs, sources: sourceViews(snapshot, now), watches }
  return { generatedAt: new Date(now).toISOString(), summary: summary(extras, partial, now), ...partial }
}

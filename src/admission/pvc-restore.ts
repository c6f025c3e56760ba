// PVC CREATE: restore from the ReplicationDestination, wait for it, or start empty
// (design section 5, "PVC CREATE"). Pure: (snapshot, request, now) -> decision.
import type { Snapshot } from '../state/snapshot.ts'
import { objectKey, type ReplicationDestinationInfo } from '../state/cluster-state.ts'
import { annotate } from './annotations.ts'
import { describeFoundBackup, lookupPvcBackup, type BackupAnswer } from './backup-lookup.ts'
import { skip, type AdmissionInput, type Decision, type Outcome } from './decision.ts'
import { matchesSelector } from './label-selector.ts'
import { renderName } from './name-template.ts'
import { asObject, asString, type JsonObject } from '../json.ts'
import { stringMap } from './object-fields.ts'
import { describeReference, pointSpecAt, readSentDataSources, storedDataSources, type DataSourceReference, type StoredDataSources } from './data-source.ts'
import { describeFix, describeWhy, rdImageShapeOf, whyNeverReady, type NeverReadyReason } from './rd-never-ready.ts'
import { isVolSyncOwned, RD_API_GROUP, RD_KIND } from './volsync-objects.ts'

const RULE = 'pvc-restore'

interface PvcContext {
  readonly snapshot: Snapshot
  readonly input: AdmissionInput
  readonly pvc: JsonObject
  readonly namespace: string
  readonly name: string
  readonly destination: string
  /**
   * Set when the PVC names the RD only in the legacy spec.dataSource, which the API server drops for
   * that kind (data-source.ts): the note said in reasons and warnings. The patch then sets a consistent
   * pair (restore, wait) or removes the dataSource (any other outcome), so it shows what is stored.
   */
  readonly legacyNote: string | null
}

function decided(ctx: PvcContext, outcome: Outcome, reason: string, change: {
  readonly setRef?: boolean
  readonly removeRef?: boolean
  readonly warning?: string
  readonly denial?: string
  readonly nudge?: boolean
}): Decision {
  let mutated: JsonObject | undefined
  if (!change.denial) {
    // Copy-on-write: only metadata and spec change; the rest is shared with the request's object.
    const metadata = asObject(ctx.pvc.metadata)
    const spec: JsonObject = { ...asObject(ctx.pvc.spec) }
    mutated = { ...ctx.pvc, spec, ...(metadata ? { metadata: { ...metadata } } : {}) }
    if (change.setRef) pointSpecAt(spec, { apiGroup: RD_API_GROUP, kind: RD_KIND, name: ctx.destination })
    if (change.removeRef) {
      delete spec.dataSourceRef
      delete spec.dataSource
    }
    if (ctx.legacyNote !== null && !change.setRef) delete spec.dataSource
    annotate(mutated, outcome, reason)
  }
  const legacy = ctx.legacyNote === null ? [] : [ctx.legacyNote]
  return {
    rule: RULE,
    outcome,
    reasons: [reason, ...legacy],
    warnings: [...(change.warning ? [change.warning] : []), ...legacy],
    ...(mutated ? { mutated } : {}),
    ...(change.denial ? { denial: change.denial } : {}),
    ...(change.nudge ? { nudge: { type: 'prewarm', namespace: ctx.namespace, pvc: ctx.name, destination: ctx.destination } } : {}),
  }
}

/** latestImage is only usable by the volume populator when it is a VolumeSnapshot (RD copyMethod Snapshot). */
function usableImage(rd: ReplicationDestinationInfo | undefined): string | null {
  const image = rd?.latestImage
  return image && image.kind === 'VolumeSnapshot' ? image.name : null
}

function notReadyState(rd: ReplicationDestinationInfo | undefined, ref: string): string {
  if (!rd) return `${ref} does not exist yet`
  if (rd.latestImage) return `${ref} has a latestImage of kind ${rd.latestImage.kind}, which the volume populator cannot use (needs copyMethod: Snapshot)`
  return `${ref} has no latestImage yet`
}

function decideWithoutImage(ctx: PvcContext, rd: ReplicationDestinationInfo | undefined, answer: BackupAnswer, hasOwnRef: boolean): Decision {
  const { config } = ctx.snapshot
  const pvcRef = `${ctx.namespace}/${ctx.name}`
  const rdRef = `ReplicationDestination ${ctx.destination}`
  const state = notReadyState(rd, rdRef)
  switch (answer.state) {
    case 'backup': {
      const backup = describeFoundBackup(answer)
      switch (config.pvc.whenBackupNotReady) {
        case 'wait':
          return decided(ctx, 'wait', `${backup} exists for ${pvcRef}; ${state}: the volume populator waits until it syncs`, {
            setRef: !hasOwnRef,
            warning: `waiting for ${rdRef} to restore ${pvcRef} from ${backup}; the PVC stays Pending until it syncs`,
            nudge: true,
          })
        case 'deny':
          return decided(ctx, 'deny', `${backup} exists but ${state}`, {
            denial: `${backup} exists for ${pvcRef} but ${state}; retry in a minute, when it has synced (pvc.whenBackupNotReady: deny)`,
            nudge: true,
          })
        case 'fresh':
          return decided(ctx, 'fresh', `${backup} exists but ${state}; pvc.whenBackupNotReady is fresh`, {
            warning: `${pvcRef} starts EMPTY although ${backup} exists (${state}; pvc.whenBackupNotReady: fresh)`,
          })
      }
      break
    }
    case 'unknown':
      if (config.pvc.whenCatalogUnknown === 'deny') {
        return decided(ctx, 'deny', `catalog unknown: ${answer.reason}`, {
          denial: `cannot tell whether a backup exists for ${pvcRef}: ${answer.reason}; retry later (pvc.whenCatalogUnknown: deny)`,
        })
      }
      return decided(ctx, 'fresh', `catalog unknown (${answer.reason}); ${state}`, {
        warning: `${pvcRef} starts without a restore: whether a backup exists is unknown (${answer.reason})`,
      })
    case 'none':
      if (hasOwnRef) {
        return decided(ctx, 'remove-datasource', `no backup is known for ${pvcRef} and ${state}; its dataSourceRef would keep it Pending forever`, {
          removeRef: true,
          warning: `removed dataSourceRef to ${rdRef} from ${pvcRef}: no backup is known and ${state}, so it would stay Pending forever; it starts empty`,
        })
      }
      return decided(ctx, 'fresh', `no backup is known for ${pvcRef}: new volume`, {})
  }
  throw new Error('unreachable')
}

/**
 * A participating PVC sent with `generateName`: the API server picks its name after admission, so
 * `pvc.destinationName` (which must use {{pvc}}) names no ReplicationDestination and it cannot be
 * restored. Said in a warning; when its backup name renders without the name (`{{label "KEY"}}`) and a
 * backup exists, the decision is `fresh` and the warning says it starts EMPTY over that backup.
 */
function decideGeneratedName(snapshot: Snapshot, input: AdmissionInput, pvc: JsonObject, labels: Readonly<Record<string, string>>, now: number): Decision {
  const prefix = asString(asObject(pvc.metadata)?.generateName) ?? ''
  const pvcRef = `${input.namespace}/${prefix}<generated>`
  const why = `its name is picked by the API server after admission (generateName), so pvc.destinationName "${snapshot.config.pvc.destinationName}" names no ReplicationDestination for it`
  const { answer, backupName } = lookupPvcBackup(snapshot, { namespace: input.namespace, name: null, labels }, now)
  if (answer.state !== 'backup') {
    const known = answer.state === 'none' ? `no backup is known under backup name ${backupName}` : `whether a backup exists is unknown (${answer.reason})`
    return { rule: RULE, outcome: 'skip', reasons: [`${pvcRef} cannot be restored: ${why}; ${known}`], warnings: [`${pvcRef} is not restored by volsync-autorestore: ${why}; give it a fixed metadata.name to have it restored`] }
  }
  const reason = `${describeFoundBackup(answer)} exists for backup name ${backupName}, but ${why}`
  const metadata = asObject(pvc.metadata)
  const mutated: JsonObject = { ...pvc, ...(metadata ? { metadata: { ...metadata } } : {}) }
  annotate(mutated, 'fresh', reason)
  return {
    rule: RULE,
    outcome: 'fresh',
    reasons: [reason],
    warnings: [`${pvcRef} starts EMPTY although ${describeFoundBackup(answer)} exists for it (backup name ${backupName}): ${why}. Create it with a fixed metadata.name to have it restored.`],
    mutated,
  }
}

/**
 * Whether a data source names this PVC's RD: apiGroup volsync.backube, kind ReplicationDestination, the
 * rendered `pvc.destinationName`. In the legacy spec.dataSource an absent or empty apiGroup counts too
 * (the intent is plain, and the API server drops that reference anyway).
 */
function namesDestination(ref: DataSourceReference, destination: string, legacy: boolean): boolean {
  const group = ref.apiGroup ?? ''
  return ref.kind === RD_KIND && ref.name === destination && (group === RD_API_GROUP || (legacy && group === ''))
}

function legacyDataSourceNote(ref: DataSourceReference): string {
  const group = ref.apiGroup ? '' : ' (without apiGroup volsync.backube)'
  return `spec.dataSource names ReplicationDestination ${ref.name}${group}: the API server keeps only a PersistentVolumeClaim or a VolumeSnapshot in spec.dataSource and drops any other kind after admission, so on its own it restores nothing; it is decided as if it were spec.dataSourceRef. Name the RD in spec.dataSourceRef (apiGroup volsync.backube) in the manifest.`
}

/** Both data-source fields as sent fail the API server's validation: left as sent, and said. */
function rejectedDataSources(pvcRef: string, reason: string): Decision {
  return {
    rule: RULE,
    outcome: 'skip',
    reasons: [`the API server will reject ${pvcRef} whatever this webhook does (${reason}): left as sent`],
    warnings: [`${pvcRef} is left unchanged: the API server rejects it because ${reason}. Set only spec.dataSourceRef (the API server copies it into spec.dataSource), or both to the same reference.`],
  }
}

/** A data source that is not this PVC's RD is never touched; a legacy one the API server drops is said. */
function usersOwnDataSource(pvcRef: string, requested: DataSourceReference, stored: StoredDataSources): Decision {
  const decision = skip(RULE, `the PVC's own data source (${describeReference(requested)}) is left alone`)
  if (stored.state !== 'accepted' || stored.dropped === null) return decision
  const dropped = `spec.dataSource ${describeReference(stored.dropped)} is not a PersistentVolumeClaim or a VolumeSnapshot, so the API server drops it after admission and ${pvcRef} starts empty`
  return { ...decision, reasons: [...decision.reasons, dropped], warnings: [`${dropped}; put it in spec.dataSourceRef to populate from it. volsync-autorestore leaves a data source it does not own alone.`] }
}

/**
 * The PVC's RD can never give the populator an image (rd-never-ready.ts): never `wait`, which would keep
 * the PVC Pending forever. Over a known backup: `deny` when `pvc.whenBackupNotReady` is deny, else
 * `fresh` (for `wait` too: waiting on an RD that cannot become ready is not waiting), with a warning that
 * says why and what to change on the RD; the missed-restore guard then reports the PVC that started empty.
 * Without a backup: `remove-datasource` for a dataSourceRef to it, else `fresh`. Catalog unknown:
 * `pvc.whenCatalogUnknown`. A dataSourceRef to the RD is removed whenever the PVC is admitted.
 */
function decideNeverReady(ctx: PvcContext, answer: BackupAnswer, reasons: readonly NeverReadyReason[], hasOwnRef: boolean): Decision {
  const { config } = ctx.snapshot
  const pvcRef = `${ctx.namespace}/${ctx.name}`
  const rdRef = `ReplicationDestination ${ctx.destination}`
  const why = `${rdRef} can never give the volume populator an image: ${describeWhy(reasons)}`
  const fix = `On ${rdRef}: ${describeFix(reasons).charAt(0).toLowerCase()}${describeFix(reasons).slice(1)}`
  switch (answer.state) {
    case 'backup': {
      const backup = describeFoundBackup(answer)
      const mode = config.pvc.whenBackupNotReady
      if (mode === 'deny') {
        return decided(ctx, 'deny', `${backup} exists but ${why}`, {
          denial: `${backup} exists for ${pvcRef}, but ${why}, so a restore from it would stay Pending forever. ${fix}, then create the PVC again (pvc.whenBackupNotReady: deny).`,
        })
      }
      const modeNote = mode === 'wait' ? 'pvc.whenBackupNotReady is wait, but an RD that cannot become ready is never waited on' : 'pvc.whenBackupNotReady: fresh'
      return decided(ctx, 'fresh', `${backup} exists but ${why}; ${modeNote}`, {
        removeRef: hasOwnRef,
        warning: `${pvcRef} starts EMPTY although ${backup} exists: ${why}, so a restore from it would stay Pending forever (${modeNote}). ${fix}; then, before the app writes to it, delete this PVC and create it again to restore it (the missed-restore guard reports it until then).`,
      })
    }
    case 'unknown':
      if (config.pvc.whenCatalogUnknown === 'deny') {
        return decided(ctx, 'deny', `catalog unknown: ${answer.reason}; ${why}`, {
          denial: `cannot tell whether a backup exists for ${pvcRef}: ${answer.reason}; retry later (pvc.whenCatalogUnknown: deny). Also: ${why}; ${fix}.`,
        })
      }
      return decided(ctx, 'fresh', `catalog unknown (${answer.reason}); ${why}`, {
        removeRef: hasOwnRef,
        warning: `${pvcRef} starts without a restore: whether a backup exists is unknown (${answer.reason}), and ${why}. ${fix}.`,
      })
    case 'none':
      if (hasOwnRef) {
        return decided(ctx, 'remove-datasource', `no backup is known for ${pvcRef} and ${why}; its dataSourceRef would keep it Pending forever`, {
          removeRef: true,
          warning: `removed dataSourceRef to ${rdRef} from ${pvcRef}: no backup is known and ${why}, so it would stay Pending forever; it starts empty. ${fix}.`,
        })
      }
      return decided(ctx, 'fresh', `no backup is known for ${pvcRef}: new volume`, {})
  }
  throw new Error('unreachable')
}

/**
 * The /mutate rule for a participating PVC's CREATE (`pvc.selector`, not VolSync's own, with a name):
 * `restore` when the RD named by `pvc.destinationName` has a VolumeSnapshot `latestImage`; otherwise, by
 * the catalog's answer at `now` (epoch ms), `wait`/`deny`/`fresh` (`pvc.whenBackupNotReady`,
 * `pvc.whenCatalogUnknown`), `remove-datasource` for our own dataSourceRef with no backup, or `fresh`. A
 * user's own data source, any UPDATE and a non-participating PVC are `skip`. `wait` and backup-backed
 * `deny` carry a pre-warm nudge. Pure: reads only `snapshot`.
 */
export function decidePvcCreate(snapshot: Snapshot, input: AdmissionInput, now: number): Decision {
  const pvc = input.object
  if (!pvc) return skip(RULE, 'no object')
  if (input.operation !== 'CREATE') return skip(RULE, `${input.operation} is not mutated: a PVC's dataSourceRef is immutable after creation`)
  const labels = stringMap(pvc, 'labels')
  if (isVolSyncOwned(labels)) return skip(RULE, 'a PVC that VolSync itself created')
  const { config } = snapshot
  if (!matchesSelector(config.pvc.selector, labels)) return skip(RULE, 'not participating: labels do not match pvc.selector')
  if (!input.name) return decideGeneratedName(snapshot, input, pvc, labels, now)
  const destination = renderName(config.pvc.destinationName, { pvc: input.name, namespace: input.namespace })
  const pvcRef = `${input.namespace}/${input.name}`

  // Decided on the PVC as the API server will store it (data-source.ts), not as sent.
  const sent = readSentDataSources(asObject(pvc.spec))
  const stored = storedDataSources(sent)
  if (stored.state === 'rejected') return rejectedDataSources(pvcRef, stored.reason)
  const requested = sent.dataSourceRef ?? sent.dataSource
  const legacy = sent.dataSourceRef === null
  if (requested !== null && !namesDestination(requested, destination, legacy)) return usersOwnDataSource(pvcRef, requested, stored)
  const hasOwnRef = requested !== null && !legacy
  const legacyNote = requested !== null && legacy ? legacyDataSourceNote(requested) : null
  const ctx: PvcContext = { snapshot, input, pvc, namespace: input.namespace, name: input.name, destination, legacyNote }

  const rd = snapshot.cluster.replicationDestinations.get(objectKey(input.namespace, destination))
  const image = usableImage(rd)
  const answer = lookupPvcBackup(snapshot, { namespace: input.namespace, name: input.name, labels }, now).answer
  if (image) {
    const emptyHint = answer.state === 'none'
      ? ` (note: the catalog knows no backup for ${input.namespace}/${input.name}; the image may be of an empty restore)`
      : ''
    return decided(ctx, 'restore', `ReplicationDestination ${destination} has latestImage ${image}`, {
      setRef: !hasOwnRef,
      warning: `restoring ${input.namespace}/${input.name} from ReplicationDestination ${destination} (VolumeSnapshot ${image})${emptyHint}`,
    })
  }
  const neverReady = rd ? whyNeverReady(rdImageShapeOf(rd), { pvc: input.name, backupKind: answer.state === 'backup' ? answer.entry.kind : null }) : []
  if (neverReady.length > 0) return decideNeverReady(ctx, answer, neverReady, hasOwnRef)
  return decideWithoutImage(ctx, rd, answer, hasOwnRef)
}


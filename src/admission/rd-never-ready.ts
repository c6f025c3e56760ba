// ReplicationDestinations that can never give the volume populator an image: a state that will not
// become ready by waiting, told apart from "not synced yet" (design section 5; volsync-reference.md 5
// and pitfall 9).
//
// What this follows (backube/volsync, controllers/volumehandler/volumehandler.go and the populator):
// - an RD's `status.latestImage` comes from `VolumeHandler.EnsureImage` after each sync: copyMethod
//   `Direct` or `None` -> the destination PVC itself (kind PersistentVolumeClaim); `Snapshot` -> a
//   VolumeSnapshot; anything else, an absent copyMethod included -> an error ("unsupported copyMethod"),
//   so no image at all. `copyMethod` has no default (`FromDestination` copies it as given).
// - the volume populator restores only from a VolumeSnapshot latestImage ("latestImage is not a
//   volumesnapshot" otherwise, with no retry until the RD changes), and waits with no timeout.
// - a `destinationPVC` is used as the RD's destination as it is (`UseProvidedPVC`); naming the PVC
//   being populated makes the RD wait for a PVC that waits for the RD (backube/volsync issue #1129).
// - a Kopia mover reads Kopia repositories and a restic mover restic ones (volsync-reference.md 3-4):
//   an RD whose mover is not the kind of the backup's repository never restores that backup (it fails,
//   or "succeeds" empty after initialising a repository of its own kind, 3.1).
// Pure.
import type { BackupKind } from '../state/catalog-state.ts'
import type { ReplicationDestinationInfo } from '../state/cluster-state.ts'
import { asObject, asString, type JsonObject } from '../json.ts'

/** The mover blocks of a ReplicationDestination spec (exactly one is set on a valid RD). */
export const RD_MOVER_BLOCKS = ['kopia', 'restic', 'rsync', 'rsyncTLS', 'rclone', 'syncthing', 'external'] as const

/** What decides whether an RD can ever produce a VolumeSnapshot image. */
export interface RdImageShape {
  /** The mover block that is set (`kopia`, `restic`, ...); null when none is, or not known. */
  readonly mover: string | null
  /** That block's copyMethod; null when absent. */
  readonly copyMethod: string | null
  /** That block's destinationPVC; null when absent. */
  readonly destinationPVC: string | null
}

const nonEmpty = (value: unknown): string | null => {
  const text = asString(value)
  return text === undefined || text === '' ? null : text
}

/**
 * The mover block, copyMethod and destinationPVC of a ReplicationDestination `spec` (the last mover
 * block set wins, as VolSync's own precedence does not matter on a valid RD with one). Empty strings read
 * as absent.
 */
export function readRdImageShape(spec: JsonObject | undefined): RdImageShape {
  let shape: RdImageShape = { mover: null, copyMethod: null, destinationPVC: null }
  for (const block of RD_MOVER_BLOCKS) {
    const options = asObject(spec?.[block])
    if (!options) continue
    shape = { mover: block, copyMethod: nonEmpty(options.copyMethod), destinationPVC: nonEmpty(options.destinationPVC) }
  }
  return shape
}

/** The shape of an RD from cluster state (older callers may not carry the mover or destinationPVC). */
export function rdImageShapeOf(rd: ReplicationDestinationInfo): RdImageShape {
  return { mover: rd.mover ?? null, copyMethod: rd.copyMethod, destinationPVC: rd.destinationPVC ?? null }
}

/** One reason an RD can never give the populator an image, and what to change. */
export interface NeverReadyReason {
  /** "copyMethod is Direct: its latestImage is its destination PVC, never a VolumeSnapshot". */
  readonly why: string
  /** "set spec.kopia.copyMethod: Snapshot". */
  readonly fix: string
}

/** What the RD is judged against: the PVC it would populate and the kind of that PVC's backup. */
export interface NeverReadyContext {
  /** The PVC's name (same namespace as the RD); null when not known. */
  readonly pvc: string | null
  /** The catalog's kind of the PVC's backup; null when there is none or it is unknown. */
  readonly backupKind: BackupKind | null
}

const COPY_METHOD_FIX = (block: string): string =>
  `set spec.${block}.copyMethod: Snapshot (with a volumeSnapshotClassName your CSI driver supports)`

/**
 * Every reason the RD of this shape can never give the volume populator a VolumeSnapshot for
 * `context.pvc` (empty: it may yet become ready). A copyMethod other than Snapshot counts only when the
 * mover block is known or the copyMethod is set; a mover mismatch only for Kopia/restic movers and
 * backups (a `static` backup declares no repository kind).
 */
export function whyNeverReady(shape: RdImageShape, context: NeverReadyContext): NeverReadyReason[] {
  const reasons: NeverReadyReason[] = []
  const block = shape.mover ?? 'kopia'
  if (shape.copyMethod !== null && shape.copyMethod !== 'Snapshot') {
    const image = shape.copyMethod === 'Direct' || shape.copyMethod === 'None'
      ? 'its latestImage is its destination PVC, never a VolumeSnapshot'
      : 'VolSync makes a latestImage only for Direct, None or Snapshot, so it never gets one'
    const pvcNote = shape.destinationPVC !== null ? ` (it restores straight into destinationPVC ${shape.destinationPVC})` : ''
    reasons.push({ why: `copyMethod is ${shape.copyMethod}${pvcNote}: ${image}`, fix: COPY_METHOD_FIX(block) })
  } else if (shape.copyMethod === null && shape.mover !== null) {
    reasons.push({ why: 'it has no copyMethod: VolSync makes a latestImage only for Direct, None or Snapshot, so it never gets one', fix: COPY_METHOD_FIX(block) })
  }
  if (shape.destinationPVC !== null && context.pvc !== null && shape.destinationPVC === context.pvc) {
    reasons.push({
      why: `its destinationPVC is ${context.pvc} itself: the RD would restore into the PVC that waits for the RD`,
      fix: `remove spec.${block}.destinationPVC and give spec.${block}.capacity and accessModes, so the RD restores into a volume of its own`,
    })
  }
  const readable = context.backupKind === 'kopia' || context.backupKind === 'restic'
  const mover = shape.mover === 'kopia' || shape.mover === 'restic' ? shape.mover : null
  if (readable && mover !== null && mover !== context.backupKind) {
    reasons.push({
      why: `the backup is in a ${context.backupKind} repository and the RD runs the ${mover} mover, which cannot read it (it fails, or restores nothing from a ${mover} repository of its own)`,
      fix: `use spec.${context.backupKind} instead of spec.${mover}, with the Secret of the ${context.backupKind} repository that holds the backup`,
    })
  }
  return reasons
}

/** "copyMethod is Direct: ...; and ..." - the reasons' `why`s in one clause. */
export function describeWhy(reasons: readonly NeverReadyReason[]): string {
  return reasons.map((r) => r.why).join('; and ')
}

/** "Set spec.kopia.copyMethod: Snapshot; ..." - the fixes in one sentence, without duplicates. */
export function describeFix(reasons: readonly NeverReadyReason[]): string {
  const fixes = [...new Set(reasons.map((r) => r.fix))].join('; ')
  return fixes.charAt(0).toUpperCase() + fixes.slice(1)
}

// What a validation rule reports, and the small helpers every rule shares.
import type { ValidationRuleName } from '../../config/schema.ts'
import type { Snapshot } from '../../state/snapshot.ts'
import type { AdmissionInput, Nudge } from '../decision.ts'
import { asObject, asString } from '../../json.ts'
import { RD_API_GROUP, RD_KIND } from '../volsync-objects.ts'

/** One problem with the admitted object. `message` names the object, the field and the fix; never a secret value. */
export type Finding = { readonly rule: ValidationRuleName; readonly message: string }

/** Findings plus requests for a loop to act (e.g. check a password the rule has no verdict for yet). */
export interface CheckResult {
  readonly findings: readonly Finding[]
  readonly nudges: readonly Nudge[]
}

/**
 * A validation rule: pure, never throws, returns [] when the request is not its business. A rule
 * that can nudge returns a CheckResult.
 */
export type ValidationCheck = (snapshot: Snapshot, input: AdmissionInput, now: number) => Finding[] | CheckResult

export const NO_FINDINGS: CheckResult = Object.freeze({ findings: Object.freeze([]), nudges: Object.freeze([]) })

/** A core/v1 Secret, by the request's kind (not the object's, which may be absent on DELETE). */
export function isSecretRequest(input: AdmissionInput): boolean {
  return input.kind.group === '' && input.kind.kind === 'Secret'
}

/** A volsync.backube ReplicationDestination, by the request's kind, any version. */
export function isReplicationDestinationRequest(input: AdmissionInput): boolean {
  return input.kind.group === RD_API_GROUP && input.kind.kind === RD_KIND
}

/** A core/v1 PersistentVolumeClaim, by the request's kind. */
export function isPvcRequest(input: AdmissionInput): boolean {
  return input.kind.group === '' && input.kind.kind === 'PersistentVolumeClaim'
}

/** "Secret media/jellyfin-volsync-secret": the request's name, else the object's (generateName on CREATE). */
export function describeObject(input: AdmissionInput): string {
  const metadata = asObject(input.object?.metadata)
  const namespace = input.namespace || asString(metadata?.namespace) || '(no namespace)'
  const generateName = asString(metadata?.generateName)
  const name = input.name || asString(metadata?.name) || (generateName ? `${generateName}<generated>` : '(no name)')
  return `${input.kind.kind} ${namespace}/${name}`
}

// A ReplicationDestination without a schedule or manual trigger syncs continuously: a new restore
// Job starts as soon as the last one is cleaned up (statemachine; volsync-reference.md 1.1).
import type { Snapshot } from '../../state/snapshot.ts'
import type { AdmissionInput } from '../decision.ts'
import { asObject, asString } from '../../json.ts'
import { describeObject, isReplicationDestinationRequest, type Finding } from './finding.ts'

/**
 * Finding `rdTrigger` for a ReplicationDestination with neither a non-empty `spec.trigger.schedule` nor
 * `manual`: it would restore in a loop.
 */
export function checkRdTrigger(_snapshot: Snapshot, input: AdmissionInput, _now: number): Finding[] {
  if (!isReplicationDestinationRequest(input) || !input.object) return []
  const trigger = asObject(asObject(input.object.spec)?.trigger)
  // VolSync counts a trigger only when its string is non-empty (getTrigger), so "" is no trigger.
  if (asString(trigger?.schedule) || asString(trigger?.manual)) return []
  const state = trigger ? 'spec.trigger has neither schedule nor manual' : 'spec.trigger is not set'
  return [{
    rule: 'rdTrigger',
    message: `${describeObject(input)}: ${state}, so VolSync restores continuously, starting a new restore Job as soon as the last one finishes. Set spec.trigger.manual: restore-once (restores once; change the value to restore again) or a spec.trigger.schedule.`,
  }]
}

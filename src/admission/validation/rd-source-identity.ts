// Which Kopia identity a ReplicationDestination restores (volsync-reference.md 3, pitfall 7).
// Without sourceIdentity.sourceName or username+hostname the fork restores
// `<sanitized RD name>@<namespace>`: right only when the RD is named exactly like its
// ReplicationSource, and when it is not, the restore finds nothing and still SUCCEEDS, empty.
// The RS is unknown at admission, so the missing hint is always reported. Only one of
// username/hostname is a reconcile error in the fork (validateDestinationIdentity).
import type { Snapshot } from '../../state/snapshot.ts'
import type { AdmissionInput } from '../decision.ts'
import { asObject, asString } from '../../json.ts'
import { kopiaHostname, kopiaUsername } from '../volsync-objects.ts'
import { describeObject, isReplicationDestinationRequest, type Finding } from './finding.ts'

/** The fork treats "" like an absent field. */
function setString(value: unknown): string | undefined {
  const text = asString(value)
  return text === '' ? undefined : text
}

/**
 * Finding `rdSourceIdentity` for a Kopia ReplicationDestination that sets only one of username/hostname
 * (VolSync rejects it), or none of them and no `sourceIdentity.sourceName` (it restores the identity
 * derived from its own name, which is empty when the ReplicationSource is named otherwise). The message
 * shows the identity it would restore.
 */
export function checkRdSourceIdentity(_snapshot: Snapshot, input: AdmissionInput, _now: number): Finding[] {
  if (!isReplicationDestinationRequest(input) || !input.object) return []
  const kopia = asObject(asObject(input.object.spec)?.kopia)
  if (!kopia) return []
  const object = describeObject(input)
  const username = setString(kopia.username)
  const hostname = setString(kopia.hostname)
  const sourceName = setString(asObject(kopia.sourceIdentity)?.sourceName)

  if ((username === undefined) !== (hostname === undefined)) {
    const given = username !== undefined ? 'username' : 'hostname'
    const absent = username !== undefined ? 'hostname' : 'username'
    return [{
      rule: 'rdSourceIdentity',
      message: `${object}: error: spec.kopia.${given} is set without spec.kopia.${absent}; VolSync rejects a Kopia ReplicationDestination with only one of them ("missing '${absent}'") and never restores. Set both spec.kopia.username and spec.kopia.hostname to the ReplicationSource's identity, or remove spec.kopia.${given} and set spec.kopia.sourceIdentity.sourceName: <the ReplicationSource name>.`,
    }]
  }
  if (sourceName !== undefined || username !== undefined) return []

  const metadata = asObject(input.object.metadata)
  const name = input.name || asString(metadata?.name) || ''
  const namespace = input.namespace || asString(metadata?.namespace) || ''
  // generateName: the name, hence the username, is not known yet.
  const identity = `${name ? kopiaUsername(name) : '<generated name>'}@${kopiaHostname(namespace, name)}`
  return [{
    rule: 'rdSourceIdentity',
    message: `${object}: spec.kopia has neither sourceIdentity.sourceName nor username+hostname, so it restores the Kopia identity ${identity} (snapshots of a ReplicationSource named ${name || 'like this ReplicationDestination'}); if the ReplicationSource has another name, the restore finds nothing and still succeeds with an EMPTY volume. Set spec.kopia.sourceIdentity.sourceName: <the ReplicationSource name>.`,
  }]
}

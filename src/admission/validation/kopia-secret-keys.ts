// A Kopia repository Secret must hold both KOPIA_REPOSITORY and KOPIA_PASSWORD: the fork's
// controller checks both at reconcile (even when a moverVolume supplies the repository), and
// the RS/RD never starts a mover without them (volsync-reference.md 4.1, pitfall 1).
import type { Snapshot } from '../../state/snapshot.ts'
import type { AdmissionInput } from '../decision.ts'
import { isKopiaSecret, KOPIA_REQUIRED_KEYS, readSecretValues } from '../volsync-objects.ts'
import { describeObject, isSecretRequest, type Finding } from './finding.ts'

/**
 * Finding `kopiaSecretKeys` for a Kopia Secret (any `KOPIA_` key) whose KOPIA_REPOSITORY or KOPIA_PASSWORD
 * is missing or blank. The message names only keys, never values.
 */
export function checkKopiaSecretKeys(_snapshot: Snapshot, input: AdmissionInput, _now: number): Finding[] {
  if (!isSecretRequest(input) || !input.object) return []
  const values = readSecretValues(input.object)
  if (!isKopiaSecret(values)) return []
  // Only key names and "missing"/"empty" go into the message: these values are secrets.
  const missing: string[] = []
  const empty: string[] = []
  for (const key of KOPIA_REQUIRED_KEYS) {
    const value = values.get(key)
    if (value === undefined || value === null) missing.push(key)
    else if (value.trim() === '') empty.push(key)
  }
  if (missing.length === 0 && empty.length === 0) return []
  const problems = [
    ...(missing.length > 0 ? [`has no ${missing.join(' and no ')} key`] : []),
    ...(empty.length > 0 ? [`has an empty ${empty.join(' and an empty ')}`] : []),
  ].join(' and ')
  const fix = [...missing, ...empty].map((key) => key === 'KOPIA_REPOSITORY'
    ? 'KOPIA_REPOSITORY (e.g. s3://<bucket>/<prefix> or filesystem:///mnt/<moverVolume mountPath>)'
    : 'KOPIA_PASSWORD (the password of that repository)').join(' and ')
  return [{
    rule: 'kopiaSecretKeys',
    message: `${describeObject(input)}: this Kopia repository Secret ${problems}; VolSync's Kopia mover needs both KOPIA_REPOSITORY and KOPIA_PASSWORD, so no backup or restore using this Secret can succeed. Set ${fix}.`,
  }]
}

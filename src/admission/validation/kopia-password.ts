// A shared Kopia repository with per-app passwords: a Secret whose KOPIA_PASSWORD does not open
// the repository its KOPIA_REPOSITORY names makes the mover fail with "repository not
// initialized" (or, worse, try to create one). The catalog has opened that repository; the verdict
// is read from the snapshot's published verdicts (by repository id and password digest). Pure: a
// password without a verdict yet gives no finding and a nudge asking for it to be checked, which
// the catalog's bounded queue does off the request path; a later request gets the answer.
import type { OpenedRepository } from '../../state/catalog-state.ts'
import { passwordDigest } from '../../state/password-verdicts.ts'
import type { Snapshot } from '../../state/snapshot.ts'
import type { AdmissionInput } from '../decision.ts'
import { type KopiaRepositoryTarget, parseKopiaRepository } from '../kopia-repository.ts'
import { isKopiaSecret, readSecretValues } from '../volsync-objects.ts'
import { KopiaPasswordCheckNudge } from '../kopia-password-nudge.ts'
import { type CheckResult, describeObject, isSecretRequest, NO_FINDINGS } from './finding.ts'

/**
 * The repository the catalog opened at that place. A filesystem URL is a path inside the mover,
 * where movers.repository is mounted: it names the shared repository only when it is that mount
 * and exactly one Kopia source reads a directory.
 */
function findRepository(snapshot: Snapshot, target: KopiaRepositoryTarget): { source: string; repository: OpenedRepository } | null {
  const found: Array<{ source: string; repository: OpenedRepository }> = []
  for (const source of snapshot.catalog.sources) {
    for (const repository of source.repositories) {
      if ('s3' in target ? repository.s3?.bucket === target.s3.bucket && repository.s3.prefix === target.s3.prefix : repository.filesystem !== undefined) {
        found.push({ source: source.name, repository })
      }
    }
  }
  if ('filesystem' in target) {
    const mount = snapshot.config.movers.repository?.mountPath.replace(/\/+$/, '')
    if (mount === undefined || mount !== target.filesystem || found.length !== 1) return null
  }
  return found[0] ?? null
}

/**
 * Reads `snapshot.passwordVerdicts` for the Secret's KOPIA_PASSWORD on the repository its
 * KOPIA_REPOSITORY names: 'wrong' is a finding, 'opens' nothing, no verdict yet a nudge
 * (KopiaPasswordCheckNudge, which hides the password from logs and JSON).
 */
export function checkKopiaPassword(snapshot: Snapshot, input: AdmissionInput, _now: number): CheckResult {
  if (!isSecretRequest(input) || !input.object) return NO_FINDINGS
  const values = readSecretValues(input.object)
  if (!isKopiaSecret(values)) return NO_FINDINGS
  const password = values.get('KOPIA_PASSWORD')
  const target = parseKopiaRepository(values)
  if (!password || !target) return NO_FINDINGS
  const found = findRepository(snapshot, target)
  if (!found) return NO_FINDINGS
  const verdict = snapshot.passwordVerdicts.verdictOf(found.repository.id, passwordDigest(password))
  if (verdict === 'unknown') return { findings: [], nudges: [new KopiaPasswordCheckNudge(found.repository.id, password)] }
  if (verdict === 'opens') return NO_FINDINGS
  return {
    findings: [{
      rule: 'kopiaPassword',
      message: `${describeObject(input)}: KOPIA_PASSWORD does not open the Kopia repository at ${found.repository.location} (opened by catalog source ${found.source}); a mover using this Secret fails with "repository not initialized" and backs up or restores nothing. Give this Secret the password that repository was created with (a shared repository has one password for every app).`,
    }],
    nudges: [],
  }
}

// The /validate webhook's rule: runs the checks of the object's kind (the table of webhooks,
// admission/webhooks.ts, says which kinds get which checks) and merges their findings into one
// decision (design section 5, "Validation"). Warn by default, deny only for rules the user set to
// `deny`. Never mutates.
import type { ValidationRuleName } from '../../config/schema.ts'
import type { Snapshot } from '../../state/snapshot.ts'
import { skip, type AdmissionInput, type AdmissionRule, type Decision, type Nudge } from '../decision.ts'
import type { Finding, ValidationCheck } from './finding.ts'
import { checkKopiaPassword } from './kopia-password.ts'
import { checkKopiaPrefixSlash } from './kopia-prefix-slash.ts'
import { checkKopiaSecretKeys } from './kopia-secret-keys.ts'
import { checkPvcDanglingDataSource } from './pvc-dangling-data-source.ts'
import { checkRdNeverReady } from './rd-never-ready.ts'
import { checkRdSourceIdentity } from './rd-source-identity.ts'
import { checkRdTrigger } from './rd-trigger.ts'
import { checkS3PlainHttp } from './s3-plain-http.ts'

const RULE = 'validation'

/** Checks of a repository Secret (Kopia or restic). */
export const SECRET_CHECKS: readonly ValidationCheck[] = [checkKopiaSecretKeys, checkS3PlainHttp, checkKopiaPrefixSlash, checkKopiaPassword]
/** Checks of a ReplicationDestination. */
export const REPLICATION_DESTINATION_CHECKS: readonly ValidationCheck[] = [checkRdSourceIdentity, checkRdTrigger, checkRdNeverReady]
/** Checks of a participating PVC. */
export const PVC_CHECKS: readonly ValidationCheck[] = [checkPvcDanglingDataSource]

function run(checks: readonly ValidationCheck[], snapshot: Snapshot, input: AdmissionInput, now: number): { findings: Finding[]; nudges: Nudge[] } {
  const findings: Finding[] = []
  const nudges: Nudge[] = []
  for (const check of checks) {
    const result = check(snapshot, input, now)
    if (Array.isArray(result)) findings.push(...result)
    else {
      findings.push(...result.findings)
      nudges.push(...result.nudges)
    }
  }
  return { findings, nudges }
}

function level(snapshot: Snapshot, rule: ValidationRuleName): 'warn' | 'deny' {
  return snapshot.config.validation[rule] === 'deny' ? 'deny' : 'warn'
}

/**
 * The validation rule running `checks` (all of one kind): allowed, warned or denied by the
 * configured level of each finding's rule; findings the stored object already had are never denied
 * on UPDATE. Pure; carries at most one nudge (a password check). Throws only if a check throws.
 */
export function validationRule(checks: readonly ValidationCheck[]): AdmissionRule {
  return (snapshot, input, now) => validate(checks, snapshot, input, now)
}

function validate(checks: readonly ValidationCheck[], snapshot: Snapshot, input: AdmissionInput, now: number): Decision {
  if (input.operation !== 'CREATE' && input.operation !== 'UPDATE') return skip(RULE, `${input.operation} is not validated`)
  if (!input.object) return skip(RULE, 'no object')

  const { findings, nudges } = run(checks, snapshot, input, now)
  // A Decision carries one nudge; only the kopiaPassword rule nudges, once per object.
  const nudge = nudges[0]
  const nudged = nudge ? { nudge } : {}
  const nudgeReasons = nudges.map(describeNudge)
  if (findings.length === 0) return { rule: RULE, outcome: 'unchanged', reasons: ['no findings', ...nudgeReasons], warnings: [], ...nudged }

  // On UPDATE a problem the stored object already had is not denied: it did not come from this
  // change, and denying it would block unrelated updates (labels, finalizer removal on delete).
  // The stored object's nudges are dropped: only the password being written needs a verdict.
  const before = input.operation === 'UPDATE' && input.oldObject
    ? new Set(run(checks, snapshot, { ...input, object: input.oldObject, oldObject: null }, now).findings.map((f) => `${f.rule}\n${f.message}`))
    : new Set<string>()

  const denials: string[] = []
  const warnings: string[] = []
  const reasons: string[] = []
  for (const finding of findings) {
    const configured = level(snapshot, finding.rule)
    const preexisting = configured === 'deny' && before.has(`${finding.rule}\n${finding.message}`)
    if (configured === 'deny' && !preexisting) {
      denials.push(finding.message)
      reasons.push(`${finding.rule} (deny): ${finding.message}`)
    } else {
      const note = preexisting ? ` (validation.${finding.rule} is deny, but the object already had this problem before this update, so it is not denied)` : ''
      warnings.push(`${finding.message}${note}`)
      reasons.push(`${finding.rule} (warn${preexisting ? ', pre-existing' : ''}): ${finding.message}`)
    }
  }
  reasons.push(...nudgeReasons)
  if (denials.length > 0) return { rule: RULE, outcome: 'deny', reasons, warnings, denial: denials.join(' '), ...nudged }
  return { rule: RULE, outcome: 'warn', reasons, warnings, ...nudged }
}

/** One line for reasons; never the password a nudge carries. */
function describeNudge(nudge: Nudge): string {
  return nudge.type === 'check-kopia-password'
    ? 'kopiaPassword: no verdict yet for this KOPIA_PASSWORD; a check of it against the catalog\'s repository is requested (not on dry runs), and a later request gets the answer'
    : `pre-warm of ${nudge.namespace}/${nudge.pvc} requested`
}

// What every admission rule returns. The response builder (review.ts) turns it into an
// AdmissionReview response; metrics and logs label by `webhook`, `kind` and `outcome`.
import type { Snapshot } from '../state/snapshot.ts'
import type { KopiaPasswordCheckNudge } from './kopia-password-nudge.ts'

export type Outcome =
  | 'restore' // PVC: dataSourceRef -> RD with a latestImage
  | 'wait' // PVC: dataSourceRef -> RD that is not ready yet; a backup exists
  | 'fresh' // PVC: starts empty
  | 'remove-datasource' // PVC: a dataSourceRef that would stay Pending forever was removed
  | 'deny'
  | 'inject' // mover Job: jitter and/or repository volume added
  | 'unchanged' // handled, nothing to do
  | 'warn' // validation: allowed with warnings
  | 'skip' // not ours: not participating, not a mover, unhandled kind
  | 'internal-error' // a rule threw: admitted unchanged, with a warning (handle.ts failedOpen)

export interface AdmissionInput {
  readonly uid: string
  readonly kind: { readonly group: string; readonly version: string; readonly kind: string }
  readonly operation: 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT'
  readonly namespace: string
  readonly name: string
  readonly object: Record<string, unknown> | null
  readonly oldObject: Record<string, unknown> | null
  readonly dryRun: boolean
}

/** Pre-warm the RD of a PVC whose admission decided `wait`. */
export interface PrewarmNudge {
  readonly type: 'prewarm'
  readonly namespace: string
  readonly pvc: string
  readonly destination: string
}

/**
 * A request for a loop to act (never executed on dry runs): pre-warm an RD, or check a Kopia
 * password the kopiaPassword rule has no verdict for (it carries the password, hidden from logs
 * and JSON: see kopia-password-nudge.ts).
 */
export type Nudge = PrewarmNudge | KopiaPasswordCheckNudge

export interface Decision {
  readonly rule: string
  readonly outcome: Outcome
  /** The object as it should be admitted; the response patch is its diff to the request's object. */
  readonly mutated?: Record<string, unknown>
  /** Why, in one line each: logs, `review --explain`, and the reason annotation. */
  readonly reasons: readonly string[]
  /** Shown to the client (kubectl prints them). */
  readonly warnings: readonly string[]
  /** Set when the request must be rejected: the message the client sees. */
  readonly denial?: string
  readonly nudge?: Nudge
}

export type AdmissionRule = (snapshot: Snapshot, input: AdmissionInput, now: number) => Decision

/**
 * The decision of a rule for a request that is not its business: admitted unchanged, no warning, no patch;
 * `reason` reaches only logs and `review --explain`.
 */
export function skip(rule: string, reason: string): Decision {
  return { rule, outcome: 'skip', reasons: [reason], warnings: [] }
}

// One AdmissionReview body in, one answer out: the whole request path, pure and synchronous.
// Used by the HTTPS server and by `review`, so both give the same answer.
import { errorMessage, toError } from '../errors.ts'
import type { Snapshot } from '../state/snapshot.ts'
import { decide, type Webhook } from './webhooks.ts'
import type { AdmissionInput, Decision } from './decision.ts'
import { buildResponse, parseReview, type AdmissionReviewResponse } from './review.ts'

/**
 * A parsed review and its answer, or why the body is not a review. `thrown` is set only for the
 * outcome `internal-error`: the Error the rule threw, for the caller's log; never in `review`.
 */
export type HandleResult =
  | { readonly ok: true; readonly input: AdmissionInput; readonly decision: Decision; readonly review: AdmissionReviewResponse; readonly thrown?: Error }
  | { readonly ok: false; readonly error: string }

/** A rule that throws must not fail the API request: allow, and say so (the failure is logged and counted by the caller). */
function failedOpen(error: unknown): Decision {
  const message = errorMessage(error)
  return {
    rule: 'internal-error',
    outcome: 'internal-error',
    reasons: [`internal error: ${message}`],
    warnings: [`volsync-autorestore could not decide (internal error: ${message}); the object was admitted unchanged`],
  }
}

/**
 * The whole admission path for one request body (already JSON-parsed): validate the review, run
 * `webhook`'s rule on `snapshot` at `now` (epoch ms, for catalog freshness), build the response in
 * `snapshot.config.mode`. Never throws: a body that is not a review is `{ ok: false, error }` (one line;
 * HTTP 400 or exit 2 at the caller), and a rule that throws is admitted unchanged as `internal-error` with
 * the Error on `thrown` for the caller to log. Reads only its arguments; writes nothing.
 */
export function handleReview(webhook: Webhook, snapshot: Snapshot, body: unknown, now: number): HandleResult {
  const parsed = parseReview(body)
  if (!parsed.ok) return parsed
  const { input } = parsed
  try {
    const decision = decide(webhook, snapshot, input, now)
    return { ok: true, input, decision, review: buildResponse(input, decision, snapshot.config.mode) }
  } catch (error) {
    const decision = failedOpen(error)
    return { ok: true, input, decision, review: buildResponse(input, decision, snapshot.config.mode), thrown: toError(error) }
  }
}

// AdmissionReview admission.k8s.io/v1 in and out. A body that is not a valid review is reported
// as one line (HTTP 400 at the server, exit 2 in the CLI), never thrown past the caller.
import type { AdmissionInput, Decision } from './decision.ts'
import { diffOperations, type PatchOperation } from './json-patch.ts'
import type { AdmissionReviewRequest } from './review-schema.ts'
// Generated from review-schema.ts: a review is validated without loading TypeBox or compiling with ajv.
import { validate as validateReview } from './review-validator.generated.js'

export interface AdmissionResponseBody {
  uid: string
  allowed: boolean
  patchType?: 'JSONPatch'
  patch?: string
  warnings?: string[]
  status?: { code: number; reason?: string; message: string }
}

export interface AdmissionReviewResponse {
  apiVersion: 'admission.k8s.io/v1'
  kind: 'AdmissionReview'
  response: AdmissionResponseBody
}

export type ParseResult = { readonly ok: true; readonly input: AdmissionInput } | { readonly ok: false; readonly error: string }

function firstError(): string {
  const error = validateReview.errors?.[0]
  if (!error) return 'not an AdmissionReview'
  const path = error.instancePath.replace(/^\//, '').replaceAll('/', '.')
  if (error.keyword === 'required') {
    const missing = String((error.params as { missingProperty?: unknown }).missingProperty)
    return `${path ? `${path}.` : ''}${missing} is required`
  }
  if (error.keyword === 'const') {
    return `${path} must be ${JSON.stringify((error.params as { allowedValue?: unknown }).allowedValue)}`
  }
  return `${path || 'body'} ${error.message ?? 'is invalid'}`
}

/** Validates a parsed JSON body. Every failure is a one-line reason that names the field. */
export function parseReview(body: unknown): ParseResult {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    return { ok: false, error: 'body must be a JSON object (an admission.k8s.io/v1 AdmissionReview)' }
  }
  if (!validateReview(body)) return { ok: false, error: `invalid AdmissionReview: ${firstError()}` }
  const request = body.request
  const object = (request.object ?? null) as Record<string, unknown> | null
  if (object === null && (request.operation === 'CREATE' || request.operation === 'UPDATE')) {
    return { ok: false, error: `invalid AdmissionReview: request.object is required for ${request.operation}` }
  }
  const metadata = (object?.metadata ?? null) as { name?: unknown; namespace?: unknown } | null
  return {
    ok: true,
    input: {
      uid: request.uid,
      kind: request.kind,
      operation: request.operation,
      namespace: request.namespace ?? (typeof metadata?.namespace === 'string' ? metadata.namespace : ''),
      name: request.name || (typeof metadata?.name === 'string' ? metadata.name : ''),
      object,
      oldObject: (request.oldObject ?? null) as Record<string, unknown> | null,
      dryRun: request.dryRun === true,
    },
  }
}

/**
 * RFC 6902 operations that turn the request's object into the decided one (`decision.mutated`), built
 * from the rule's copy-on-write changes (src/admission/json-patch.ts: only the top-level keys and the
 * changed paths are compared; the values are shared with `mutated`, not copied). [] without a mutation.
 */
export function patchOperations(input: AdmissionInput, decision: Decision): PatchOperation[] {
  if (!decision.mutated || !input.object) return []
  return diffOperations(input.object, decision.mutated)
}

/**
 * The AdmissionReview response for `decision`: always `allowed` with the decision's warnings, except a
 * denial in enforce mode (403 with the denial as message); in enforce mode a `mutated` object becomes a
 * base64 JSON Patch. In audit mode nothing is patched or denied, and the would-be action is prepended
 * (mutation) or appended (denial) as a warning. An `internal-error` decision is admitted unchanged in
 * either mode.
 */
export function buildResponse(input: AdmissionInput, decision: Decision, mode: 'enforce' | 'audit'): AdmissionReviewResponse {
  const response: AdmissionResponseBody = { uid: input.uid, allowed: true }
  const warnings = [...decision.warnings]
  if (decision.outcome === 'internal-error') {
    // A rule that threw decided nothing: admitted unchanged, whatever else the decision holds.
  } else if (mode === 'audit') {
    if (decision.denial) warnings.push(`audit mode: would deny: ${decision.denial}`)
    else if (decision.mutated) warnings.unshift(`audit mode: would ${decision.outcome}; no change made`)
  } else if (decision.denial) {
    response.allowed = false
    response.status = { code: 403, reason: 'Forbidden', message: decision.denial }
  } else {
    const operations = patchOperations(input, decision)
    if (operations.length > 0) {
      response.patchType = 'JSONPatch'
      response.patch = Buffer.from(JSON.stringify(operations)).toString('base64')
    }
  }
  if (warnings.length > 0) response.warnings = warnings
  return { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response }
}

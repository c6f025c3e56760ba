// The AdmissionReview admission.k8s.io/v1 request as a TypeBox schema: the source of the type and
// of review-validator.generated.js (ajv standalone code, made by scripts/review-validator.ts), so
// answering a review loads neither TypeBox nor ajv's compiler.
import { Type, type Static } from '@sinclair/typebox'

const GroupVersionKind = Type.Object({ group: Type.String(), version: Type.String(), kind: Type.String({ minLength: 1 }) })
const KubeObject = Type.Object({}, { additionalProperties: true })

/** What a review must hold for a decision: apiVersion/kind, and the request's uid, kind, operation and objects. */
export const AdmissionReviewRequest = Type.Object({
  apiVersion: Type.Literal('admission.k8s.io/v1'),
  kind: Type.Literal('AdmissionReview'),
  request: Type.Object({
    uid: Type.String({ minLength: 1 }),
    kind: GroupVersionKind,
    operation: Type.Union([Type.Literal('CREATE'), Type.Literal('UPDATE'), Type.Literal('DELETE'), Type.Literal('CONNECT')]),
    name: Type.Optional(Type.String()),
    namespace: Type.Optional(Type.String()),
    object: Type.Optional(Type.Union([KubeObject, Type.Null()])),
    oldObject: Type.Optional(Type.Union([KubeObject, Type.Null()])),
    dryRun: Type.Optional(Type.Boolean()),
  }),
})
export type AdmissionReviewRequest = Static<typeof AdmissionReviewRequest>

/** ajv's options for the review schema: the first error only, no coercion, no defaults. */
export const REVIEW_AJV_OPTIONS = { allErrors: false, strict: false } as const

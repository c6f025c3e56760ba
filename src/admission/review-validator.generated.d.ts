// Types of the generated ajv standalone validator (review-validator.generated.js, made by
// scripts/review-validator.ts from review-schema.ts).
import type { ErrorObject } from 'ajv'
import type { AdmissionReviewRequest } from './review-schema.ts'

/** ajv's validate function: true when `data` is an AdmissionReviewRequest, else false with `validate.errors` set. */
export declare const validate: ((data: unknown) => data is AdmissionReviewRequest) & { errors?: ErrorObject[] | null }

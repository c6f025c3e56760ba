// Errors travel as metav1.Status objects, shaped as kube-apiserver sends them.
import type { JsonObject } from './json.ts'

export class ApiError extends Error {
  readonly code: number
  readonly reason: string | undefined
  readonly details: JsonObject | undefined

  constructor(code: number, reason: string | undefined, message: string, details?: JsonObject) {
    super(message)
    this.code = code
    this.reason = reason
    this.details = details
  }

  toStatus(): JsonObject {
    const status: JsonObject = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: this.message }
    if (this.reason !== undefined) status.reason = this.reason
    if (this.details !== undefined) status.details = this.details
    status.code = this.code
    return status
  }
}

/** What errors need to know about a resource: `secrets` or `leases.coordination.k8s.io`. */
export interface ErrorSubject {
  readonly group: string
  readonly resource: string
  readonly kind: string
}

function qualified(r: ErrorSubject): string {
  return r.group === '' ? r.resource : `${r.resource}.${r.group}`
}

export function notFound(r: ErrorSubject, name: string): ApiError {
  return new ApiError(404, 'NotFound', `${qualified(r)} "${name}" not found`, { name, group: r.group, kind: r.resource })
}

export function pathNotFound(): ApiError {
  return new ApiError(404, 'NotFound', 'the server could not find the requested resource', {})
}

export function alreadyExists(r: ErrorSubject, name: string): ApiError {
  return new ApiError(409, 'AlreadyExists', `${qualified(r)} "${name}" already exists`, { name, group: r.group, kind: r.resource })
}

export function conflict(r: ErrorSubject, name: string, why = 'the object has been modified; please apply your changes to the latest version and try again'): ApiError {
  return new ApiError(409, 'Conflict', `Operation cannot be fulfilled on ${qualified(r)} "${name}": ${why}`, { name, group: r.group, kind: r.resource })
}

export interface FieldCause {
  readonly reason: string // FieldValueRequired, FieldValueInvalid, FieldValueForbidden
  readonly field: string
  readonly message: string
}

export function invalid(r: ErrorSubject, name: string, causes: readonly FieldCause[]): ApiError {
  const text = causes.map((c) => `${c.field}: ${c.message}`).join(', ')
  const summary = causes.length === 1 ? text : `[${text}]`
  return new ApiError(422, 'Invalid', `${r.kind} "${name}" is invalid: ${summary}`, { name, group: r.group, kind: r.kind, causes: causes.map((c) => ({ ...c })) })
}

/** 422 without field causes, as the apiserver answers a JSON patch that cannot be applied. */
export function unprocessable(message: string): ApiError {
  return new ApiError(422, 'Invalid', message)
}

export function badRequest(message: string): ApiError {
  return new ApiError(400, 'BadRequest', message)
}

export function forbidden(r: ErrorSubject, name: string, why: string): ApiError {
  return new ApiError(403, 'Forbidden', `${qualified(r)} "${name}" is forbidden: ${why}`, { name, group: r.group, kind: r.resource })
}

export function expired(message: string): ApiError {
  return new ApiError(410, 'Expired', message)
}

export function methodNotAllowed(method: string): ApiError {
  return new ApiError(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource (${method})`)
}

export function unsupportedMediaType(contentType: string, accepted: readonly string[]): ApiError {
  return new ApiError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format (${contentType}) - accepted media types include: ${accepted.join(', ')}`)
}

export function internalError(message: string): ApiError {
  // Reason left empty, as the apiserver does for storage errors such as "resourceVersion should not be set".
  return new ApiError(500, undefined, message)
}

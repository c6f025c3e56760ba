// Reading failures from @kubernetes/client-node: an ApiException carries the HTTP code, and its
// body is the apiserver's Status as unparsed JSON text.
import { ApiException } from '@kubernetes/client-node'
import { errorMessage } from '../errors.ts'
import { asObject } from '../json.ts'

/** The HTTP status of a failed API call, or undefined for a failure that never got an answer. */
export function apiStatusCode(error: unknown): number | undefined {
  return error instanceof ApiException ? error.code : undefined
}

/** A one-line description for logs: code, reason and the Status message when there is one. */
export function describeApiError(error: unknown): string {
  if (!(error instanceof ApiException)) return errorMessage(error)
  const status = parseStatus(error.body)
  const reason = typeof status?.reason === 'string' ? ` ${status.reason}` : ''
  const message = typeof status?.message === 'string' ? `: ${status.message}` : ''
  return `HTTP ${error.code}${reason}${message}`
}

function parseStatus(body: unknown): Record<string, unknown> | undefined {
  let value: unknown = body
  if (typeof body === 'string') {
    try {
      value = JSON.parse(body)
    } catch {
      return undefined
    }
  }
  return asObject(value)
}

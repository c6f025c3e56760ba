// One raw, paged GET of a Kubernetes list, authenticated and TLS-configured by client-node: the
// items keep the JSON shape watch events have (client-node's typed list calls turn times into
// Dates), and nothing but the caller's reducer ever keeps them. Also the one-line error messages
// the informer reports.
import { HttpMethod, IsomorphicFetchHttpLibrary, RequestContext, type KubeConfig } from '@kubernetes/client-node'

export type KubeObject = Record<string, unknown>

export function asObject(value: unknown): KubeObject | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as KubeObject) : undefined
}

export function text(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined
}

/** A Status body as one line: `HTTP 403 Forbidden: secrets is forbidden: ...`. */
export function statusMessage(code: number, status: KubeObject | undefined): string {
  const reason = text(status?.reason)
  const message = text(status?.message)
  const head = reason === undefined ? `HTTP ${code}` : `HTTP ${code} ${reason}`
  return message === undefined ? head : `${head}: ${message}`
}

export function errorMessage(error: unknown): string {
  if (!(error instanceof Error)) return String(error)
  const code = (error as { statusCode?: unknown }).statusCode
  if (typeof code === 'number') return `HTTP ${code} ${error.message}` // client-node's Watch refusals
  const cause = error.cause instanceof Error && error.cause.message !== error.message ? ` (${error.cause.message})` : ''
  return `${error.message}${cause}` // undici: "fetch failed (connect ECONNREFUSED ...)", "terminated (other side closed)"
}

/** One raw GET of a list page, authenticated (and TLS-configured) by client-node. */
export async function getListPage(kc: KubeConfig, url: URL, signal: AbortSignal): Promise<KubeObject> {
  const request = new RequestContext(url.toString(), HttpMethod.GET)
  request.setHeaderParam('Accept', 'application/json')
  await kc.applySecurityAuthentication(request)
  request.setSignal(signal)
  const response = await new IsomorphicFetchHttpLibrary().send(request).toPromise()
  const body = await response.body.text()
  let parsed: KubeObject | undefined
  try {
    parsed = asObject(JSON.parse(body))
  } catch {
    parsed = undefined
  }
  if (response.httpStatusCode !== 200) throw new Error(statusMessage(response.httpStatusCode, parsed))
  if (!parsed) throw new Error('the list response is not a JSON object')
  return parsed
}


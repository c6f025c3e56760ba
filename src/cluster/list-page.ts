// One raw, paged GET of a Kubernetes list, authenticated and TLS-configured by client-node: the
// items keep the JSON shape watch events have (client-node's typed list calls turn times into
// Dates), and nothing but the caller's reducer ever keeps them. Also the authenticated GET the
// watch stream shares, and the one-line error messages the informer reports.
import { HttpMethod, IsomorphicFetchHttpLibrary, RequestContext, type KubeConfig, type ResponseContext } from '@kubernetes/client-node'
import { asObject, type JsonObject } from '../json.ts'

/** A Kubernetes object (or list, or Status) as raw JSON. */
export type KubeObject = JsonObject

/** A non-empty string, else undefined: Kubernetes leaves unset fields empty as often as it omits them. */
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

/**
 * A failed HTTP request as one line: the Error's message, with its cause when that says more
 * (undici hides the socket error there). Non-Errors as String(value).
 */
export function describeHttpError(error: unknown): string {
  if (!(error instanceof Error)) return String(error)
  const cause = error.cause instanceof Error && error.cause.message !== error.message ? ` (${error.cause.message})` : ''
  return `${error.message}${cause}` // undici: "fetch failed (connect ECONNREFUSED ...)", "terminated (other side closed)"
}

/**
 * One GET of `url` with the kubeconfig's credentials and TLS settings (client-node applies them to
 * the request: token or client certificate, CA, skipTLSVerify), `Accept: application/json`.
 * Resolves once the response head arrived, whatever its status; the body is the caller's to read
 * (or to cancel). Rejects on a network failure or when `signal` aborts.
 */
export async function authenticatedGet(kc: KubeConfig, url: URL, signal: AbortSignal): Promise<ResponseContext> {
  const request = new RequestContext(url.toString(), HttpMethod.GET)
  request.setHeaderParam('Accept', 'application/json')
  await kc.applySecurityAuthentication(request)
  request.setSignal(signal)
  return new IsomorphicFetchHttpLibrary().send(request).toPromise()
}

/** A whole response body as a JSON object; undefined when it is not one (e.g. a proxy's HTML error page). */
export async function objectBody(response: ResponseContext): Promise<KubeObject | undefined> {
  try {
    return asObject(JSON.parse(await response.body.text()))
  } catch {
    return undefined
  }
}

/** One raw GET of a list page, authenticated (and TLS-configured) by client-node. */
export async function getListPage(kc: KubeConfig, url: URL, signal: AbortSignal): Promise<KubeObject> {
  const response = await authenticatedGet(kc, url, signal)
  const parsed = await objectBody(response)
  if (response.httpStatusCode !== 200) throw new Error(statusMessage(response.httpStatusCode, parsed))
  if (!parsed) throw new Error('the list response is not a JSON object')
  return parsed
}


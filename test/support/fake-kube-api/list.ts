// Collection GETs: selectors, resourceVersion checks, limit/continue paging.
import { meta, type JsonObject } from './json.ts'
import { apiVersionOf, type ResourceDef } from './resources.ts'
import { parseFieldSelector, parseLabelSelector, type Matcher } from './selectors.ts'
import { ApiError, badRequest } from './status.ts'
import type { ObjectStore } from './store.ts'

export function flag(value: string | null): boolean {
  return value === 'true' || value === '1'
}

/** labelSelector and fieldSelector together; `name` narrows to one object (legacy watch paths). */
export function queryMatcher(def: ResourceDef, q: URLSearchParams, name?: string): Matcher {
  const labels = parseLabelSelector(q.get('labelSelector'))
  const fields = parseFieldSelector(q.get('fieldSelector'), def)
  return (o) => labels(o) && fields(o) && (name === undefined || meta(o).name === name)
}

/** The resourceVersion query parameter: '' when absent. */
export function resourceVersionParam(q: URLSearchParams): string {
  const rv = q.get('resourceVersion') ?? ''
  if (rv !== '' && !/^\d+$/.test(rv)) throw badRequest(`resourceVersion: Invalid value: "${rv}": must be a non-negative integer`)
  return rv
}

function sortKey(o: JsonObject): string {
  return `${String(meta(o).namespace ?? '')}/${String(meta(o).name)}`
}

export function listResponse(store: ObjectStore, def: ResourceDef, namespace: string | undefined, q: URLSearchParams): JsonObject {
  const current = store.resourceVersion
  const rv = resourceVersionParam(q)
  if (Number(rv) > current) {
    // The apiserver waits a few seconds for its cache to catch up, then gives up like this.
    throw new ApiError(504, 'Timeout', `Too large resource version: ${rv}, current: ${current}`, { causes: [{ reason: 'ResourceVersionTooLarge', message: 'Too large resource version' }], retryAfterSeconds: 1 })
  }
  let items = store.list(def, namespace, queryMatcher(def, q))
  const metadata: JsonObject = { resourceVersion: String(current) }
  // Simplification: later pages read the current state, where the real API serves the first page's snapshot.
  const token = q.get('continue')
  if (token) {
    let after: unknown
    try {
      after = (JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { after?: unknown }).after
    } catch {
      throw badRequest('continue key is not valid')
    }
    if (typeof after !== 'string') throw badRequest('continue key is not valid')
    items = items.filter((o) => sortKey(o) > after)
  }
  const limit = Number(q.get('limit') ?? '0')
  if (limit > 0 && items.length > limit) {
    metadata.continue = Buffer.from(JSON.stringify({ rv: current, after: sortKey(items[limit - 1]!) })).toString('base64url')
    // Unknown (so unset) when selectors filtered the list, as the API documents.
    if (!q.get('labelSelector') && !q.get('fieldSelector')) metadata.remainingItemCount = items.length - limit
    items = items.slice(0, limit)
  }
  // Typed (built-in) lists omit apiVersion/kind on their items; custom resource lists keep them.
  if (!def.custom) items = items.map(({ apiVersion: _a, kind: _k, ...rest }) => rest)
  return { apiVersion: apiVersionOf(def), kind: `${def.kind}List`, metadata, items }
}

// RBAC as kube-apiserver enforces it: request attributes derived from the URL the way the
// apiserver's RequestInfoFactory does (k8s.io/apiserver/pkg/endpoints/request), rules matched the
// way the RBAC authorizer does (k8s.io/kubernetes/plugin/pkg/auth/authorizer/rbac), and the 403
// Status worded as the apiserver's Forbidden responder words it. Only resource requests are
// authorized: the non-resource paths the fake serves (discovery) are what every authenticated user
// may read through the default system:discovery binding.
import type { PolicyRule, RbacRules } from '../../../src/cluster/policy-rule.ts'
import { flag } from './list.ts'
import type { JsonObject } from './json.ts'
import { ApiError } from './status.ts'

/** The ServiceAccount the fake answers as when none is given: the server's own, in the chart's namespace. */
export const DEFAULT_RBAC_USER = 'system:serviceaccount:volsync-system:volsync-autorestore'

/**
 * What the authorizer sees of one resource request; '' where the apiserver has none (core group,
 * no subresource, cluster scope or all namespaces, no name).
 */
export interface RequestAttributes {
  /** get, list, watch, create, update, patch, delete, deletecollection (or '' for an unknown method). */
  readonly verb: string
  readonly group: string
  /** The plural, as in the URL. */
  readonly resource: string
  readonly subresource: string
  readonly namespace: string
  readonly name: string
}

// Path steps after /namespaces/{name} that are subresources of the Namespace, not resources in it.
const NAMESPACE_SUBRESOURCES = new Set(['status', 'finalize'])

/** The `metadata.name` a field selector pins exactly (`=` or `==`), as fields.Selector.RequiresExactMatch. */
function exactName(fieldSelector: string | null): string | undefined {
  if (!fieldSelector) return undefined
  for (const term of fieldSelector.split(',')) {
    const match = /^\s*metadata\.name\s*==?\s*(.*?)\s*$/.exec(term)
    if (match) return match[1]
  }
  return undefined
}

// A name the apiserver would accept as a path segment (path.IsValidPathSegmentName).
function validPathSegment(name: string): boolean {
  return name !== '.' && name !== '..' && !name.includes('/') && !name.includes('%')
}

/**
 * The attributes of a request, or undefined for a non-resource request (`/api`, `/apis`,
 * `/apis/{group}`, anything outside the API prefixes). Reads method, path and the `watch` and
 * `fieldSelector` query parameters only; the path need not name a resource the fake serves (the
 * apiserver authorizes before it routes, so a denied request for an unknown resource is a 403).
 */
export function requestAttributes(method: string, pathname: string, query: URLSearchParams): RequestAttributes | undefined {
  let parts = pathname.split('/').filter((s) => s !== '').map((s) => decodeURIComponent(s))
  if (parts.length < 3) return undefined
  let group = ''
  if (parts[0] === 'apis') {
    if (parts.length < 4) return undefined
    group = parts[1]!
    parts = parts.slice(3)
  } else if (parts[0] === 'api') {
    parts = parts.slice(2)
  } else {
    return undefined
  }
  let verb: string
  if (parts[0] === 'watch') {
    verb = 'watch'
    parts = parts.slice(1)
  } else {
    verb = { POST: 'create', GET: 'get', HEAD: 'get', PUT: 'update', PATCH: 'patch', DELETE: 'delete' }[method] ?? ''
  }
  let namespace = ''
  if (parts[0] === 'namespaces' && parts.length > 1) {
    // The apiserver's own quirk, kept: a Namespace object is "in" itself, so a Role in `media` may
    // grant `get namespaces` on /api/v1/namespaces/media.
    namespace = parts[1]!
    if (parts.length > 2 && !NAMESPACE_SUBRESOURCES.has(parts[2]!)) parts = parts.slice(2)
  }
  const [resource = '', objectName = '', subresource = ''] = parts
  let name = objectName
  if (name === '' && verb === 'get') {
    verb = flag(query.get('watch')) ? 'watch' : 'list'
    // A list or watch pinned to one name by field selector is authorized as a request for that name.
    const pinned = exactName(query.get('fieldSelector'))
    if (pinned !== undefined && validPathSegment(pinned)) name = pinned
  }
  if (name === '' && verb === 'delete') verb = 'deletecollection'
  return { verb, group, resource, subresource, namespace, name }
}

function matchesOrStar(allowed: readonly string[], requested: string): boolean {
  return allowed.includes('*') || allowed.includes(requested)
}

/** One rule against one request, as rbac.RuleAllows: verb, group, resource (`*`, exact, or star-slash-subresource) and resourceNames. */
export function ruleAllows(rule: PolicyRule, request: RequestAttributes): boolean {
  const combined = request.subresource === '' ? request.resource : `${request.resource}/${request.subresource}`
  const resourceMatches =
    rule.resources.includes('*') ||
    rule.resources.includes(combined) ||
    (request.subresource !== '' && rule.resources.includes(`*/${request.subresource}`))
  const names = rule.resourceNames ?? []
  return (
    matchesOrStar(rule.verbs, request.verb) &&
    matchesOrStar(rule.apiGroups, request.group) &&
    resourceMatches &&
    // An empty name (create, an unpinned list or watch) never matches a name-restricted rule.
    (names.length === 0 || names.includes(request.name))
  )
}

/** Cluster rules apply to every request; a namespace's rules only to requests in that namespace. */
export function rbacAllows(rules: RbacRules, request: RequestAttributes): boolean {
  if (rules.cluster.some((rule) => ruleAllows(rule, request))) return true
  if (request.namespace === '') return false
  const inNamespace = Object.hasOwn(rules.namespaced, request.namespace) ? rules.namespaced[request.namespace] : undefined
  return (inNamespace ?? []).some((rule) => ruleAllows(rule, request))
}

/** The sentence after "is forbidden:", as the apiserver's forbiddenMessage writes it. */
export function forbiddenReason(user: string, request: RequestAttributes): string {
  const resource = request.subresource === '' ? request.resource : `${request.resource}/${request.subresource}`
  const scope = request.namespace === '' ? 'at the cluster scope' : `in the namespace "${request.namespace}"`
  return `User "${user}" cannot ${request.verb} resource "${resource}" in API group "${request.group}" ${scope}`
}

/**
 * One line for a test's failure output: `patch replicationdestinations/status "x" in API group
 * "volsync.backube" in the namespace "media"` (the name only when the request had one).
 */
export function describeRequest(request: RequestAttributes): string {
  const resource = request.subresource === '' ? request.resource : `${request.resource}/${request.subresource}`
  const name = request.name === '' ? '' : ` "${request.name}"`
  const scope = request.namespace === '' ? 'at the cluster scope' : `in the namespace "${request.namespace}"`
  return `${request.verb} ${resource}${name} in API group "${request.group}" ${scope}`
}

/** The 403 the apiserver answers a denied request with (errors.NewForbidden): details omit empty fields, as its JSON does. */
export function forbiddenError(user: string, request: RequestAttributes): ApiError {
  const qualified = request.group === '' ? request.resource : `${request.resource}.${request.group}`
  const subject = request.name === '' ? qualified : `${qualified} "${request.name}"`
  const details: JsonObject = {}
  if (request.name !== '') details.name = request.name
  if (request.group !== '') details.group = request.group
  if (request.resource !== '') details.kind = request.resource
  return new ApiError(403, 'Forbidden', `${subject} is forbidden: ${forbiddenReason(user, request)}`, details)
}

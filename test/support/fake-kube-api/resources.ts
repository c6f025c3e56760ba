// The resource types the fake serves, and how request paths map onto them.
import { badRequest, pathNotFound, type ApiError } from './status.ts'

export interface ResourceDef {
  readonly group: string // '' is the core group, served under /api
  readonly version: string
  readonly resource: string // plural, as in the URL
  readonly singular: string
  readonly kind: string
  readonly namespaced: boolean
  readonly statusSubresource: boolean
  /** Strategy keeps metadata.generation (CRs and webhook configurations do; core types here do not). */
  readonly generation: boolean
  /** A delete answers with the object rather than a Status (ReturnDeletedObject in the registry). */
  readonly returnDeletedObject: boolean
  /** Custom resource: needs apiVersion/kind in bodies, PUT needs a resourceVersion, status dropped on create. */
  readonly custom: boolean
  /** Field selectors beyond metadata.name / metadata.namespace, mapped to the path they read. */
  readonly fields: Readonly<Record<string, string>>
}

function def(d: Omit<ResourceDef, 'singular' | 'fields' | 'custom' | 'generation' | 'returnDeletedObject' | 'statusSubresource'> & Partial<ResourceDef>): ResourceDef {
  return {
    singular: d.kind.toLowerCase(),
    fields: {},
    custom: false,
    generation: false,
    returnDeletedObject: false,
    statusSubresource: false,
    ...d,
  }
}

const eventFields: Record<string, string> = { reason: 'reason', reportingComponent: 'reportingComponent', source: 'source.component', type: 'type' }
for (const f of ['kind', 'namespace', 'name', 'uid', 'apiVersion', 'resourceVersion', 'fieldPath']) eventFields[`involvedObject.${f}`] = `involvedObject.${f}`

export const RESOURCES: readonly ResourceDef[] = [
  def({ group: '', version: 'v1', resource: 'namespaces', kind: 'Namespace', namespaced: false, statusSubresource: true, returnDeletedObject: true, fields: { 'status.phase': 'status.phase' } }),
  def({ group: '', version: 'v1', resource: 'persistentvolumeclaims', kind: 'PersistentVolumeClaim', namespaced: true, statusSubresource: true, returnDeletedObject: true }),
  def({ group: '', version: 'v1', resource: 'secrets', kind: 'Secret', namespaced: true, fields: { type: 'type' } }),
  def({ group: '', version: 'v1', resource: 'events', kind: 'Event', namespaced: true, fields: eventFields }),
  def({ group: 'coordination.k8s.io', version: 'v1', resource: 'leases', kind: 'Lease', namespaced: true }),
  def({ group: 'volsync.backube', version: 'v1alpha1', resource: 'replicationdestinations', kind: 'ReplicationDestination', namespaced: true, statusSubresource: true, generation: true, custom: true }),
  def({ group: 'volsync.backube', version: 'v1alpha1', resource: 'replicationsources', kind: 'ReplicationSource', namespaced: true, statusSubresource: true, generation: true, custom: true }),
  // VolSync's mover Jobs, for the admission chain's mover-Job webhooks (no controller runs them).
  def({ group: 'batch', version: 'v1', resource: 'jobs', kind: 'Job', namespaced: true, statusSubresource: true, generation: true }),
  def({ group: 'admissionregistration.k8s.io', version: 'v1', resource: 'mutatingwebhookconfigurations', kind: 'MutatingWebhookConfiguration', namespaced: false, generation: true }),
  def({ group: 'admissionregistration.k8s.io', version: 'v1', resource: 'validatingwebhookconfigurations', kind: 'ValidatingWebhookConfiguration', namespaced: false, generation: true }),
]

export function resourceKey(d: ResourceDef): string {
  return d.group === '' ? d.resource : `${d.resource}.${d.group}`
}

export function apiVersionOf(d: ResourceDef): string {
  return d.group === '' ? d.version : `${d.group}/${d.version}`
}

export const NAMESPACES = RESOURCES[0]!

/** Accepts `secrets`, `leases.coordination.k8s.io`, a Kind, or an unambiguous plural. */
export function findResource(ref: string): ResourceDef {
  const matches = RESOURCES.filter((d) => resourceKey(d) === ref || d.kind === ref || d.resource === ref)
  if (matches.length !== 1) throw new Error(`fake-kube-api: unknown or ambiguous resource ${JSON.stringify(ref)}`)
  return matches[0]!
}

export function resourceForObject(apiVersion: string, kind: string): ResourceDef {
  const found = RESOURCES.find((d) => apiVersionOf(d) === apiVersion && d.kind === kind)
  if (!found) throw new Error(`fake-kube-api: no resource serves ${apiVersion} ${kind}`)
  return found
}

export type ParsedPath =
  | { readonly type: 'discovery'; readonly body: unknown }
  | { readonly type: 'resource'; readonly def: ResourceDef; readonly namespace?: string; readonly name?: string; readonly subresource?: string; readonly watchPrefix: boolean }

function groupVersions(): Map<string, ResourceDef[]> {
  const byGv = new Map<string, ResourceDef[]>()
  for (const d of RESOURCES) byGv.set(apiVersionOf(d), [...(byGv.get(apiVersionOf(d)) ?? []), d])
  return byGv
}

function resourceList(groupVersion: string, defs: readonly ResourceDef[]): unknown {
  const verbs = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch']
  const resources: unknown[] = []
  for (const d of defs) {
    resources.push({ name: d.resource, singularName: d.singular, namespaced: d.namespaced, kind: d.kind, verbs })
    if (d.statusSubresource) resources.push({ name: `${d.resource}/status`, singularName: '', namespaced: d.namespaced, kind: d.kind, verbs: ['get', 'patch', 'update'] })
  }
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion, resources }
}

function discovery(segments: readonly string[]): unknown {
  const byGv = groupVersions()
  if (segments.length === 1 && segments[0] === 'api') return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [] }
  if (segments.length === 1 && segments[0] === 'apis') {
    const groups = [...new Set(RESOURCES.filter((d) => d.group !== '').map((d) => d.group))].map((name) => {
      const versions = [...byGv.keys()].filter((gv) => gv.startsWith(`${name}/`)).map((gv) => ({ groupVersion: gv, version: gv.slice(name.length + 1) }))
      return { name, versions, preferredVersion: versions[0] }
    })
    return { kind: 'APIGroupList', apiVersion: 'v1', groups }
  }
  const gv = segments[0] === 'api' ? segments[1] : `${segments[1]}/${segments[2]}`
  const defs = gv === undefined ? undefined : byGv.get(gv)
  return defs && gv !== undefined ? resourceList(gv, defs) : undefined
}

/** Maps `/api/v1/...` and `/apis/group/version/...` (optionally with the legacy `watch/` prefix) to a resource. */
export function parsePath(pathname: string): ParsedPath | ApiError {
  const segments = pathname.split('/').filter((s) => s !== '').map((s) => decodeURIComponent(s))
  let group: string
  let version: string
  let rest: string[]
  if (segments[0] === 'api' && segments.length >= 1) {
    group = ''
    version = segments[1] ?? ''
    rest = segments.slice(2)
  } else if (segments[0] === 'apis') {
    group = segments[1] ?? ''
    version = segments[2] ?? ''
    rest = segments.slice(3)
  } else {
    return pathNotFound()
  }
  if (rest.length === 0) {
    const body = discovery(segments)
    return body === undefined ? pathNotFound() : { type: 'discovery', body }
  }
  const inGroup = RESOURCES.filter((d) => d.group === group && d.version === version)
  const watchPrefix = rest[0] === 'watch'
  if (watchPrefix) rest = rest.slice(1)
  let namespace: string | undefined
  if (rest[0] === 'namespaces' && rest.length >= 3 && inGroup.some((d) => d.namespaced && d.resource === rest[2])) {
    namespace = rest[1]
    rest = rest.slice(2)
  }
  const [resource, name, subresource, ...extra] = rest
  const found = inGroup.find((d) => d.resource === resource)
  if (!found || extra.length > 0) return pathNotFound()
  // A namespaced resource addressed without a namespace is only valid as an all-namespaces collection.
  if (found.namespaced && namespace === undefined && name !== undefined) return pathNotFound()
  if (!found.namespaced && namespace !== undefined) return pathNotFound()
  if (subresource !== undefined && !(subresource === 'status' && found.statusSubresource)) return pathNotFound()
  if (name === '') return badRequest('name must not be empty')
  return {
    type: 'resource',
    def: found,
    watchPrefix,
    ...(namespace !== undefined ? { namespace } : {}),
    ...(name !== undefined ? { name } : {}),
    ...(subresource !== undefined ? { subresource } : {}),
  }
}

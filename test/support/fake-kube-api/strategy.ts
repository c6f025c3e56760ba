// Per-resource strategy bits of the registry: system fields, defaults, name rules.
import { clone, isObject, meta, str, type JsonObject } from './json.ts'
import { NAMESPACES, apiVersionOf, type ResourceDef } from './resources.ts'
import { invalid } from './status.ts'

const LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/
const SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/
export const SYSTEM_FIELDS = ['uid', 'creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'generation'] as const

export function timestamp(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z')
}

export function generatedSuffix(): string {
  const alphabet = 'bcdfghjklmnpqrstvwxz2456789' // the apiserver's name generator alphabet
  let out = ''
  for (let i = 0; i < 5; i++) out += alphabet[Math.floor(Math.random() * alphabet.length)]
  return out
}

export function keyOf(object: JsonObject): string {
  return `${str(meta(object).namespace) ?? ''}/${str(meta(object).name) ?? ''}`
}

export function finalizers(object: JsonObject): string[] {
  const list = meta(object).finalizers
  return Array.isArray(list) ? list.filter((f): f is string => typeof f === 'string') : []
}

export function copyField(from: JsonObject, to: JsonObject, field: string): void {
  if (Object.hasOwn(from, field)) to[field] = clone(from[field])
  else delete to[field]
}

/** The part of an object whose change bumps metadata.generation. */
export function generationContent(d: ResourceDef, object: JsonObject): JsonObject {
  const { metadata: _m, status, ...rest } = object
  return d.statusSubresource ? rest : { ...rest, status }
}

/** apiVersion, kind, metadata first, as the apiserver serialises objects. */
export function ordered(d: ResourceDef, object: JsonObject): JsonObject {
  const { apiVersion: _a, kind: _k, metadata, ...rest } = object
  return { apiVersion: apiVersionOf(d), kind: d.kind, metadata, ...rest }
}

export function validateName(d: ResourceDef, name: string): void {
  const isNamespace = d === NAMESPACES
  if ((isNamespace ? LABEL : SUBDOMAIN).test(name) && name.length <= (isNamespace ? 63 : 253)) return
  const what = isNamespace ? `label must consist of lower case alphanumeric characters or '-'` : `subdomain must consist of lower case alphanumeric characters, '-' or '.'`
  throw invalid(d, name, [{ reason: 'FieldValueInvalid', field: 'metadata.name', message: `Invalid value: "${name}": a lowercase RFC 1123 ${what}, and must start and end with an alphanumeric character` }])
}

/** Strategy defaults: namespaces get their phase, name label and kubernetes finalizer; PVCs start Pending. */
export function applyDefaults(d: ResourceDef, object: JsonObject, overwriteStatus: boolean): void {
  if (d === NAMESPACES) {
    const m = meta(object)
    m.labels = { ...(isObject(m.labels) ? m.labels : {}), 'kubernetes.io/metadata.name': m.name }
    const spec = isObject(object.spec) ? object.spec : {}
    object.spec = { ...spec, finalizers: Array.isArray(spec.finalizers) ? spec.finalizers : ['kubernetes'] }
    if (overwriteStatus || !isObject(object.status)) object.status = { phase: 'Active' }
  }
  if (d.resource === 'persistentvolumeclaims' && (overwriteStatus || !isObject(object.status))) object.status = { phase: 'Pending' }
}

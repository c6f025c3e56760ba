// Server-side apply (PATCH application/apply-patch+yaml), with a minimal model of field ownership.
//
// What is modelled, as kube-apiserver's fieldmanager does it:
// - an apply creates the object when it does not exist (and then needs `create` as well as `patch`,
//   which the fake checks when it enforces RBAC);
// - a manager owns the fields (leaf paths) of its last applied object; metadata.managedFields holds
//   one `operation: Apply` entry per manager, with fieldsV1 in the API's `f:<key>` form;
// - an apply sets every field it holds; a field the manager applied before and no longer holds is
//   removed, unless another manager owns it too;
// - a field another manager owns with a different value is a conflict: 409 Conflict naming the
//   managers and fields, unless `force`, which moves the field to the applier;
// - another manager applying the same value shares the field (no conflict).
// Simplifications: only Apply operations are tracked: creates, updates and merge/JSON patches neither
// take ownership nor conflict (kube-apiserver records them as `operation: Update` entries); lists are
// atomic (one leaf, as for CRD lists without x-kubernetes-list-type); status is never applied; the
// admission chain is not called for applies.
import { clone, isObject, meta, type JsonObject } from './json.ts'
import { ApiError } from './status.ts'

export const APPLY_PATCH_TYPE = 'application/apply-patch+yaml'

export interface ApplyOptions {
  readonly fieldManager: string
  readonly force: boolean
  /** apiVersion recorded in the managedFields entry. */
  readonly apiVersion: string
}

type Path = readonly string[]

/** The identity fields of an applied object: part of every apply, owned by nobody. */
const IDENTITY = new Set(['apiVersion', 'kind', 'metadata.name', 'metadata.namespace'])
/** Never taken from an apply body (the registry sets them, or status has its own endpoint). */
const IGNORED_TOP = new Set(['status'])
const IGNORED_META = new Set(['uid', 'resourceVersion', 'generation', 'creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'managedFields'])

/** The leaf paths of `value` (objects are descended, anything else, lists included, is a leaf). */
function leaves(value: unknown, prefix: string[] = []): string[][] {
  if (!isObject(value) || (prefix.length > 0 && Object.keys(value).length === 0)) return [prefix]
  return Object.entries(value).flatMap(([key, v]) => leaves(v, [...prefix, key]))
}

/** The fields an apply of `body` claims. */
export function appliedPaths(body: JsonObject): string[][] {
  return leaves(body).filter((path) => {
    if (IDENTITY.has(path.join('.')) || IGNORED_TOP.has(path[0]!)) return false
    return !(path[0] === 'metadata' && IGNORED_META.has(path[1] ?? ''))
  })
}

function keyOf(path: Path): string {
  return JSON.stringify(path)
}

function valueAt(object: unknown, path: Path): unknown {
  let current = object
  for (const part of path) current = isObject(current) ? current[part] : undefined
  return current
}

function setAt(object: JsonObject, path: Path, value: unknown): void {
  let current = object
  for (const part of path.slice(0, -1)) {
    if (!isObject(current[part])) current[part] = {}
    current = current[part] as JsonObject
  }
  current[path[path.length - 1]!] = clone(value)
}

/** Removes the leaf at `path`, then every parent map it leaves empty. */
function removeAt(object: JsonObject, path: Path): void {
  const parents: JsonObject[] = [object]
  for (const part of path.slice(0, -1)) {
    const next = parents[parents.length - 1]![part]
    if (!isObject(next)) return
    parents.push(next)
  }
  delete parents[parents.length - 1]![path[path.length - 1]!]
  for (let i = parents.length - 1; i > 0; i--) {
    if (Object.keys(parents[i]!).length > 0) break
    delete parents[i - 1]![path[i - 1]!]
  }
}

/** fieldsV1 (`{"f:spec": {"f:sourcePVC": {}}}`) from leaf paths. */
function toFieldsV1(paths: readonly Path[]): JsonObject {
  const root: JsonObject = {}
  for (const path of paths) {
    let current = root
    for (const part of path) current = (current[`f:${part}`] ??= {}) as JsonObject
  }
  return root
}

function fromFieldsV1(fields: unknown, prefix: string[] = []): string[][] {
  if (!isObject(fields)) return []
  const keys = Object.keys(fields).filter((k) => k.startsWith('f:'))
  if (keys.length === 0) return prefix.length > 0 ? [prefix] : []
  return keys.flatMap((k) => fromFieldsV1(fields[k], [...prefix, k.slice(2)]))
}

interface ManagerEntry {
  manager: string
  paths: string[][]
  entry: JsonObject
}

function managersOf(object: JsonObject | undefined): ManagerEntry[] {
  const list = object ? meta(object).managedFields : undefined
  if (!Array.isArray(list)) return []
  return list.filter(isObject).map((entry) => ({ manager: String(entry.manager), paths: entry.operation === 'Apply' ? fromFieldsV1(entry.fieldsV1) : [], entry }))
}

function conflictError(conflicts: ReadonlyArray<{ manager: string; path: Path }>): ApiError {
  const fields = conflicts.map((c) => `conflict with "${c.manager}": .${c.path.join('.')}`)
  const message = `Apply failed with ${conflicts.length} conflict${conflicts.length === 1 ? '' : 's'}: ${fields.join('\n')}`
  return new ApiError(409, 'Conflict', message, { causes: conflicts.map((c) => ({ reason: 'FieldManagerConflict', message: `conflict with "${c.manager}"`, field: `.${c.path.join('.')}` })) })
}

/**
 * The object after `options.fieldManager` applies `body` to `current` (undefined: the object is created
 * from it). Throws ApiError 409 Conflict when another manager owns a field `body` sets to a different
 * value and `options.force` is false. Neither argument is changed.
 */
export function applyFields(current: JsonObject | undefined, body: JsonObject, options: ApplyOptions): JsonObject {
  const applied = appliedPaths(body)
  const appliedKeys = new Set(applied.map(keyOf))
  const managers = managersOf(current)
  const others = managers.filter((m) => m.manager !== options.fieldManager)
  const conflicts: Array<{ manager: string; path: Path }> = []
  for (const other of others) {
    for (const path of other.paths) {
      if (!appliedKeys.has(keyOf(path))) continue
      const before = JSON.stringify(valueAt(current, path))
      if (before !== JSON.stringify(valueAt(body, path))) conflicts.push({ manager: other.manager, path })
    }
  }
  if (conflicts.length > 0 && !options.force) throw conflictError(conflicts)
  const taken = new Set(conflicts.map((c) => `${c.manager}\u0000${keyOf(c.path)}`))
  const next: JsonObject = current ? clone(current) : { apiVersion: body.apiVersion, kind: body.kind, metadata: { name: meta(body).name, ...(meta(body).namespace ? { namespace: meta(body).namespace } : {}) } }
  // What this manager applied before and no longer applies goes, unless another manager holds it.
  const previous = managers.find((m) => m.manager === options.fieldManager)?.paths ?? []
  const heldByOthers = new Set(others.flatMap((m) => m.paths.filter((p) => !taken.has(`${m.manager}\u0000${keyOf(p)}`)).map(keyOf)))
  for (const path of previous) if (!appliedKeys.has(keyOf(path)) && !heldByOthers.has(keyOf(path))) removeAt(next, path)
  for (const path of applied) setAt(next, path, valueAt(body, path))
  const time = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z')
  const entries: JsonObject[] = others
    .map((m) => m.entry.operation !== 'Apply' ? m.entry : { ...m.entry, fieldsV1: toFieldsV1(m.paths.filter((p) => !taken.has(`${m.manager}\u0000${keyOf(p)}`))) })
    .filter((entry) => entry.operation !== 'Apply' || Object.keys(entry.fieldsV1 as JsonObject).length > 0)
  entries.push({ manager: options.fieldManager, operation: 'Apply', apiVersion: options.apiVersion, time, fieldsType: 'FieldsV1', fieldsV1: toFieldsV1(applied) })
  meta(next).managedFields = entries
  return next
}

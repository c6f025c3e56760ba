// The object store: one global resourceVersion, a bounded event history for watches, and the
// write semantics of the generic registry (optimistic concurrency, no-op updates, finalizers,
// status subresource, namespace termination).
import { randomUUID } from 'node:crypto'
import { clone, deepEqual, isObject, meta, str, type JsonObject } from './json.ts'
import { applyFields, type ApplyOptions } from './apply.ts'
import { applyPatch } from './patch.ts'
import { NAMESPACES, RESOURCES, apiVersionOf, resourceForObject, type ResourceDef } from './resources.ts'
import type { Matcher } from './selectors.ts'
import { alreadyExists, badRequest, conflict, forbidden, internalError, invalid, notFound, unprocessable } from './status.ts'
import { SYSTEM_FIELDS, applyDefaults, copyField, finalizers, generatedSuffix, generationContent, keyOf, ordered, timestamp, validateName } from './strategy.ts'

export type EventType = 'ADDED' | 'MODIFIED' | 'DELETED'

export interface StoredEvent {
  readonly rv: number
  readonly type: EventType
  readonly def: ResourceDef
  /** State after the write; for DELETED, the last state stamped with the deletion's resourceVersion. */
  readonly object: JsonObject
  /** State before the write (watchers need it to turn selector transitions into ADDED/DELETED). */
  readonly previous: JsonObject | undefined
}

export interface StoreOptions {
  readonly historyLimit: number
  readonly enforceNamespaces: boolean
}

export class ObjectStore {
  #rv = 0
  #history: StoredEvent[] = []
  #historyStart = 0 // every event with rv > historyStart is still in #history
  #reconciling = false
  readonly #objects = new Map<ResourceDef, Map<string, JsonObject>>()
  readonly #listeners = new Set<(event: StoredEvent) => void>()
  readonly #options: StoreOptions

  constructor(options: StoreOptions) {
    this.#options = options
  }

  get resourceVersion(): number {
    return this.#rv
  }

  get historyStart(): number {
    return this.#historyStart
  }

  subscribe(listener: (event: StoredEvent) => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  /** Events after `rv`, or undefined when some of them have been compacted away. */
  eventsAfter(rv: number): StoredEvent[] | undefined {
    if (rv < this.#historyStart) return undefined
    return this.#history.filter((e) => e.rv > rv)
  }

  compact(): void {
    this.#history = []
    this.#historyStart = this.#rv
  }

  list(d: ResourceDef, namespace?: string, matches: Matcher = () => true): JsonObject[] {
    return [...this.#bucket(d).entries()]
      .filter(([, o]) => (namespace === undefined || meta(o).namespace === namespace) && matches(o))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, o]) => clone(o))
  }

  get(d: ResourceDef, namespace: string | undefined, name: string): JsonObject | undefined {
    const found = this.#bucket(d).get(`${d.namespaced ? (namespace ?? '') : ''}/${name}`)
    return found && clone(found)
  }

  create(d: ResourceDef, namespace: string | undefined, body: unknown): JsonObject {
    const object = this.#incoming(d, body)
    const m = meta(object)
    this.#placeNamespace(d, namespace, m)
    let name = str(m.name) ?? ''
    if (name === '' && str(m.generateName)) name = `${str(m.generateName)}${generatedSuffix()}`
    if (d.namespaced && this.#options.enforceNamespaces) {
      // The NamespaceLifecycle admission plugin runs before validation and storage.
      const ns = this.get(NAMESPACES, undefined, namespace ?? '')
      if (!ns) throw notFound(NAMESPACES, namespace ?? '')
      if (meta(ns).deletionTimestamp) throw forbidden(d, name, `unable to create new content in namespace ${namespace} because it is being terminated`)
    }
    if (name === '') throw invalid(d, '', [{ reason: 'FieldValueRequired', field: 'metadata.name', message: 'Required value: name or generateName is required' }])
    validateName(d, name)
    m.name = name
    if (str(m.resourceVersion)) throw internalError('resourceVersion should not be set on objects to be created')
    if (this.#bucket(d).has(keyOf(object))) throw alreadyExists(d, name)
    m.uid = randomUUID()
    m.creationTimestamp = timestamp()
    delete m.deletionTimestamp
    delete m.deletionGracePeriodSeconds
    if (d.generation) m.generation = 1
    else delete m.generation
    if (d.custom && d.statusSubresource) delete object.status // the main resource cannot write status
    applyDefaults(d, object, true)
    return this.#commit(d, 'ADDED', object, undefined)
  }

  /** PUT: `subresource` 'status' writes only .status; otherwise .status is kept from storage. */
  update(d: ResourceDef, namespace: string | undefined, name: string, body: unknown, subresource?: string): JsonObject {
    const current = this.#require(d, namespace, name)
    const incoming = this.#incoming(d, body)
    const m = meta(incoming)
    if (m.name !== undefined && m.name !== name) throw badRequest(`the name of the object (${String(m.name)}) does not match the name on the URL (${name})`)
    m.name = name
    this.#placeNamespace(d, namespace, m)
    const rv = str(m.resourceVersion) ?? ''
    if (rv === '' && d.custom) {
      throw invalid(d, name, [{ reason: 'FieldValueInvalid', field: 'metadata.resourceVersion', message: 'Invalid value: 0x0: must be specified for an update' }])
    }
    return this.#update(d, current, incoming, subresource, rv)
  }

  patch(d: ResourceDef, namespace: string | undefined, name: string, contentType: string, body: unknown, subresource?: string): JsonObject {
    const current = this.#require(d, namespace, name)
    const patched = applyPatch(current, contentType, body)
    if (!isObject(patched)) throw unprocessable('the patch produced something that is not an object')
    const object = this.#incoming(d, patched)
    const m = meta(object)
    if (m.name !== name) throw invalid(d, name, [{ reason: 'FieldValueInvalid', field: 'metadata.name', message: `Invalid value: ${JSON.stringify(m.name)}: field is immutable` }])
    if (d.namespaced && m.namespace !== namespace) throw badRequest('the namespace of the provided object does not match the namespace sent on the request')
    // A resourceVersion left in (or put into) the patched object acts as a precondition.
    return this.#update(d, current, object, subresource, str(m.resourceVersion) ?? '')
  }

  /**
   * Server-side apply (apply.ts): creates the object from `body` when it does not exist (`created`),
   * otherwise merges the applied fields under the field-ownership rules there (409 on a conflict
   * without force). Status is kept from storage.
   */
  apply(d: ResourceDef, namespace: string | undefined, name: string, body: unknown, options: Omit<ApplyOptions, 'apiVersion'>): { object: JsonObject; created: boolean } {
    const applied = this.#incoming(d, body)
    const m = meta(applied)
    if (m.name !== name) throw badRequest(`the name of the object (${String(m.name)}) does not match the name on the URL (${name})`)
    this.#placeNamespace(d, namespace, m)
    const current = this.get(d, namespace, name)
    const next = applyFields(current, applied, { ...options, apiVersion: apiVersionOf(d) })
    if (!current) return { object: this.create(d, namespace, next), created: true }
    return { object: this.#update(d, current, next, undefined, ''), created: false }
  }

  /** DELETE: answers with the object (pending or ReturnDeletedObject) or a Success Status. */
  delete(d: ResourceDef, namespace: string | undefined, name: string, options: unknown): JsonObject {
    const current = this.#require(d, namespace, name)
    const cm = meta(current)
    const pre = isObject(options) && isObject(options.preconditions) ? options.preconditions : {}
    if (str(pre.uid) && pre.uid !== cm.uid) throw conflict(d, name, `Precondition failed: UID in precondition: ${String(pre.uid)}, UID in object meta: ${String(cm.uid)}`)
    if (str(pre.resourceVersion) && pre.resourceVersion !== cm.resourceVersion) {
      throw conflict(d, name, `Precondition failed: ResourceVersion in precondition: ${String(pre.resourceVersion)}, ResourceVersion in object meta: ${String(cm.resourceVersion)}`)
    }
    const pending = d === NAMESPACES || finalizers(current).length > 0
    if (!pending) {
      const removed = this.#remove(d, current)
      if (d.returnDeletedObject) return removed
      return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details: { name, group: d.group, kind: d.resource, uid: cm.uid } }
    }
    if (cm.deletionTimestamp) return current
    const next = clone(current)
    meta(next).deletionTimestamp = timestamp()
    meta(next).deletionGracePeriodSeconds = 0
    if (d.generation) meta(next).generation = Number(cm.generation ?? 0) + 1
    if (d === NAMESPACES) next.status = { ...(isObject(next.status) ? next.status : {}), phase: 'Terminating' }
    const marked = this.#commit(d, 'MODIFIED', next, current)
    if (d === NAMESPACES) this.#reconcileNamespaces()
    return this.get(d, namespace, name) ?? marked
  }

  /** Test seeding: stores the object as given (status included), assigning system fields. */
  seed(body: unknown): JsonObject {
    if (!isObject(body)) throw new Error('fake-kube-api: seed() needs an object')
    const d = resourceForObject(str(body.apiVersion) ?? '', str(body.kind) ?? '')
    const object = ordered(d, clone(body))
    const m = meta(object)
    if (!str(m.name)) throw new Error('fake-kube-api: seeded objects need metadata.name')
    if (d.namespaced && !str(m.namespace)) throw new Error(`fake-kube-api: seeded ${d.kind} ${String(m.name)} needs metadata.namespace`)
    if (!d.namespaced) delete m.namespace
    const existing = this.#bucket(d).get(keyOf(object))
    m.uid ??= existing ? meta(existing).uid : randomUUID()
    m.creationTimestamp ??= existing ? meta(existing).creationTimestamp : timestamp()
    if (d.generation) m.generation ??= 1
    delete m.resourceVersion
    applyDefaults(d, object, false)
    return this.#commit(d, existing ? 'MODIFIED' : 'ADDED', object, existing)
  }

  #bucket(d: ResourceDef): Map<string, JsonObject> {
    let bucket = this.#objects.get(d)
    if (!bucket) this.#objects.set(d, (bucket = new Map()))
    return bucket
  }

  #require(d: ResourceDef, namespace: string | undefined, name: string): JsonObject {
    const found = this.get(d, namespace, name)
    if (!found) throw notFound(d, name)
    return found
  }

  /** Decodes a request body: type meta checked and filled in, fields ordered. */
  #incoming(d: ResourceDef, body: unknown): JsonObject {
    if (!isObject(body)) throw badRequest('the request body is not a JSON object')
    const apiVersion = str(body.apiVersion)
    const kind = str(body.kind)
    if (d.custom && (!apiVersion || !kind)) throw badRequest(`Object '${kind ? 'apiVersion' : 'Kind'}' is missing in '${JSON.stringify(body)}'`)
    if (apiVersion && apiVersion !== apiVersionOf(d)) throw badRequest(`the API version in the data (${apiVersion}) does not match the expected API version (${apiVersionOf(d)})`)
    if (kind && kind !== d.kind) throw badRequest(`the kind in the data (${kind}) does not match the expected kind (${d.kind})`)
    const object = ordered(d, clone(body))
    meta(object)
    return object
  }

  #placeNamespace(d: ResourceDef, namespace: string | undefined, m: JsonObject): void {
    if (!d.namespaced) {
      delete m.namespace
      return
    }
    if (str(m.namespace) && m.namespace !== namespace) throw badRequest('the namespace of the provided object does not match the namespace sent on the request')
    m.namespace = namespace
  }

  #update(d: ResourceDef, current: JsonObject, incoming: JsonObject, subresource: string | undefined, rv: string): JsonObject {
    const cm = meta(current)
    const name = String(cm.name)
    const m = meta(incoming)
    if (rv !== '' && rv !== cm.resourceVersion) throw conflict(d, name)
    if (str(m.uid) && m.uid !== cm.uid) throw conflict(d, name, `Precondition failed: UID in precondition: ${String(m.uid)}, UID in object meta: ${String(cm.uid)}`)
    let next: JsonObject
    if (subresource === 'status') {
      // Status writes change .status only (metadata and spec changes are reset, as ResetObjectMetaForStatus does).
      next = clone(current)
      copyField(incoming, next, 'status')
    } else {
      next = incoming
      for (const field of SYSTEM_FIELDS) copyField(cm, m, field)
      if (d.statusSubresource) copyField(current, next, 'status')
      if (d === NAMESPACES) next.spec = { ...(isObject(next.spec) ? next.spec : {}), finalizers: clone(isObject(current.spec) ? current.spec.finalizers : []) }
      if (cm.deletionTimestamp && finalizers(next).some((f) => !finalizers(current).includes(f))) {
        throw invalid(d, name, [{ reason: 'FieldValueForbidden', field: 'metadata.finalizers', message: 'Forbidden: no new finalizers can be added if the object is being deleted' }])
      }
      if (d.generation && !deepEqual(generationContent(d, current), generationContent(d, next))) m.generation = Number(cm.generation ?? 0) + 1
    }
    meta(next).resourceVersion = cm.resourceVersion
    // An update that changes nothing is not written: no new resourceVersion, no watch event.
    if (deepEqual(next, current)) return current
    if (d !== NAMESPACES && meta(next).deletionTimestamp && finalizers(next).length === 0) return this.#remove(d, next, current)
    return this.#commit(d, 'MODIFIED', next, current)
  }

  #remove(d: ResourceDef, last: JsonObject, previous: JsonObject = last): JsonObject {
    const removed = this.#commit(d, 'DELETED', last, previous)
    if (d !== NAMESPACES) this.#reconcileNamespaces()
    return removed
  }

  /** Stands in for the namespace controller: empties terminating namespaces, then removes them. */
  #reconcileNamespaces(): void {
    if (this.#reconciling) return
    this.#reconciling = true
    try {
      for (const ns of this.list(NAMESPACES).filter((n) => meta(n).deletionTimestamp)) {
        const name = String(meta(ns).name)
        let remaining = 0
        for (const d of RESOURCES.filter((r) => r.namespaced)) {
          for (const object of this.list(d, name)) {
            if (!meta(object).deletionTimestamp) this.delete(d, name, String(meta(object).name), undefined)
            if (this.get(d, name, String(meta(object).name))) remaining++
          }
        }
        if (remaining === 0) this.#commit(NAMESPACES, 'DELETED', ns, ns)
      }
    } finally {
      this.#reconciling = false
    }
  }

  #commit(d: ResourceDef, type: EventType, object: JsonObject, previous: JsonObject | undefined): JsonObject {
    this.#rv++
    const stored = clone(object)
    meta(stored).resourceVersion = String(this.#rv)
    if (type === 'DELETED') this.#bucket(d).delete(keyOf(stored))
    else this.#bucket(d).set(keyOf(stored), stored)
    const event: StoredEvent = { rv: this.#rv, type, def: d, object: clone(stored), previous: previous && clone(previous) }
    this.#history.push(event)
    while (this.#history.length > this.#options.historyLimit) this.#historyStart = this.#history.shift()!.rv
    for (const listener of this.#listeners) listener(event)
    return clone(stored)
  }
}

// A fake kube-apiserver for tests, spoken to through the real @kubernetes/client-node.
// Serves a fixed set of resource types from memory with the API's concurrency, watch and error
// semantics, and (when given rules) RBAC as kube-apiserver authorizes one ServiceAccount; see
// fake-kube-api/*.ts for the parts. Not a conformance implementation: the
// simplifications are named where they are made.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { KubeConfig } from '@kubernetes/client-node'
import type { RbacRules } from '../../src/cluster/policy-rule.ts'
import { AdmissionChain, admissionObject, type AdmissionChainOptions, type WebhookCall } from './fake-kube-api/admission-chain.ts'
import { isObject, meta, str, type JsonObject } from './fake-kube-api/json.ts'
import { parse as parseYaml } from 'yaml'
import { APPLY_PATCH_TYPE } from './fake-kube-api/apply.ts'
import { applyPatch } from './fake-kube-api/patch.ts'
import { NAMESPACES, apiVersionOf, findResource, parsePath, resourceKey, type ResourceDef } from './fake-kube-api/resources.ts'
import { flag, listResponse, queryMatcher } from './fake-kube-api/list.ts'
import { DEFAULT_RBAC_USER, forbiddenError, rbacAllows, requestAttributes, type RequestAttributes } from './fake-kube-api/rbac.ts'
import { ApiError, badRequest, methodNotAllowed, notFound, unprocessable } from './fake-kube-api/status.ts'
import { ObjectStore } from './fake-kube-api/store.ts'
import { openWatch, type WatchConnection } from './fake-kube-api/watch.ts'
import { writeFile } from 'node:fs/promises'
import { stringify } from 'yaml'

export type { JsonObject } from './fake-kube-api/json.ts'
export { RESOURCES, resourceKey, type ResourceDef } from './fake-kube-api/resources.ts'
export { DEFAULT_RBAC_USER, describeRequest, forbiddenReason, type RequestAttributes } from './fake-kube-api/rbac.ts'
export { ApiError } from './fake-kube-api/status.ts'
export type { AdmissionChainOptions, ServiceResolver, WebhookCall } from './fake-kube-api/admission-chain.ts'

export interface FakeKubeApiOptions {
  /** Watch events retained for resuming watches; older resourceVersions get 410 Expired. Default 1000. */
  readonly historyLimit?: number
  /** Reject namespaced creates in a missing (404) or terminating (403) namespace. Default true, as the real API. */
  readonly enforceNamespaces?: boolean
  /**
   * Authorize every resource request against these rules, as kube-apiserver's RBAC authorizer would
   * for one ServiceAccount; anything they do not grant is a 403 (and recorded in `forbidden`).
   * Default: no enforcement. Change at run time with enforceRbac().
   */
  readonly rbac?: RbacRules
  /** The username in 403 messages. Default DEFAULT_RBAC_USER (the server's ServiceAccount in volsync-system). */
  readonly rbacUser?: string
  /**
   * Call the admission webhooks of the stored Mutating/ValidatingWebhookConfigurations on CREATE and
   * UPDATE of namespaced objects, as kube-apiserver does (fake-kube-api/admission-chain.ts).
   * Default: no admission. Change at run time with enableAdmission().
   */
  readonly admission?: AdmissionChainOptions
}

/** A write admitted and stored: the stored object and the webhooks' warnings. */
export interface AdmittedWrite {
  readonly object: JsonObject
  readonly warnings: readonly string[]
}

export interface RecordedRequest {
  readonly method: string
  readonly path: string
  readonly query: Readonly<Record<string, string>>
  readonly contentType: string | undefined
  body: unknown
  watch: boolean
  status: number | undefined
}

export interface InjectedFailure {
  readonly method?: string
  /** Matched against the request path (a string must match exactly). */
  readonly path: string | RegExp
  readonly code: number
  readonly reason?: string
  readonly message?: string
  /** How many matching requests fail; default 1. */
  times?: number
}

interface OpenWatch {
  readonly connection: WatchConnection
  readonly key: string
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
    req.on('error', reject)
  })
}

function sendJson(res: ServerResponse, record: RecordedRequest, status: number, body: unknown): void {
  record.status = status
  const text = JSON.stringify(body)
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) })
  res.end(text)
}

export class FakeKubeApi {
  readonly url: string
  /** Every request received, in order. */
  readonly requests: RecordedRequest[] = []
  /** Every request RBAC denied, in order ('' where an attribute is absent); empty when RBAC is not enforced. */
  readonly forbidden: RequestAttributes[] = []
  readonly #server: Server
  readonly #store: ObjectStore
  readonly #watches = new Set<OpenWatch>()
  readonly #listCalls = new Map<string, number>()
  readonly #waiters = new Set<{ predicate: () => boolean; resolve: () => void }>()
  readonly #failures: InjectedFailure[] = []
  #paused = false
  #rbac: RbacRules | undefined
  readonly #rbacUser: string
  #admission: AdmissionChain | undefined
  /** Every admission webhook call, in order, across enableAdmission() calls. */
  readonly admissionCalls: WebhookCall[] = []

  private constructor(server: Server, url: string, store: ObjectStore, options: FakeKubeApiOptions) {
    this.#server = server
    this.url = url
    this.#store = store
    this.#rbac = options.rbac
    this.#rbacUser = options.rbacUser ?? DEFAULT_RBAC_USER
    if (options.admission) this.enableAdmission(options.admission)
    store.subscribe((event) => {
      for (const w of this.#watches) w.connection.offer(event)
      this.#changed()
    })
  }

  static async start(options: FakeKubeApiOptions = {}): Promise<FakeKubeApi> {
    const store = new ObjectStore({ historyLimit: options.historyLimit ?? 1000, enforceNamespaces: options.enforceNamespaces ?? true })
    let api: FakeKubeApi | undefined
    const server = createServer((req, res) => {
      if (api) void api.#handle(req, res)
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as AddressInfo
    api = new FakeKubeApi(server, `http://127.0.0.1:${port}`, store, options)
    return api
  }

  // ---- client configuration ----

  kubeConfigOptions(): { clusters: object[]; users: object[]; contexts: object[]; currentContext: string } {
    return {
      clusters: [{ name: 'fake', server: this.url, skipTLSVerify: true }],
      users: [{ name: 'fake', token: 'fake-token' }],
      contexts: [{ name: 'fake', cluster: 'fake', user: 'fake', namespace: 'default' }],
      currentContext: 'fake',
    }
  }

  /**
   * Writes a kubeconfig file as kubectl writes it, pointing at this fake, for a server started with
   * `kube.kubeconfig`. TLS verification is off because the fake speaks plain HTTP, which client-node
   * refuses otherwise. Returns `file`.
   */
  async writeKubeconfig(file: string): Promise<string> {
    await writeFile(file, stringify({
      apiVersion: 'v1', kind: 'Config', 'current-context': 'fake',
      clusters: [{ name: 'fake', cluster: { server: this.url, 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'fake', user: { token: 'fake-token' } }],
      contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'fake' } }],
    }))
    return file
  }

  kubeConfig(): KubeConfig {
    const kc = new KubeConfig()
    kc.loadFromOptions(this.kubeConfigOptions())
    return kc
  }

  // ---- state ----

  /** The current global resourceVersion, as a list would report it. */
  get resourceVersion(): string {
    return String(this.#store.resourceVersion)
  }

  /** Stores objects as given (status included), found by apiVersion/kind. Emits watch events. */
  seed(...objects: unknown[]): JsonObject[] {
    return objects.map((o) => this.#store.seed(o))
  }

  /** `resource` is a plural (`secrets`), `plural.group` (`leases.coordination.k8s.io`) or a Kind. */
  get(resource: string, namespace: string | undefined, name: string): JsonObject | undefined {
    return this.#store.get(findResource(resource), namespace, name)
  }

  list(resource: string, namespace?: string): JsonObject[] {
    return this.#store.list(findResource(resource), namespace)
  }

  // ---- observation ----

  listCalls(resource: string): number {
    return this.#listCalls.get(resourceKey(findResource(resource))) ?? 0
  }

  openWatches(resource?: string): number {
    const key = resource === undefined ? undefined : resourceKey(findResource(resource))
    return [...this.#watches].filter((w) => key === undefined || w.key === key).length
  }

  clearRequests(): void {
    this.requests.length = 0
  }

  /** Resolves once `predicate` holds; re-checked on every request, write and watch open/close. */
  waitFor(predicate: () => boolean): Promise<void> {
    if (predicate()) return Promise.resolve()
    return new Promise((resolve) => this.#waiters.add({ predicate, resolve }))
  }

  // ---- authorization ----

  /**
   * Enforces these RBAC rules on every request from now on (open watches are not re-checked, as in
   * Kubernetes); undefined stops enforcing. Test-side helpers (seed, get, list) are never authorized.
   */
  enforceRbac(rules: RbacRules | undefined): void {
    this.#rbac = rules
  }

  // ---- admission ----

  /**
   * Calls the stored webhook configurations' webhooks on every CREATE and UPDATE of a namespaced
   * object from now on (HTTP requests and createAs/updateAs); undefined stops. Calls are recorded in
   * `admissionCalls`.
   */
  enableAdmission(options: AdmissionChainOptions | undefined): void {
    this.#admission = options && new AdmissionChain(options, {
      mutatingConfigurations: () => this.#store.list(findResource('mutatingwebhookconfigurations')),
      validatingConfigurations: () => this.#store.list(findResource('validatingwebhookconfigurations')),
      namespace: (name) => this.#store.get(NAMESPACES, undefined, name),
    }, this.admissionCalls)
  }

  /**
   * Test side: creates an object as `username` would over the API (admission chain included, RBAC
   * not checked, like seed). Rejects with the ApiError the API server would answer.
   */
  async createAs(username: string, resource: string, namespace: string, body: JsonObject): Promise<AdmittedWrite> {
    try {
      return await this.#write('POST', findResource(resource), namespace, undefined, '', body, username)
    } finally {
      this.#changed()
    }
  }

  /** Test side: a PUT of the whole object as `username` (admission chain included, RBAC not checked). */
  async updateAs(username: string, resource: string, namespace: string, name: string, body: JsonObject): Promise<AdmittedWrite> {
    try {
      return await this.#write('PUT', findResource(resource), namespace, name, '', body, username)
    } finally {
      this.#changed()
    }
  }

  // ---- fault injection ----

  /** The next matching request(s) get this Status instead of being served. */
  injectFailure(failure: InjectedFailure): void {
    this.#failures.push({ ...failure, times: failure.times ?? 1 })
  }

  /** Destroys every open watch socket mid-stream. */
  dropWatches(): void {
    for (const w of [...this.#watches]) w.connection.destroy()
  }

  /** Ends every open watch normally, as the apiserver does when a watch times out. */
  endWatches(): void {
    for (const w of [...this.#watches]) w.connection.end()
  }

  /** Forgets the event history: a watch from any older resourceVersion now gets 410 Expired. */
  compactHistory(): void {
    this.#store.compact()
  }

  /** Sends a BOOKMARK at the current resourceVersion to every watch that allowed bookmarks. */
  sendBookmarks(): void {
    for (const w of this.#watches) w.connection.bookmark(this.#store.resourceVersion)
  }

  /** Holds back events to all watches (also ones opened later) until resumeWatches(). */
  pauseWatches(): void {
    this.#paused = true
    for (const w of this.#watches) w.connection.pause()
  }

  resumeWatches(): void {
    this.#paused = false
    for (const w of this.#watches) w.connection.resume()
  }

  async close(): Promise<void> {
    for (const w of [...this.#watches]) w.connection.destroy()
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()))
    this.#server.closeAllConnections()
    await closed
  }

  // ---- request handling ----

  #changed(): void {
    for (const waiter of [...this.#waiters]) {
      if (waiter.predicate()) {
        this.#waiters.delete(waiter)
        waiter.resolve()
      }
    }
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake')
    const method = req.method ?? 'GET'
    const contentType = req.headers['content-type']?.split(';')[0]?.trim().toLowerCase()
    const raw = await readBody(req).catch(() => '')
    const q = url.searchParams
    let unreadableBody: ApiError | undefined
    const record: RecordedRequest = {
      method,
      path: url.pathname,
      query: Object.fromEntries(q),
      contentType,
      body: undefined,
      watch: flag(q.get('watch')),
      status: undefined,
    }
    this.requests.push(record)
    if (raw !== '' && !contentType?.includes('yaml')) {
      try {
        record.body = JSON.parse(raw)
      } catch {
        unreadableBody = badRequest('the request body is not valid JSON')
      }
    } else if (raw !== '') {
      record.body = raw
    }
    try {
      // The apiserver authorizes in its filter chain, before routing, decoding or storage.
      this.#authorize(method, url.pathname, q)
      if (unreadableBody) throw unreadableBody
      this.#failIfInjected(method, url.pathname)
      const parsed = parsePath(url.pathname)
      if (parsed instanceof ApiError) throw parsed
      if (parsed.type === 'discovery') {
        if (method !== 'GET') throw methodNotAllowed(method)
        return sendJson(res, record, 200, parsed.body)
      }
      const { def, namespace, name, subresource } = parsed
      const store = this.#store
      if (parsed.watchPrefix) record.watch = true
      if (record.watch && method !== 'GET') throw methodNotAllowed(method)
      // Refused rather than ignored: a dry run must never persist, and the fake does not model one.
      if (q.has('dryRun') && method !== 'GET') throw badRequest('fake-kube-api does not implement dryRun')
      switch (method) {
        case 'GET':
          if (record.watch) return this.#watch(res, record, def, namespace, name, q)
          if (name !== undefined) {
            const found = store.get(def, namespace, name)
            if (!found) throw notFound(def, name)
            return sendJson(res, record, 200, found)
          }
          this.#listCalls.set(resourceKey(def), (this.#listCalls.get(resourceKey(def)) ?? 0) + 1)
          return sendJson(res, record, 200, listResponse(store, def, namespace, q))
        case 'POST':
          if (name !== undefined) throw methodNotAllowed(method)
          if (this.#admits(def, namespace, subresource)) return this.#sendAdmitted(res, record, 201, await this.#write('POST', def, namespace, name, '', record.body, this.#rbacUser))
          return sendJson(res, record, 201, store.create(def, namespace, record.body))
        case 'PUT':
          if (name === undefined) throw methodNotAllowed(method)
          if (this.#admits(def, namespace, subresource)) return this.#sendAdmitted(res, record, 200, await this.#write('PUT', def, namespace, name, '', record.body, this.#rbacUser))
          return sendJson(res, record, 200, store.update(def, namespace, name, record.body, subresource))
        case 'PATCH':
          if (name === undefined) throw methodNotAllowed(method)
          if (contentType === APPLY_PATCH_TYPE) return this.#apply(res, record, def, namespace, name, url.pathname, q, raw)
          if (this.#admits(def, namespace, subresource)) return this.#sendAdmitted(res, record, 200, await this.#write('PATCH', def, namespace, name, contentType ?? '', record.body, this.#rbacUser))
          return sendJson(res, record, 200, store.patch(def, namespace, name, contentType ?? '', record.body, subresource))
        case 'DELETE': {
          if (name !== undefined) return sendJson(res, record, 200, store.delete(def, namespace, name, record.body))
          const matches = queryMatcher(def, q)
          const items = store.list(def, namespace, matches).map((o) => store.delete(def, namespace ?? String(meta(o).namespace), String(meta(o).name), record.body))
          return sendJson(res, record, 200, { kind: `${def.kind}List`, apiVersion: apiVersionOf(def), metadata: { resourceVersion: String(store.resourceVersion) }, items })
        }
        default:
          throw methodNotAllowed(method)
      }
    } catch (error) {
      const apiError = error instanceof ApiError ? error : new ApiError(500, 'InternalError', `Internal error occurred: ${error instanceof Error ? error.message : String(error)}`)
      if (!res.headersSent) sendJson(res, record, apiError.code, apiError.toStatus())
    } finally {
      this.#changed()
    }
  }

  /**
   * Server-side apply (fake-kube-api/apply.ts: create-if-absent, owned-field merge, 409 on a conflict
   * without `force`). The body is YAML (JSON is YAML); `fieldManager` is required, as the apiserver
   * requires it. Creating through apply also needs `create` (kube-apiserver's patch handler checks it
   * with the object's name when the object does not exist). The admission chain is not called.
   */
  #apply(res: ServerResponse, record: RecordedRequest, def: ResourceDef, namespace: string | undefined, name: string, path: string, q: URLSearchParams, raw: string): void {
    const fieldManager = q.get('fieldManager') ?? ''
    if (fieldManager === '') throw unprocessable('PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch')
    let body: unknown
    try {
      body = parseYaml(raw)
    } catch (error) {
      throw badRequest(`error decoding YAML: ${error instanceof Error ? error.message : String(error)}`)
    }
    record.body = body
    if (this.#rbac && !this.#store.get(def, namespace, name)) {
      const request = requestAttributes('PATCH', path, q)
      if (request && !rbacAllows(this.#rbac, { ...request, verb: 'create' })) {
        this.forbidden.push({ ...request, verb: 'create' })
        throw forbiddenError(this.#rbacUser, { ...request, verb: 'create' })
      }
    }
    const { object, created } = this.#store.apply(def, namespace, name, body, { fieldManager, force: flag(q.get('force')) })
    sendJson(res, record, created ? 201 : 200, object)
  }

  /** Whether a write goes through the admission chain (namespaced main resources only). */
  #admits(def: ResourceDef, namespace: string | undefined, subresource: string | undefined): namespace is string {
    return this.#admission !== undefined && def.namespaced && namespace !== undefined && subresource === undefined
  }

  #sendAdmitted(res: ServerResponse, record: RecordedRequest, status: number, write: AdmittedWrite): void {
    // As the apiserver relays webhook warnings; header values must be printable ASCII.
    if (write.warnings.length > 0) res.setHeader('Warning', write.warnings.map((w) => `299 - ${JSON.stringify(w.replace(/[^\x20-\x7e]/g, '?'))}`))
    sendJson(res, record, status, write.object)
  }

  /**
   * A create (POST), replace (PUT) or patch (PATCH) of a namespaced object through the admission
   * chain, then the store. What the apiserver rejects before admission (a missing or terminating
   * namespace, a body of another kind) goes straight to the store, which answers it. A PATCH whose
   * store write conflicts is redone on the newer object (GuaranteedUpdate), unless the patch itself
   * set the resourceVersion.
   */
  async #write(method: 'POST' | 'PUT' | 'PATCH', def: ResourceDef, namespace: string, name: string | undefined, contentType: string, body: unknown, username: string): Promise<AdmittedWrite> {
    const store = this.#store
    const chain = this.#admission
    const ns = store.get(NAMESPACES, undefined, namespace)
    const typed = isObject(body) && (str(body.apiVersion) ?? apiVersionOf(def)) === apiVersionOf(def) && (str(body.kind) ?? def.kind) === def.kind
    if (!chain || !ns || meta(ns).deletionTimestamp || (method !== 'PATCH' && !typed)) {
      const object = method === 'POST' ? store.create(def, namespace, body) : method === 'PUT' ? store.update(def, namespace, name ?? '', body) : store.patch(def, namespace, name ?? '', contentType, body)
      return { object, warnings: [] }
    }
    if (method === 'POST') {
      const object = admissionObject(def, namespace, body as JsonObject)
      const admitted = await chain.admit({ def, operation: 'CREATE', namespace, name: str(meta(object).name) ?? '', object, username })
      return { object: store.create(def, namespace, admitted.object), warnings: admitted.warnings }
    }
    for (let attempt = 0; ; attempt++) {
      const current = store.get(def, namespace, name ?? '')
      if (!current) throw notFound(def, name ?? '')
      const next = method === 'PUT' ? body : applyPatch(current, contentType, body)
      if (!isObject(next)) throw unprocessable('the patch produced something that is not an object')
      const admitted = await chain.admit({ def, operation: 'UPDATE', namespace, name: name ?? '', object: admissionObject(def, namespace, next), oldObject: current, username })
      try {
        return { object: store.update(def, namespace, name ?? '', admitted.object), warnings: admitted.warnings }
      } catch (error) {
        const patchKeptVersion = method === 'PATCH' && meta(next).resourceVersion === meta(current).resourceVersion
        if (patchKeptVersion && error instanceof ApiError && error.code === 409 && attempt < 5) continue
        throw error
      }
    }
  }

  #authorize(method: string, path: string, query: URLSearchParams): void {
    if (!this.#rbac) return
    const request = requestAttributes(method, path, query)
    if (request === undefined || rbacAllows(this.#rbac, request)) return
    this.forbidden.push(request)
    throw forbiddenError(this.#rbacUser, request)
  }

  #failIfInjected(method: string, path: string): void {
    const index = this.#failures.findIndex((f) => (f.method === undefined || f.method === method) && (typeof f.path === 'string' ? f.path === path : f.path.test(path)))
    const failure = this.#failures[index]
    if (!failure) return
    failure.times = (failure.times ?? 1) - 1
    if (failure.times <= 0) this.#failures.splice(index, 1)
    throw new ApiError(failure.code, failure.reason ?? 'InternalError', failure.message ?? 'injected failure')
  }

  #watch(res: ServerResponse, record: RecordedRequest, def: ResourceDef, namespace: string | undefined, name: string | undefined, query: URLSearchParams): void {
    let open: OpenWatch | undefined
    const register = (connection: WatchConnection): void => {
      record.status = 200
      open = { connection, key: resourceKey(def) }
      this.#watches.add(open)
    }
    const onClose = (): void => {
      if (open && this.#watches.delete(open)) this.#changed()
    }
    openWatch(res, this.#store, { def, namespace, name, query, paused: this.#paused }, register, onClose)
  }

}

/** Narrowing helper for tests reading objects from the fake. */
export function field(object: unknown, path: string): unknown {
  let current: unknown = object
  for (const part of path.split('.')) current = isObject(current) ? current[part] : undefined
  return current
}

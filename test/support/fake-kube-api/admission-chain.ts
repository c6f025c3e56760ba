// The API server's webhook admission for the fake: given the Mutating/ValidatingWebhookConfigurations
// stored in it (read on every request, so a caBundle written later is used), it calls the matching
// webhooks for CREATE and UPDATE of namespaced objects the way kube-apiserver's admission plugins do
// (k8s.io/apiserver/pkg/admission/plugin/webhook): rules (apiGroups, apiVersions, resources,
// operations, scope), namespaceSelector (the Namespace's labels) and objectSelector (the object's or
// the old object's labels); an AdmissionReview v1 POSTed over HTTPS to `<service>.<namespace>.svc`,
// the certificate verified against the caBundle for that name; timeoutSeconds and failurePolicy;
// mutating webhooks in order (configurations sorted by name), their JSON patches applied, then the
// validating webhooks on the patched object. Errors are worded as kube-apiserver words them.
// Simplifications: no reinvocation, no matchConditions, no matchPolicy Equivalent conversion, no
// subresources, no DELETE/CONNECT, no dry run, no clientConfig.url, no audit annotations.
import { randomUUID } from 'node:crypto'
import https from 'node:https'
import fastJsonPatch from 'fast-json-patch'
import type { Operation } from 'fast-json-patch'
import { clone, isObject, meta, str, type JsonObject } from './json.ts'
import { apiVersionOf, type ResourceDef } from './resources.ts'
import { ApiError } from './status.ts'

/** The operations the chain admits. */
export type AdmissionOperation = 'CREATE' | 'UPDATE'

/** What the API server resolves a Service to: `<service>.<namespace>.svc` -> base URL (`https://127.0.0.1:PORT`). */
export type ServiceResolver = (host: string) => string | undefined

export interface AdmissionChainOptions {
  /**
   * Where each webhook Service is reached: the test's loopback server stands in for the Service
   * (and its port mapping). Read on every call, so a test may point it at a restarted server.
   * An unknown Service fails like a DNS lookup that found nothing.
   */
  readonly services: ServiceResolver
}

/** The webhook configurations and namespaces the chain reads, from the fake's store. */
export interface AdmissionState {
  readonly mutatingConfigurations: () => JsonObject[]
  readonly validatingConfigurations: () => JsonObject[]
  readonly namespace: (name: string) => JsonObject | undefined
}

/** One request to admit: the object as decoded (namespace set), and for UPDATE the stored one. */
export interface AdmissionAttributes {
  readonly def: ResourceDef
  readonly operation: AdmissionOperation
  readonly namespace: string
  readonly name: string
  readonly object: JsonObject
  readonly oldObject?: JsonObject
  readonly username: string
}

/** What one webhook call came to. */
export interface WebhookCall {
  readonly webhook: string
  readonly configuration: string
  readonly type: 'mutating' | 'validating'
  readonly operation: AdmissionOperation
  readonly resource: string
  readonly namespace: string
  readonly name: string
  /**
   * allowed (no patch), patched, denied (allowed: false), ignored (the call failed and
   * failurePolicy Ignore admitted the object as it was), failed (the call failed, failurePolicy Fail).
   */
  readonly outcome: 'allowed' | 'patched' | 'denied' | 'ignored' | 'failed'
  /** The denial's or the failure's message. */
  readonly message?: string
  readonly warnings: readonly string[]
  readonly patch?: readonly Operation[]
}

/** The admitted object and the warnings every webhook returned (sent to the client as Warning headers). */
export interface AdmissionResult {
  readonly object: JsonObject
  readonly warnings: string[]
}

interface LabelSelectorRequirement { key: string; operator: string; values?: string[] }
interface LabelSelector { matchLabels?: Record<string, string>; matchExpressions?: LabelSelectorRequirement[] }
interface RuleWithOperations { apiGroups?: string[]; apiVersions?: string[]; resources?: string[]; operations?: string[]; scope?: string }
interface Webhook {
  name: string
  clientConfig: { service?: { name: string; namespace: string; path?: string; port?: number }; url?: string; caBundle?: string }
  rules?: RuleWithOperations[]
  failurePolicy?: string
  namespaceSelector?: LabelSelector
  objectSelector?: LabelSelector
  timeoutSeconds?: number
}

/** A webhook call that failed (network, TLS, timeout, bad answer): failurePolicy decides. */
class CallError extends Error {}

function labelsOf(object: JsonObject | undefined): Record<string, string> {
  if (!object) return {}
  const labels = meta(object).labels
  return isObject(labels) ? Object.fromEntries(Object.entries(labels).filter((e): e is [string, string] => typeof e[1] === 'string')) : {}
}

/**
 * Whether labels match a metav1.LabelSelector as the apiserver reads one: absent or empty matches
 * everything; NotIn and DoesNotExist match a missing key. Throws on an unknown operator.
 */
export function selectorMatches(selector: LabelSelector | undefined, labels: Record<string, string>): boolean {
  if (!selector) return true
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) if (labels[key] !== value) return false
  for (const r of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, r.key)
    const values = r.values ?? []
    switch (r.operator) {
      case 'In': if (!has || !values.includes(labels[r.key]!)) return false; break
      case 'NotIn': if (has && values.includes(labels[r.key]!)) return false; break
      case 'Exists': if (!has) return false; break
      case 'DoesNotExist': if (has) return false; break
      default: throw new Error(`fake-kube-api: unknown label selector operator ${JSON.stringify(r.operator)}`)
    }
  }
  return true
}

const matchesList = (list: readonly string[] | undefined, value: string) => (list ?? []).includes('*') || (list ?? []).includes(value)

/** Whether one rule covers this resource and operation (the main resource only: `x/*` subresource rules do not match). */
function ruleMatches(rule: RuleWithOperations, def: ResourceDef, operation: AdmissionOperation): boolean {
  const scope = rule.scope ?? '*'
  if (scope !== '*' && scope !== (def.namespaced ? 'Namespaced' : 'Cluster')) return false
  return matchesList(rule.apiGroups, def.group) && matchesList(rule.apiVersions, def.version)
    && matchesList(rule.resources, def.resource) && matchesList(rule.operations, operation)
}

function webhooksOf(configurations: JsonObject[]): { configuration: string; webhook: Webhook }[] {
  return configurations
    .map((c) => ({ name: str(meta(c).name) ?? '', webhooks: Array.isArray(c.webhooks) ? (c.webhooks as Webhook[]) : [] }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .flatMap((c) => c.webhooks.map((webhook) => ({ configuration: c.name, webhook })))
}

/** The chain of one fake API server: call admit() between decoding a write and storing it. */
export class AdmissionChain {
  /** Every webhook call, in order (the array given to the constructor). */
  readonly calls: WebhookCall[]
  readonly #options: AdmissionChainOptions
  readonly #state: AdmissionState

  /** `calls` receives a record of every webhook call (default: a new array). */
  constructor(options: AdmissionChainOptions, state: AdmissionState, calls: WebhookCall[] = []) {
    this.#options = options
    this.#state = state
    this.calls = calls
  }

  /**
   * Runs the mutating then the validating webhooks that match. Resolves with the object to store
   * (patched) and the webhooks' warnings; rejects with the ApiError kube-apiserver would answer: a
   * denial (the webhook's status code and reason, a code under 400 or none made 400: `admission
   * webhook "X" denied the request: ...`), or a failed call under failurePolicy Fail (500 InternalError, `failed calling webhook`).
   */
  async admit(attributes: AdmissionAttributes): Promise<AdmissionResult> {
    let object = clone(attributes.object)
    const warnings: string[] = []
    for (const { configuration, webhook } of this.#matching(this.#state.mutatingConfigurations(), attributes)) {
      const answer = await this.#call('mutating', configuration, webhook, { ...attributes, object }, warnings)
      if (answer?.patch) {
        try {
          object = fastJsonPatch.applyPatch(clone(object), answer.patch as Operation[], true, false).newDocument
        } catch (error) {
          // Not a call error: the apiserver rejects whatever the failurePolicy (NewInternalError).
          throw new ApiError(500, 'InternalError', `Internal error occurred: JSON patch of webhook "${webhook.name}" could not be applied: ${(error as Error).message.split('\n')[0]}`)
        }
      }
    }
    // The validating webhooks run in parallel on the mutated object; any denial or failure rejects.
    const validating = this.#matching(this.#state.validatingConfigurations(), attributes)
    const results = await Promise.allSettled(validating.map(({ configuration, webhook }) => this.#call('validating', configuration, webhook, { ...attributes, object }, warnings)))
    const rejected = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')
    if (rejected) throw rejected.reason
    return { object, warnings }
  }

  #matching(configurations: JsonObject[], a: AdmissionAttributes): { configuration: string; webhook: Webhook }[] {
    const namespace = this.#state.namespace(a.namespace)
    // The apiserver guarantees this label on every Namespace (NamespaceDefaultLabelName).
    const namespaceLabels = { ...labelsOf(namespace), 'kubernetes.io/metadata.name': a.namespace }
    return webhooksOf(configurations).filter(({ webhook }) =>
      (webhook.rules ?? []).some((rule) => ruleMatches(rule, a.def, a.operation))
      && selectorMatches(webhook.namespaceSelector, namespaceLabels)
      && (selectorMatches(webhook.objectSelector, labelsOf(a.object)) || (a.oldObject !== undefined && selectorMatches(webhook.objectSelector, labelsOf(a.oldObject)))))
  }

  /** One call; records it, adds its warnings, returns its answer (undefined when ignored), throws a rejection. */
  async #call(type: WebhookCall['type'], configuration: string, webhook: Webhook, a: AdmissionAttributes, warnings: string[]): Promise<{ patch?: unknown[] } | undefined> {
    const record = (outcome: WebhookCall['outcome'], extra: Partial<WebhookCall> = {}) =>
      this.calls.push({ webhook: webhook.name, configuration, type, operation: a.operation, resource: a.def.resource, namespace: a.namespace, name: a.name, outcome, warnings: [], ...extra })
    const uid = randomUUID()
    const review = {
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: {
        uid,
        kind: { group: a.def.group, version: a.def.version, kind: a.def.kind },
        resource: { group: a.def.group, version: a.def.version, resource: a.def.resource },
        requestKind: { group: a.def.group, version: a.def.version, kind: a.def.kind },
        requestResource: { group: a.def.group, version: a.def.version, resource: a.def.resource },
        ...(a.name === '' ? {} : { name: a.name }),
        namespace: a.namespace,
        operation: a.operation,
        userInfo: { username: a.username, groups: ['system:authenticated'] },
        object: a.object,
        oldObject: a.oldObject ?? null,
        dryRun: false,
        options: { apiVersion: 'meta.k8s.io/v1', kind: a.operation === 'CREATE' ? 'CreateOptions' : 'UpdateOptions' },
      },
    }
    const timeoutSeconds = webhook.timeoutSeconds ?? 10
    let url = '<unset>'
    let response: JsonObject
    try {
      const service = webhook.clientConfig.service
      if (!service) throw new CallError('fake-kube-api: only clientConfig.service is modelled')
      const host = `${service.name}.${service.namespace}.svc`
      url = `https://${host}:${service.port ?? 443}${service.path ?? ''}?timeout=${timeoutSeconds}s`
      const target = this.#options.services(host)
      if (target === undefined) throw new CallError(`dial tcp: lookup ${host}: no such host`)
      response = await post(target, host, url, webhook.clientConfig.caBundle, JSON.stringify(review), timeoutSeconds * 1000)
      const answer = isObject(response.response) ? response.response : undefined
      if (response.apiVersion !== 'admission.k8s.io/v1' || response.kind !== 'AdmissionReview' || !answer) throw new CallError('received invalid webhook response: expected admission.k8s.io/v1 AdmissionReview with a response')
      if (answer.uid !== uid) throw new CallError(`expected response.uid=${JSON.stringify(uid)}, got ${JSON.stringify(answer.uid)}`)
    } catch (error) {
      const cause = error instanceof Error ? error.message : String(error)
      const message = `failed calling webhook "${webhook.name}": failed to call webhook: Post "${url}": ${cause}`
      if ((webhook.failurePolicy ?? 'Fail') === 'Ignore') {
        record('ignored', { message })
        return undefined
      }
      record('failed', { message })
      throw new ApiError(500, 'InternalError', `Internal error occurred: ${message}`, { causes: [{ message }] })
    }
    const answer = response.response as JsonObject
    const answerWarnings = Array.isArray(answer.warnings) ? answer.warnings.filter((w): w is string => typeof w === 'string') : []
    warnings.push(...answerWarnings)
    if (answer.allowed !== true) {
      const status = isObject(answer.status) ? answer.status : {}
      const deniedBy = `admission webhook "${webhook.name}" denied the request`
      const given = str(status.message) || str(status.reason)
      const message = given ? `${deniedBy}: ${given}` : `${deniedBy} without explanation`
      // ToStatusErr: a code under 400 (or none) becomes 400; the webhook's reason is kept.
      const code = typeof status.code === 'number' && status.code >= 400 ? status.code : 400
      record('denied', { message, warnings: answerWarnings })
      throw new ApiError(code, str(status.reason) || undefined, message)
    }
    if (type === 'mutating' && answer.patch !== undefined) {
      if (answer.patchType !== 'JSONPatch') throw new ApiError(500, 'InternalError', `Internal error occurred: webhook "${webhook.name}" returned patchType ${JSON.stringify(answer.patchType)}; only JSONPatch is supported`)
      const patch = JSON.parse(Buffer.from(String(answer.patch), 'base64').toString('utf8')) as unknown
      if (!Array.isArray(patch)) throw new ApiError(500, 'InternalError', `Internal error occurred: webhook "${webhook.name}" returned a patch that is not a JSON array`)
      record('patched', { warnings: answerWarnings, patch: patch as Operation[] })
      return { patch }
    }
    record('allowed', { warnings: answerWarnings })
    return {}
  }
}

/** POSTs the review to `target` (loopback), verifying the certificate against caBundle for `servername`. */
function post(target: string, servername: string, url: string, caBundle: string | undefined, body: string, timeoutMs: number): Promise<JsonObject> {
  const base = new URL(target)
  const path = new URL(url)
  // An empty caBundle means the system's roots, as in the apiserver: a private CA then fails to verify.
  const ca = caBundle ? Buffer.from(caBundle, 'base64').toString('utf8') : undefined
  return new Promise((resolve, reject) => {
    const req = https.request({
      host: base.hostname, port: base.port, servername, method: 'POST', path: `${path.pathname}${path.search}`,
      ...(ca === undefined ? {} : { ca }), rejectUnauthorized: true, agent: false,
      headers: { 'content-type': 'application/json', accept: 'application/json', 'content-length': Buffer.byteLength(body) },
    }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('error', (error) => reject(new CallError(error.message)))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        if (res.statusCode !== 200) return reject(new CallError(`an error on the server (${JSON.stringify(text.trim().slice(0, 200))}) has prevented the request from succeeding (HTTP ${res.statusCode})`))
        try {
          const parsed = JSON.parse(text) as unknown
          if (!isObject(parsed)) throw new Error('not a JSON object')
          resolve(parsed)
        } catch (error) {
          reject(new CallError(`received invalid webhook response: ${(error as Error).message}`))
        }
      })
    })
    const timer = setTimeout(() => req.destroy(new CallError('context deadline exceeded')), timeoutMs)
    req.on('close', () => clearTimeout(timer))
    req.on('error', (error) => reject(error instanceof CallError ? error : new CallError(error.message)))
    req.end(body)
  })
}

/** The object as the admission chain sees a write: typed (apiVersion, kind) and placed in its namespace. */
export function admissionObject(def: ResourceDef, namespace: string, body: JsonObject): JsonObject {
  const object = clone(body)
  object.apiVersion = apiVersionOf(def)
  object.kind = def.kind
  meta(object).namespace = namespace
  return object
}

// Property-based fuzzing of AdmissionReview bodies: in-process against handleReview (many runs,
// several snapshots) and over HTTPS against the live server (fewer runs). Whatever arrives, the
// answer is a one-line 400 or a valid admission.k8s.io/v1 response whose patch applies.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import fc from 'fast-check'
import t from 'tap'
import { parseAllDocuments } from 'yaml'
import { handleReview } from '../../src/admission/handle.ts'
import type { Snapshot } from '../../src/state/snapshot.ts'
import {
  badRequestProblems, EXAMPLE_NAMES, EXAMPLE_STATE, EXAMPLES, exampleConfigYaml, httpGet, makeCertificates, metricSamples,
  responseProblems, startTestRuntime, tempDir, waitReady, WebhookClient, type Json,
} from '../support/live-webhook.ts'
import { NOW, snapshotOf, source } from '../support/snapshot.ts'

// Fixed seeds keep the runs reproducible; FUZZ_SEED explores other inputs.
const SEED = Number(process.env.FUZZ_SEED ?? 20260316)

const exampleConfig = readFileSync(join(EXAMPLES, 'config.yaml'), 'utf8')
const stateObjects = ['namespaces.yaml', 'replicationdestinations.yaml'].flatMap((file) =>
  parseAllDocuments(readFileSync(join(EXAMPLE_STATE, file), 'utf8')).map((doc) => doc.toJS() as unknown).filter(Boolean))
const declared = source({
  name: 'declared',
  entries: [{ namespace: 'media', pvc: 'jellyfin', snapshots: 24 }, { namespace: 'media', pvc: 'sonarr', snapshots: 7 }],
})

/** Enforce, audit, strict (deny everywhere) and an unknown catalog: every response-builder branch. */
const snapshots: readonly { name: string; snapshot: Snapshot }[] = [
  { name: 'example config', snapshot: snapshotOf({ config: exampleConfig, objects: stateObjects, sources: [declared] }) },
  { name: 'audit', snapshot: snapshotOf({ config: `${exampleConfig}\nmode: audit\n`.replace(/^mode: enforce$/m, ''), objects: stateObjects, sources: [declared] }) },
  {
    name: 'strict',
    snapshot: snapshotOf({
      config: `${exampleConfig.replace('whenBackupNotReady: wait', 'whenBackupNotReady: deny')}\nvalidation: { kopiaSecretKeys: deny, s3PlainHttp: deny, rdSourceIdentity: deny, rdTrigger: deny, pvcDanglingDataSource: deny }\n`,
      objects: stateObjects,
      sources: [declared],
    }),
  },
  {
    name: 'catalog unknown',
    snapshot: snapshotOf({ config: exampleConfig.replace('whenCatalogUnknown: fresh', 'whenCatalogUnknown: deny'), objects: stateObjects, sources: [source({ name: 'declared', ageMs: null, error: 'unreachable' })] }),
  },
]

const examples: readonly { name: string; review: Json }[] = EXAMPLE_NAMES.map((name) => ({
  name,
  review: JSON.parse(readFileSync(join(EXAMPLES, 'admission', `${name}.json`), 'utf8')) as Json,
}))

// ---- mutations of valid reviews -------------------------------------------------------------

type Path = (string | number)[]

/** Paths the parser and the rules read: mutated more often than random ones. */
const HOT_PATHS: readonly Path[] = [
  ['apiVersion'], ['kind'], ['request'], ['request', 'uid'], ['request', 'kind'], ['request', 'kind', 'kind'], ['request', 'kind', 'group'],
  ['request', 'kind', 'version'], ['request', 'operation'], ['request', 'name'], ['request', 'namespace'], ['request', 'dryRun'],
  ['request', 'object'], ['request', 'oldObject'], ['request', 'object', 'metadata'], ['request', 'object', 'metadata', 'labels'],
  ['request', 'object', 'metadata', 'annotations'], ['request', 'object', 'metadata', 'name'], ['request', 'object', 'metadata', 'ownerReferences'],
  ['request', 'object', 'spec'], ['request', 'object', 'spec', 'dataSourceRef'], ['request', 'object', 'spec', 'dataSourceRef', 'name'],
  ['request', 'object', 'spec', 'template'], ['request', 'object', 'spec', 'template', 'spec'], ['request', 'object', 'spec', 'template', 'spec', 'containers'],
  ['request', 'object', 'spec', 'template', 'spec', 'volumes'], ['request', 'object', 'spec', 'template', 'spec', 'initContainers'],
  ['request', 'object', 'spec', 'template', 'spec', 'containers', 0], ['request', 'object', 'spec', 'template', 'spec', 'containers', 0, 'volumeMounts'],
  ['request', 'object', 'spec', 'kopia'], ['request', 'object', 'spec', 'trigger'], ['request', 'object', 'stringData'], ['request', 'object', 'data'],
  ['request', 'oldObject', 'spec', 'template', 'spec', 'volumes'], ['request', 'oldObject', 'spec', 'template', 'spec', 'initContainers'],
]

type Action =
  | { type: 'delete' }
  | { type: 'replace'; value: Json }
  | { type: 'hugeString'; size: number; unit: string }
  | { type: 'deep'; depth: number; array: boolean }
  | { type: 'addKey'; key: string; value: Json }

interface Mutation {
  /** Where: one of the paths the parser and rules read, or any path of the document. */
  readonly hot: boolean
  readonly at: number
  readonly action: Action
}

const wrongTypes = fc.constantFrom<Json>(null, 0, -1, 1.5, 1e308, true, false, '', 'x', 'CREATE', [], {}, [null], { kind: 'Pod' }, ['CREATE'])
const jsonLeaf = fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<Json>
const oddKeys = fc.oneof(
  fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf', '', '/', '~', '~1', '~0', 'a/b', '..', '\u0000', '\u2028', '😀'),
  fc.string({ unit: 'binary', maxLength: 12 }),
)

function actionArbitrary(hugeMax: number): fc.Arbitrary<Action> {
  return fc.oneof(
    fc.constant<Action>({ type: 'delete' }),
    wrongTypes.map((value): Action => ({ type: 'replace', value })),
    jsonLeaf.map((value): Action => ({ type: 'replace', value })),
    fc.string({ unit: 'binary', maxLength: 40 }).map((value): Action => ({ type: 'replace', value })),
    fc.record({ size: fc.integer({ min: 1000, max: hugeMax }), unit: fc.constantFrom('a', 'é', '😀', '\u0000', '"', '\\', '\n') }).map((r): Action => ({ type: 'hugeString', ...r })),
    fc.record({ depth: fc.integer({ min: 10, max: 1500 }), array: fc.boolean() }).map((r): Action => ({ type: 'deep', ...r })),
    fc.record({ key: oddKeys, value: jsonLeaf }).map((r): Action => ({ type: 'addKey', ...r })),
  )
}

function mutationArbitrary(hugeMax: number): fc.Arbitrary<Mutation> {
  return fc.record({ hot: fc.boolean(), at: fc.nat(), action: actionArbitrary(hugeMax) })
}

function isContainer(value: unknown): value is Record<string, unknown> | unknown[] {
  return value !== null && typeof value === 'object'
}

function allPaths(value: unknown, prefix: Path = [], out: Path[] = []): Path[] {
  if (!isContainer(value) || prefix.length > 12) return out
  const entries: [string | number, unknown][] = Array.isArray(value) ? value.map((v, i) => [i, v]) : Object.entries(value)
  for (const [key, child] of entries) {
    out.push([...prefix, key])
    allPaths(child, [...prefix, key], out)
  }
  return out
}

/** Sets a key as an own, enumerable data property, even for `__proto__`. */
function setOwn(container: Record<string, unknown> | unknown[], key: string | number, value: unknown): void {
  Object.defineProperty(container, key, { value, enumerable: true, writable: true, configurable: true })
}

function deepValue(depth: number, array: boolean): Json {
  let value: Json = 'bottom'
  for (let i = 0; i < depth; i++) value = array ? [value] : { [`k${i % 7}`]: value }
  return value
}

function apply(document: Json, mutation: Mutation): Json {
  if (!isContainer(document)) return document
  const candidates = mutation.hot ? HOT_PATHS : allPaths(document)
  const path = candidates.length > 0 ? candidates[mutation.at % candidates.length]! : []
  const { action } = mutation
  // Walk to the parent of the path, creating objects where the path does not exist yet.
  let parent: unknown = document
  for (const key of path.slice(0, -1)) {
    const next = (parent as Record<string, unknown>)[key as string]
    if (!isContainer(next)) {
      if (action.type === 'delete') return document
      const created: Record<string, unknown> = {}
      setOwn(parent as Record<string, unknown>, key, created)
      parent = created
    } else {
      parent = next
    }
  }
  const last = path.at(-1)
  if (last === undefined || !isContainer(parent)) return document
  const container = parent
  switch (action.type) {
    case 'delete':
      if (Array.isArray(container) && typeof last === 'number') container.splice(last, 1)
      else delete (container as Record<string, unknown>)[last]
      break
    case 'replace':
      setOwn(container, last, structuredClone(action.value))
      break
    case 'hugeString':
      setOwn(container, last, action.unit.repeat(action.size))
      break
    case 'deep':
      setOwn(container, last, deepValue(action.depth, action.array))
      break
    case 'addKey': {
      const target = (container as Record<string, unknown>)[last]
      if (isContainer(target) && !Array.isArray(target)) setOwn(target, action.key, structuredClone(action.value))
      else setOwn(container as Record<string, unknown>, action.key, structuredClone(action.value))
      break
    }
  }
  return document
}

/** A valid example with up to `max` mutations, as the JSON text a client would send. */
function mutatedExample(max: number, hugeMax: number): fc.Arbitrary<string> {
  return fc.record({ example: fc.constantFrom(...examples), mutations: fc.array(mutationArbitrary(hugeMax), { minLength: 0, maxLength: max }) })
    .map(({ example, mutations }) => JSON.stringify(mutations.reduce<Json>((doc, m) => apply(doc, m), structuredClone(example.review))))
}

/** Review-shaped objects with every field possibly of the wrong type. */
const reviewShaped: fc.Arbitrary<string> = fc.record({
  apiVersion: fc.oneof(fc.constant('admission.k8s.io/v1'), wrongTypes, fc.constant('admission.k8s.io/v1beta1')),
  kind: fc.oneof(fc.constant('AdmissionReview'), wrongTypes),
  request: fc.oneof(
    wrongTypes,
    fc.record({
      uid: fc.oneof(fc.uuid(), fc.string({ unit: 'binary' }), wrongTypes),
      kind: fc.oneof(
        fc.constantFrom({ group: '', version: 'v1', kind: 'PersistentVolumeClaim' }, { group: 'batch', version: 'v1', kind: 'Job' }, { group: '', version: 'v1', kind: 'Secret' },
          { group: 'volsync.backube', version: 'v1alpha1', kind: 'ReplicationDestination' }),
        fc.record({ group: fc.oneof(fc.string(), wrongTypes), version: fc.oneof(fc.string(), wrongTypes), kind: fc.oneof(fc.string({ unit: 'binary' }), wrongTypes) }, { requiredKeys: [] }),
        wrongTypes,
      ),
      operation: fc.oneof(fc.constantFrom('CREATE', 'UPDATE', 'DELETE', 'CONNECT', 'create', 'PATCH'), wrongTypes),
      name: fc.oneof(fc.string(), wrongTypes),
      namespace: fc.oneof(fc.constantFrom('media', 'default', ''), fc.string(), wrongTypes),
      object: fc.oneof(fc.jsonValue({ maxDepth: 4 }), fc.record({
        apiVersion: fc.constantFrom('v1', 'batch/v1', 'volsync.backube/v1alpha1'),
        kind: fc.constantFrom('PersistentVolumeClaim', 'Job', 'Secret', 'ReplicationDestination'),
        metadata: fc.oneof(jsonLeaf, fc.record({ name: fc.oneof(fc.string(), wrongTypes), namespace: fc.oneof(fc.constant('media'), wrongTypes), labels: fc.oneof(fc.constant({ backup: 'hourly' }), fc.dictionary(fc.string(), fc.oneof(fc.string(), wrongTypes))), annotations: jsonLeaf }, { requiredKeys: [] })),
        spec: fc.oneof(jsonLeaf, fc.record({ dataSourceRef: jsonLeaf, template: jsonLeaf, kopia: jsonLeaf, trigger: jsonLeaf }, { requiredKeys: [] })),
        stringData: jsonLeaf,
      }, { requiredKeys: [] })),
      oldObject: fc.oneof(fc.constant(null), jsonLeaf),
      dryRun: fc.oneof(fc.boolean(), wrongTypes),
    }, { requiredKeys: [] }),
  ),
}, { requiredKeys: [] }).map((value) => JSON.stringify(value))

const anyJson: fc.Arbitrary<string> = fc.jsonValue({ maxDepth: 6 }).map((value) => JSON.stringify(value))

// ---- the in-process property ------------------------------------------------------------

const internalErrors = new Map<string, string>()
/** What the fuzzer reached: so a generator that only ever produces 400s does not pass silently. */
const reached = { rejected: 0, answered: 0, patched: 0, denied: 0, outcomes: new Map<string, number>() }

/** What the route does with a body: JSON.parse or 400, then handleReview. Returns the problems. */
function checkInProcess(text: string, snapshot: Snapshot): string[] {
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch {
    return [] // the route answers 400 "body is not JSON" without calling the handler
  }
  const problems: string[] = []
  for (const webhook of ['mutate', 'validate'] as const) {
    let result: ReturnType<typeof handleReview>
    try {
      result = handleReview(webhook, snapshot, body, NOW)
    } catch (error) {
      problems.push(`${webhook}: handleReview threw ${String(error)}`)
      continue
    }
    if (!result.ok) {
      reached.rejected += 1
      if (typeof result.error !== 'string' || !/^[^\r\n]+$/.test(result.error)) problems.push(`${webhook}: error is not one line: ${JSON.stringify(result.error)}`)
      continue
    }
    reached.answered += 1
    if (result.review.response.patch !== undefined) reached.patched += 1
    if (!result.review.response.allowed) reached.denied += 1
    const outcome = `${webhook}:${result.decision.outcome}`
    reached.outcomes.set(outcome, (reached.outcomes.get(outcome) ?? 0) + 1)
    if (result.decision.rule === 'internal-error') internalErrors.set(`${webhook} ${result.input.kind.kind} ${result.decision.reasons[0]?.slice(0, 160)}`, text.slice(0, 300))
    let wire: unknown
    try {
      wire = JSON.parse(JSON.stringify(result.review))
    } catch (error) {
      problems.push(`${webhook}: response does not serialize: ${String(error)}`)
      continue
    }
    const request = (body as { request: { uid: unknown; object?: unknown } }).request
    problems.push(...responseProblems(request, wire).map((p) => `${webhook}: ${p}`))
  }
  return problems
}

t.test('in-process: handleReview never throws and answers validly', async (t) => {
  const snapshotArb = fc.constantFrom(...snapshots)
  const property = (texts: fc.Arbitrary<string>) => fc.property(texts, snapshotArb, (text, { name, snapshot }) => {
    const problems = checkInProcess(text, snapshot)
    if (problems.length > 0) throw new Error(`[${name}] ${problems.join('; ')}`)
  })
  const started = Date.now()
  fc.assert(property(mutatedExample(4, 200_000)), { seed: SEED, numRuns: 2500 })
  fc.assert(property(reviewShaped), { seed: SEED + 1, numRuns: 800 })
  fc.assert(property(anyJson), { seed: SEED + 2, numRuns: 400 })
  t.pass(`3700 bodies x 2 webhooks in ${Date.now() - started} ms`)
  t.comment(`reached: ${reached.answered} answered (${reached.patched} with a patch, ${reached.denied} denied), ${reached.rejected} rejected; outcomes ${JSON.stringify(Object.fromEntries([...reached.outcomes].sort()))}`)
  t.ok(reached.patched >= 200, `patches were produced and checked (${reached.patched})`)
  t.ok(reached.denied >= 20, `denials were produced and checked (${reached.denied})`)
  t.ok(reached.rejected >= 300, `invalid reviews were rejected (${reached.rejected})`)
  for (const outcome of ['mutate:restore', 'mutate:wait', 'mutate:fresh', 'mutate:remove-datasource', 'mutate:inject', 'mutate:deny', 'mutate:skip', 'validate:warn', 'validate:deny']) {
    t.ok((reached.outcomes.get(outcome) ?? 0) > 0, `outcome ${outcome} reached`)
  }
  if (internalErrors.size > 0) {
    t.comment(`rules that failed open (allowed unchanged, logged as errors): ${internalErrors.size}`)
    for (const [what, body] of [...internalErrors].slice(0, 10)) t.comment(`${what}\n    body: ${body}`)
  }
})

t.test('in-process: the valid examples themselves pass the property under every snapshot', async (t) => {
  for (const { name: snapshotName, snapshot } of snapshots) {
    for (const example of examples) {
      t.strictSame(checkInProcess(JSON.stringify(example.review), snapshot), [], `${example.name} under ${snapshotName}`)
    }
  }
})

t.test('own __proto__ / constructor keys survive: the patch touches only what the rule changed', async (t) => {
  const { snapshot } = snapshots[0]!
  for (const name of ['pvc-restore', 'pvc-wait', 'pvc-remove-datasource', 'job-backup-create', 'job-backup-update-drift'] as const) {
    const text = readFileSync(join(EXAMPLES, 'admission', `${name}.json`), 'utf8')
      .replace('"metadata": {', '"metadata": {"annotations": {"__proto__": {"x": 1}, "constructor": "c"}, "__proto__": {"polluted": true},')
    const body = JSON.parse(text) as { request: { uid: string; object: Record<string, unknown> } }
    const result = handleReview('mutate', snapshot, body, NOW)
    if (!result.ok) throw new Error(result.error)
    t.strictSame(responseProblems(body.request, JSON.parse(JSON.stringify(result.review))), [], `${name}: valid`)
    const operations = JSON.parse(Buffer.from(result.review.response.patch ?? '', 'base64').toString('utf8')) as { path: string }[]
    t.ok(operations.length > 0, `${name}: patched`)
    t.notOk(operations.some((op) => /__proto__|constructor/.test(op.path)), `${name}: no op on the odd keys`)
    t.equal(({}).constructor, Object, 'Object.prototype untouched')
    t.equal((({}) as Record<string, unknown>).polluted, undefined, 'no prototype pollution')
  }
})

// ---- the live server ----------------------------------------------------------------------

t.test('live HTTPS server: never 5xx; a one-line 400 or a valid response', async (t) => {
  const certs = await makeCertificates(await tempDir(t, 'fuzz-certs'))
  const runtime = await startTestRuntime(t, { yaml: await exampleConfigYaml({ certs }) })
  const client = new WebhookClient(runtime.webhookUrl, { ca: certs.ca })
  t.teardown(() => client.close())
  await waitReady(client)

  const bodies: fc.Arbitrary<{ body: string | Buffer; contentType: string }> = fc.record({
    body: fc.oneof(
      { weight: 4, arbitrary: mutatedExample(4, 60_000) },
      { weight: 2, arbitrary: reviewShaped },
      { weight: 1, arbitrary: anyJson },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 4096 }).map((bytes) => Buffer.from(bytes)) },
      { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 200 }) },
    ),
    contentType: fc.constantFrom('application/json', 'application/json; charset=utf-8', 'text/plain', 'application/octet-stream'),
  })
  const statuses = new Map<number, number>()
  const started = Date.now()
  await fc.assert(fc.asyncProperty(bodies, fc.constantFrom('/mutate', '/validate'), async ({ body, contentType }, path) => {
    const result = await client.request('POST', path, body, { 'content-type': contentType })
    statuses.set(result.status, (statuses.get(result.status) ?? 0) + 1)
    if (result.status === 400) {
      const problems = badRequestProblems(result)
      if (problems.length > 0) throw new Error(`400 but ${problems.join('; ')}`)
      return
    }
    if (result.status !== 200) throw new Error(`HTTP ${result.status}: ${result.text.slice(0, 300)}`)
    const request = (JSON.parse(body.toString()) as { request: { uid: unknown; object?: unknown } }).request
    const problems = responseProblems(request, JSON.parse(result.text))
    if (problems.length > 0) throw new Error(problems.join('; '))
  }), { seed: SEED + 3, numRuns: 300 })
  t.pass(`300 requests in ${Date.now() - started} ms; statuses ${JSON.stringify(Object.fromEntries(statuses))}`)
  t.ok((statuses.get(200) ?? 0) > 0 && (statuses.get(400) ?? 0) > 0, 'both answers were exercised')
  t.strictSame([...statuses.keys()].filter((s) => s !== 200 && s !== 400), [], 'nothing but 200 and 400')

  const health = await client.request('GET', '/healthz')
  t.equal(health.status, 200, 'the server is still healthy')
  const series = metricSamples((await httpGet(`${runtime.metricsUrl}/metrics`)).text, 'volsync_autorestore_admission_requests_total')
  t.comment(`admission_requests_total series after fuzzing: ${series.length}`)

  // `kind` is a label taken from the request: 200 made-up kinds must not become 200 series.
  const review = JSON.parse(readFileSync(join(EXAMPLES, 'admission', 'pvc-restore.json'), 'utf8')) as { request: { kind: { kind: string } } }
  for (let i = 0; i < 200; i++) {
    review.request.kind.kind = `Fuzz${i}${'x'.repeat(i * 10)}`
    const { status } = await client.request('POST', '/mutate', JSON.stringify(review))
    if (status !== 200) t.fail(`made-up kind ${i}: HTTP ${status}`)
  }
  const after = metricSamples((await httpGet(`${runtime.metricsUrl}/metrics`)).text, 'volsync_autorestore_admission_requests_total')
  t.ok(after.length - series.length < 20, `bounded series for made-up kinds (${after.length - series.length} new)`)
})

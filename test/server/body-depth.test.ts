// Hostile bodies that are cheap to send and dear to parse (issue 13 item 4): a body nested far deeper
// than any AdmissionReview is refused by the depth scan before JSON.parse sees it, with a one-line 400;
// a legitimate review as large as Kubernetes sends (object + oldObject of 1.5 MiB each) still works.
import t from 'tap'
import { createLogger } from '../../src/log.ts'
import { buildWebhookServer } from '../../src/server/app.ts'
import { jsonDepthProblem, MAX_JSON_DEPTH } from '../../src/server/json-depth.ts'
import { createMetrics } from '../../src/server/metrics.ts'
import { snapshotOf } from '../support/snapshot.ts'
import { exampleReview, makeCertificates, metricSample, responseProblems, tempDir, type ReviewResponse } from '../support/live-webhook.ts'
import { readFile } from 'node:fs/promises'

const nested = (depth: number, open = '[', close = ']') => open.repeat(depth) + close.repeat(depth)

t.test('jsonDepthProblem: counts objects and arrays outside strings, stops at the first level too deep', async (t) => {
  t.equal(jsonDepthProblem(nested(MAX_JSON_DEPTH)), undefined, `${MAX_JSON_DEPTH} levels pass`)
  t.match(jsonDepthProblem(nested(MAX_JSON_DEPTH + 1)), /^body nests deeper than 100 levels \(at offset 100\)/)
  t.match(jsonDepthProblem(`{"a":${nested(MAX_JSON_DEPTH, '{"b":', '}')}}`), /deeper than 100 levels/, 'objects count like arrays')
  t.equal(jsonDepthProblem(JSON.stringify({ s: '['.repeat(1000) })), undefined, 'brackets inside a string do not count')
  t.equal(jsonDepthProblem(JSON.stringify({ s: '\\"[[[[' + '{'.repeat(500) })), undefined, 'an escaped quote does not end the string')
  t.match(jsonDepthProblem(JSON.stringify({ s: 'x\\' }) + nested(200)), /deeper/, 'an escaped backslash before the closing quote does end it')
  t.equal(jsonDepthProblem(`[${nested(10)},${nested(10)}]`.repeat(1)), undefined, 'siblings do not add up')
  t.equal(jsonDepthProblem('not json'), undefined, 'not a JSON validator: the parser says what is wrong')
  // Both paths: at most MAX_JSON_DEPTH brackets in all is answered without the scan, more are scanned.
  t.equal(jsonDepthProblem(`[${Array.from({ length: 80 }, () => '{"a":[]}').join(',')}]`), undefined, 'many shallow siblings (more brackets than the limit) pass the scan')
  t.match(jsonDepthProblem(`{"s":"${'{'.repeat(50)}","d":${nested(MAX_JSON_DEPTH + 1)}}`), /deeper than 100 levels/, 'too deep beside brackets in a string')
  t.equal(jsonDepthProblem(`{"s":"${'['.repeat(MAX_JSON_DEPTH - 1)}"}`), undefined, 'exactly the limit of brackets in all')
})

const certs = await makeCertificates(await tempDir(t, 'body-depth'))
const tls = { key: await readFile(certs.tlsKey, 'utf8'), cert: await readFile(certs.tlsCert, 'utf8') }

/** The real webhook server (its body limit and routes), driven with inject: no socket needed here. */
function webhook(tt: { teardown(fn: () => unknown): void }) {
  const metrics = createMetrics({ readSnapshot: () => snapshotOf() })
  const app = buildWebhookServer({ snapshot: () => snapshotOf(), metrics, log: createLogger('silent'), tls, readiness: { pending: () => [] } })
  tt.teardown(() => app.close())
  return { app, metrics }
}

t.test('a 2 MB body nested 10^6 deep: 400 with the reason, and JSON.parse never sees it', async (t) => {
  const { app, metrics } = webhook(t)
  const deep = `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":${nested(1_000_000)}}`
  const parses = t.capture(JSON, 'parse', JSON.parse)
  const reply = await app.inject({ method: 'POST', url: '/mutate', headers: { 'content-type': 'application/json' }, payload: deep })
  const parsedDeep = parses.calls.filter((call) => call.args[0] === deep).length
  parses.restore()
  t.equal(reply.statusCode, 400)
  t.equal(reply.body, `body nests deeper than ${MAX_JSON_DEPTH} levels (at offset ${deep.indexOf('[') + MAX_JSON_DEPTH - 1}): no AdmissionReview does\n`, 'one line naming the limit')
  t.equal(parsedDeep, 0, 'refused before JSON.parse')
  t.equal(metricSample(await metrics.registry.metrics(), 'volsync_autorestore_admission_invalid_requests_total', { webhook: 'mutate' }), 1, 'counted as an invalid review')

  const health = await app.inject({ method: 'GET', url: '/healthz' })
  t.equal(health.statusCode, 200, 'the server answers on')
})

t.test('a legitimate review at the size limit: object and oldObject of 1.5 MiB each, answered', async (t) => {
  const { app } = webhook(t)
  const review = await exampleReview('pvc-update')
  const big = 'x'.repeat(1.5 * 1024 * 1024)
  // Realistic depth too: managedFields mirror the object's shape with f: keys.
  let fields: Record<string, unknown> = { '.': {} }
  for (let i = 0; i < 30; i++) fields = { [`f:level${i}`]: fields }
  const withBulk = (object: unknown) => {
    const o = structuredClone(object) as { metadata: Record<string, unknown> }
    o.metadata.annotations = { ...(o.metadata.annotations as Record<string, string> | undefined), bulk: big }
    o.metadata.managedFields = [{ manager: 'kubectl', operation: 'Update', fieldsType: 'FieldsV1', fieldsV1: fields }]
    return o
  }
  const request = review.request as unknown as Record<string, unknown>
  request.object = withBulk(review.request.object)
  request.oldObject = withBulk(request.oldObject ?? review.request.object)
  const body = JSON.stringify(review)
  t.ok(body.length > 3 * 1024 * 1024, `a ${(body.length / 1024 / 1024).toFixed(2)} MiB body`)
  t.equal(jsonDepthProblem(body), undefined, 'within the depth limit')

  const reply = await app.inject({ method: 'POST', url: '/mutate', headers: { 'content-type': 'application/json' }, payload: body })
  t.equal(reply.statusCode, 200, reply.statusCode === 200 ? 'answered' : reply.body)
  const answer = reply.json() as ReviewResponse
  t.strictSame(responseProblems(review.request, answer), [], 'a valid AdmissionReview response')
  t.equal(answer.response.uid, review.request.uid)
  t.equal(answer.response.allowed, true)
})

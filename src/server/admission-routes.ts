// POST /mutate and POST /validate: parse, decide from the current snapshot, answer. Nothing
// here awaits I/O; a body that is not an AdmissionReview gets 400 and one line of text.
import type { FastifyInstance, FastifyReply } from 'fastify'
import type { Counter } from 'prom-client'
import { HANDLED_KINDS, type Webhook } from '../admission/webhooks.ts'
import type { Nudge } from '../admission/decision.ts'
import { handleReview } from '../admission/handle.ts'
import type { Log } from '../log.ts'
import type { Snapshot } from '../state/snapshot.ts'
import type { Metrics } from './metrics.ts'
import { jsonDepthProblem } from './json-depth.ts'

export interface AdmissionRoutesOptions {
  readonly snapshot: () => Snapshot
  readonly metrics: Metrics
  readonly log: Pick<Log, 'info' | 'error'>
  /** Side effects a decision asks for (pre-warm); never called for dry runs. */
  readonly onNudge?: (nudge: Nudge) => void
}

const JSON_CONTENT_TYPE = /^application\/json\s*(;|$)/i

function badRequest(reply: FastifyReply, message: string): FastifyReply {
  return reply.code(400).type('text/plain; charset=utf-8').send(`${message.replace(/[\r\n]+/g, ' ')}\n`)
}

/**
 * Registers POST /mutate and POST /validate on `app` (a scope of its own: it replaces the content-type
 * parsers). Each request is decided synchronously from `options.snapshot()` at Date.now(); a body that is
 * not JSON, nests deeper than MAX_JSON_DEPTH (refused before JSON.parse) or is not a review gets 400 with
 * one line of text. Counts every request and its duration
 * (seconds), logs decisions other than skip/unchanged at info and a throwing rule at error with `{ err }`,
 * and calls `onNudge` for a decision's nudge unless the review is a dry run.
 */
export function admissionRoutes(app: FastifyInstance, options: AdmissionRoutesOptions): void {
  const { metrics, log } = options
  // Bodies are parsed here, not by Fastify, so that every kind of bad body gets the same one-line 400.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => done(null, body))

  // Labelled children are looked up once per label set: prom-client hashes labels on every call otherwise.
  const counters = new Map<string, Counter.Internal>()
  const counter = (webhook: Webhook, kind: string, operation: string, decision: string) => {
    const key = `${webhook}\0${kind}\0${operation}\0${decision}`
    let child = counters.get(key)
    if (!child) {
      child = metrics.admissionRequests.labels({ webhook, kind, operation, decision })
      counters.set(key, child)
    }
    return child
  }
  const durations = { mutate: metrics.admissionDuration.labels({ webhook: 'mutate' }), validate: metrics.admissionDuration.labels({ webhook: 'validate' }) }

  const route = (webhook: Webhook) => async (request: { body: unknown; headers: { 'content-type'?: string } }, reply: FastifyReply) => {
    const started = process.hrtime.bigint()
    const contentType = request.headers['content-type']
    if (!contentType || !JSON_CONTENT_TYPE.test(contentType)) {
      metrics.invalidReviews.inc({ webhook })
      return badRequest(reply, `Content-Type must be application/json, not ${contentType ? JSON.stringify(contentType.slice(0, 100)) : 'missing'}`)
    }
    const text = typeof request.body === 'string' ? request.body : ''
    // Before the parser: a deep body costs JSON.parse seconds of event loop, the scan milliseconds.
    const tooDeep = jsonDepthProblem(text)
    if (tooDeep !== undefined) {
      metrics.invalidReviews.inc({ webhook })
      return badRequest(reply, tooDeep)
    }
    let body: unknown
    try {
      body = JSON.parse(text)
    } catch {
      metrics.invalidReviews.inc({ webhook })
      return badRequest(reply, 'body is not JSON: send an admission.k8s.io/v1 AdmissionReview')
    }
    const snapshot = options.snapshot()
    const result = handleReview(webhook, snapshot, body, Date.now())
    if (!result.ok) {
      metrics.invalidReviews.inc({ webhook })
      return badRequest(reply, result.error)
    }
    const { input, decision, review, thrown } = result
    counter(webhook, HANDLED_KINDS.has(input.kind.kind) ? input.kind.kind : 'other', input.operation, decision.outcome).inc()
    durations[webhook].observe(Number(process.hrtime.bigint() - started) / 1e9)
    if (decision.outcome === 'internal-error') {
      log.error({ webhook, uid: input.uid, kind: input.kind.kind, operation: input.operation, namespace: input.namespace, name: input.name, err: thrown }, 'admission rule failed; admitted unchanged')
    } else if (decision.outcome !== 'skip' && decision.outcome !== 'unchanged') {
      log.info({ webhook, uid: input.uid, kind: input.kind.kind, operation: input.operation, namespace: input.namespace, name: input.name, rule: decision.rule, decision: decision.outcome, reasons: decision.reasons, dryRun: input.dryRun, mode: snapshot.config.mode }, 'admission decision')
    }
    if (decision.nudge && !input.dryRun) options.onNudge?.(decision.nudge)
    return reply.send(review)
  }

  app.post('/mutate', route('mutate'))
  app.post('/validate', route('validate'))
}

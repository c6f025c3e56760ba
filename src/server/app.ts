// The two Fastify instances: the TLS webhook (admission + health) and the plain metrics port.
import { fastify, LogController, type FastifyError, type FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import { admissionRoutes, type AdmissionRoutesOptions } from './admission-routes.ts'
import { SERVER_TLS_OPTIONS } from '../tls/server-options.ts'
import type { Metrics } from './metrics.ts'
import { renderStatusPage, wantsHtml } from './status-page.ts'
import type { StatusDocument } from './status.ts'

export interface Readiness {
  /** Names of what is not ready yet; empty when ready. */
  pending(): string[]
}

export interface WebhookServerOptions extends AdmissionRoutesOptions {
  /** A real pino logger: Fastify's loggerInstance needs one. */
  readonly log: Logger
  readonly tls: { readonly key: string; readonly cert: string }
  readonly readiness: Readiness
}

/** Kubernetes reviews carry the object twice (object + oldObject); a 1.5 MiB object must fit. */
const BODY_LIMIT = 8 * 1024 * 1024

/**
 * The HTTPS webhook server (`options.tls` with SERVER_TLS_OPTIONS: TLS 1.2+, ECDHE with AEAD only; 8 MiB bodies): /healthz, /readyz (503 with what
 * is pending) and the admission routes. Built, not listening: the caller calls listen. Errors of Fastify
 * itself answer 4xx with one line and are logged at warn with `{ err }`.
 */
export function buildWebhookServer(options: WebhookServerOptions): FastifyInstance {
  const app = fastify({
    loggerInstance: options.log.child({ component: 'webhook' }),
    logController: new LogController({ disableRequestLogging: true }),
    // Routes log through options.log; a pino child per request would cost more than the decision.
    childLoggerFactory: (logger) => logger,
    bodyLimit: BODY_LIMIT,
    keepAliveTimeout: 75_000,
    https: { ...SERVER_TLS_OPTIONS, key: options.tls.key, cert: options.tls.cert },
  }) as unknown as FastifyInstance
  app.setErrorHandler((error: FastifyError, _request, reply) => {
    const status = typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 400
    options.log.warn({ err: error }, 'request rejected')
    void reply.code(status).type('text/plain; charset=utf-8').send(`${error.message.replace(/[\r\n]+/g, ' ')}\n`)
  })
  app.get('/healthz', async () => 'ok\n')
  app.get('/readyz', async (_request, reply) => {
    const pending = options.readiness.pending()
    if (pending.length === 0) return 'ready\n'
    return reply.code(503).type('text/plain; charset=utf-8').send(`not ready: ${pending.join('; ')}\n`)
  })
  void app.register(async (scope) => admissionRoutes(scope, options))
  return app
}

export interface MetricsServerOptions {
  readonly metrics: Metrics
  readonly log: Logger
  /** The /status document, served as JSON or rendered as HTML. */
  readonly status: () => StatusDocument
}

/**
 * The plain-HTTP server of /metrics (Prometheus text from `options.metrics.registry`) and /status (JSON,
 * or HTML for a browser; never cached). Built, not listening.
 */
export function buildMetricsServer(options: MetricsServerOptions): FastifyInstance {
  const app = fastify({ loggerInstance: options.log.child({ component: 'metrics' }), logController: new LogController({ disableRequestLogging: true }) }) as unknown as FastifyInstance
  app.get('/metrics', async (_request, reply) => {
    const text = await options.metrics.registry.metrics()
    return reply.type(options.metrics.registry.contentType).send(text)
  })
  app.get<{ Querystring: { format?: string } }>('/status', async (request, reply) => {
    const doc = options.status()
    // A live view: never serve a cached one. Vary: the same URL has two representations.
    void reply.header('cache-control', 'no-store').header('vary', 'Accept')
    if (wantsHtml(request.headers.accept, request.query.format)) return reply.type('text/html; charset=utf-8').send(renderStatusPage(doc))
    return reply.type('application/json; charset=utf-8').send(JSON.stringify(doc, null, 2))
  })
  return app
}

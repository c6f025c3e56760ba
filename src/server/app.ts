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
  /**
   * True once shutdown began: /readyz answers 503 (the endpoints controller takes the pod out) while
   * every route still answers, each response with `Connection: close`. Default: never.
   */
  readonly draining?: () => boolean
}

/**
 * Limits on every connection of both ports, so slow or idle clients (slowloris: headers, bodies, bare
 * TCP) cannot keep descriptors or block shutdown. The API server sends a review at once, so 10 s for
 * headers and for the whole request is generous; an idle keep-alive connection is kept 95 s, longer
 * than the API server's Go transport keeps it idle (90 s), so the client always closes first and never
 * reuses a connection the server is closing.
 */
export const CONNECTION_LIMITS = Object.freeze({
  /** Until the request's headers are complete (Node checks every connectionsCheckingIntervalMs). */
  headersTimeoutMs: 10_000,
  /** Until the whole request, body included, is received. */
  requestTimeoutMs: 10_000,
  /** Socket inactivity while no request is complete: a connection that never sends a byte. */
  connectionTimeoutMs: 10_000,
  /** TLS port: a TCP connection that does not finish its handshake. */
  handshakeTimeoutMs: 10_000,
  /** Idle keep-alive connections: above Go's 90 s idle timeout (Node adds 1 s more). */
  keepAliveTimeoutMs: 95_000,
  /** How often Node looks for connections past the header/request timeouts (its default is 30 s). */
  connectionsCheckingIntervalMs: 1_000,
  /** Then `Connection: close`: the API server reconnects, which spreads its load over replicas in time. */
  maxRequestsPerSocket: 1_000,
  /** Per port; past it new connections are closed at once. */
  maxConnections: 1_024,
})

/** Fastify's and Node's options for CONNECTION_LIMITS; maxConnections is set on the server after. */
function connectionOptions() {
  return {
    connectionTimeout: CONNECTION_LIMITS.connectionTimeoutMs,
    keepAliveTimeout: CONNECTION_LIMITS.keepAliveTimeoutMs,
    requestTimeout: CONNECTION_LIMITS.requestTimeoutMs,
    maxRequestsPerSocket: CONNECTION_LIMITS.maxRequestsPerSocket,
    // Requests on connections still open while the server closes are answered, not 503'd.
    return503OnClosing: false,
  }
}

/** Node http(s).Server options Fastify does not set itself. */
const NODE_SERVER_OPTIONS = Object.freeze({
  headersTimeout: CONNECTION_LIMITS.headersTimeoutMs,
  connectionsCheckingInterval: CONNECTION_LIMITS.connectionsCheckingIntervalMs,
})

/** Kubernetes reviews carry the object twice (object + oldObject); a 1.5 MiB object must fit. */
const BODY_LIMIT = 8 * 1024 * 1024

/**
 * The HTTPS webhook server (`options.tls` with SERVER_TLS_OPTIONS: TLS 1.2+, ECDHE with AEAD only; 8 MiB bodies;
 * CONNECTION_LIMITS): /healthz, /readyz (503 with what is pending, or while `options.draining()`) and the
 * admission routes. Built, not listening: the caller calls listen. Errors of Fastify
 * itself answer 4xx with one line and are logged at warn with `{ err }`.
 */
export function buildWebhookServer(options: WebhookServerOptions): FastifyInstance {
  const app = fastify({
    loggerInstance: options.log.child({ component: 'webhook' }),
    logController: new LogController({ disableRequestLogging: true }),
    // Routes log through options.log; a pino child per request would cost more than the decision.
    childLoggerFactory: (logger) => logger,
    bodyLimit: BODY_LIMIT,
    ...connectionOptions(),
    https: { ...SERVER_TLS_OPTIONS, ...NODE_SERVER_OPTIONS, handshakeTimeout: CONNECTION_LIMITS.handshakeTimeoutMs, key: options.tls.key, cert: options.tls.cert },
  }) as unknown as FastifyInstance
  app.server.maxConnections = CONNECTION_LIMITS.maxConnections
  const draining = options.draining ?? (() => false)
  // A callback hook, not an async one: it runs on every request, and a promise per request is measurable.
  app.addHook('onRequest', (_request, reply, done) => {
    // Node closes the connection after this response; the client opens a new one (to another pod).
    if (draining()) void reply.header('connection', 'close')
    done()
  })
  app.setErrorHandler((error: FastifyError, _request, reply) => {
    const status = typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 400
    options.log.warn({ err: error }, 'request rejected')
    void reply.code(status).type('text/plain; charset=utf-8').send(`${error.message.replace(/[\r\n]+/g, ' ')}\n`)
  })
  app.get('/healthz', async () => 'ok\n')
  app.get('/readyz', async (_request, reply) => {
    if (draining()) return reply.code(503).type('text/plain; charset=utf-8').send('not ready: shutting down\n')
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
 * or HTML for a browser; never cached), with CONNECTION_LIMITS. Built, not listening.
 */
export function buildMetricsServer(options: MetricsServerOptions): FastifyInstance {
  const app = fastify({
    loggerInstance: options.log.child({ component: 'metrics' }),
    logController: new LogController({ disableRequestLogging: true }),
    ...connectionOptions(),
    http: NODE_SERVER_OPTIONS,
  }) as unknown as FastifyInstance
  app.server.maxConnections = CONNECTION_LIMITS.maxConnections
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

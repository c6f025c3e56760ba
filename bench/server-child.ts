// One load-test target in its own process (forked by bench/load.ts), so the server never shares
// an event loop with autocannon:
//   node bench/server-child.ts ours <certFile> <keyFile>
//   node bench/server-child.ts noop <certFile> <keyFile> <responseFile> <contentType>
//   node bench/server-child.ts reference <certFile> <keyFile>
//   node bench/server-child.ts config <configFile>
// "ours" is the real server started through startRuntime. "noop" is a bare Fastify TLS server with
// the same certificate, keep-alive timeout, body limit and string body parsing that answers every
// POST /mutate with precomputed bytes (the answer ours gave for the same review). "reference" is the
// same bare Fastify server doing the least a real webhook must: JSON.parse of the review and a
// minimal answer (its uid, allowed) serialized by Fastify - the baseline the issue's goal is set
// against (ours must reach 0.85x its req/s). "config" is the
// real server on a whole config file (bench/secret-flood.ts writes one), logging to stdout as
// `serve` does (the parent points stdout where it wants the lines); ready once every catalog
// source has polled successfully.
// IPC: sends {type:'ready', url}; answers {type:'usage'} with CPU time (the process's and its main
// thread's) and event-loop use;
// stops on {type:'stop'}, SIGTERM/SIGINT, or when the parent goes away (IPC disconnect).
import { readFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { performance } from 'node:perf_hooks'
import { fastify, LogController } from 'fastify'
import { loadConfigFile } from '../src/config/load.ts'
import { createLogger } from '../src/log.ts'
import { startRuntime } from '../src/server/runtime.ts'
import { benchConfig } from './fixtures.ts'

export type ParentMessage = { readonly type: 'usage' } | { readonly type: 'stop' }
export type ChildMessage =
  | { readonly type: 'ready'; readonly url: string; readonly detail: string; readonly metricsUrl?: string }
  | { readonly type: 'usage'; readonly cpuMicros: number; readonly eluActive: number; readonly eluIdle: number; readonly loopCpuMicros: number }
  | { readonly type: 'failed'; readonly error: string }

function send(message: ChildMessage): void {
  process.send?.(message)
}

/** The same as the webhook's: Kubernetes reviews carry the object twice. */
const BODY_LIMIT = 8 * 1024 * 1024
const KEEP_ALIVE_TIMEOUT = 75_000

/** A Fastify TLS server with the webhook's certificate, keep-alive, body limit and string bodies; logger off. */
function bareTlsApp(certFile: string, keyFile: string) {
  const app = fastify({
    logger: false,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: BODY_LIMIT,
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT,
    https: { key: readFileSync(keyFile, 'utf8'), cert: readFileSync(certFile, 'utf8'), minVersion: 'TLSv1.2' },
  })
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => done(null, body))
  return app
}

async function startNoop(certFile: string, keyFile: string, responseFile: string, contentType: string): Promise<{ url: string; close(): Promise<void> }> {
  const response = readFileSync(responseFile)
  const app = bareTlsApp(certFile, keyFile)
  app.post('/mutate', async (_request, reply) => reply.type(contentType).send(response))
  await app.listen({ host: '127.0.0.1', port: 0 })
  const address = app.server.address() as AddressInfo
  return { url: `https://127.0.0.1:${address.port}`, close: () => app.close() }
}

/** A review as far as the reference reads it. */
interface MinimalReview {
  readonly request?: { readonly uid?: unknown }
}

async function startReference(certFile: string, keyFile: string): Promise<{ url: string; close(): Promise<void> }> {
  const app = bareTlsApp(certFile, keyFile)
  app.post('/mutate', async (request, reply) => {
    const review = JSON.parse(typeof request.body === 'string' ? request.body : '') as MinimalReview
    const uid = typeof review.request?.uid === 'string' ? review.request.uid : ''
    return reply.send({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid, allowed: true } })
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const address = app.server.address() as AddressInfo
  return { url: `https://127.0.0.1:${address.port}`, close: () => app.close() }
}

async function startOurs(certFile: string, keyFile: string): Promise<{ url: string; detail: string; close(): Promise<void> }> {
  const config = benchConfig({ certFile, keyFile })
  // No destination: pino writes to stdout, exactly as `serve` does (the parent points it at a file).
  const log = createLogger(config.log.level)
  const runtime = await startRuntime({ config, log })
  // Wait until the first catalog poll has landed, as a real readiness probe would.
  for (let i = 0; i < 200 && runtime.store.current.catalog.sources.length === 0; i++) await new Promise((r) => setTimeout(r, 10))
  return {
    url: runtime.webhookUrl,
    detail: `log level ${config.log.level}, mode ${config.mode}, state ${config.state.directory ?? '-'}, metrics ${runtime.metricsUrl}`,
    close: () => runtime.close(),
  }
}

/** How long a configured server may take for its first catalog polls (Kopia sources derive a key first). */
const CATALOG_READY_TIMEOUT_MS = 60_000

async function startConfigured(configFile: string): Promise<{ url: string; metricsUrl: string; detail: string; close(): Promise<void> }> {
  const config = loadConfigFile(configFile)
  // No destination: pino writes to stdout, exactly as `serve` does.
  const log = createLogger(config.log.level)
  const runtime = await startRuntime({ config, log })
  const wanted = config.catalog.sources.map((source) => source.name)
  const deadline = Date.now() + CATALOG_READY_TIMEOUT_MS
  for (;;) {
    const sources = runtime.store.current.catalog.sources
    if (wanted.every((name) => sources.some((s) => s.name === name && s.lastSuccess !== null))) break
    const failed = sources.find((s) => s.lastSuccess === null && s.error !== null)
    if (failed || Date.now() > deadline) {
      await runtime.close()
      const states = sources.map((s) => `${s.name}: ${s.error ?? (s.lastSuccess === null ? 'not polled' : 'ok')}`).join('; ')
      throw new Error(`catalog sources not all polled ${failed ? `(${failed.name} failed)` : `within ${CATALOG_READY_TIMEOUT_MS / 1000} s`}: ${states || 'none'}`)
    }
    await new Promise((r) => setTimeout(r, 20))
  }
  const repositories = runtime.store.current.catalog.sources.reduce((n, s) => n + s.repositories.length, 0)
  return {
    url: runtime.webhookUrl,
    metricsUrl: runtime.metricsUrl,
    detail: `config ${configFile}, log level ${config.log.level}, mode ${config.mode}, ${wanted.length} catalog source(s), ${repositories} opened Kopia repositor${repositories === 1 ? 'y' : 'ies'}`,
    close: () => runtime.close(),
  }
}

async function start(mode: string | undefined, args: readonly string[]): Promise<{ url: string; metricsUrl?: string; detail: string; close(): Promise<void> }> {
  const [first, second, third, fourth] = args
  if (mode === 'config' && first) return startConfigured(first)
  if (mode === 'ours' && first && second) return startOurs(first, second)
  if (mode === 'noop' && first && second && third && fourth) {
    return { ...(await startNoop(first, second, third, fourth)), detail: 'bare fastify, logger off, precomputed answer' }
  }
  if (mode === 'reference' && first && second) {
    return { ...(await startReference(first, second)), detail: 'bare fastify, logger off, JSON.parse of the review, minimal answer' }
  }
  throw new Error('usage: server-child.ts ours CERT KEY | noop CERT KEY RESPONSE_FILE CONTENT_TYPE | reference CERT KEY | config CONFIG_FILE')
}

async function main(): Promise<void> {
  const [mode, ...args] = process.argv.slice(2)
  const server = await start(mode, args)

  let stopping = false
  const stop = (code: number) => {
    if (stopping) return
    stopping = true
    // Never hang on a keep-alive connection: close what can be closed, then leave regardless.
    setTimeout(() => process.exit(code), 2000).unref()
    server.close().then(() => process.exit(code), () => process.exit(code))
  }
  process.on('disconnect', () => stop(0))
  process.on('SIGTERM', () => stop(0))
  process.on('SIGINT', () => stop(0))

  let elu = performance.eventLoopUtilization()
  process.on('message', (message: ParentMessage) => {
    if (message.type === 'stop') stop(0)
    else if (message.type === 'usage') {
      const usage = process.cpuUsage()
      // The main thread alone: the process figure also counts libuv's pool (key derivations).
      const loop = process.threadCpuUsage()
      elu = performance.eventLoopUtilization()
      send({ type: 'usage', cpuMicros: usage.user + usage.system, eluActive: elu.active, eluIdle: elu.idle, loopCpuMicros: loop.user + loop.system })
    }
  })
  send({ type: 'ready', url: server.url, detail: server.detail, ...(server.metricsUrl !== undefined ? { metricsUrl: server.metricsUrl } : {}) })
  // Started by hand (no IPC channel, e.g. under --cpu-prof): say where it listens; stop with SIGTERM.
  if (!process.send) console.error(`${mode} server listening on ${server.url} (${server.detail})`)
}

main().catch((error: unknown) => {
  send({ type: 'failed', error: error instanceof Error ? error.stack ?? error.message : String(error) })
  process.exit(1)
})

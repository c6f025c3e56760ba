// Starts the real runtime (TLS webhook + plain metrics server) in-process for server and fuzz
// tests, and talks to it over real HTTPS with the generated CA and hostname verification.
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import http from 'node:http'
import https from 'node:https'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import type { TLSSocket } from 'node:tls'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { Writable } from 'node:stream'
import fastJsonPatch from 'fast-json-patch'
import { parseDocument, stringify } from 'yaml'
import { parseConfig } from '../../src/config/load.ts'
import { createLogger, type Logger } from '../../src/log.ts'
import { startRuntime, type Runtime } from '../../src/server/runtime.ts'
import { writeCertificates, type CertificatePaths } from '../../src/tls/write-certificates.ts'

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
export const EXAMPLES = join(ROOT, 'examples')
export const EXAMPLE_STATE = join(EXAMPLES, 'state')
export const SERVICE = 'volsync-autorestore'
export const NAMESPACE = 'volsync-system'
/** The name the API server uses to reach the webhook Service. */
export const SERVICE_DNS = `${SERVICE}.${NAMESPACE}.svc`

/** Only teardown is needed; the root TAP and subtest types differ otherwise. */
export type Teardown = { teardown(fn: () => unknown): void }

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json }

export interface Review {
  apiVersion: string
  kind: string
  request: {
    uid: string
    kind: { group: string; version: string; kind: string }
    operation: string
    name?: string
    namespace?: string
    object: Record<string, unknown> | null
    oldObject: Record<string, unknown> | null
    dryRun?: boolean
    [key: string]: unknown
  }
}

export interface ReviewResponse {
  apiVersion: string
  kind: string
  response: {
    uid: string
    allowed: boolean
    patchType?: string
    patch?: string
    warnings?: string[]
    status?: { code: number; reason?: string; message: string }
  }
}

export const EXAMPLE_NAMES = [
  'job-backup-create', 'job-backup-update-drift', 'not-a-review', 'pvc-fresh', 'pvc-not-participating', 'pvc-remove-datasource',
  'pvc-restore', 'pvc-update', 'pvc-user-datasource', 'pvc-wait', 'rd-pitfalls', 'secret-kopia-pitfalls',
] as const
export type ExampleName = (typeof EXAMPLE_NAMES)[number]

export async function exampleText(name: ExampleName): Promise<string> {
  return readFile(join(EXAMPLES, 'admission', `${name}.json`), 'utf8')
}

export async function exampleReview(name: ExampleName): Promise<Review> {
  return JSON.parse(await exampleText(name)) as Review
}

/** A temporary directory removed when the test ends. */
export async function tempDir(t: Teardown, prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `vsar-${prefix}-`))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

export interface TestCertificates extends CertificatePaths {
  /** The CA certificate PEM: what a client trusts. */
  ca: string
}

/** A CA and a serving certificate for the webhook Service (plus localhost / 127.0.0.1). */
export async function makeCertificates(outDir: string): Promise<TestCertificates> {
  const paths = await writeCertificates({ outDir, service: SERVICE, namespace: NAMESPACE, dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] })
  return { ...paths, ca: await readFile(paths.caCert, 'utf8') }
}

export interface ConfigOptions {
  readonly certs: CertificatePaths
  readonly stateDir?: string
  /** Merged over examples/config.yaml (top-level keys replaced, `pvc`/`validation` merged one level). */
  readonly overrides?: Record<string, unknown>
}

/**
 * examples/config.yaml (its catalog source over examples/repos, movers, pvc rules) served on free loopback
 * ports with the given certificates, as YAML text.
 */
export async function exampleConfigYaml(options: ConfigOptions): Promise<string> {
  const doc = parseDocument(await readFile(join(EXAMPLES, 'config.yaml'), 'utf8'))
  const base = doc.toJS() as Record<string, Record<string, unknown>>
  const overrides = options.overrides ?? {}
  const merged: Record<string, unknown> = {
    ...base,
    server: {
      host: '127.0.0.1',
      port: 0,
      metricsHost: '127.0.0.1',
      metricsPort: 0,
      tls: { certFile: options.certs.tlsCert, keyFile: options.certs.tlsKey },
    },
    state: { directory: options.stateDir ?? EXAMPLE_STATE },
    log: { level: 'silent' },
  }
  for (const [key, value] of Object.entries(overrides)) {
    const current = merged[key]
    merged[key] = current && typeof current === 'object' && value && typeof value === 'object' && !Array.isArray(value)
      ? { ...(current as object), ...(value as object) }
      : value
  }
  return stringify(merged)
}

/** Collects pino lines so tests can look at what was logged. */
export class LogSink extends Writable {
  readonly lines: Record<string, unknown>[] = []
  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (line.trim()) this.lines.push(JSON.parse(line) as Record<string, unknown>)
    }
    done()
  }

  messages(msg: string): Record<string, unknown>[] {
    return this.lines.filter((line) => line.msg === msg)
  }
}

export interface StartOptions {
  readonly yaml: string
  readonly configFile?: string
  readonly log?: Logger
}

/** startRuntime on the parsed YAML; closed at teardown. Waits until /readyz says ready. */
export async function startTestRuntime(t: Teardown, options: StartOptions): Promise<Runtime> {
  const runtime = await startRuntime({
    config: parseConfig(options.yaml, 'test config'),
    log: options.log ?? createLogger('silent'),
    ...(options.configFile ? { configFile: options.configFile } : {}),
  })
  t.teardown(() => runtime.close())
  return runtime
}

export function portOf(url: string): number {
  return Number(new URL(url).port)
}

export interface HttpsResult {
  status: number
  contentType: string
  text: string
  /** The TLS socket the request went over (still open when keep-alive). */
  socket: TLSSocket
  reusedSocket: boolean
  fingerprint256: string
}

export interface ClientOptions {
  readonly ca: string
  /** Name checked against the certificate's SANs. Default: the Service DNS name. */
  readonly servername?: string
  readonly keepAlive?: boolean
}

/** HTTPS to the webhook on 127.0.0.1, trusting only `ca`, verifying `servername`. */
export class WebhookClient {
  readonly agent: https.Agent
  readonly url: string
  readonly #port: number
  readonly #servername: string

  constructor(webhookUrl: string, options: ClientOptions) {
    this.url = webhookUrl
    this.#port = portOf(webhookUrl)
    this.#servername = options.servername ?? SERVICE_DNS
    this.agent = new https.Agent({
      keepAlive: options.keepAlive ?? true,
      maxSockets: 1,
      ca: options.ca,
      servername: this.#servername,
      rejectUnauthorized: true,
    })
  }

  request(method: string, path: string, body?: string | Buffer, headers: Record<string, string> = body === undefined ? {} : { 'content-type': 'application/json' }): Promise<HttpsResult> {
    return new Promise((done, fail) => {
      const req = https.request({ host: '127.0.0.1', port: this.#port, servername: this.#servername, method, path, headers, agent: this.agent }, (res) => {
        const chunks: Buffer[] = []
        res.on('data', (chunk: Buffer) => chunks.push(chunk))
        res.on('error', fail)
        res.on('end', () => {
          const socket = req.socket as TLSSocket
          done({
            status: res.statusCode ?? 0,
            contentType: String(res.headers['content-type'] ?? ''),
            text: Buffer.concat(chunks).toString('utf8'),
            socket,
            reusedSocket: req.reusedSocket,
            fingerprint256: socket.getPeerCertificate().fingerprint256,
          })
        })
      })
      req.setTimeout(10_000, () => req.destroy(new Error(`${method} ${path}: no answer within 10 s`)))
      req.on('error', fail)
      req.end(body)
    })
  }

  /** POST a review (object or raw text) and parse a 200 answer. */
  async review(path: '/mutate' | '/validate', body: unknown): Promise<{ result: HttpsResult; review: ReviewResponse }> {
    const result = await this.request('POST', path, typeof body === 'string' ? body : JSON.stringify(body))
    if (result.status !== 200) throw new Error(`${path}: HTTP ${result.status}: ${result.text}`)
    return { result, review: JSON.parse(result.text) as ReviewResponse }
  }

  close(): void {
    this.agent.destroy()
  }
}

/** Plain HTTP GET (metrics port). */
export function httpGet(url: string, headers: Record<string, string> = {}): Promise<{ status: number; contentType: string; text: string }> {
  return new Promise((done, fail) => {
    const req = http.get(url, { headers, agent: false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => done({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type'] ?? ''), text: Buffer.concat(chunks).toString('utf8') }))
    })
    req.setTimeout(10_000, () => req.destroy(new Error(`GET ${url}: no answer within 10 s`)))
    req.on('error', fail)
  })
}

/** Polls until `check` returns a value (not undefined), or fails after `timeoutMs`. */
export async function eventually<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let lastError: unknown
  for (;;) {
    try {
      const value = await check()
      if (value !== undefined) return value
    } catch (error) {
      lastError = error
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? ` (last error: ${String(lastError)})` : ''}`)
    }
    await sleep(25)
  }
}

export async function waitReady(client: WebhookClient): Promise<HttpsResult> {
  return eventually('/readyz 200', async () => {
    const result = await client.request('GET', '/readyz')
    return result.status === 200 ? result : undefined
  })
}

/** The decoded JSON patch of a response ([] when there is none). */
export function decodePatch(review: ReviewResponse): fastJsonPatch.Operation[] {
  const { patch } = review.response
  if (patch === undefined) return []
  return JSON.parse(Buffer.from(patch, 'base64').toString('utf8')) as fastJsonPatch.Operation[]
}

export function applyPatchTo<T>(document: T, operations: readonly fastJsonPatch.Operation[]): T {
  return fastJsonPatch.applyPatch(structuredClone(document), operations, true, false).newDocument
}

/** Value of one sample in Prometheus text format, matching every given label exactly; undefined when absent. */
export function metricSample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (!match || match[1] !== name) continue
    const found = new Map<string, string>()
    for (const [, key = '', value = ''] of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) found.set(key, value)
    if (Object.entries(labels).every(([key, value]) => found.get(key) === value)) return Number(match[3])
  }
  return undefined
}

/** Every sample of a metric with its labels. */
export function metricSamples(text: string, name: string): { labels: Record<string, string>; value: number }[] {
  const samples: { labels: Record<string, string>; value: number }[] = []
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (!match || match[1] !== name) continue
    const labels: Record<string, string> = {}
    for (const [, key = '', value = ''] of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[key] = value
    samples.push({ labels, value: Number(match[3]) })
  }
  return samples
}

/**
 * What every 200 answer must be: an admission.k8s.io/v1 AdmissionReview response that echoes the
 * uid, with a boolean `allowed` and, if any, a base64 RFC 6902 patch that applies to the request's
 * object. Returns the problems found (empty: valid).
 */
export function responseProblems(request: { uid?: unknown; object?: unknown }, answer: unknown): string[] {
  const problems: string[] = []
  if (answer === null || typeof answer !== 'object' || Array.isArray(answer)) return ['answer is not a JSON object']
  const review = answer as Record<string, unknown>
  if (review.apiVersion !== 'admission.k8s.io/v1') problems.push(`apiVersion ${JSON.stringify(review.apiVersion)}`)
  if (review.kind !== 'AdmissionReview') problems.push(`kind ${JSON.stringify(review.kind)}`)
  const response = review.response as Record<string, unknown> | undefined
  if (!response || typeof response !== 'object') return [...problems, 'no response object']
  if (response.uid !== request.uid) problems.push(`response.uid ${JSON.stringify(response.uid)} !== request.uid ${JSON.stringify(request.uid)}`)
  if (typeof response.allowed !== 'boolean') problems.push('allowed is not a boolean')
  if (response.warnings !== undefined && !(Array.isArray(response.warnings) && response.warnings.every((w) => typeof w === 'string'))) {
    problems.push('warnings is not an array of strings')
  }
  if (response.allowed === false) {
    const status = response.status as { code?: unknown; message?: unknown } | undefined
    if (!status || typeof status.message !== 'string' || status.message.length === 0) problems.push('denied without a status message')
    if (response.patch !== undefined) problems.push('denied with a patch')
  }
  if (response.patch !== undefined) {
    if (response.patchType !== 'JSONPatch') problems.push(`patchType ${JSON.stringify(response.patchType)}`)
    if (typeof response.patch !== 'string') return [...problems, 'patch is not a string']
    const bytes = Buffer.from(response.patch, 'base64')
    if (bytes.toString('base64') !== response.patch) problems.push('patch is not canonical base64')
    let operations: unknown
    try {
      operations = JSON.parse(bytes.toString('utf8'))
    } catch {
      return [...problems, 'patch is not JSON']
    }
    if (!Array.isArray(operations) || operations.length === 0) return [...problems, 'patch is not a non-empty JSON array']
    const document = request.object
    if (document === null || typeof document !== 'object') return [...problems, 'patch without a request object']
    try {
      const error = fastJsonPatch.validate(operations as fastJsonPatch.Operation[], document)
      if (error) problems.push(`patch does not validate: ${error.name} ${error.message.split('\n')[0]}`)
    } catch (error) {
      problems.push(`patch validation threw: ${String(error).split('\n')[0]}`)
    }
  } else if (response.patchType !== undefined) {
    problems.push('patchType without a patch')
  }
  return problems
}

/** A 400 answer: one non-empty line of plain text. */
export function badRequestProblems(result: { status: number; contentType: string; text: string }): string[] {
  const problems: string[] = []
  if (!result.contentType.startsWith('text/plain')) problems.push(`content-type ${result.contentType}`)
  if (!/^[^\r\n]+\n$/.test(result.text)) problems.push(`body is not one line: ${JSON.stringify(result.text.slice(0, 200))}`)
  return problems
}

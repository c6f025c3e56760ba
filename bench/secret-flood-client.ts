// The second client of bench/secret-flood.ts, run as a worker thread so that its requests never
// delay autocannon's timing on the main thread: it sends `count` Secret CREATE reviews to
// POST /validate, each with its own KOPIA_PASSWORD, at a steady rate over `durationMs`, over TLS
// keep-alive, and reports what came back. The review builder is exported for the pre-flight checks.
// Protocol: the worker posts {type:'ready'} once its bodies are built, starts on {type:'go'}, and
// posts one FloodResult when the last response (or error) is in.
import { Agent, request } from 'node:https'
import { isMainThread, parentPort, workerData } from 'node:worker_threads'

/** What the worker needs; passed as workerData. */
export interface FloodOptions {
  readonly url: string
  /** PEM of the CA that signed the server's certificate. */
  readonly ca: string
  readonly count: number
  readonly durationMs: number
  /** Sockets the keep-alive agent may open at once. */
  readonly connections: number
  /** KOPIA_REPOSITORY of every Secret (the filesystem URL of movers.repository.mountPath). */
  readonly repository: string
  /** Passwords are `${passwordPrefix}${i}`: distinct within and across floods given distinct prefixes. */
  readonly passwordPrefix: string
  /** Every Secret carries this password instead (the control: the same requests, no check asked for). */
  readonly samePassword?: string
}

export interface FloodResult {
  readonly type: 'result'
  readonly sent: number
  /** 2xx answers that allowed the Secret. */
  readonly allowed: number
  readonly non2xx: number
  /** 2xx answers that denied, or whose body was not an AdmissionReview answer for this uid. */
  readonly unexpected: number
  /** Allowed answers that carried a warning (a distinct new password has no verdict, so none expected). */
  readonly warned: number
  readonly errors: number
  /** ms from the first request sent to the last answer in. */
  readonly elapsedMs: number
  /** Each 2xx answer's time (ms), from sending the request to its last byte. */
  readonly latencies: Float64Array<ArrayBuffer>
}

export type FloodMessage = { readonly type: 'ready' } | FloodResult

/** How long one request may take before it counts as an error. */
const REQUEST_TIMEOUT_MS = 10_000

/**
 * A Secret CREATE AdmissionReview as the API server sends it (values in `data`, base64): a VolSync
 * Kopia Secret naming `repository` with `password`. `index` makes the uid and names distinct.
 */
export function secretReview(index: number, repository: string, password: string): string {
  const name = `app-${index}-volsync`
  const data = { KOPIA_REPOSITORY: repository, KOPIA_PASSWORD: password }
  return JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: `00000000-0000-4000-8000-${index.toString(16).padStart(12, '0')}`,
      kind: { group: '', version: 'v1', kind: 'Secret' },
      resource: { group: '', version: 'v1', resource: 'secrets' },
      name,
      namespace: 'media',
      operation: 'CREATE',
      userInfo: { username: 'system:serviceaccount:external-secrets:external-secrets' },
      object: {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name, namespace: 'media' },
        type: 'Opaque',
        data: Object.fromEntries(Object.entries(data).map(([key, value]) => [key, Buffer.from(value).toString('base64')])),
      },
      oldObject: null,
      dryRun: false,
    },
  })
}

/** The uid of a review built by secretReview (what its answer must echo). */
function uidOf(body: string): string {
  return (JSON.parse(body) as { request: { uid: string } }).request.uid
}

type Answer = 'allowed' | 'warned' | 'unexpected'

function classify(body: string, uid: string): Answer {
  try {
    const response = (JSON.parse(body) as { response?: { uid?: unknown; allowed?: unknown; warnings?: unknown } }).response
    if (response?.uid !== uid || response.allowed !== true) return 'unexpected'
    return Array.isArray(response.warnings) && response.warnings.length > 0 ? 'warned' : 'allowed'
  } catch {
    return 'unexpected'
  }
}

function runFlood(options: FloodOptions, bodies: readonly string[]): Promise<FloodResult> {
  const agent = new Agent({ ca: options.ca, keepAlive: true, maxSockets: options.connections })
  const target = new URL('/validate', options.url)
  const latencies = new Float64Array(bodies.length)
  const counts = { sent: 0, allowed: 0, warned: 0, non2xx: 0, unexpected: 0, errors: 0, answered: 0, done: 0 }
  const interval = options.durationMs / bodies.length
  return new Promise<FloodResult>((resolve) => {
    const started = performance.now()
    const finish = () => {
      if (++counts.done < bodies.length) return
      agent.destroy()
      resolve({
        type: 'result', sent: counts.sent, allowed: counts.allowed, non2xx: counts.non2xx, unexpected: counts.unexpected,
        warned: counts.warned, errors: counts.errors, elapsedMs: performance.now() - started, latencies: latencies.slice(0, counts.answered),
      })
    }
    const send = (body: string) => {
      const uid = uidOf(body)
      const sentAt = performance.now()
      counts.sent++
      const req = request(target, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
        const chunks: Buffer[] = []
        res.on('data', (chunk: Buffer) => chunks.push(chunk))
        res.on('end', () => {
          const status = res.statusCode ?? 0
          if (status < 200 || status >= 300) counts.non2xx++
          else {
            latencies[counts.answered++] = performance.now() - sentAt
            counts[classify(Buffer.concat(chunks).toString('utf8'), uid)]++
          }
          finish()
        })
        res.on('error', () => { counts.errors++; finish() })
      })
      req.setTimeout(REQUEST_TIMEOUT_MS, () => req.destroy(new Error('timed out')))
      req.on('error', () => { counts.errors++; finish() })
      req.end(body)
    }
    // Steady rate: request i leaves at started + i * interval; a late timer sends what is due.
    let next = 0
    const tick = () => {
      const due = Math.min(bodies.length, Math.floor((performance.now() - started) / interval) + 1)
      while (next < due) send(bodies[next++]!)
      if (next < bodies.length) setTimeout(tick, Math.max(0, started + next * interval - performance.now()))
    }
    tick()
  })
}

if (!isMainThread && parentPort) {
  const port = parentPort
  const options = workerData as FloodOptions
  const bodies = Array.from({ length: options.count }, (_, i) => secretReview(i, options.repository, options.samePassword ?? `${options.passwordPrefix}${i}`))
  port.once('message', () => {
    runFlood(options, bodies).then((result) => port.postMessage(result, [result.latencies.buffer]))
  })
  const ready: FloodMessage = { type: 'ready' }
  port.postMessage(ready)
}

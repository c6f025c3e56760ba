// Part 1 plumbing: server child processes, the pre-flight check of their answers, and one
// autocannon run with exact latency percentiles (autocannon's own histogram rounds to whole ms).
import { fork, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { request, Agent } from 'node:https'
import { join } from 'node:path'
import autocannon from 'autocannon'
import type { ChildMessage, ParentMessage } from './server-child.ts'
import { ROOT } from './fixtures.ts'
import { quantiles, SampleBuffer } from './stats.ts'

export type TargetName = 'ours' | 'noop' | 'reference'
/** server-child.ts modes: the two load targets, and the real server on a config file. */
export type ChildMode = TargetName | 'config'

export interface StartOptions {
  /** A file descriptor for the child's stdout (its log lines); the parent's stdout when absent. */
  readonly stdout?: number
}

export interface Usage {
  readonly cpuMicros: number
  readonly eluActive: number
  readonly eluIdle: number
  /** CPU time of the child's main thread only (the event loop), without libuv's pool threads. */
  readonly loopCpuMicros: number
}

const CHILD_SCRIPT = join(ROOT, 'bench', 'server-child.ts')
const live = new Set<ChildProcess>()

/** Synchronous last resort for process 'exit': nothing async runs there. */
export function killAllServers(): void {
  for (const child of live) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  }
  live.clear()
}

export class ServerProcess {
  readonly name: ChildMode
  readonly url: string
  /** The plain-HTTP metrics/status base URL, when the child reported one ('config' mode). */
  readonly metricsUrl: string | null
  readonly detail: string
  readonly #child: ChildProcess
  #pendingUsage: ((usage: Usage) => void)[] = []

  private constructor(name: ChildMode, child: ChildProcess, url: string, detail: string, metricsUrl: string | null) {
    this.name = name
    this.#child = child
    this.url = url
    this.metricsUrl = metricsUrl
    this.detail = detail
    child.on('message', (message: ChildMessage) => {
      if (message.type === 'usage') this.#pendingUsage.shift()?.({ cpuMicros: message.cpuMicros, eluActive: message.eluActive, eluIdle: message.eluIdle, loopCpuMicros: message.loopCpuMicros })
    })
  }

  static start(name: ChildMode, args: readonly string[], options: StartOptions = {}): Promise<ServerProcess> {
    const child = fork(CHILD_SCRIPT, [name, ...args], {
      cwd: ROOT,
      execPath: process.execPath,
      // BENCH_CPU_PROF=DIR writes each server's V8 CPU profile there when it stops (node --cpu-prof).
      execArgv: process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [],
      stdio: ['ignore', options.stdout ?? 'inherit', 'inherit', 'ipc'],
    })
    live.add(child)
    child.once('exit', () => live.delete(child))
    return new Promise<ServerProcess>((resolve, reject) => {
      const timer = setTimeout(() => fail(new Error(`${name} server did not start within 30 s`)), 30_000)
      const fail = (error: Error) => {
        clearTimeout(timer)
        child.kill('SIGKILL')
        reject(error)
      }
      child.once('error', fail)
      child.once('exit', (code, signal) => fail(new Error(`${name} server exited before it was ready (code ${code}, signal ${signal})`)))
      child.on('message', (message: ChildMessage) => {
        if (message.type === 'failed') fail(new Error(`${name} server failed to start: ${message.error}`))
        else if (message.type === 'ready') {
          clearTimeout(timer)
          child.removeAllListeners('exit')
          child.once('exit', () => live.delete(child))
          resolve(new ServerProcess(name, child, message.url, message.detail, message.metricsUrl ?? null))
        }
      })
    })
  }

  usage(): Promise<Usage> {
    return new Promise<Usage>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name} server did not report its CPU use`)), 5000)
      this.#pendingUsage.push((usage) => {
        clearTimeout(timer)
        resolve(usage)
      })
      const message: ParentMessage = { type: 'usage' }
      this.#child.send(message)
    })
  }

  /** Asks the child to close its servers; SIGKILL when it does not leave within 5 s. */
  stop(): Promise<void> {
    const child = this.#child
    if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
      child.once('exit', () => {
        clearTimeout(timer)
        live.delete(child)
        resolve()
      })
      const message: ParentMessage = { type: 'stop' }
      if (child.connected) child.send(message)
      else child.kill('SIGTERM')
    })
  }
}

/**
 * CPU seconds all processes on the machine have used since boot (/proc/stat, Linux; null
 * elsewhere). Around a run, minus what the server and this process used, it shows how much
 * CPU something else took: the figures are only comparable when that stays near zero.
 */
export function machineBusySeconds(): number | null {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1, 9).map(Number)
    const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = fields
    // USER_HZ is 100 on every mainstream Linux build.
    return (user + nice + system + irq + softirq + steal) / 100
  } catch {
    return null
  }
}

export interface PostResult {
  readonly status: number
  readonly contentType: string
  readonly body: string
}

/** One verified-TLS POST (the CA of the temporary certificates), a new connection each time. */
export function post(url: string, path: string, body: string, ca: string): Promise<PostResult> {
  const agent = new Agent({ ca, keepAlive: false })
  return new Promise<PostResult>((resolve, reject) => {
    const req = request(new URL(path, url), { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type'] ?? ''), body: Buffer.concat(chunks).toString('utf8') }))
      res.on('error', reject)
    })
    req.setTimeout(10_000, () => req.destroy(new Error(`POST ${url}${path} timed out`)))
    req.on('error', reject)
    req.end(body)
  }).finally(() => agent.destroy())
}

/** The decision carried by an AdmissionReview answer: allowed, and the decoded JSON patch. */
export function describeAnswer(body: string): { allowed: boolean; patch: string; uid: string } {
  const parsed = JSON.parse(body) as { response?: { allowed?: unknown; patch?: unknown; uid?: unknown } }
  const response = parsed.response ?? {}
  return {
    allowed: response.allowed === true,
    uid: typeof response.uid === 'string' ? response.uid : '',
    patch: typeof response.patch === 'string' ? Buffer.from(response.patch, 'base64').toString('utf8') : '',
  }
}

export interface CannonOptions {
  readonly url: string
  readonly body: string
  readonly expectBody: string
  readonly connections: number
  readonly pipelining: number
  readonly durationSec: number
  /**
   * Each connection is closed and reopened after this many requests (autocannon's reconnectRate), as
   * the API server reconnects when the webhook says `Connection: close` (maxRequestsPerSocket):
   * autocannon itself ignores that header and gets 503s. Default: never.
   */
  readonly reconnectEvery?: number
}

export interface CannonRun {
  readonly requests: number
  readonly reqPerSec: number
  /** Exact, from every response's own timing (ms). */
  readonly p50: number
  readonly p99: number
  readonly p999: number
  readonly max: number
  /** autocannon's histogram p99 (whole milliseconds), for comparison with its CLI output. */
  readonly autocannonP99: number
  readonly non2xx: number
  readonly errors: number
  readonly timeouts: number
  readonly mismatches: number
  readonly resets: number
  readonly durationSec: number
  /** CPU time the load generator (this process) used per second of the run. */
  readonly clientCpuPerSec: number
}

export function runCannon(options: CannonOptions): Promise<CannonRun> {
  const latencies = new SampleBuffer()
  const cpuBefore = process.cpuUsage()
  return new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon({
      url: `${options.url}/mutate`,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: options.body,
      expectBody: options.expectBody,
      connections: options.connections,
      pipelining: options.pipelining,
      duration: options.durationSec,
      timeout: 10,
      ...(options.reconnectEvery !== undefined ? { reconnectRate: options.reconnectEvery } : {}),
    }, (error: unknown, result: autocannon.Result) => (error ? reject(error instanceof Error ? error : new Error(String(error))) : resolve(result)))
    instance.on('response', (_client, statusCode, _bytes, responseTime) => {
      if (statusCode >= 200 && statusCode < 300) latencies.push(responseTime)
    })
  }).then((result) => {
    const cpu = process.cpuUsage(cpuBefore)
    const p = quantiles(latencies.values())
    const durationSec = result.duration > 0 ? result.duration : options.durationSec
    return {
      requests: result.requests.total,
      reqPerSec: result.requests.total / durationSec,
      p50: p.p50,
      p99: p.p99,
      p999: p.p999,
      max: p.max,
      autocannonP99: result.latency.p99,
      non2xx: result.non2xx,
      errors: result.errors,
      timeouts: result.timeouts,
      mismatches: result.mismatches,
      resets: result.resets,
      durationSec,
      clientCpuPerSec: (cpu.user + cpu.system) / 1e6 / durationSec,
    }
  })
}

/**
 * Runs a benchmark's `main` as the process: its result is the exit code; a throw prints the stack
 * and exits 1; SIGINT/SIGTERM and any exit kill the server children first, so none is orphaned.
 */
export function runBench(main: () => Promise<number>): void {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      killAllServers()
      process.exit(130)
    })
  }
  process.once('exit', killAllServers)
  main().then(
    (code) => { process.exitCode = code },
    (error: unknown) => {
      killAllServers()
      console.error(`bench failed: ${error instanceof Error ? error.stack ?? error.message : String(error)}`)
      process.exitCode = 1
    },
  )
}

/** The server's event-loop utilisation between two usage answers (0..1; NaN when no time passed). */
export function elu(before: Usage, after: Usage): number {
  const active = after.eluActive - before.eluActive
  const idle = after.eluIdle - before.eluIdle
  return active + idle > 0 ? active / (active + idle) : Number.NaN
}

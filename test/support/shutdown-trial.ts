// The parts of a shutdown trial against a real `serve` process on loopback, shared by
// test/cli/serve-shutdown.test.ts and bench/soak.ts: the spawned server, keep-alive load that
// stops when "the endpoints controller" would (readiness seen failing), slow clients, descriptors.
import { spawn, type ChildProcess } from 'node:child_process'
import { readdirSync } from 'node:fs'
import https from 'node:https'
import net from 'node:net'
import { join } from 'node:path'
import tls from 'node:tls'
import { ROOT, SERVICE_DNS } from './live-webhook.ts'

/** A `serve --config FILE` child, its URLs once it logged "serving", and its exit. */
export interface ServeProcess {
  readonly child: ChildProcess
  readonly pid: number
  readonly webhookUrl: string
  readonly metricsUrl: string
  /** Every JSON log line so far. */
  readonly lines: Record<string, unknown>[]
  /** Settles when the process exited: its code, signal and the epoch ms it exited at. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>
}

/**
 * Spawns `node src/main.ts serve --config <configFile>` (the config must log at info or lower, so the
 * "serving" line names the ports). Killed with SIGKILL after `killAfterMs` (a hang guard). Rejects
 * when it exits before serving.
 */
export async function spawnServe(configFile: string, killAfterMs = 60_000): Promise<ServeProcess> {
  // tap's process-info hook puts its own --import into NODE_OPTIONS: the server gets a plain environment.
  const child = spawn('env', ['-u', 'NODE_OPTIONS', process.execPath, join(ROOT, 'src', 'main.ts'), 'serve', '--config', configFile], {
    cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_DISABLE_COMPILE_CACHE: '1' },
  })
  const guard = setTimeout(() => child.kill('SIGKILL'), killAfterMs)
  const lines: Record<string, unknown>[] = []
  let stderr = ''
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) => {
    child.on('exit', (code, signal) => {
      clearTimeout(guard)
      resolve({ code, signal, at: Date.now() })
    })
  })
  let pending = ''
  const serving = new Promise<Record<string, unknown>>((resolve, reject) => {
    child.stdout?.on('data', (chunk: Buffer) => {
      pending += chunk.toString('utf8')
      const parts = pending.split('\n')
      pending = parts.pop() ?? ''
      for (const text of parts) {
        if (!text.trim()) continue
        const line = JSON.parse(text) as Record<string, unknown>
        lines.push(line)
        if (line.msg === 'serving') resolve(line)
      }
    })
    child.stderr?.on('data', (chunk: Buffer) => { stderr += chunk.toString('utf8') })
    void exited.then(({ code, signal }) => reject(new Error(`serve exited (${code ?? signal}) before serving: ${stderr.slice(0, 2000)}`)))
  })
  const line = await serving
  // `env` execs node: the child's pid is the server's.
  return { child, pid: child.pid ?? 0, webhookUrl: String(line.webhook), metricsUrl: String(line.metrics), lines, exited }
}

/** Open descriptors of process `pid` (Linux /proc). */
export function descriptorCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length
}

/** What a load run saw. */
export interface LoadResult {
  /** 200 answers. */
  ok: number
  /** Errors and non-200 answers, by code (e.g. ECONNRESET, ECONNREFUSED, HTTP 503). */
  failures: Record<string, number>
  /** Answers that carried `Connection: close`. */
  connectionClose: number
  /** Answers that arrived after `markedAt` (e.g. SIGTERM). */
  okAfterMark: number
  /** Latencies of 200 answers, ms. */
  latenciesMs: number[]
}

/**
 * `clients` workers POSTing `body` to `path` back to back over one keep-alive agent (one socket each),
 * trusting `ca`, as the API server does; `stop()` lets each finish its request and resolves the result.
 * `markedAt` set later counts the answers after it.
 */
export class KeepAliveLoad {
  readonly result: LoadResult = { ok: 0, failures: {}, connectionClose: 0, okAfterMark: 0, latenciesMs: [] }
  markedAt = Number.POSITIVE_INFINITY
  readonly #agent: https.Agent
  readonly #workers: Promise<void>[] = []
  readonly #url: string
  readonly #path: string
  readonly #body: string
  #stopped = false

  constructor(url: string, ca: string, path: string, body: string, clients: number) {
    this.#url = url
    this.#path = path
    this.#body = body
    this.#agent = new https.Agent({ keepAlive: true, maxSockets: clients, ca, servername: SERVICE_DNS })
    for (let i = 0; i < clients; i++) this.#workers.push(this.#work())
  }

  async #work(): Promise<void> {
    while (!this.#stopped) await this.#one()
  }

  #one(): Promise<void> {
    const started = performance.now()
    const { port } = new URL(this.#url)
    return new Promise((resolve) => {
      const fail = (code: string) => {
        this.result.failures[code] = (this.result.failures[code] ?? 0) + 1
        resolve()
      }
      const req = https.request({ host: '127.0.0.1', port, servername: SERVICE_DNS, method: 'POST', path: this.#path, agent: this.#agent, headers: { 'content-type': 'application/json' } }, (res) => {
        res.on('data', () => {})
        res.on('error', (error: NodeJS.ErrnoException) => fail(error.code ?? error.message))
        res.on('end', () => {
          if (res.statusCode !== 200) return fail(`HTTP ${res.statusCode}`)
          this.result.ok++
          if (Date.now() >= this.markedAt) this.result.okAfterMark++
          if (res.headers.connection === 'close') this.result.connectionClose++
          this.result.latenciesMs.push(performance.now() - started)
          resolve()
        })
      })
      req.setTimeout(15_000, () => req.destroy(Object.assign(new Error('no answer in 15 s'), { code: 'TIMEOUT' })))
      req.on('error', (error: NodeJS.ErrnoException) => fail(error.code ?? error.message))
      req.end(this.#body)
    })
  }

  /** Stops after each worker's request in flight; the result. */
  async stop(): Promise<LoadResult> {
    this.#stopped = true
    await Promise.all(this.#workers)
    this.#agent.destroy()
    return this.result
  }
}

/**
 * A readiness probe as the kubelet runs it (GET /readyz every `intervalMs` on a new connection); resolves
 * with the epoch ms of the first answer that is not 200 (an error counts). `stop()` ends it.
 */
export function firstNotReady(url: string, ca: string, intervalMs = 200): { at: Promise<number>; stop: () => void } {
  let timer: NodeJS.Timeout | undefined
  let stopped = false
  const at = new Promise<number>((resolve) => {
    const probe = () => {
      if (stopped) return
      const req = https.get(`${url}/readyz`, { ca, servername: SERVICE_DNS, agent: false }, (res) => {
        res.resume()
        if (res.statusCode !== 200) resolve(Date.now())
        else timer = setTimeout(probe, intervalMs)
      })
      req.on('error', () => resolve(Date.now()))
    }
    probe()
  })
  return { at, stop: () => { stopped = true; clearTimeout(timer) } }
}

/** Kinds of slow client: bare TCP, TLS sending nothing, TLS trickling headers, TLS trickling a body. */
export type SlowKind = 'tcp' | 'tls-idle' | 'tls-headers' | 'tls-body'

/** Slow clients on `port` (a byte every 500 ms for the trickling kinds); each settles `closed` when the server closes it. */
export interface SlowClients {
  readonly sockets: net.Socket[]
  /** How many the server has closed. */
  closedCount(): number
  /** Destroys those still open (the client side gives up). */
  destroy(): void
}

/** Opens `count` slow clients of `kinds` (round robin) to 127.0.0.1:`port`, trusting `ca`. */
export async function openSlowClients(port: number, ca: string, count: number, kinds: readonly SlowKind[]): Promise<SlowClients> {
  const sockets: net.Socket[] = []
  let closed = 0
  const timers: NodeJS.Timeout[] = []
  const track = (socket: net.Socket) => {
    socket.on('error', () => {})
    socket.on('data', () => {})
    socket.once('close', () => closed++)
    sockets.push(socket)
    return socket
  }
  const trickle = (socket: net.Socket, head: string, byte: string) => {
    socket.write(head)
    const timer = setInterval(() => { if (!socket.destroyed) socket.write(byte) }, 500)
    socket.once('close', () => clearInterval(timer))
    timers.push(timer)
  }
  const connectTls = () => new Promise<tls.TLSSocket>((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: SERVICE_DNS, ca }, () => resolve(socket))
    socket.once('error', reject)
  })
  for (let i = 0; i < count; i++) {
    const kind = kinds[i % kinds.length]
    if (kind === 'tcp') track(net.connect(port, '127.0.0.1'))
    else {
      const socket = track(await connectTls())
      if (kind === 'tls-headers') trickle(socket, 'POST /mutate HTTP/1.1\r\nHost: x\r\n', 'X: y\r\n')
      else if (kind === 'tls-body') trickle(socket, 'POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{', ' ')
    }
  }
  return {
    sockets,
    closedCount: () => closed,
    destroy: () => {
      for (const timer of timers) clearInterval(timer)
      for (const socket of sockets) socket.destroy()
    },
  }
}

/** Nearest-rank percentile (p in 0..100) of `values`, NaN when empty. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? Number.NaN
}

/**
 * SIGTERM to `server` while `load` runs: the time it was sent, when /readyz first answered 503
 * (probed every 100 ms), the load's result 1 s after that, and how the process exited. Waits for
 * the exit (bounded by spawnServe's kill timer).
 */
export async function sigtermUnderLoad(server: ServeProcess, load: KeepAliveLoad, ca: string): Promise<{ sigtermAt: number; notReadyAt: number; result: LoadResult; exit: Awaited<ServeProcess['exited']> }> {
  const sigtermAt = Date.now()
  load.markedAt = sigtermAt
  server.child.kill('SIGTERM')
  const probe = firstNotReady(server.webhookUrl, ca, 100)
  const notReadyAt = await probe.at
  probe.stop()
  await new Promise((resolve) => setTimeout(resolve, 1000))
  const result = await load.stop()
  const exit = await server.exited
  return { sigtermAt, notReadyAt, result, exit }
}

// `npm run bench:flood` (also the last part of `npm run bench`): a flood of Secret admissions, each
// with a distinct KOPIA_PASSWORD, against the real server (startRuntime on a config file, in a child
// process) holding a writer-made Kopia repository open. Every such Secret makes the pure
// kopiaPassword rule ask for a check, which the bounded queue (src/catalog/password-verdicts.ts)
// answers with a scrypt derivation off the event loop. Measured:
//   a. POST /mutate (pvc-restore.json) with autocannon over TLS keep-alive, alone;
//   b. the same while a second client (a worker thread) sends N Secret CREATE reviews to
//      POST /validate at a steady rate over the same duration;
//   (with --control) c. the same as b but every Secret carries the repository's own password, so
//      that no check is asked for: the cost of the /validate requests themselves, without derivations.
// Each round runs a, (c,) b on a fresh server process, so that the checks a flood leaves queued
// (MAX_PENDING of them, tens of seconds of scrypt on a busy 2-core machine) never run into the
// next round's a; the medians over rounds are reported. During every run the metrics port is
// scraped every ~50 ms (in every phase alike, so the scrapes cost each the same) for
// kopia_password_checks_in_flight; the max seen and kopia_password_checks_total by outcome are
// reported.
// Goals printed beside the figures: in-flight max <= MAX_IN_FLIGHT, /mutate p99 during the flood
// within 1.2x of alone. Exits non-zero only when the figures are invalid (a failed or unexpected
// answer, a flood that asked for no check, a metric that could not be read), never for a missed goal.
// Flags: --quick (about 15 s), --rounds N (3), --duration S (5), --passwords N (1000),
// --connections N (10), --warmup S (2), --control.
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { cpus, loadavg, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { parseArgs } from 'node:util'
import { Worker } from 'node:worker_threads'
import { randomBytes } from 'node:crypto'
import { MAX_IN_FLIGHT, MAX_PENDING } from '../src/catalog/password-verdicts.ts'
import { parseConfig } from '../src/config/load.ts'
import { writeCertificates, type CertificatePaths } from '../src/tls/write-certificates.ts'
import { KopiaTestWriter } from '../test/support/kopia-writer.ts'
import { EXAMPLE_CONFIG, EXAMPLE_STATE, LOAD_REVIEW, RESTORE_MARKER, admissionText } from './fixtures.ts'
import { describeAnswer, runBench, machineBusySeconds, post, runCannon, ServerProcess, type CannonRun, elu } from './load.ts'
import { CONNECTION_LIMITS } from '../src/server/app.ts'
import { secretReview, type FloodMessage, type FloodOptions, type FloodResult } from './secret-flood-client.ts'
import { fmt, fmtInt, median, pad, padLeft, quantiles, positive } from './stats.ts'

/** /mutate p99 during the flood may be at most this many times its p99 alone. */
const GOAL_P99_RATIO = 1.2
const SAMPLE_INTERVAL_MS = 50
/** How long the queue may take to drain after a flood (MAX_PENDING + MAX_IN_FLIGHT derivations). */
const DRAIN_TIMEOUT_MS = 90_000
const METRIC_PREFIX = 'volsync_autorestore_kopia_password_checks'
const REPOSITORY_PASSWORD = 'bench-shared-repository-password'
const MOUNT_PATH = '/repository'
const OUTCOMES = ['accepted', 'dropped', 'duplicate', 'unknown-repository', 'completed', 'failed'] as const
type Outcome = (typeof OUTCOMES)[number]
type Totals = Record<Outcome, number>

interface Settings {
  readonly quick: boolean
  readonly rounds: number
  readonly durationSec: number
  readonly warmupSec: number
  readonly passwords: number
  readonly connections: number
  readonly control: boolean
}

function settings(argv: string[]): Settings {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      rounds: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      passwords: { type: 'string' },
      connections: { type: 'string' },
      control: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })
  if (values.help) {
    console.log('usage: node bench/secret-flood.ts [--quick] [--rounds N] [--duration S] [--warmup S] [--passwords N] [--connections N] [--control]')
    process.exit(0)
  }
  const quick = values.quick
  return {
    quick,
    rounds: Math.round(positive('rounds', values.rounds, quick ? 1 : 3)),
    durationSec: positive('duration', values.duration, quick ? 3 : 5),
    warmupSec: positive('warmup', values.warmup, quick ? 1 : 2),
    passwords: Math.round(positive('passwords', values.passwords, 1000)),
    connections: Math.round(positive('connections', values.connections, 10)),
    control: values.control,
  }
}

// ---- the server under test -------------------------------------------------------------------

/** A Kopia repository as VolSync's movers leave a shared one: one snapshot of media/jellyfin. */
async function writeRepository(root: string): Promise<void> {
  const writer = await KopiaTestWriter.create({
    password: REPOSITORY_PASSWORD,
    put: async (key, bytes) => {
      const file = join(root, ...key.split('/'))
      await mkdir(dirname(file), { recursive: true })
      await writeFile(file, bytes)
    },
  })
  writer.addSnapshot({ username: 'jellyfin', hostname: 'media', path: '/data', startTime: '2026-03-10T02:00:00Z' })
  writer.flushManifests()
  await writer.flushIndex()
}

/**
 * examples/config.yaml (through parseConfig) with the benchmark's changes, validated again and
 * written as JSON: loopback and kernel-chosen ports, the given certificate, the example state
 * directory, decisions logged at info (as in production), and a `kopia` catalog source over the
 * writer-made repository beside the example restic one. movers.repository (mountPath /repository)
 * is the example's, so `filesystem:///repository` names that repository.
 */
function writeConfig(file: string, tls: CertificatePaths, repositoryDir: string, passwordFile: string): void {
  const base = parseConfig(readFileSync(EXAMPLE_CONFIG, 'utf8'), EXAMPLE_CONFIG)
  if (base.movers.repository?.mountPath !== MOUNT_PATH) throw new Error(`examples/config.yaml: movers.repository.mountPath is not ${MOUNT_PATH}`)
  const merged = {
    ...base,
    server: {
      ...base.server,
      host: '127.0.0.1', port: 0, metricsHost: '127.0.0.1', metricsPort: 0,
      devCertificate: false,
      tls: { certFile: tls.tlsCert, keyFile: tls.tlsKey },
    },
    state: { ...base.state, directory: EXAMPLE_STATE },
    catalog: {
      ...base.catalog,
      sources: [...base.catalog.sources, { name: 'shared-kopia', type: 'kopia', filesystem: { path: repositoryDir }, passwordFile }],
    },
    log: { ...base.log, level: 'info' },
  }
  const text = JSON.stringify(merged, null, 2)
  parseConfig(text, 'secret-flood config')
  writeFileSync(file, text)
}

// ---- metrics -----------------------------------------------------------------------------------

interface CheckMetrics {
  readonly inFlight: number
  readonly totals: Totals
}

function parseCheckMetrics(text: string): CheckMetrics {
  const totals = Object.fromEntries(OUTCOMES.map((o) => [o, 0])) as Totals
  let inFlight = Number.NaN
  for (const line of text.split('\n')) {
    if (!line.startsWith(METRIC_PREFIX)) continue
    const total = /^volsync_autorestore_kopia_password_checks_total\{outcome="([^"]+)"\} (\S+)$/.exec(line)
    if (total && (OUTCOMES as readonly string[]).includes(total[1]!)) totals[total[1] as Outcome] = Number(total[2])
    const gauge = /^volsync_autorestore_kopia_password_checks_in_flight (\S+)$/.exec(line)
    if (gauge) inFlight = Number(gauge[1])
  }
  if (!Number.isFinite(inFlight)) throw new Error(`${METRIC_PREFIX}_in_flight missing from /metrics`)
  return { inFlight, totals }
}

async function scrape(metricsUrl: string): Promise<CheckMetrics> {
  const response = await fetch(`${metricsUrl}/metrics`)
  if (!response.ok) throw new Error(`GET /metrics answered ${response.status}`)
  return parseCheckMetrics(await response.text())
}

function diffTotals(after: Totals, before: Totals): Totals {
  return Object.fromEntries(OUTCOMES.map((o) => [o, after[o] - before[o]])) as Totals
}

/** Every accepted check has left the queue: dropped, completed or failed, none running. */
function drained(m: CheckMetrics): boolean {
  return m.inFlight === 0 && m.totals.accepted === m.totals.dropped + m.totals.completed + m.totals.failed
}

/** Scrapes every SAMPLE_INTERVAL_MS until stopped; keeps the in-flight values seen. */
class InFlightSampler {
  readonly values: number[] = []
  failures = 0
  #stopped = false
  readonly #loop: Promise<void>

  constructor(metricsUrl: string) {
    this.#loop = (async () => {
      while (!this.#stopped) {
        const started = performance.now()
        try {
          this.values.push((await scrape(metricsUrl)).inFlight)
        } catch {
          this.failures++
        }
        await new Promise((r) => setTimeout(r, Math.max(0, SAMPLE_INTERVAL_MS - (performance.now() - started))))
      }
    })()
  }

  async stop(): Promise<void> {
    this.#stopped = true
    await this.#loop
  }
}

async function waitForDrain(metricsUrl: string): Promise<{ metrics: CheckMetrics; waitedMs: number }> {
  const started = performance.now()
  for (;;) {
    const metrics = await scrape(metricsUrl)
    if (drained(metrics)) return { metrics, waitedMs: performance.now() - started }
    if (performance.now() - started > DRAIN_TIMEOUT_MS) throw new Error(`the password-check queue did not drain within ${DRAIN_TIMEOUT_MS / 1000} s: ${JSON.stringify(metrics)}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

// ---- the flood client ----------------------------------------------------------------------------

/** Starts the worker and resolves once its bodies are built; `go()` starts the flood. */
async function prepareFlood(options: FloodOptions): Promise<{ go(): Promise<FloodResult> }> {
  const worker = new Worker(new URL('./secret-flood-client.ts', import.meta.url), { workerData: options })
  const messages: FloodMessage[] = []
  let wake: (() => void) | null = null
  let failure: Error | null = null
  worker.on('message', (message: FloodMessage) => { messages.push(message); wake?.() })
  worker.on('error', (error: Error) => { failure = error; wake?.() })
  const next = async (): Promise<FloodMessage> => {
    while (messages.length === 0) {
      if (failure) throw failure
      await new Promise<void>((resolve) => { wake = resolve })
      wake = null
    }
    return messages.shift()!
  }
  const ready = await next()
  if (ready.type !== 'ready') throw new Error('the flood worker did not report ready')
  return {
    async go() {
      worker.postMessage('go')
      const result = await next()
      await worker.terminate()
      if (result.type !== 'result') throw new Error('the flood worker sent no result')
      return result
    },
  }
}

// ---- runs --------------------------------------------------------------------------------------

/** alone: /mutate only; control: with Secrets that ask for no check; flood: with distinct passwords. */
type Phase = 'alone' | 'control' | 'flood'

interface MeasuredRun {
  readonly phase: Phase
  readonly round: number
  readonly run: CannonRun
  readonly flood: FloodResult | null
  readonly inFlightMax: number
  readonly inFlightSamples: number
  /** Samples that saw MAX_IN_FLIGHT derivations running (the queue saturated). */
  readonly atLimit: number
  readonly sampleFailures: number
  /** Check counts of this run (after minus before; a flood's keep running after it). */
  readonly checks: Totals
  /** Seconds from the start of the run until autocannon and the flood had both finished. */
  readonly windowSec: number
  /** Server CPU (all its threads, the scrypt ones included) per second of the window. */
  readonly serverCores: number
  readonly serverElu: number
  /** Server CPU (all threads) per answered request, /mutate and /validate together (us). */
  readonly serverMicrosPerRequest: number
  /** The same for the server's main thread only: the event loop's own cost, without derivations (us). */
  readonly loopMicrosPerRequest: number
  /** CPU the server's main thread got per second of the window (its other threads: serverCores minus this). */
  readonly loopCores: number
  /** CPU of this process (autocannon, the flood worker, the scrapes) per second of the window. */
  readonly clientCores: number
  /** CPU cores other processes kept busy during the window. */
  readonly otherCores: number
}

function cannonFailures(run: CannonRun): number {
  return run.non2xx + run.errors + run.timeouts + run.mismatches
}

function floodFailures(flood: FloodResult | null): number {
  return flood ? flood.non2xx + flood.errors + flood.unexpected : 0
}

function runLine(m: MeasuredRun): string {
  const r = m.run
  const flood = m.flood
  const floodText = flood
    ? (() => {
        const q = quantiles(flood.latencies)
        return `| /validate ${flood.sent} sent in ${fmt(flood.elapsedMs / 1000)} s, ${flood.allowed} allowed, ${flood.warned} warned, non-2xx ${flood.non2xx} errors ${flood.errors} unexpected ${flood.unexpected}, p50 ${fmt(q.p50)} ms p99 ${fmt(q.p99)} ms `
      })()
    : ''
  return `  round ${m.round} ${pad(m.phase, 6)}${padLeft(fmtInt(r.reqPerSec), 6)} req/s  p50 ${padLeft(fmt(r.p50), 5)} ms  p99 ${padLeft(fmt(r.p99), 5)} ms  p99.9 ${padLeft(fmt(r.p999), 5)} ms  max ${padLeft(fmt(r.max), 5)} ms`
    + `  n ${r.requests} non-2xx ${r.non2xx} errors ${r.errors} timeouts ${r.timeouts} mismatches ${r.mismatches} ${floodText}`
    + `| in flight max ${m.inFlightMax} (${m.inFlightSamples} samples, ${m.atLimit} at ${MAX_IN_FLIGHT}) | checks accepted ${m.checks.accepted} dropped ${m.checks.dropped} completed ${m.checks.completed}`
    + ` | window ${fmt(m.windowSec)} s: server ${fmt(m.serverCores)} cores, ${fmt(m.serverMicrosPerRequest)} us CPU/request (main thread ${fmt(m.loopMicrosPerRequest)} us), loop ${fmt(m.serverElu * 100)}% busy | client ${fmt(m.clientCores)} cores | other processes ${fmt(m.otherCores)} cores`
}

interface Bench {
  readonly server: ServerProcess
  readonly metricsUrl: string
  readonly ca: string
  readonly mutateBody: string
  readonly expected: string
  readonly repositoryUrl: string
}

/** Keep-alive connections of the flood client (the API server's few connections to a webhook). */
const FLOOD_CONNECTIONS = 4

async function measure(bench: Bench, s: Settings, phase: Phase, round: number, passwordPrefix: string): Promise<MeasuredRun> {
  const floodOptions: FloodOptions = { url: bench.server.url, ca: bench.ca, count: s.passwords, durationMs: s.durationSec * 1000, connections: FLOOD_CONNECTIONS, repository: bench.repositoryUrl, passwordPrefix }
  const flood = phase === 'alone' ? null : await prepareFlood(phase === 'control' ? { ...floodOptions, samePassword: REPOSITORY_PASSWORD } : floodOptions)
  const checksBefore = await scrape(bench.metricsUrl)
  const usageBefore = await bench.server.usage()
  const machineBefore = machineBusySeconds()
  const cpuBefore = process.cpuUsage()
  const windowStarted = performance.now()
  const sampler = new InFlightSampler(bench.metricsUrl)
  const [run, floodResult] = await Promise.all([
    runCannon({ url: bench.server.url, body: bench.mutateBody, expectBody: bench.expected, connections: s.connections, pipelining: 1, durationSec: s.durationSec, reconnectEvery: CONNECTION_LIMITS.maxRequestsPerSocket - 1 }),
    flood ? flood.go() : Promise.resolve(null),
  ])
  await sampler.stop()
  // CPU figures per second of this window: a flood the server cannot keep up with outlasts autocannon's run.
  const windowSec = (performance.now() - windowStarted) / 1000
  const cpu = process.cpuUsage(cpuBefore)
  const machineAfter = machineBusySeconds()
  const usageAfter = await bench.server.usage()
  const checksAfter = await scrape(bench.metricsUrl)
  const serverSeconds = (usageAfter.cpuMicros - usageBefore.cpuMicros) / 1e6
  const mine = (cpu.user + cpu.system) / 1e6
  const answered = run.requests + (floodResult?.latencies.length ?? 0)
  return {
    phase,
    round,
    run,
    flood: floodResult,
    inFlightMax: Math.max(checksAfter.inFlight, ...sampler.values),
    inFlightSamples: sampler.values.length,
    atLimit: sampler.values.filter((v) => v === MAX_IN_FLIGHT).length,
    sampleFailures: sampler.failures,
    checks: diffTotals(checksAfter.totals, checksBefore.totals),
    windowSec,
    serverCores: serverSeconds / windowSec,
    serverElu: elu(usageBefore, usageAfter),
    serverMicrosPerRequest: (serverSeconds * 1e6) / answered,
    loopMicrosPerRequest: (usageAfter.loopCpuMicros - usageBefore.loopCpuMicros) / answered,
    loopCores: (usageAfter.loopCpuMicros - usageBefore.loopCpuMicros) / 1e6 / windowSec,
    clientCores: mine / windowSec,
    otherCores: machineBefore === null || machineAfter === null ? Number.NaN : Math.max(0, (machineAfter - machineBefore - serverSeconds - mine) / windowSec),
  }
}

// ---- pre-flight --------------------------------------------------------------------------------

/**
 * Proves the path is wired before measuring anything: /mutate decides restore with the same bytes
 * twice; a Secret with the repository's own password is allowed without a warning or a check; a
 * wrong one is allowed and queued, and once checked the same Secret gets the kopiaPassword warning.
 */
async function preflight(server: ServerProcess, metricsUrl: string, ca: string, mutateBody: string, repositoryUrl: string): Promise<string> {
  const first = await post(server.url, '/mutate', mutateBody, ca)
  const second = await post(server.url, '/mutate', mutateBody, ca)
  if (first.status !== 200) throw new Error(`/mutate answered ${first.status}: ${first.body.slice(0, 300)}`)
  const answer = describeAnswer(first.body)
  if (!answer.allowed || !answer.patch.includes(RESTORE_MARKER)) throw new Error(`/mutate did not decide restore: ${first.body.slice(0, 500)}`)
  if (second.body !== first.body) throw new Error('/mutate answered the same review with different bytes twice; autocannon could not check them')

  const before = await scrape(metricsUrl)
  const own = await post(server.url, '/validate', secretReview(0, repositoryUrl, REPOSITORY_PASSWORD), ca)
  const ownResponse = (JSON.parse(own.body) as { response?: { allowed?: boolean; warnings?: string[] } }).response
  if (own.status !== 200 || ownResponse?.allowed !== true || (ownResponse.warnings?.length ?? 0) > 0) throw new Error(`a Secret with the repository's own password was not simply allowed: ${own.status} ${own.body.slice(0, 400)}`)
  const wrong = secretReview(1, repositoryUrl, `preflight-wrong-${randomBytes(6).toString('hex')}`)
  const unchecked = await post(server.url, '/validate', wrong, ca)
  if (unchecked.status !== 200) throw new Error(`/validate answered ${unchecked.status}: ${unchecked.body.slice(0, 300)}`)
  const queued = await scrape(metricsUrl)
  if (queued.totals.accepted !== before.totals.accepted + 1 || queued.totals.duplicate !== before.totals.duplicate) {
    throw new Error(`the own password should need no check and a new wrong one exactly one: checks before ${JSON.stringify(before.totals)}, after ${JSON.stringify(queued.totals)}`)
  }
  await waitForDrain(metricsUrl)
  const checked = await post(server.url, '/validate', wrong, ca)
  const warnings = (JSON.parse(checked.body) as { response?: { warnings?: string[] } }).response?.warnings ?? []
  if (!warnings.some((w) => w.includes('KOPIA_PASSWORD does not open'))) throw new Error(`after its check, the wrong password got no kopiaPassword warning: ${checked.body.slice(0, 400)}`)
  return `/mutate restore (${Buffer.byteLength(first.body)} B, identical twice); own password allowed with no check; a wrong one queued 1 check, then warned: "${warnings[0]!.slice(0, 90)}..."`
}

async function warmUp(bench: Bench, s: Settings): Promise<void> {
  // Both paths get JIT-warm; the own password asks for no derivation.
  const own = secretReview(0, bench.repositoryUrl, REPOSITORY_PASSWORD)
  const validating = (async () => {
    for (let i = 0; i < 100; i++) await post(bench.server.url, '/validate', own, bench.ca)
  })()
  const warm = await runCannon({ url: bench.server.url, body: bench.mutateBody, expectBody: bench.expected, connections: s.connections, pipelining: 1, durationSec: s.warmupSec, reconnectEvery: CONNECTION_LIMITS.maxRequestsPerSocket - 1 })
  await validating
  if (cannonFailures(warm) > 0) console.log(`  warm-up: non-2xx ${warm.non2xx} errors ${warm.errors} timeouts ${warm.timeouts} mismatches ${warm.mismatches}`)
}

// ---- main ----------------------------------------------------------------------------------------

/** The load average, and the kernel's CPU pressure (share of time some task waited for a CPU) where it is exposed. */
function loadText(): string {
  let pressure = ''
  try {
    const some = /^some avg10=(\S+) avg60=(\S+)/m.exec(readFileSync('/proc/pressure/cpu', 'utf8'))
    if (some) pressure = `, CPU pressure (some) avg10 ${some[1]}% avg60 ${some[2]}%`
  } catch { /* not Linux, or no PSI */ }
  return `${loadavg().map((l) => l.toFixed(2)).join(' ')}${pressure}`
}

async function main(): Promise<number> {
  const s = settings(process.argv.slice(2))
  const started = performance.now()
  const dir = mkdtempSync(join(tmpdir(), 'volsync-autorestore-flood-'))
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }))
  const rate = s.passwords / s.durationSec
  console.log(`volsync-autorestore Secret-flood benchmark: node ${process.version}, ${cpus().length} CPU(s) (${cpus()[0]?.model ?? '?'})${s.quick ? ', --quick' : ''}, load average ${loadText()}`)

  const tls = await writeCertificates({ outDir: dir, service: 'volsync-autorestore', namespace: 'volsync-system', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] })
  const repositoryDir = join(dir, 'kopia-repository')
  const writing = performance.now()
  await writeRepository(repositoryDir)
  const passwordFile = join(dir, 'kopia-password')
  writeFileSync(passwordFile, REPOSITORY_PASSWORD)
  const configFile = join(dir, 'config.json')
  writeConfig(configFile, tls, repositoryDir, passwordFile)
  console.log(`  a Kopia repository (scrypt-65536-8-1, one snapshot of media/jellyfin) written in ${fmt((performance.now() - writing) / 1000)} s; config ${configFile}`)

  const logFile = join(dir, 'server.log')
  const mutateBody = admissionText(LOAD_REVIEW)
  const ca = readFileSync(tls.caCert, 'utf8')
  const repositoryUrl = `filesystem://${MOUNT_PATH}`
  const phases: readonly Phase[] = s.control ? ['alone', 'control', 'flood'] : ['alone', 'flood']
  const runs: MeasuredRun[] = []
  const finals: CheckMetrics[] = []
  const session = randomBytes(4).toString('hex')
  let expected: string | null = null
  for (let round = 1; round <= s.rounds; round++) {
    const logFd = openSync(logFile, 'a')
    const server = await ServerProcess.start('config', [configFile], { stdout: logFd })
    closeSync(logFd)
    try {
      if (server.metricsUrl === null) throw new Error('the server child reported no metrics URL')
      const answer = (await post(server.url, '/mutate', mutateBody, ca)).body
      if (expected === null) {
        console.log(`  server: startRuntime in a child process (${server.detail}); its log lines (info, one per decision) go to ${logFile}; a fresh server for each round`)
        console.log(`  pre-flight: ${await preflight(server, server.metricsUrl, ca, mutateBody, repositoryUrl)}`)
        console.log(`  load: POST /mutate ${Buffer.byteLength(mutateBody)} B with autocannon, TLS keep-alive, ${s.connections} connections; flood: ${s.passwords} Secret CREATE reviews on POST /validate, each with a distinct KOPIA_PASSWORD, ~${fmtInt(rate)}/s over ${s.durationSec} s on ${FLOOD_CONNECTIONS} keep-alive connections (a worker thread); ${s.rounds} round(s) of ${phases.join(', ')}, after a ${s.warmupSec} s warm-up; /metrics scraped every ${SAMPLE_INTERVAL_MS} ms in every run`)
        if (s.control) console.log(`  control: the same ${s.passwords} Secret reviews, each with the repository's own password (already known to open it: no check asked for)`)
        console.log(`  queue bounds (src/catalog/password-verdicts.ts): MAX_IN_FLIGHT ${MAX_IN_FLIGHT}, MAX_PENDING ${MAX_PENDING}`)
        expected = answer
      } else if (answer !== expected) {
        throw new Error(`round ${round}: the fresh server answered /mutate with different bytes: ${answer.slice(0, 300)}`)
      }
      const bench: Bench = { server, metricsUrl: server.metricsUrl, ca, mutateBody, expected, repositoryUrl }
      await warmUp(bench, s)
      for (const phase of phases) {
        const measured = await measure(bench, s, phase, round, `flood-${session}-${round}-`)
        runs.push(measured)
        console.log(runLine(measured))
      }
      finals.push(await scrape(bench.metricsUrl))
    } finally {
      await server.stop()
    }
  }
  return report(s, runs, finals, logFile, started)
}

interface PhaseSummary {
  readonly runs: readonly MeasuredRun[]
  readonly reqPerSec: number
  readonly p50: number
  readonly p99: number
  readonly cores: number
  readonly microsPerRequest: number
  readonly loopMicrosPerRequest: number
  readonly loopCores: number
  readonly client: number
  readonly other: number
  readonly inFlightMax: number
  readonly samples: number
  readonly atLimit: number
  /** /validate latencies of every run of the phase (ms). */
  readonly validate: ReturnType<typeof quantiles>
}

function summarize(runs: readonly MeasuredRun[], phase: Phase): PhaseSummary {
  const mine = runs.filter((m) => m.phase === phase)
  const med = (pick: (m: MeasuredRun) => number) => median(mine.map(pick))
  return {
    runs: mine,
    reqPerSec: med((m) => m.run.reqPerSec),
    p50: med((m) => m.run.p50),
    p99: med((m) => m.run.p99),
    cores: med((m) => m.serverCores),
    microsPerRequest: med((m) => m.serverMicrosPerRequest),
    loopMicrosPerRequest: med((m) => m.loopMicrosPerRequest),
    loopCores: med((m) => m.loopCores),
    client: med((m) => m.clientCores),
    other: med((m) => m.otherCores),
    inFlightMax: Math.max(...mine.map((m) => m.inFlightMax)),
    samples: mine.reduce((n, m) => n + m.inFlightSamples, 0),
    atLimit: mine.reduce((n, m) => n + m.atLimit, 0),
    validate: quantiles(Float64Array.from(mine.flatMap((m) => [...(m.flood?.latencies ?? [])]))),
  }
}

/** What makes the figures incomparable: failed or unexpected answers, a flood that asked for nothing, unread metrics. */
function problemsOf(s: Settings, runs: readonly MeasuredRun[]): string[] {
  const problems: string[] = []
  for (const m of runs) {
    const name = `round ${m.round} ${m.phase}`
    if (cannonFailures(m.run) > 0) problems.push(`${name}: /mutate non-2xx ${m.run.non2xx} errors ${m.run.errors} timeouts ${m.run.timeouts} mismatches ${m.run.mismatches}`)
    if (m.flood && floodFailures(m.flood) > 0) problems.push(`${name}: /validate non-2xx ${m.flood.non2xx} errors ${m.flood.errors} unexpected ${m.flood.unexpected}`)
    if (m.flood && m.flood.sent !== s.passwords) problems.push(`${name}: ${m.flood.sent} of ${s.passwords} Secrets sent`)
    if (m.phase === 'flood' && m.checks.accepted === 0) problems.push(`${name}: no password check was asked for (the kopiaPassword rule did not see the repository)`)
    if (m.phase !== 'flood' && m.checks.accepted > 0) problems.push(`${name}: ${m.checks.accepted} password checks were asked for where none should be`)
    if (m.inFlightSamples === 0) problems.push(`${name}: no /metrics sample succeeded`)
    if (m.sampleFailures > 0) problems.push(`${name}: ${m.sampleFailures} /metrics scrapes failed`)
  }
  return problems
}

function report(s: Settings, runs: readonly MeasuredRun[], finals: readonly CheckMetrics[], logFile: string, started: number): number {
  const alone = summarize(runs, 'alone')
  const flood = summarize(runs, 'flood')
  const control = s.control ? summarize(runs, 'control') : null
  const ratio = flood.p99 / alone.p99
  const rate = fmtInt(s.passwords / s.durationSec)

  const row = (name: string, figure: string, goal = '-', status = '') => console.log(`${pad(name, 64)} ${pad(figure, 60)} ${pad(goal, 9)} ${status}`)
  const latency = (p: PhaseSummary) => `${fmtInt(p.reqPerSec)} req/s, p50 ${fmt(p.p50)} ms, p99 ${fmt(p.p99)} ms`
  console.log(`\nsummary (median of ${alone.runs.length} run(s) per phase, ${s.durationSec} s each)`)
  row('figure', 'value', 'goal', 'status')
  row('/mutate alone', latency(alone))
  if (control) row(`/mutate + ${s.passwords} Secrets, own password (control)`, latency(control))
  row(`/mutate + ${s.passwords} Secrets, distinct passwords (~${rate}/s)`, latency(flood))
  row('/mutate p99 during the flood / alone', `${ratio.toFixed(2)} (${fmt(flood.p99)} / ${fmt(alone.p99)} ms)`, `<= ${GOAL_P99_RATIO}`, ratio <= GOAL_P99_RATIO ? 'met' : 'NOT met')
  if (control) row('/mutate p99 control / alone (the requests, no derivation)', `${(control.p99 / alone.p99).toFixed(2)} (${fmt(control.p99)} / ${fmt(alone.p99)} ms)`)
  row('/mutate req/s during the flood / alone', `${(flood.reqPerSec / alone.reqPerSec).toFixed(2)}${control ? ` (control / alone ${(control.reqPerSec / alone.reqPerSec).toFixed(2)})` : ''}`)
  row('derivations in flight during the flood (max sampled)', `${flood.inFlightMax} (${flood.samples} samples, ${flood.atLimit} at ${MAX_IN_FLIGHT}; alone: max ${alone.inFlightMax})`, `<= ${MAX_IN_FLIGHT}`, flood.inFlightMax <= MAX_IN_FLIGHT ? 'met' : 'NOT met')
  row('/validate latency of the flood Secrets', `p50 ${fmt(flood.validate.p50)} ms, p99 ${fmt(flood.validate.p99)} ms, max ${fmt(flood.validate.max)} ms`)
  if (control) row('/validate latency of the control Secrets', `p50 ${fmt(control.validate.p50)} ms, p99 ${fmt(control.validate.p99)} ms, max ${fmt(control.validate.max)} ms`)
  const phases = [alone, ...(control ? [control] : []), flood]
  const names = `alone${control ? ' / control' : ''} / flood`
  row(`server CPU, all threads (${names})`, `${phases.map((p) => fmt(p.cores)).join(' / ')} cores`)
  row(`  its main thread, the event loop (${names})`, `${phases.map((p) => fmt(p.loopCores)).join(' / ')} cores`)
  row(`  its other threads: derivations, GC (${names})`, `${phases.map((p) => fmt(p.cores - p.loopCores)).join(' / ')} cores`)
  row(`server CPU per request, all threads (${names})`, `${phases.map((p) => fmt(p.microsPerRequest)).join(' / ')} us`)
  row(`server main-thread CPU per request (${names})`, `${phases.map((p) => fmt(p.loopMicrosPerRequest)).join(' / ')} us`)
  row(`load generator CPU, this process (${names})`, `${phases.map((p) => fmt(p.client)).join(' / ')} cores`)
  row(`other processes' CPU (${names})`, `${phases.map((p) => fmt(p.other)).join(' / ')} cores`)
  console.log(`note: during the flood the event loop got ${fmt(flood.loopCores)} cores (alone ${fmt(alone.loopCores)}), spending ${fmt(flood.loopMicrosPerRequest / alone.loopMicrosPerRequest, 2)}x its CPU per request; `
    + `the server's other threads took ${fmt(flood.cores - flood.loopCores)} cores. Derivations run on libuv's pool inside the same process, so they draw on the same CPU budget `
    + `(here this session's share of a machine under load ${loadText()}; in a cluster the pod's CPU limit).`)
  console.log('')
  for (const m of flood.runs) {
    const c = m.checks
    console.log(`round ${m.round} flood, checks during its ${s.durationSec} s: accepted ${c.accepted}, dropped ${c.dropped}, completed ${c.completed}, failed ${c.failed}, duplicate ${c.duplicate}`)
  }
  finals.forEach((f, i) => {
    const pending = f.totals.accepted - f.totals.dropped - f.totals.completed - f.totals.failed - f.inFlight
    console.log(`round ${i + 1} server, kopia_password_checks_total at its end: ${OUTCOMES.map((o) => `${o} ${f.totals[o]}`).join(', ')}; in_flight ${f.inFlight}, pending ${pending}${i === 0 ? ' (includes the pre-flight\'s 1 accepted, 1 completed)' : ''}`)
  })
  let logBytes = 0
  try { logBytes = statSync(logFile).size } catch { /* removed already */ }
  console.log(`server log: ${fmt(logBytes / 2 ** 20)} MiB of info lines | load average ${loadText()} | total ${fmt((performance.now() - started) / 1000)} s`)
  const problems = problemsOf(s, runs)
  if (problems.length > 0) {
    console.log(`\nINVALID RUN: the figures above are not comparable:\n  ${problems.join('\n  ')}`)
    return 1
  }
  return 0
}

runBench(main)

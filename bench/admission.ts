// `npm run bench`: how fast the admission path is. Prints figures and ratios; it is not a test and
// enforces no threshold (goals are printed beside the figures). It exits non-zero only when the
// figures are invalid: a server did not answer as expected, or a run saw non-2xx/errors.
//   1. TLS keep-alive load (autocannon, in this process) on POST /mutate with
//      examples/admission/pvc-restore.json against our server (startRuntime, in a child process,
//      logging its decision lines at info to a file as production does), a reference Fastify TLS
//      server that JSON.parses the review and answers a minimal allowed review (the issue's
//      baseline), and a no-op Fastify server answering ours's bytes without parsing (the floor);
//      runs alternate reference, noop, ours each round; the median of the runs is reported. A run during which other processes kept more than
//      DISTURBED_CORES busy is measured again (twice at most) and the least disturbed try counts.
//   2. handleReview in-process, each call timed, for three reviews; JSON.parse/stringify beside.
// The default run takes about 110 s. Flags: --quick (about 25 s), --rounds N, --warmup S,
// --duration S, --connections N, --pipelining N, --skip-load, --skip-handler.
import { cpus, loadavg, tmpdir } from 'node:os'
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { CONNECTION_LIMITS } from '../src/server/app.ts'
import { writeCertificates, type CertificatePaths } from '../src/tls/write-certificates.ts'
import { BENCH_LOG_LEVEL, LOAD_REVIEW, RESTORE_MARKER, admissionText, benchConfig } from './fixtures.ts'
import { benchmarkSnapshot, printHandlerTable, runHandlerBench, timerOverhead, type HandlerOptions, type HandlerResult } from './handler.ts'
import { describeAnswer, killAllServers, runBench, machineBusySeconds, post, runCannon, ServerProcess, type CannonRun, type TargetName, elu } from './load.ts'
import { fmt, fmtInt, median, pad, padLeft, positive } from './stats.ts'
import { recordGoal } from './goal-rows.ts'

/** Issue 14's goal: ours against a Fastify TLS server that parses the same review (req/s, and p99). */
const GOAL_RATIO = 0.85
const GOAL_P99_RATIO = 1.2
const GOAL_HANDLER_P99_US = 500
/** Other processes keeping more than this many cores busy during a run disturb it (on 2 cores). */
const DISTURBED_CORES = 0.1
/** How many times a disturbed run is measured again. */
const DISTURBED_RETRIES = 2

interface LoadSettings {
  readonly rounds: number
  readonly warmupSec: number
  readonly durationSec: number
  readonly connections: number
  readonly pipelining: number
}

interface Settings {
  readonly quick: boolean
  readonly load: LoadSettings | null
  readonly handler: HandlerOptions | null
}

function settings(argv: string[]): Settings {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      rounds: { type: 'string' },
      warmup: { type: 'string' },
      duration: { type: 'string' },
      connections: { type: 'string' },
      pipelining: { type: 'string' },
      'skip-load': { type: 'boolean', default: false },
      'skip-handler': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })
  if (values.help) {
    console.log('usage: node bench/admission.ts [--quick] [--rounds N] [--warmup S] [--duration S] [--connections N] [--pipelining N] [--skip-load] [--skip-handler]')
    process.exit(0)
  }
  const quick = values.quick
  return {
    quick,
    load: values['skip-load'] ? null : {
      rounds: Math.round(positive('rounds', values.rounds, quick ? 1 : 2)),
      warmupSec: positive('warmup', values.warmup, quick ? 1 : 3),
      durationSec: positive('duration', values.duration, quick ? 3 : 10),
      connections: Math.round(positive('connections', values.connections, 10)),
      pipelining: Math.round(positive('pipelining', values.pipelining, 1)),
    },
    handler: values['skip-handler'] ? null : quick
      ? { warmup: 2_000, iterations: 20_000, warmupBudgetMs: 500, budgetMs: 1_500, jsonWarmup: 1_000, jsonIterations: 5_000 }
      : { warmup: 20_000, iterations: 200_000, warmupBudgetMs: 3_000, budgetMs: 10_000, jsonWarmup: 2_000, jsonIterations: 20_000 },
  }
}

// ---- part 1: load ----------------------------------------------------------------------------

/** The order targets run in each round; the summary's ratios are ours against the reference. */
const TARGETS: readonly TargetName[] = ['reference', 'noop', 'ours']

interface MeasuredRun {
  readonly target: TargetName
  readonly round: number
  readonly run: CannonRun
  readonly serverCpuMicrosPerReq: number
  readonly serverElu: number
  /** CPU cores that processes other than the server and this one kept busy during the run. */
  readonly otherCores: number
}

interface TargetMedian { reqPerSec: number; p50: number; p99: number; p999: number; cpuPerReq: number; elu: number; clientCpu: number; otherCores: number }
interface TargetBad { non2xx: number; errors: number; timeouts: number; mismatches: number }

interface LoadSummary {
  readonly runs: readonly MeasuredRun[]
  readonly median: Record<TargetName, TargetMedian>
  readonly bad: Record<TargetName, TargetBad>
  readonly responseBytes: number
  /** Decision lines ours wrote during the whole load part (to its log file), and their bytes. */
  readonly logLines: number
  readonly logBytes: number
}

function runLine(m: MeasuredRun): string {
  const r = m.run
  return `  round ${m.round} ${pad(m.target, 9)}${padLeft(fmtInt(r.reqPerSec), 7)} req/s  p50 ${padLeft(fmt(r.p50), 5)} ms  p99 ${padLeft(fmt(r.p99), 5)} ms  p99.9 ${padLeft(fmt(r.p999), 5)} ms  max ${padLeft(fmt(r.max), 5)} ms`
    + `  (autocannon p99 ${r.autocannonP99} ms)  n ${r.requests}  non-2xx ${r.non2xx} errors ${r.errors} timeouts ${r.timeouts} mismatches ${r.mismatches}`
    + `  | server ${fmt(m.serverCpuMicrosPerReq)} us CPU/req, loop ${fmt(m.serverElu * 100)}% busy | client ${fmt(r.clientCpuPerSec * 100)}% CPU | other processes ${fmt(m.otherCores)} cores`
}

async function verifyTargets(ours: ServerProcess, ca: string, body: string, dir: string): Promise<{ expected: string; contentType: string; responseFile: string }> {
  const first = await post(ours.url, '/mutate', body, ca)
  const second = await post(ours.url, '/mutate', body, ca)
  if (first.status !== 200) throw new Error(`ours answered ${first.status}, not 200: ${first.body.slice(0, 300)}`)
  const answer = describeAnswer(first.body)
  if (!answer.allowed || !answer.patch.includes('dataSourceRef') || !answer.patch.includes(RESTORE_MARKER)) {
    throw new Error(`ours did not decide restore (no dataSourceRef ${RESTORE_MARKER} in the patch): ${first.body.slice(0, 500)}`)
  }
  if (second.body !== first.body) throw new Error('ours answered the same review with different bytes twice; the no-op server could not mirror it')
  const responseFile = join(dir, 'noop-response.json')
  writeFileSync(responseFile, first.body)
  return { expected: first.body, contentType: first.contentType, responseFile }
}

async function verifyNoop(noop: ServerProcess, ca: string, body: string, expected: string, contentType: string): Promise<void> {
  const got = await post(noop.url, '/mutate', body, ca)
  if (got.status !== 200) throw new Error(`noop answered ${got.status}, not 200`)
  if (got.body !== expected) throw new Error('noop answered different bytes from ours')
  if (got.contentType !== contentType) throw new Error(`noop content-type ${got.contentType} differs from ours (${contentType})`)
  const answer = describeAnswer(got.body)
  if (!answer.patch.includes(RESTORE_MARKER)) throw new Error('noop answer lacks the restore patch')
}

/** The reference's answer to the load review: allowed, the review's uid, no patch. Returns its bytes. */
async function verifyReference(reference: ServerProcess, ca: string, body: string, uid: string): Promise<string> {
  const got = await post(reference.url, '/mutate', body, ca)
  if (got.status !== 200) throw new Error(`reference answered ${got.status}, not 200`)
  const answer = describeAnswer(got.body)
  if (!answer.allowed || answer.uid !== uid) throw new Error(`reference did not answer allowed for uid ${uid}: ${got.body.slice(0, 300)}`)
  return got.body
}

/** Decision lines in ours's log file: each must be one JSON line at info saying 'admission decision'. */
function countDecisionLines(logFile: string): { lines: number; bytes: number } {
  const text = readFileSync(logFile, 'utf8')
  let lines = 0
  for (const line of text.split('\n')) {
    if (line === '') continue
    const parsed = JSON.parse(line) as { level?: unknown; msg?: unknown }
    if (parsed.level === 30 && parsed.msg === 'admission decision') lines++
  }
  return { lines, bytes: Buffer.byteLength(text) }
}

async function loadBench(load: LoadSettings, tls: CertificatePaths, dir: string): Promise<LoadSummary> {
  const ca = readFileSync(tls.caCert, 'utf8')
  const body = admissionText(LOAD_REVIEW)
  const servers: ServerProcess[] = []
  // Ours writes its log lines (one decision line per review at info) to a file, as `serve` writes to
  // the container runtime's pipe; the lines are counted afterwards so a silent run cannot pass.
  const logFile = join(dir, 'ours-log.jsonl')
  const logFd = openSync(logFile, 'w')
  try {
    const ours = await ServerProcess.start('ours', [tls.tlsCert, tls.tlsKey], { stdout: logFd })
    servers.push(ours)
    const { expected, contentType, responseFile } = await verifyTargets(ours, ca, body, dir)
    const noop = await ServerProcess.start('noop', [tls.tlsCert, tls.tlsKey, responseFile, contentType])
    servers.push(noop)
    await verifyNoop(noop, ca, body, expected, contentType)
    const reference = await ServerProcess.start('reference', [tls.tlsCert, tls.tlsKey])
    servers.push(reference)
    const decoded = describeAnswer(expected)
    const referenceAnswer = await verifyReference(reference, ca, body, decoded.uid)
    console.log(`  ours:      ${ours.url} (startRuntime; ${ours.detail}; log lines to ${logFile})`)
    console.log(`  reference: ${reference.url} (${reference.detail}; answers ${Buffer.byteLength(referenceAnswer)} B)`)
    console.log(`  noop:      ${noop.url} (${noop.detail}; ours's bytes, no parse: the floor of Fastify+TLS)`)
    console.log(`  decision logging at ${BENCH_LOG_LEVEL}: ours writes one decision line per review to a file, as serve writes to stdout`)
    console.log(`  pre-flight: ours and noop answered 200 with identical ${Buffer.byteLength(expected)} B (${contentType}); patch ${decoded.patch.slice(0, 110)}...`)
    console.log(`  load: POST /mutate ${Buffer.byteLength(body)} B, TLS keep-alive, ${load.connections} connections (each reopened every ${CONNECTION_LIMITS.maxRequestsPerSocket - 1} requests, as the API server does on the webhook's Connection: close), pipelining ${load.pipelining}, warm-up ${load.warmupSec} s + ${load.durationSec} s measured per run, ${load.rounds} round(s) of ${TARGETS.join(', ')}`)

    const runs: MeasuredRun[] = []
    // Disturbed runs not counted in the figures; their failures (non-2xx, mismatches) still count.
    const discarded: MeasuredRun[] = []
    const byName: Record<TargetName, ServerProcess> = { ours, noop, reference }
    const expectedBy: Record<TargetName, string> = { ours: expected, noop: expected, reference: referenceAnswer }
    const cannon = (name: TargetName, durationSec: number) => runCannon({
      url: byName[name].url, body, expectBody: expectedBy[name], connections: load.connections, pipelining: load.pipelining, durationSec,
      // One request short of the webhook's limit, on every target alike: a new TLS handshake per
      // ~1,000 requests, as the API server's client pays when told Connection: close.
      reconnectEvery: CONNECTION_LIMITS.maxRequestsPerSocket - 1,
    })
    const measure = async (name: TargetName, round: number): Promise<MeasuredRun> => {
      const target = byName[name]
      const warm = await cannon(name, load.warmupSec)
      if (warm.non2xx + warm.errors + warm.timeouts + warm.mismatches > 0) {
        console.log(`  warm-up ${name}: non-2xx ${warm.non2xx} errors ${warm.errors} timeouts ${warm.timeouts} mismatches ${warm.mismatches}`)
      }
      const before = await target.usage()
      const machineBefore = machineBusySeconds()
      const run = await cannon(name, load.durationSec)
      const machineAfter = machineBusySeconds()
      const after = await target.usage()
      const serverSeconds = (after.cpuMicros - before.cpuMicros) / 1e6
      const otherCores = machineBefore === null || machineAfter === null
        ? Number.NaN
        : Math.max(0, (machineAfter - machineBefore - serverSeconds - run.clientCpuPerSec * run.durationSec) / run.durationSec)
      return {
        target: name,
        round,
        run,
        serverCpuMicrosPerReq: run.requests > 0 ? (after.cpuMicros - before.cpuMicros) / run.requests : Number.NaN,
        serverElu: elu(before, after),
        otherCores,
      }
    }
    for (let round = 1; round <= load.rounds; round++) {
      for (const name of TARGETS) {
        // A run that shared the machine with other work is measured again: it moves one target's figure
        // and so the ratio (one disturbed reference round once made it read 0.82x where undisturbed runs
        // gave 0.54-0.67x). The least disturbed of the tries counts; the others are printed as such.
        let measured = await measure(name, round)
        for (let retry = 1; retry <= DISTURBED_RETRIES && measured.otherCores > DISTURBED_CORES; retry++) {
          console.log(`${runLine(measured)}  [disturbed: measured again]`)
          const again = await measure(name, round)
          if (again.otherCores >= measured.otherCores) discarded.push(again)
          else {
            discarded.push(measured)
            measured = again
          }
        }
        runs.push(measured)
        console.log(runLine(measured))
      }
    }

    const med = (name: TargetName): TargetMedian => {
      const mine = runs.filter((m) => m.target === name)
      return {
        reqPerSec: median(mine.map((m) => m.run.reqPerSec)),
        p50: median(mine.map((m) => m.run.p50)),
        p99: median(mine.map((m) => m.run.p99)),
        p999: median(mine.map((m) => m.run.p999)),
        cpuPerReq: median(mine.map((m) => m.serverCpuMicrosPerReq)),
        elu: median(mine.map((m) => m.serverElu)),
        clientCpu: median(mine.map((m) => m.run.clientCpuPerSec)),
        otherCores: median(mine.map((m) => m.otherCores)),
      }
    }
    const bad = (name: TargetName): TargetBad => {
      const mine = [...runs, ...discarded].filter((m) => m.target === name)
      const sum = (pick: (r: CannonRun) => number) => mine.reduce((total, m) => total + pick(m.run), 0)
      return { non2xx: sum((r) => r.non2xx), errors: sum((r) => r.errors), timeouts: sum((r) => r.timeouts), mismatches: sum((r) => r.mismatches) }
    }
    await Promise.all(servers.map((s) => s.stop()))
    const log = countDecisionLines(logFile)
    return {
      runs,
      median: { ours: med('ours'), noop: med('noop'), reference: med('reference') },
      bad: { ours: bad('ours'), noop: bad('noop'), reference: bad('reference') },
      responseBytes: Buffer.byteLength(expected),
      logLines: log.lines,
      logBytes: log.bytes,
    }
  } finally {
    await Promise.all(servers.map((s) => s.stop()))
    closeSync(logFd)
  }
}

// ---- summary ---------------------------------------------------------------------------------

function loadSummaryLines(load: LoadSummary): string[] {
  const { ours, noop, reference } = load.median
  const ratio = ours.reqPerSec / reference.reqPerSec
  const p99Ratio = ours.p99 / reference.p99
  const met = (ok: boolean) => (ok ? 'met' : 'NOT met')
  const oursRequests = load.runs.filter((m) => m.target === 'ours').reduce((n, m) => n + m.run.requests, 0)
  const lines = [
    `bench: webhook /mutate restore, TLS keep-alive, decision lines at ${BENCH_LOG_LEVEL} to a file | ours ${fmtInt(ours.reqPerSec)} req/s p50 ${fmt(ours.p50)} ms p99 ${fmt(ours.p99)} ms | reference (fastify, JSON.parse, minimal answer) ${fmtInt(reference.reqPerSec)} req/s p50 ${fmt(reference.p50)} ms p99 ${fmt(reference.p99)} ms`
      + ` | req/s ours/reference ${ratio.toFixed(2)}x (goal >= ${GOAL_RATIO}x) ${met(ratio >= GOAL_RATIO)} | p99 ours/reference ${p99Ratio.toFixed(2)}x (goal <= ${GOAL_P99_RATIO}x) ${met(p99Ratio <= GOAL_P99_RATIO)}`,
    `bench: webhook extra row: noop (fastify, precomputed bytes, no parse) ${fmtInt(noop.reqPerSec)} req/s p50 ${fmt(noop.p50)} ms p99 ${fmt(noop.p99)} ms | req/s ours/noop ${(ours.reqPerSec / noop.reqPerSec).toFixed(2)}x | p99 ours/noop ${(ours.p99 / noop.p99).toFixed(2)}x`,
    `bench: webhook server CPU per request ours ${fmt(ours.cpuPerReq)} us | reference ${fmt(reference.cpuPerReq)} us | noop ${fmt(noop.cpuPerReq)} us | cost ratio reference/ours ${(reference.cpuPerReq / ours.cpuPerReq).toFixed(2)} (the req/s ratio to expect when the server's core is the limit; steadier than req/s on a busy machine) | server loop busy ours ${fmt(ours.elu * 100)}% reference ${fmt(reference.elu * 100)}% noop ${fmt(noop.elu * 100)}% | load generator CPU ${fmt(ours.clientCpu * 100)}%/${fmt(reference.clientCpu * 100)}%/${fmt(noop.clientCpu * 100)}% (ours/reference/noop runs)`,
    `bench: webhook ${TARGETS.map((name) => { const b = load.bad[name]; return `${name} non-2xx ${b.non2xx} errors ${b.errors} timeouts ${b.timeouts} mismatches ${b.mismatches}` }).join(' | ')} (must all be 0) | ours wrote ${load.logLines} decision lines (${fmt(load.logBytes / Math.max(load.logLines, 1))} B each) | median of ${load.runs.length / TARGETS.length} run(s) each`,
  ]
  if (load.logLines < oursRequests) lines.push(`bench: INVALID: ours answered ${oursRequests} measured requests but wrote only ${load.logLines} decision lines`)
  const by = 'bench/admission.ts'
  recordGoal({ what: '/mutate restore review, TLS keep-alive, req/s ours / reference', now: `${ratio.toFixed(2)}x (${fmtInt(ours.reqPerSec)} / ${fmtInt(reference.reqPerSec)} req/s; CPU per request ${fmt(ours.cpuPerReq)} / ${fmt(reference.cpuPerReq)} us)`, goal: `>= ${GOAL_RATIO}x`, met: ratio >= GOAL_RATIO, by })
  recordGoal({ what: '/mutate restore review, TLS keep-alive, p99 ours / reference', now: `${p99Ratio.toFixed(2)}x (${fmt(ours.p99)} / ${fmt(reference.p99)} ms)`, goal: `<= ${GOAL_P99_RATIO}x`, met: p99Ratio <= GOAL_P99_RATIO, by })
  const others = Math.max(ours.otherCores, noop.otherCores, reference.otherCores)
  if (others > 0.2) lines.push(`bench: note: other processes kept ~${fmt(others)} of the CPU cores busy during the runs (median); on a 2-core machine that skews these figures`)
  if (reference.elu < 0.85) lines.push(`bench: note: the reference server's loop was only ${fmt(reference.elu * 100)}% busy: the load generator, not the server, limited its runs, so the ratio flatters ours`)
  return lines
}

function handlerSummaryLines(results: readonly HandlerResult[]): string[] {
  const lines: string[] = []
  for (const r of results) {
    const h = r.handle
    const status = h.p99 <= GOAL_HANDLER_P99_US ? 'met' : 'NOT MET'
    lines.push(`bench: handler ${pad(r.label, 7)} p50 ${padLeft(fmt(h.p50), 5)} us p99 ${padLeft(fmt(h.p99), 5)} us p99.9 ${padLeft(fmt(h.p999), 5)} us max ${padLeft(fmt(h.max), 6)} us (goal p99 <= ${GOAL_HANDLER_P99_US} us) ${status} | JSON.parse p50 ${fmt(r.parse.p50)} us p99 ${fmt(r.parse.p99)} us | ${r.bytes} B, ${h.count} timed`)
  }
  return lines
}

// ---- main ------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const s = settings(process.argv.slice(2))
  const started = performance.now()
  const dir = mkdtempSync(join(tmpdir(), 'volsync-autorestore-bench-'))
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }))
  console.log(`volsync-autorestore admission benchmark: node ${process.version}, ${cpus().length} CPU(s) (${cpus()[0]?.model ?? '?'})${s.quick ? ', --quick' : ''}, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`)
  try {
    // In a folder of their own, as a Secret volume is: the log file and answers written in `dir` are not beside them.
    const tls = await writeCertificates({ outDir: join(dir, 'tls'), service: 'volsync-autorestore', namespace: 'volsync-system', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] })
    const summary: string[] = []
    let invalid = false

    if (s.load) {
      console.log('\n1. TLS keep-alive load on POST /mutate (servers in child processes, autocannon here)')
      const load = await loadBench(s.load, tls, dir)
      summary.push(...loadSummaryLines(load))
      const oursRequests = load.runs.filter((m) => m.target === 'ours').reduce((n, m) => n + m.run.requests, 0)
      const bad = TARGETS.some((name) => { const b = load.bad[name]; return b.non2xx + b.errors + b.timeouts + b.mismatches > 0 })
      if (bad || load.logLines < oursRequests) {
        invalid = true
        console.log('  INVALID: some requests failed or answered differently; the figures above are not comparable')
      }
    }

    if (s.handler) {
      console.log(`\n2. handleReview in-process ('mutate', each call timed with process.hrtime.bigint(); up to ${s.handler.iterations} timed calls after up to ${s.handler.warmup} warm-up calls, capped at ${s.handler.budgetMs / 1000} s per loop)`)
      const snapshot = await benchmarkSnapshot(benchConfig({ certFile: tls.tlsCert, keyFile: tls.tlsKey }))
      const results = runHandlerBench(snapshot, s.handler)
      printHandlerTable(results, timerOverhead(s.quick ? 20_000 : 200_000))
      summary.push(...handlerSummaryLines(results))
    }

    console.log('\nsummary')
    for (const line of summary) console.log(line)
    console.log(`bench: total ${fmt((performance.now() - started) / 1000)} s${invalid ? ' | INVALID RUN (see above)' : ''}`)
    return invalid ? 1 : 0
  } finally {
    killAllServers()
  }
}

runBench(main)

// Part 2: in-process time of handleReview (the pure request path, no HTTP), each call timed on its
// own with process.hrtime.bigint(), plus JSON.parse of the same bodies (the server parses the body
// itself before handleReview) and JSON.stringify of the answer (what Fastify does on reply.send).
import { isDeepStrictEqual } from 'node:util'
import { handleReview } from '../src/admission/handle.ts'
import { oneShotSnapshot } from '../src/commands/one-shot-snapshot.ts'
import type { Config } from '../src/config/schema.ts'
import { createLogger } from '../src/log.ts'
import type { Snapshot } from '../src/state/snapshot.ts'
import { admissionText } from './fixtures.ts'
import { fmt, pad, padLeft, quantiles } from './stats.ts'

export interface HandlerCase {
  /** Short name for the summary. */
  readonly label: string
  readonly file: string
}

export const HANDLER_CASES: readonly HandlerCase[] = [
  { label: 'restore', file: 'pvc-restore.json' },
  { label: 'fresh', file: 'pvc-fresh.json' },
  { label: 'job', file: 'job-backup-create.json' },
]

export interface HandlerOptions {
  readonly warmup: number
  readonly iterations: number
  /**
   * Wall-clock caps per loop (ms): a slow review (the Job: ~0.25 ms a call) gets fewer timed
   * iterations instead of blowing the run's time budget; the table shows the count used.
   */
  readonly warmupBudgetMs: number
  readonly budgetMs: number
  /** JSON.parse / JSON.stringify loops (cheaper to skip on big bodies: they are plain V8 work). */
  readonly jsonWarmup: number
  readonly jsonIterations: number
}

export interface TimingStats {
  readonly p50: number
  readonly p99: number
  readonly p999: number
  readonly max: number
  readonly mean: number
  /** Timed iterations actually run. */
  readonly count: number
  /** Untimed warm-up calls actually run. */
  readonly warmup: number
}

export interface HandlerResult {
  readonly label: string
  readonly file: string
  readonly bytes: number
  readonly decision: string
  readonly handle: TimingStats
  readonly parse: TimingStats
  readonly stringify: TimingStats
}

/**
 * Times fn() after untimed warm-up calls; returns per-call microseconds. Warm-up stops at
 * `warmup` calls or `warmupBudgetMs`; the timed loop runs `iterations` calls, fewer when the
 * warm-up's mean says they would take longer than `budgetMs`.
 */
function timeLoop(fn: () => unknown, warmup: number, iterations: number, warmupBudgetMs = Infinity, budgetMs = Infinity): TimingStats {
  let sink = 0
  const warmStart = process.hrtime.bigint()
  const warmDeadline = warmStart + BigInt(Math.round(Math.min(warmupBudgetMs, 1e9) * 1e6))
  let warmed = 0
  while (warmed < warmup) {
    if (fn() !== undefined) sink++
    warmed++
    if ((warmed & 255) === 0 && process.hrtime.bigint() > warmDeadline) break
  }
  if (warmed > 0 && Number.isFinite(budgetMs)) {
    const meanMicros = Number(process.hrtime.bigint() - warmStart) / 1000 / warmed
    iterations = Math.max(1000, Math.min(iterations, Math.floor((budgetMs * 1000) / Math.max(meanMicros, 0.001))))
  }
  const samples = new Float64Array(iterations)
  let total = 0n
  for (let i = 0; i < iterations; i++) {
    const started = process.hrtime.bigint()
    const value = fn()
    const elapsed = process.hrtime.bigint() - started
    if (value !== undefined) sink++
    total += elapsed
    samples[i] = Number(elapsed) / 1000
  }
  if (sink < 0) console.log('unreachable')
  const p = quantiles(samples)
  return { p50: p.p50, p99: p.p99, p999: p.p999, max: p.max, mean: Number(total) / 1000 / iterations, count: iterations, warmup: warmed }
}

export async function benchmarkSnapshot(config: Config): Promise<Snapshot> {
  return oneShotSnapshot(config, undefined, createLogger('warn', process.stderr))
}

export function runHandlerBench(snapshot: Snapshot, options: HandlerOptions, cases: readonly HandlerCase[] = HANDLER_CASES): HandlerResult[] {
  const results: HandlerResult[] = []
  for (const c of cases) {
    const text = admissionText(c.file)
    const body: unknown = JSON.parse(text)
    const pristine: unknown = JSON.parse(text)
    // One fixed instant, as one request would see: the static catalog stays fresh for minutes.
    const now = Date.now()
    const first = handleReview('mutate', snapshot, body, now)
    if (!first.ok) throw new Error(`${c.file}: handleReview rejected the review: ${first.error}`)
    const handle = timeLoop(() => handleReview('mutate', snapshot, body, now), options.warmup, options.iterations, options.warmupBudgetMs, options.budgetMs)
    // The same parsed body is reused for every call, which is only fair if the handler never writes to it.
    if (!isDeepStrictEqual(body, pristine)) throw new Error(`${c.file}: handleReview modified the parsed request body`)
    const parse = timeLoop(() => JSON.parse(text) as unknown, options.jsonWarmup, options.jsonIterations, options.warmupBudgetMs, options.budgetMs)
    const review = first.review
    const stringify = timeLoop(() => JSON.stringify(review), options.jsonWarmup, options.jsonIterations, options.warmupBudgetMs, options.budgetMs)
    results.push({ label: c.label, file: c.file, bytes: Buffer.byteLength(text), decision: `${first.decision.rule}/${first.decision.outcome}`, handle, parse, stringify })
  }
  return results
}

/** Cost of the timing itself: two hrtime.bigint() calls around a call that does nothing. */
export function timerOverhead(iterations: number): TimingStats {
  return timeLoop(() => 0, Math.min(iterations, 20_000), iterations)
}

export function printHandlerTable(results: readonly HandlerResult[], overhead: TimingStats): void {
  const row = (name: string, op: string, s: TimingStats) =>
    `  ${pad(name, 24)}${pad(op, 16)}${padLeft(String(s.warmup), 7)}${padLeft(String(s.count), 8)}${padLeft(fmt(s.p50), 9)}${padLeft(fmt(s.p99), 9)}${padLeft(fmt(s.p999), 9)}${padLeft(fmt(s.max), 10)}${padLeft(fmt(s.mean), 9)}`
  console.log(`  ${pad('review', 24)}${pad('op', 16)}${padLeft('warm', 7)}${padLeft('timed', 8)}${padLeft('p50', 9)}${padLeft('p99', 9)}${padLeft('p99.9', 9)}${padLeft('max', 10)}${padLeft('mean', 9)}   (microseconds)`)
  for (const r of results) {
    console.log(row(r.file, 'handleReview', r.handle))
    console.log(row(`  ${r.bytes} B`, 'JSON.parse', r.parse))
    console.log(row(`  ${r.decision}`, 'JSON.stringify', r.stringify))
  }
  console.log(row('(timer overhead)', 'empty call', overhead))
}

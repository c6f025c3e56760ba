// Issue 14's table, row by row: each benchmark records the rows it measured (what, figure now, goal,
// met / NOT met) into the file named by BENCH_GOALS_FILE (one JSON object per line), and
// bench/goals.ts prints them together at the end of `npm run bench`. Without BENCH_GOALS_FILE
// (a benchmark run on its own) nothing is recorded; each benchmark still prints its own table.
import { appendFileSync } from 'node:fs'

/** One row of the goals table. */
export interface GoalRow {
  /** Which row of issue 14's table, e.g. "/mutate req/s, ours / reference". */
  readonly what: string
  /** The figure measured, with its unit, e.g. "0.91x (9,120 / 10,020 req/s)". */
  readonly now: string
  /** The goal as written, e.g. ">= 0.85x". */
  readonly goal: string
  readonly met: boolean
  /** The benchmark that measured it, e.g. "bench/admission.ts". */
  readonly by: string
}

/** The environment variable naming the file rows are appended to. */
export const GOALS_FILE_ENV = 'BENCH_GOALS_FILE'

/**
 * Appends `row` as one JSON line to the file named by BENCH_GOALS_FILE (created when absent); does
 * nothing when the variable is unset. Throws when the file cannot be written.
 */
export function recordGoal(row: GoalRow): void {
  const file = process.env[GOALS_FILE_ENV]
  if (file === undefined || file === '') return
  appendFileSync(file, `${JSON.stringify(row)}\n`)
}

/** "met" or "NOT met", as every table prints it. */
export function metText(met: boolean): string {
  return met ? 'met' : 'NOT met'
}

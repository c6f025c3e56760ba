// `npm run bench`: every benchmark in turn, each in its own process (so none inherits another's
// heap, JIT state or open servers), then issue 14's goals in one table: each row as the benchmark
// that measured it recorded it (bench/goal-rows.ts), with its goal and met / NOT met. A benchmark
// that fails is reported and the others still run; the exit code is then 1. Enforces no goal.
// Flags: --only NAME[,NAME] (e.g. --only cli,kopia) runs a subset.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { GOALS_FILE_ENV, metText, type GoalRow } from './goal-rows.ts'
import { pad } from './stats.ts'

/** The benchmarks, in the order they run; `nodeArgs` go before the script. */
const BENCHMARKS: ReadonlyArray<{ readonly name: string; readonly script: string; readonly nodeArgs?: readonly string[] }> = [
  { name: 'admission', script: 'bench/admission.ts' },
  { name: 's3-listing', script: 'bench/s3-listing.ts' },
  { name: 'catalog', script: 'bench/catalog.ts', nodeArgs: ['--expose-gc'] },
  { name: 'kopia', script: 'bench/kopia.ts' },
  { name: 'cli', script: 'bench/cli.ts' },
  { name: 'startup', script: 'bench/startup.ts' },
  { name: 'secret-flood', script: 'bench/secret-flood.ts' },
  { name: 'backup-spread', script: 'bench/backup-spread.ts' },
]

const { values } = parseArgs({ options: { only: { type: 'string' } } })
const only = values.only?.split(',').map((s) => s.trim()).filter((s) => s !== '')
const unknown = only?.filter((name) => !BENCHMARKS.some((b) => b.name === name)) ?? []
if (unknown.length > 0) {
  console.error(`--only: no benchmark named ${unknown.join(', ')} (known: ${BENCHMARKS.map((b) => b.name).join(', ')})`)
  process.exit(2)
}

const dir = mkdtempSync(join(tmpdir(), 'bench-goals-'))
const goalsFile = join(dir, 'goals.jsonl')
const failed: string[] = []
const started = performance.now()
try {
  for (const bench of BENCHMARKS) {
    if (only && !only.includes(bench.name)) continue
    console.log(`\n=== ${bench.name} (${bench.script}), load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`)
    const result = spawnSync(process.execPath, [...(bench.nodeArgs ?? []), bench.script], {
      stdio: 'inherit',
      env: { ...process.env, [GOALS_FILE_ENV]: goalsFile },
    })
    if (result.status !== 0) failed.push(`${bench.name} (${result.error?.message ?? (result.signal !== null ? `signal ${result.signal}` : `exit ${result.status}`)})`)
  }
  let rows: GoalRow[] = []
  try {
    rows = readFileSync(goalsFile, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as GoalRow)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
  }
  console.log(`\n=== issue 14's goals, as measured in this run (${((performance.now() - started) / 60_000).toFixed(1)} min, Node ${process.version})`)
  const width = Math.max(20, ...rows.map((r) => r.what.length))
  for (const r of rows) console.log(`${pad(r.what, width)}  ${pad(metText(r.met), 7)}  now ${r.now}; goal ${r.goal}  [${r.by}]`)
  console.log(`${rows.filter((r) => r.met).length} of ${rows.length} goals met`)
  if (failed.length > 0) console.log(`FAILED: ${failed.join(', ')}`)
} finally {
  rmSync(dir, { recursive: true, force: true })
}
process.exitCode = failed.length > 0 ? 1 : 0

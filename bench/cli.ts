// `npm run bench` (CLI part): wall time and peak RSS of one-shot commands as a user runs them,
// each the median of --runs runs (5), also as a ratio to `node -e 0` measured in the same rounds
// (so a busy machine shows as a slower baseline, not as a slower CLI). Goals printed beside the
// figures: `--help` < 0.3 s, `review` < 1 s and < 100 MB. Enforces nothing.
//
// Wall time: hrtime around the spawn until the child exits. Peak RSS: GNU time's %M (the child's
// ru_maxrss) when /usr/bin/time exists; otherwise an --import hook in the child reports
// process.resourceUsage().maxRSS at exit (that hook adds a module load to what it measures).
//
// Two columns per command: "cached" is every run after the first (the CLI enables Node's compile
// cache in os.tmpdir(); TMPDIR points the children at a fresh directory of the bench's own, warmed
// by one unmeasured run), "uncached" is NODE_DISABLE_COMPILE_CACHE=1 (a first run, or a read-only
// file system).
// Flags: --runs N (5), --root DIR (the checkout to measure, e.g. an older commit unpacked with
// `git archive`, with node_modules linked; default: this one).
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { fmt, median, pad, padLeft } from './stats.ts'
import { metText, recordGoal } from './goal-rows.ts'

const { values } = parseArgs({ options: {
  runs: { type: 'string', default: '5' },
  root: { type: 'string', default: resolve(import.meta.dirname, '..') },
} })
const RUNS = Number(values.runs)
const ROOT = resolve(values.root)
const GNU_TIME = '/usr/bin/time'
const useGnuTime = existsSync(GNU_TIME)
const RSS_HOOK = `data:text/javascript,process.on('exit',()=>process.stderr.write('\\nbench-maxrss-kb='+process.resourceUsage().maxRSS+'\\n'))`

interface Case {
  readonly name: string
  /** Arguments to node; relative paths are below ROOT (the children run there). */
  readonly args: readonly string[]
  readonly goal: string
  /** Issue 14's limits, judged on the cached column (every run after a user's first). */
  readonly limit?: { readonly row: string; readonly seconds: number; readonly rssMb?: number }
}

const CASES: readonly Case[] = [
  { name: 'node -e 0', args: ['-e', '0'], goal: '(baseline)' },
  { name: '--help', args: ['src/main.ts', '--help'], goal: '< 0.3 s', limit: { row: 'CLI `--help`, wall', seconds: 0.3 } },
  { name: 'review examples/admission/pvc-wait.json', args: ['src/main.ts', 'review', 'examples/admission/pvc-wait.json', '--config', 'examples/config.yaml'], goal: '< 1 s, < 100 MB', limit: { row: 'CLI `review` on the embedded default, wall and peak RSS', seconds: 1, rssMb: 100 } },
  { name: 'catalog', args: ['src/main.ts', 'catalog', '--config', 'examples/config.yaml'], goal: '-' },
]

interface Sample {
  readonly seconds: number
  readonly rssMb: number
}

/** One run of `node ...args` in ROOT; rejects when it exits non-zero or RSS cannot be read. */
async function runOnce(args: readonly string[], env: NodeJS.ProcessEnv, scratch: string): Promise<Sample> {
  const timeFile = join(scratch, 'time.out')
  const [command, commandArgs] = useGnuTime
    ? [GNU_TIME, ['-f', '%M', '-o', timeFile, process.execPath, ...args]]
    : [process.execPath, ['--import', RSS_HOOK, ...args]]
  const started = process.hrtime.bigint()
  const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>((done, fail) => {
    const child = spawn(command, commandArgs, { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'pipe'] })
    const chunks: Buffer[] = []
    child.stderr.on('data', (chunk: Buffer) => chunks.push(chunk))
    child.on('error', fail)
    child.on('close', (exitCode) => done({ code: exitCode, stderr: Buffer.concat(chunks).toString('utf8') }))
  })
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  if (code !== 0) throw new Error(`node ${args.join(' ')} exited ${code}: ${stderr}`)
  const kb = useGnuTime ? Number((await readFile(timeFile, 'utf8')).trim().split('\n').at(-1)) : Number(/bench-maxrss-kb=(\d+)/.exec(stderr)?.[1])
  if (!Number.isFinite(kb)) throw new Error(`no peak RSS for node ${args.join(' ')}`)
  return { seconds, rssMb: kb / 1024 }
}

function meets(limit: NonNullable<Case['limit']>, sample: Sample): boolean {
  return sample.seconds < limit.seconds && (limit.rssMb === undefined || sample.rssMb < limit.rssMb)
}

const scratch = await mkdtemp(join(tmpdir(), 'bench-cli-'))
try {
  // The user's environment minus NODE_OPTIONS (npm and test runners put hooks there).
  const { NODE_OPTIONS: _options, NODE_COMPILE_CACHE: _cache, NODE_DISABLE_COMPILE_CACHE: _disabled, ...base } = process.env
  const modes = {
    cached: { ...base, TMPDIR: scratch },
    uncached: { ...base, NODE_DISABLE_COMPILE_CACHE: '1' },
  } as const
  for (const c of CASES) await runOnce(c.args, modes.cached, scratch) // warms the cache
  const samples = new Map<string, Sample[]>()
  // Rounds interleave the cases, so load from elsewhere on the machine spreads over all of them.
  for (let round = 0; round < RUNS; round++) {
    for (const c of CASES) {
      for (const [mode, env] of Object.entries(modes)) {
        const key = `${c.name}|${mode}`
        const list = samples.get(key) ?? []
        list.push(await runOnce(c.args, env, scratch))
        samples.set(key, list)
      }
    }
  }
  const stat = (name: string, mode: string) => {
    const list = samples.get(`${name}|${mode}`) ?? []
    return { seconds: median(list.map((s) => s.seconds)), rssMb: median(list.map((s) => s.rssMb)) }
  }
  const baseline = { cached: stat('node -e 0', 'cached'), uncached: stat('node -e 0', 'uncached') }
  console.log(`CLI (${ROOT}), Node ${process.version}, median of ${RUNS} runs; peak RSS from ${useGnuTime ? `${GNU_TIME} -f %M` : 'process.resourceUsage() in the child'}`)
  console.log(`${pad('command', 42)}${padLeft('cached s', 10)}${padLeft('x node', 8)}${padLeft('MB', 7)}${padLeft('uncached s', 12)}${padLeft('x node', 8)}${padLeft('MB', 7)}  goal`)
  for (const c of CASES) {
    const cached = stat(c.name, 'cached')
    const uncached = stat(c.name, 'uncached')
    console.log(`${pad(c.name, 42)}${padLeft(fmt(cached.seconds), 10)}${padLeft(fmt(cached.seconds / baseline.cached.seconds), 8)}${padLeft(fmt(cached.rssMb), 7)}`
      + `${padLeft(fmt(uncached.seconds), 12)}${padLeft(fmt(uncached.seconds / baseline.uncached.seconds), 8)}${padLeft(fmt(uncached.rssMb), 7)}  ${c.goal}${c.limit ? `: ${metText(meets(c.limit, cached))}` : ''}`)
    if (c.limit) {
      recordGoal({
        what: `${c.limit.row} (median of ${RUNS}, compile cache warm)`,
        now: `${fmt(cached.seconds)} s${c.limit.rssMb !== undefined ? `, ${fmt(cached.rssMb)} MB` : ''} (${fmt(cached.seconds / baseline.cached.seconds)}x node -e 0; uncached ${fmt(uncached.seconds)} s)`,
        goal: c.goal, met: meets(c.limit, cached), by: 'bench/cli.ts',
      })
    }
  }
} finally {
  await rm(scratch, { recursive: true, force: true })
}

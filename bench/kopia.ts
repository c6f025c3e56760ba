// `npm run bench` (Kopia part): a shared Kopia repository holding 100,000 snapshot manifests of
// 1,000 sources, as kopia leaves it after maintenance (one compacted manifest content plus the 16
// small ones of later sessions), in a directory on tmpfs. Times opening (key derivation reported
// apart), a cold poll and an unchanged poll, with the peak RSS of the poll. Goals printed beside the
// figures and recorded as issue 14's rows (bench/goal-rows.ts): cold poll < 2 s, peak RSS < 400 MiB;
// unchanged < 100 ms. Enforces nothing.
//
// How memory is measured: each round runs in a fresh child process (this file with --poll DIR), so
// neither the writer that made the fixture nor an earlier round counts. The child reports
// process.resourceUsage().maxRSS, the kernel's high-water mark of its resident set: a true peak, not
// a sample, covering Node's start, the open and both polls. The open's own peak (scrypt N=65536
// takes 64 MiB) is reported apart, to show the maximum is the cold poll's. It also reports the RSS
// just before the cold poll, and the peak heap sampled every 5 ms.
// Flags: --sources N (1000), --per-source N (100), --rounds N (3: the median is reported).
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs, promisify } from 'node:util'
import { metText, recordGoal } from './goal-rows.ts'
import { fmt, median, pad, padLeft } from './stats.ts'

const GOAL_COLD_MS = 2000
const GOAL_UNCHANGED_MS = 100
const GOAL_RSS_MIB = 400
const PASSWORD = 'bench-password'
const MIB = 2 ** 20
const { values } = parseArgs({ options: {
  sources: { type: 'string', default: '1000' },
  'per-source': { type: 'string', default: '100' },
  rounds: { type: 'string', default: '3' },
  poll: { type: 'string' },
} })
const SOURCES = Number(values.sources)
const PER_SOURCE = Number(values['per-source'])
const ROUNDS = Number(values.rounds)

/** What one child round measured (times in ms, memory in bytes). */
interface RoundFigures {
  readonly openMs: number
  readonly coldMs: number
  readonly unchangedMs: number
  readonly rssBeforePoll: number
  readonly maxRssAfterOpen: number
  readonly maxRss: number
  readonly peakHeap: number
  readonly sources: number
  readonly snapshots: number
}

/** The child: open the repository in `root`, poll cold, poll unchanged; prints RoundFigures as JSON. */
async function pollRound(root: string): Promise<void> {
  const { KopiaRepository } = await import('../src/kopia/repository.ts')
  const { FsBlobStore } = await import('../src/storage/fs-store.ts')
  let peakHeap = 0
  const sampler = setInterval(() => { peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed) }, 5)
  let started = performance.now()
  const repository = await KopiaRepository.open(new FsBlobStore(root), PASSWORD)
  const openMs = performance.now() - started
  const maxRssAfterOpen = process.resourceUsage().maxRSS * 1024 // reported in KiB
  const rssBeforePoll = process.memoryUsage().rss
  started = performance.now()
  const sources = await repository.poll()
  const coldMs = performance.now() - started
  started = performance.now()
  await repository.poll()
  const unchangedMs = performance.now() - started
  clearInterval(sampler)
  const figures: RoundFigures = {
    openMs, coldMs, unchangedMs, rssBeforePoll, maxRssAfterOpen, peakHeap,
    maxRss: process.resourceUsage().maxRSS * 1024,
    sources: sources.length,
    snapshots: sources.reduce((n, s) => n + s.snapshots, 0),
  }
  process.stdout.write(`${JSON.stringify(figures)}\n`)
}

async function writeFixture(root: string): Promise<number> {
  const { KopiaTestWriter } = await import('../test/support/kopia-writer.ts')
  const writer = await KopiaTestWriter.create({
    password: PASSWORD,
    put: async (key, bytes) => {
      const file = join(root, ...key.split('/'))
      await mkdir(dirname(file), { recursive: true })
      await writeFile(file, bytes)
    },
  })
  const recent = 16
  const total = SOURCES * PER_SOURCE
  for (let i = 0; i < total - recent; i++) {
    const source = i % SOURCES
    writer.addSnapshot({ username: `app-${source}`, hostname: `ns-${source % 50}`, path: '/data', startTime: new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString(), sizeBytes: i, files: 10, dirs: 2 })
    if ((i + 1) % 10_000 === 0) writer.flushManifests({ compression: 0x1101 })
  }
  writer.flushManifests({ compression: 0x1101 })
  writer.compactManifests({ compression: 0x1101 })
  await writer.flushIndex()
  for (let i = 0; i < recent; i++) {
    writer.addSnapshot({ username: `app-${i}`, hostname: `ns-${i % 50}`, path: '/data', startTime: new Date(Date.UTC(2026, 6, 1) + i * 1000).toISOString() })
    writer.flushManifests({ compression: 0x1101 })
    await writer.flushIndex()
  }
  return recent
}

async function main(): Promise<void> {
  const parent = existsSync('/dev/shm') ? '/dev/shm' : tmpdir()
  const root = await mkdtemp(join(parent, 'bench-kopia-'))
  try {
    const writing = performance.now()
    const recent = await writeFixture(root)
    const total = SOURCES * PER_SOURCE
    console.log(`kopia bench: ${total} snapshot manifests of ${SOURCES} sources (1 compacted manifest content + ${recent} recent ones), written in ${fmt((performance.now() - writing) / 1000, 1)} s to ${root}`)
    const rounds: RoundFigures[] = []
    for (let round = 0; round < ROUNDS; round++) {
      const { stdout } = await promisify(execFile)(process.execPath, [fileURLToPath(import.meta.url), '--poll', root], { maxBuffer: 1 << 20 })
      const figures = JSON.parse(stdout) as RoundFigures
      if (figures.sources !== SOURCES || figures.snapshots !== total) throw new Error(`expected ${SOURCES} sources and ${total} snapshots, got ${figures.sources} and ${figures.snapshots}`)
      rounds.push(figures)
    }
    const coldMs = median(rounds.map((r) => r.coldMs))
    const maxRssMiB = median(rounds.map((r) => r.maxRss)) / MIB
    const rows = [
      { name: 'open (key derivation: scrypt N=65536, off-thread)', values: rounds.map((r) => r.openMs), unit: 'ms', goal: '-' },
      { name: 'cold poll (after key derivation)', values: rounds.map((r) => r.coldMs), unit: 'ms', goal: `< ${GOAL_COLD_MS} ms` },
      { name: 'unchanged poll', values: rounds.map((r) => r.unchangedMs), unit: 'ms', goal: `< ${GOAL_UNCHANGED_MS} ms` },
      { name: 'peak RSS of the process (maxRSS: start, open, polls)', values: rounds.map((r) => r.maxRss / MIB), unit: 'MiB', goal: `< ${GOAL_RSS_MIB} MiB` },
      { name: 'peak RSS of the open alone (maxRSS then)', values: rounds.map((r) => r.maxRssAfterOpen / MIB), unit: 'MiB', goal: '-' },
      { name: 'RSS before the cold poll', values: rounds.map((r) => r.rssBeforePoll / MIB), unit: 'MiB', goal: '-' },
      { name: 'peak heap (sampled every 5 ms)', values: rounds.map((r) => r.peakHeap / MIB), unit: 'MiB', goal: '-' },
    ]
    console.log('')
    console.log(`${pad('step (each round a fresh process)', 54)}${padLeft('median', 9)}${padLeft('all rounds', 22)}  goal`)
    for (const row of rows) console.log(`${pad(row.name, 54)}${padLeft(`${fmt(median(row.values), 0)}`, 9)}${padLeft(row.values.map((v) => fmt(v, 0)).join(' / '), 22)}  ${row.goal} (${row.unit})`)
    const by = 'bench/kopia.ts'
    const coldMet = coldMs < GOAL_COLD_MS
    const rssMet = maxRssMiB < GOAL_RSS_MIB
    recordGoal({ what: 'Kopia, 100,000 manifests, cold poll', now: `${fmt(coldMs, 0)} ms`, goal: `< ${GOAL_COLD_MS} ms`, met: coldMet, by })
    recordGoal({ what: 'Kopia, 100,000 manifests, cold poll peak RSS', now: `${fmt(maxRssMiB, 0)} MiB`, goal: `< ${GOAL_RSS_MIB} MiB`, met: rssMet, by })
    console.log(`\ncold poll ${metText(coldMet)}, peak RSS ${metText(rssMet)} (medians of ${ROUNDS} rounds)`)
  } finally {
    await rm(root, { recursive: true, force: true })
  }
}

if (values.poll === undefined) await main()
else await pollRound(values.poll)

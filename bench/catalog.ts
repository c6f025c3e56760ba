// `npm run bench` (catalog part): how long a poll of 5,000 per-PVC restic repositories takes,
// cold and when nothing changed, on a real S3 server (s3rver in its own process, objects on
// tmpfs so the disk does not dominate) and on a directory. Prints figures beside the goals
// (cold < 5 s, unchanged < 1 s); enforces nothing. With a password every repository costs one
// scrypt (restic calibrates it to ~0.5 s), so that mode runs on a smaller set and is reported
// per repository.
// Each row also gives the listing requests the poll made (issue 14: an unchanged poll must not cost
// one listing per repository). On S3 the source lists by a flat scan; --per-repository adds rows of
// the one-listing-per-repository way (the directory's, and S3's before the scan) for comparison.
// The unchanged poll comes one catalog.interval after the cold one (a stepped clock) under the
// default catalog.backupRecheckInterval: every repository here has a backup, so it examines the slice
// due at that poll (about interval / recheck of them) and carries the rest over; --every-poll adds rows
// with backupRecheckInterval 0s (every repository every poll, as before the policy).
// Cold and unchanged listing polls on S3 are recorded as goal rows (bench/goal-rows.ts).
// Flags: --repos N (5000), --password-repos N (40), --concurrency N (16), --skip-s3, --skip-fs,
// --per-repository, --every-poll.
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { parseArgs } from 'node:util'
import { s3PrefixSource } from '../src/catalog/s3-prefix-source.ts'
import { durationMs } from '../src/config/duration.ts'
import { parseConfig } from '../src/config/load.ts'
import type { S3PrefixSourceConfig } from '../src/config/schema.ts'
import { ResticKeyCache } from '../src/restic/key-cache.ts'
import { LocalS3 } from '../test/support/s3-server.ts'
import { RESTIC_FIXTURES, RESTIC_PASSWORD } from '../test/support/restic-layout.ts'
import { recordGoal } from './goal-rows.ts'
import { fmt, pad, padLeft } from './stats.ts'

const GOAL_COLD_S = 5
const GOAL_UNCHANGED_S = 1
const FIXTURE = join(RESTIC_FIXTURES, 'v2') // 3 snapshots, 14 files
const CLOCK_TICKS_PER_S = 100
// The defaults a server runs with: the unchanged poll comes one interval after the cold one.
const DEFAULTS = parseConfig('{}').catalog
const INTERVAL_MS = durationMs(DEFAULTS.interval)
const RECHECK_MS = durationMs(DEFAULTS.backupRecheckInterval)

const { values } = parseArgs({ options: {
  repos: { type: 'string', default: '5000' },
  'password-repos': { type: 'string', default: '40' },
  concurrency: { type: 'string', default: '16' },
  'skip-s3': { type: 'boolean', default: false },
  'skip-fs': { type: 'boolean', default: false },
  'per-repository': { type: 'boolean', default: false },
  'every-poll': { type: 'boolean', default: false },
} })
const REPOS = Number(values.repos)
const PASSWORD_REPOS = Number(values['password-repos'])
const CONCURRENCY = Number(values.concurrency)
const scratchParent = existsSync('/dev/shm') ? '/dev/shm' : tmpdir()

/** Files of the fixture repository as [relative key, bytes]. */
const fixtureFiles: Array<[string, Buffer]> = readdirSync(FIXTURE, { recursive: true, withFileTypes: true })
  .filter((d) => d.isFile())
  .map((d) => [relative(FIXTURE, join(d.parentPath, d.name)).split('\\').join('/'), readFileSync(join(d.parentPath, d.name))])

/** namespace/pvc names: 50 namespaces of up to 100 PVCs. */
function pvcNames(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `ns-${String(Math.floor(i / 100)).padStart(3, '0')}/pvc-${String(i % 100).padStart(3, '0')}`)
}

function* objectsFor(names: readonly string[], prefix: string): Generator<readonly [string, Buffer]> {
  for (const name of names) for (const [key, body] of fixtureFiles) yield [`${prefix}${name}/${key}`, body]
}

/** utime + stime of a process in seconds, from /proc (Linux). */
function processCpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_S
}

interface PollFigures { readonly listings: number; readonly examined: number; readonly wallS: number; readonly ownCpuS: number; readonly serverCpuS: number | null; readonly rssBeforeMiB: number; readonly peakRssMiB: number; readonly peakHeapMiB: number; readonly entries: number }

async function measure(poll: () => Promise<{ entries: number; listings: number; examined: number }>, serverPid?: number): Promise<PollFigures> {
  global.gc?.()
  const before = process.memoryUsage()
  let peak = before.rss
  let peakHeap = before.heapUsed
  const sample = () => {
    const now = process.memoryUsage()
    peak = Math.max(peak, now.rss)
    peakHeap = Math.max(peakHeap, now.heapUsed)
  }
  const sampler = setInterval(sample, 5)
  const serverBefore = serverPid !== undefined ? processCpuSeconds(serverPid) : 0
  const cpuBefore = process.cpuUsage()
  const started = performance.now()
  const { entries, listings, examined } = await poll()
  const wallS = (performance.now() - started) / 1000
  const cpu = process.cpuUsage(cpuBefore)
  clearInterval(sampler)
  sample()
  return {
    listings,
    examined,
    wallS,
    ownCpuS: (cpu.user + cpu.system) / 1e6,
    serverCpuS: serverPid !== undefined ? processCpuSeconds(serverPid) - serverBefore : null,
    rssBeforeMiB: before.rss / 2 ** 20,
    peakRssMiB: peak / 2 ** 20,
    peakHeapMiB: peakHeap / 2 ** 20,
    entries,
  }
}

const rows: Array<{ name: string; figures: PollFigures; goal: string }> = []

async function benchStore(label: string, config: (passwordFile?: string) => S3PrefixSourceConfig, count: number, passwordFile: string | undefined, serverPid?: number, listing?: 'per-repository', recheckMs = RECHECK_MS): Promise<{ cold: PollFigures; unchanged: PollFigures }> {
  let listings = 0
  let examined = 0
  // A stepped clock: the second poll comes one catalog.interval after the first, as in the server.
  const clock = { now: 0 }
  const source = s3PrefixSource(config(passwordFile), {
    resticKeys: new ResticKeyCache(), ...(listing ? { listing } : {}), recheck: { backupRecheckMs: recheckMs }, now: () => clock.now,
    onListed: (n, e) => { listings = n; examined = e },
  })
  const signal = new AbortController().signal
  const poll = async () => {
    clock.now += INTERVAL_MS
    const { entries } = await source.poll(signal)
    if (entries.length !== count || entries.some((e) => e.snapshots !== 3)) throw new Error(`${label}: expected ${count} repositories with 3 snapshots, got ${entries.length}`)
    return { entries: entries.length, listings, examined }
  }
  const mode = passwordFile ? 'password' : 'listing'
  const cold = await measure(poll, serverPid)
  rows.push({ name: `${label}, ${mode}, cold`, figures: cold, goal: passwordFile ? '-' : `< ${GOAL_COLD_S} s` })
  const unchanged = await measure(poll, serverPid)
  rows.push({ name: `${label}, ${mode}, unchanged`, figures: unchanged, goal: passwordFile ? '-' : `< ${GOAL_UNCHANGED_S} s` })
  return { cold, unchanged }
}

const passwordDir = await mkdtemp(join(tmpdir(), 'bench-password-'))
const passwordFile = join(passwordDir, 'RESTIC_PASSWORD')
await writeFile(passwordFile, RESTIC_PASSWORD)

console.log(`catalog bench: ${REPOS} per-PVC restic repositories (restic 0.14 fixture, ${fixtureFiles.length} objects, 3 snapshots each), concurrency ${CONCURRENCY}, storage on ${scratchParent}`)
console.log(`unchanged = the poll one catalog.interval (${DEFAULTS.interval}) after the cold one, catalog.backupRecheckInterval ${DEFAULTS.backupRecheckInterval} (a repository with a backup examined once in ceil(${RECHECK_MS / 1000} / ${INTERVAL_MS / 1000}) = ${Math.ceil(RECHECK_MS / INTERVAL_MS)} polls)`)

if (!values['skip-fs']) {
  const root = await mkdtemp(join(scratchParent, 'bench-fs-'))
  try {
    const names = pvcNames(REPOS)
    for (const name of names) await cp(FIXTURE, join(root, ...name.split('/')), { recursive: true })
    const fsConfig = (file?: string): S3PrefixSourceConfig => ({ name: 'bench', type: 's3-prefix', filesystem: { path: root }, concurrency: CONCURRENCY, ...(file ? { resticPasswordFile: file } : {}) })
    await benchStore('directory', fsConfig, REPOS, undefined)
    if (values['every-poll']) await benchStore('directory, recheck 0s', fsConfig, REPOS, undefined, undefined, undefined, 0)
  } finally {
    await rm(root, { recursive: true, force: true })
  }
}
if (!values['skip-s3']) {
  const s3 = await LocalS3.start(scratchParent)
  try {
    await s3.createBucket('bench')
    const seeded = performance.now()
    const names = pvcNames(REPOS)
    const objects = await s3.writeObjects('bench', objectsFor(names, 'volsync/'))
    const few = pvcNames(PASSWORD_REPOS)
    await s3.createBucket('bench-password')
    await s3.writeObjects('bench-password', objectsFor(few, ''))
    console.log(`seeded ${objects} objects into s3rver in ${fmt((performance.now() - seeded) / 1000, 1)} s`)
    const location = (bucket: string, prefix: string) => s3.location(bucket, { prefix, requestTimeout: '60s' })
    const s3Config = (file?: string): S3PrefixSourceConfig => ({ name: 'bench', type: 's3-prefix', s3: location('bench', 'volsync/'), concurrency: CONCURRENCY, ...(file ? { resticPasswordFile: file } : {}) })
    if (values['per-repository']) await benchStore('s3 per repository, recheck 0s', s3Config, REPOS, undefined, s3.pid, 'per-repository', 0)
    if (values['every-poll']) await benchStore('s3, recheck 0s', s3Config, REPOS, undefined, s3.pid, undefined, 0)
    const { cold, unchanged } = await benchStore('s3', s3Config, REPOS, undefined, s3.pid)
    const figure = (f: PollFigures) => `${fmt(f.wallS, 2)} s (${f.listings} listings, ${f.examined} repositories examined, our CPU ${fmt(f.ownCpuS, 2)} s, s3rver CPU ${f.serverCpuS === null ? '-' : fmt(f.serverCpuS, 2)} s)`
    recordGoal({ what: `cold poll of ${REPOS} per-PVC repositories on the local S3 server`, now: figure(cold), goal: `< ${GOAL_COLD_S} s`, met: cold.wallS < GOAL_COLD_S, by: 'bench/catalog.ts' })
    recordGoal({ what: `unchanged poll of ${REPOS} per-PVC repositories on the local S3 server (backupRecheckInterval ${DEFAULTS.backupRecheckInterval}, interval ${DEFAULTS.interval})`, now: figure(unchanged), goal: `< ${GOAL_UNCHANGED_S} s`, met: unchanged.wallS < GOAL_UNCHANGED_S, by: 'bench/catalog.ts' })
    await benchStore(`s3 (${PASSWORD_REPOS} repos)`, (file) => ({ name: 'bench', type: 's3-prefix', s3: location('bench-password', ''), concurrency: CONCURRENCY, ...(file ? { resticPasswordFile: file } : {}) }), PASSWORD_REPOS, passwordFile, s3.pid)
  } finally {
    await s3.close()
  }
}

await rm(passwordDir, { recursive: true, force: true })

console.log('')
console.log(`${pad('poll', 46)}${padLeft('listings', 9)}${padLeft('examined', 9)}${padLeft('wall s', 9)}${padLeft('our CPU s', 11)}${padLeft('S3 CPU s', 10)}${padLeft('RSS MiB before>peak', 21)}${padLeft('peak heap MiB', 15)}${padLeft('entries', 9)}  goal`)
for (const { name, figures, goal } of rows) {
  console.log(`${pad(name, 46)}${padLeft(String(figures.listings), 9)}${padLeft(String(figures.examined), 9)}${padLeft(fmt(figures.wallS, 2), 9)}${padLeft(fmt(figures.ownCpuS, 2), 11)}${padLeft(figures.serverCpuS === null ? '-' : fmt(figures.serverCpuS, 2), 10)}${padLeft(`${fmt(figures.rssBeforeMiB, 0)} > ${fmt(figures.peakRssMiB, 0)}`, 21)}${padLeft(fmt(figures.peakHeapMiB, 0), 15)}${padLeft(String(figures.entries), 9)}  ${goal}`)
}
const perRepo = rows.find((r) => r.name.includes('password, cold'))
if (perRepo) console.log(`\nwith a password, a cold poll costs ${fmt((perRepo.figures.wallS / PASSWORD_REPOS) * 1000, 0)} ms per repository (one scrypt each; an unchanged poll reuses the derived keys and decoded snapshots)`)


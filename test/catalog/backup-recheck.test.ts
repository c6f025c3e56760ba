// catalog.backupRecheckInterval: an unchanged poll lists the namespaces' PVC folders and only the
// repositories due (those without a known backup, and a slice of those with one), and still sees a
// new backup, a new repository and a removed one within one interval; a repository with a backup
// shows a new snapshot within ceil(recheck / interval) polls. A stepped clock stands in for time.
import { existsSync } from 'node:fs'
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import t, { type Test } from 'tap'
import { CatalogPoller } from '../../src/catalog/poller.ts'
import { recheckDue } from '../../src/catalog/recheck-schedule.ts'
import { type S3PrefixContext, s3PrefixSource } from '../../src/catalog/s3-prefix-source.ts'
import { parseConfig } from '../../src/config/load.ts'
import type { S3PrefixSourceConfig } from '../../src/config/schema.ts'
import { silentLog } from '../../src/log.ts'
import { ResticKeyCache } from '../../src/restic/key-cache.ts'
import { catalogLoop } from '../../src/server/catalog-loop.ts'
import type { CatalogState, SourcePoll } from '../../src/state/catalog-state.ts'
import type { BlobStore } from '../../src/storage/blob-store.ts'
import { RESTIC_FIXTURES, RESTIC_PASSWORD, writePerPvcDirectory } from '../support/restic-layout.ts'
import { LocalS3 } from '../support/s3-server.ts'

const never = new AbortController().signal
const keys = new ResticKeyCache()
const MINUTE = 60_000
const RECHECK = 10 * MINUTE
const id = (n: number) => n.toString(16).padStart(64, '0')

/** `store` with every listPage (of it and its sub views) recorded as `<full prefix>` plus ` /` when by delimiter. */
function recording(store: BlobStore, calls: string[], base = ''): BlobStore {
  return {
    location: store.location,
    listPage: (prefix, options) => {
      calls.push(`${base}${prefix}${options?.delimiter !== undefined ? ' /' : ''}`)
      return store.listPage(prefix, options)
    },
    get: (key, signal) => store.get(key, signal),
    getRange: (key, offset, length, signal) => store.getRange(key, offset, length, signal),
    stat: (key, signal) => store.stat(key, signal),
    sub: (prefix) => recording(store.sub(prefix), calls, `${base}${prefix}`),
  }
}

/** A source on a stepped clock, with what each poll listed and examined. */
function steppedSource(config: S3PrefixSourceConfig, extra: Partial<S3PrefixContext> = {}) {
  const clock = { now: 1_000_000 }
  const calls: string[] = []
  const last = { requests: -1, examined: -1 }
  const source = s3PrefixSource(config, {
    resticKeys: keys, recheck: { backupRecheckMs: RECHECK }, now: () => clock.now,
    wrapStore: (store) => recording(store, calls), onListed: (requests, examined) => { last.requests = requests; last.examined = examined },
    ...extra,
  })
  /** Steps the clock by `stepMs` (the poll interval) and polls; the calls are this poll's. */
  const poll = async (stepMs = MINUTE): Promise<SourcePoll> => {
    clock.now += stepMs
    calls.length = 0
    return source.poll(never)
  }
  return { clock, calls, last, poll }
}

async function fixtureFiles(name: string): Promise<Array<[string, Buffer]>> {
  const root = join(RESTIC_FIXTURES, name)
  const files = (await readdir(root, { recursive: true, withFileTypes: true })).filter((d) => d.isFile())
  return Promise.all(files.map(async (d) => [relative(root, join(d.parentPath, d.name)).split('\\').join('/'), await readFile(join(d.parentPath, d.name))] as [string, Buffer]))
}

async function directory(t: Test, layout: Record<string, 'v2' | 'v1' | 'empty'>): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'recheck-'))
  t.teardown(() => rm(root, { recursive: true, force: true }))
  for (const [pvc, fixture] of Object.entries(layout)) await cp(join(RESTIC_FIXTURES, fixture), join(root, ...pvc.split('/')), { recursive: true })
  return root
}

/** A restic snapshot file as the listing sees it (no password: counted, never read). */
async function addSnapshot(root: string, pvc: string, n: number): Promise<void> {
  await mkdir(join(root, ...pvc.split('/'), 'snapshots'), { recursive: true })
  await writeFile(join(root, ...pvc.split('/'), 'snapshots', id(n)), 'snapshot')
}

const snapshotsOf = (poll: SourcePoll, pvc: string) => poll.entries.find((e) => `${e.namespace}/${e.pvc}` === pvc)?.snapshots

t.test('on S3, an unchanged poll lists the folders and the due slice only, and answers as a full poll', async (t) => {
  const s3 = await LocalS3.start(existsSync('/dev/shm') ? '/dev/shm' : tmpdir())
  t.teardown(() => s3.close())
  const v2 = await fixtureFiles('v2')
  const names = Array.from({ length: 48 }, (_, i) => `ns-${i % 2}/pvc-${String(i).padStart(3, '0')}`)
  await s3.createBucket('recheck')
  await s3.writeObjects('recheck', names.flatMap((name) => v2.map(([k, v]) => [`volsync/${name}/${k}`, v] as const)))
  const config: S3PrefixSourceConfig = { name: 'garage', type: 's3-prefix', s3: s3.location('recheck', { prefix: 'volsync' }), concurrency: 4 }
  const reference = s3PrefixSource(config, { resticKeys: keys })
  const { clock, calls, last, poll } = steppedSource(config)

  const cold = await poll()
  t.same(calls.sort(), [' /', 'ns-0/', 'ns-1/'], 'cold: the root\'s folders, then a flat scan of each namespace')
  t.same(last, { requests: 3, examined: 48 })
  t.equal(cold.entries.length, 48)
  t.same(cold, await reference.poll(never), 'the same answer as a full poll')

  const examinedAt = new Map<string, number>()
  for (let n = 1; n <= 10; n++) {
    const before = clock.now
    const answer = await poll()
    const due = names.filter((name) => recheckDue(name, before, clock.now, RECHECK))
    const expected = [' /']
    for (const ns of ['ns-0', 'ns-1']) {
      const dueHere = due.filter((name) => name.startsWith(`${ns}/`))
      // The rule: a flat scan once a quarter of the namespace is due, else one listing per due repository.
      if (dueHere.length >= 24 / 4) expected.push(`${ns}/`)
      else expected.push(`${ns}/ /`, ...dueHere.map((name) => `${name}/snapshots/ /`))
    }
    t.same(calls.sort(), expected.sort(), `poll ${n}: the folders, and ${due.length} repositories due (${calls.length} listings)`)
    t.equal(last.examined, due.length, `poll ${n}: only the due repositories examined`)
    t.same(answer, cold, `poll ${n}: the same answer as the full poll`)
    for (const name of due) {
      if (examinedAt.has(name)) t.fail(`${name} examined twice within the recheck interval`)
      examinedAt.set(name, n)
    }
  }
  t.equal(examinedAt.size, 48, 'every repository with a backup re-examined once in 10 polls (10 min / 60 s)')
  const perPoll = [...examinedAt.values()].reduce((counts, n) => counts.set(n, (counts.get(n) ?? 0) + 1), new Map<number, number>())
  t.ok(Math.max(...perPoll.values()) <= 12, `no poll re-lists everything (at most ${Math.max(...perPoll.values())} of 48 in one poll)`)
})

for (const listing of ['scan', 'per-repository'] as const) {
  t.test(`in a directory (${listing}): new and removed repositories and a first backup in one interval; a known backup's new snapshot within 10 polls`, async (t) => {
    const root = await directory(t, { 'media/jellyfin': 'v2', 'media/sonarr': 'v1', 'home/paperless': 'empty' })
    const config: S3PrefixSourceConfig = { name: 'nas', type: 's3-prefix', filesystem: { path: root }, concurrency: 4 }
    const { clock, last, poll } = steppedSource(config, { listing })
    const cold = await poll()
    t.same(cold.entries.map((e) => [e.pvc, e.snapshots]), [['jellyfin', 3], ['sonarr', 1]], 'cold: the two backups (paperless is an empty repository)')
    t.equal(last.examined, 3, 'cold: everything examined')

    await addSnapshot(root, 'home/paperless', 1)
    await cp(join(RESTIC_FIXTURES, 'v1'), join(root, 'media', 'radarr'), { recursive: true })
    await rm(join(root, 'media', 'sonarr'), { recursive: true })
    await addSnapshot(root, 'media/jellyfin', 99)
    let previous = clock.now
    const next = await poll()
    t.equal(snapshotsOf(next, 'home/paperless'), 1, 'a repository without a backup: its first snapshot seen at the next poll')
    t.equal(snapshotsOf(next, 'media/radarr'), 1, 'a new repository seen at the next poll')
    t.equal(snapshotsOf(next, 'media/sonarr'), undefined, 'a removed repository gone at the next poll, though its backup was known')

    let polls = 1
    let seen = recheckDue('media/jellyfin', previous, clock.now, RECHECK)
    t.equal(snapshotsOf(next, 'media/jellyfin'), seen ? 4 : 3, 'jellyfin\'s new snapshot shows exactly when it is due')
    while (!seen) {
      previous = clock.now
      const answer = await poll()
      polls++
      seen = recheckDue('media/jellyfin', previous, clock.now, RECHECK)
      t.equal(snapshotsOf(answer, 'media/jellyfin'), seen ? 4 : 3, `poll ${polls}: ${seen ? 'due: the new snapshot' : 'not due: the last answer carried over'}`)
      if (polls > 10) break
    }
    t.ok(seen && polls <= 10, `a known backup's new snapshot seen at poll ${polls}, within ceil(10 min / 60 s) = 10`)
  })
}

t.test('a changed password file re-examines every repository of its kind at the next poll', async (t) => {
  const root = await directory(t, { 'media/jellyfin': 'v2', 'media/sonarr': 'v1' })
  const passwordFile = join(root, '..', `${relative(tmpdir(), root)}-password`)
  t.teardown(() => rm(passwordFile, { force: true }))
  await writeFile(passwordFile, RESTIC_PASSWORD)
  const config: S3PrefixSourceConfig = { name: 'nas', type: 's3-prefix', filesystem: { path: root }, concurrency: 4, resticPasswordFile: passwordFile }
  const { clock, last, poll } = steppedSource(config)
  const cold = await poll()
  t.same(cold.diagnostics, [], 'read with the password')
  // Polls one second apart: nothing with a known backup is due, unless its recheck time falls inside.
  const quietDue = (before: number) => ['media/jellyfin', 'media/sonarr'].filter((name) => recheckDue(name, before, clock.now, RECHECK)).length
  let before = clock.now
  await poll(1000)
  t.equal(last.examined, quietDue(before), 'unchanged: only what is due')

  await writeFile(passwordFile, 'not-the-password')
  const wrong = await poll(1000)
  t.equal(last.examined, 2, 'a new password: both restic repositories examined again')
  t.same(wrong.diagnostics?.map((d) => [d.code, d.pvc]), [['repository-unreadable', 'jellyfin'], ['repository-unreadable', 'sonarr']], 'the wrong password is seen at once')
  await writeFile(passwordFile, RESTIC_PASSWORD)
  const right = await poll(1000)
  t.equal(last.examined, 2, 'and again when it is put back (a diagnostic is no known backup)')
  t.same(right, cold, 'the exact answer again')
  before = clock.now
  await poll(1000)
  t.equal(last.examined, quietDue(before), 'then only what is due again')
})

t.test('the server\'s catalog loop: a reload with the same source keeps what it knows, a new interval applies in place, a changed source starts cold', async (t) => {
  const root = await directory(t, { 'media/jellyfin': 'v2' })
  const yaml = (recheck: string, concurrency = 16) => parseConfig(`catalog: {backupRecheckInterval: ${recheck}, sources: [{name: nas, type: s3-prefix, filesystem: {path: ${root}}, concurrency: ${concurrency}}]}`)
  let catalog: CatalogState | undefined
  const loop = catalogLoop({ config: yaml('10m'), publish: (c) => { catalog = c }, log: silentLog })
  const reconfigure = (config: ReturnType<typeof yaml>) => {
    if (!loop.reconfigure) throw new Error('the catalog loop takes reloads')
    loop.reconfigure(config)
  }
  const jellyfin = async () => {
    await loop.poller.pollAll()
    return catalog?.sources[0]?.entries.find((e) => e.pvc === 'jellyfin')?.snapshots
  }
  t.equal(await jellyfin(), 3, 'cold')
  // The polls below come milliseconds apart on the real clock: a 10 min recheck is not due in them.
  await addSnapshot(root, 'media/jellyfin', 90)
  t.equal(await jellyfin(), 3, 'a known backup is not re-examined at the next poll')
  reconfigure(yaml('10m'))
  t.equal(await jellyfin(), 3, 'a reload with the same config keeps the source and what it knows')
  reconfigure(yaml('0s'))
  t.equal(await jellyfin(), 4, 'backupRecheckInterval: 0s applies at the next poll (every repository every poll)')
  reconfigure(yaml('10m'))
  await addSnapshot(root, 'media/jellyfin', 91)
  t.equal(await jellyfin(), 4, 'back to 10m: carried over again')
  reconfigure(yaml('10m', 8))
  t.equal(await jellyfin(), 5, 'a changed source is a new one: its first poll examines everything')
})

t.test('under the poller: exact figures read in the background stay published, as a full poll publishes them', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'recheck-refined-'))
  t.teardown(() => rm(root, { recursive: true, force: true }))
  await writePerPvcDirectory(join(root, 'repos'))
  await writeFile(join(root, 'password'), RESTIC_PASSWORD)
  const config: S3PrefixSourceConfig = { name: 'nas', type: 's3-prefix', filesystem: { path: join(root, 'repos') }, concurrency: 4, resticPasswordFile: join(root, 'password') }
  const run = async (recheckMs: number) => {
    const clock = { now: 0 }
    const published: CatalogState[] = []
    let exact: () => void = () => {}
    const allExact = new Promise<void>((resolve) => { exact = resolve })
    const poller = new CatalogPoller([s3PrefixSource(config, { resticKeys: keys, recheck: { backupRecheckMs: recheckMs }, now: () => clock.now })], (c) => {
      published.push(c)
      if (c.sources[0]!.entries.every((e) => e.exact === undefined)) exact()
    }, { intervalMs: MINUTE, log: silentLog })
    t.teardown(() => poller.stop())
    await poller.pollAll()
    await allExact
    const answers: unknown[] = []
    for (let poll = 0; poll < 12; poll++) {
      clock.now += MINUTE
      await poller.pollAll()
      const { entries, diagnostics, repositories } = published.at(-1)!.sources[0]!
      answers.push({ entries, diagnostics, repositories })
    }
    return answers
  }
  const full = await run(0)
  t.ok(full.every((a) => JSON.stringify(a) === JSON.stringify(full[0])), 'full polls: the same every time')
  t.same(await run(RECHECK), full, 'with the recheck policy: the same, poll by poll (exact entries carried over, Kopia unknown, diagnostics)')
})

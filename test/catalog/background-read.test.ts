// The s3-prefix source under the server's poller: answers from the listing first (decisions right
// from that first answer), then publishes exact figures read in the background, a bounded number of
// key derivations at a time. Real restic repositories (written by restic 0.14) in a directory.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { lookupBackup } from '../../src/admission/backup-lookup.ts'
import { CatalogPoller } from '../../src/catalog/poller.ts'
import { s3PrefixSource } from '../../src/catalog/s3-prefix-source.ts'
import type { Refinement } from '../../src/catalog/source.ts'
import { parseConfig } from '../../src/config/load.ts'
import type { S3PrefixSourceConfig } from '../../src/config/schema.ts'
import { ResticKeyCache } from '../../src/restic/key-cache.ts'
import type { CatalogEntry, CatalogState } from '../../src/state/catalog-state.ts'
import { RESTIC_FIXTURES, RESTIC_PASSWORD, writePerPvcDirectory } from '../support/restic-layout.ts'

const silent = { info() {}, warn() {} }
const STALE_AFTER = 10 * 60_000

function sourceConfig(yaml: string): S3PrefixSourceConfig {
  const source = parseConfig(`catalog: {sources: [${yaml}]}`).catalog.sources[0]
  if (source?.type !== 's3-prefix') throw new Error('not an s3-prefix source')
  return source
}

async function layout(t: Test, password: string): Promise<{ root: string; passwordFile: string }> {
  const root = await mkdtemp(join(tmpdir(), 'background-read-'))
  t.teardown(() => rm(root, { recursive: true, force: true }))
  await writePerPvcDirectory(join(root, 'repos'))
  await writeFile(join(root, 'password'), password)
  return { root, passwordFile: join(root, 'password') }
}

/** A poller over one source, with every published catalog and a way to wait for one that satisfies `until`. */
function watch(t: Test, config: S3PrefixSourceConfig, keys: ResticKeyCache, refine = true) {
  const published: CatalogState[] = []
  const waiters: Array<{ until: (c: CatalogState) => boolean; resolve: (c: CatalogState) => void }> = []
  const poller = new CatalogPoller([s3PrefixSource(config, { resticKeys: keys })], (catalog) => {
    published.push(catalog)
    for (const w of [...waiters]) if (w.until(catalog)) {
      waiters.splice(waiters.indexOf(w), 1)
      w.resolve(catalog)
    }
  }, { intervalMs: 60_000, log: silent, refine })
  t.teardown(() => poller.stop())
  const waitFor = (until: (c: CatalogState) => boolean): Promise<CatalogState> => {
    const now = published.find(until)
    return now ? Promise.resolve(now) : new Promise((resolve) => waiters.push({ until, resolve }))
  }
  return { poller, published, waitFor }
}

const entriesOf = (catalog: CatalogState): readonly CatalogEntry[] => catalog.sources[0]!.entries
const allExact = (catalog: CatalogState) => entriesOf(catalog).every((e) => e.exact === undefined)
const restictimes = JSON.parse(readFileSync(join(RESTIC_FIXTURES, 'v2.snapshots.json'), 'utf8')) as Array<{ time: string }>

t.test('the first answer comes from the listing and decides right; exact figures follow in the background', async (t) => {
  const { root, passwordFile } = await layout(t, RESTIC_PASSWORD)
  const keys = new ResticKeyCache()
  const config = sourceConfig(`{name: nas, type: s3-prefix, filesystem: {path: ${join(root, 'repos')}}, resticPasswordFile: ${passwordFile}}`)
  const { poller, published, waitFor } = watch(t, config, keys)
  await poller.pollAll()
  const first = published[0]!
  t.same(entriesOf(first).map((e) => [e.pvc, e.kind, e.snapshots, e.exact]), [
    ['notes', 'kopia', null, undefined],
    ['jellyfin', 'restic', 3, false],
    ['sonarr', 'restic', 1, false],
  ], 'restic counted from the listing, marked exact: false (no Kopia password: unknown, as before)')
  const now = Date.now()
  t.equal(lookupBackup(first, 'media', 'jellyfin', now, STALE_AFTER).state, 'backup', 'a snapshot file proves the backup')
  t.equal(lookupBackup(first, 'media', 'sonarr', now, STALE_AFTER).state, 'backup')
  t.equal(lookupBackup(first, 'home', 'paperless', now, STALE_AFTER).state, 'none', 'an initialized repository without snapshots is not a backup, from the first answer')

  const exact = await waitFor(allExact)
  const jellyfin = entriesOf(exact).find((e) => e.pvc === 'jellyfin')!
  t.equal(Date.parse(jellyfin.newest!), Math.max(...restictimes.map((s) => Date.parse(s.time))), 'then the newest snapshot time as restic recorded it')
  t.equal(entriesOf(exact).find((e) => e.pvc === 'sonarr')?.newest, '2026-03-01T12:00:00.000Z')
  t.equal(exact.sources[0]!.lastSuccess, first.sources[0]!.lastSuccess, 'a background read is not a poll: lastSuccess unchanged')
  t.ok(exact.revision > first.revision, 'a new revision')
  for (const c of published) {
    t.equal(lookupBackup(c, 'media', 'jellyfin', now, STALE_AFTER).state, 'backup', `revision ${c.revision}: the decision never changed`)
    t.equal(lookupBackup(c, 'home', 'paperless', now, STALE_AFTER).state, 'none')
  }

  // The next poll reads the open repositories inline (no key derivation): exact at once.
  const before = keys.size
  await poller.pollAll()
  t.ok(allExact(published.at(-1)!), 'the next poll answers exactly')
  t.equal(keys.size, before, 'no new key derived')
})

t.test('a wrong password: listing first, then the diagnostic, kept by later polls without a new derivation', async (t) => {
  const { root, passwordFile } = await layout(t, 'not-the-password')
  const keys = new ResticKeyCache()
  const config = sourceConfig(`{name: nas, type: s3-prefix, filesystem: {path: ${join(root, 'repos')}}, resticPasswordFile: ${passwordFile}}`)
  const { poller, published, waitFor } = watch(t, config, keys)
  await poller.pollAll()
  t.same(published[0]!.sources[0]!.diagnostics.map((d) => d.code), ['kopia-prefix-without-slash'], 'nothing known to be wrong yet')
  const read = await waitFor((c) => c.sources[0]!.diagnostics.filter((d) => d.code === 'repository-unreadable').length === 2)
  t.same(entriesOf(read).filter((e) => e.kind === 'restic').map((e) => [e.pvc, e.snapshots, e.exact]), [['jellyfin', 3, undefined], ['sonarr', 1, undefined]], 'still counted by the listing; read (and failed), so no longer pending')
  const revision = published.at(-1)!.revision
  await poller.pollAll()
  t.equal(published.at(-1)!.revision, revision, 'the next poll answers the same at once: no flapping diagnostics')
  t.notMatch(JSON.stringify(published), /not-the-password/, 'the password appears nowhere')
})

t.test('a Kopia repository with its password: unknown (pending) until read, since its listing proves nothing', async (t) => {
  const { root, passwordFile } = await layout(t, RESTIC_PASSWORD)
  const keys = new ResticKeyCache()
  const config = sourceConfig(`{name: nas, type: s3-prefix, filesystem: {path: ${join(root, 'repos')}}, kopiaPasswordFile: ${passwordFile}}`)
  const { poller, published, waitFor } = watch(t, config, keys)
  await poller.pollAll()
  const notes = entriesOf(published[0]!).find((e) => e.pvc === 'notes')
  t.same([notes?.snapshots, notes?.exact], [null, false], 'pending')
  t.match(lookupBackup(published[0]!, 'home', 'notes', Date.now(), STALE_AFTER), { state: 'unknown', reason: /not been read yet/ }, 'unknown, saying why: never "no backup"')
  // The fixture's format blob is not a real one: the read fails and says so.
  const read = await waitFor((c) => c.sources[0]!.diagnostics.some((d) => d.code === 'repository-unreadable' && d.pvc === 'notes'))
  t.equal(entriesOf(read).find((e) => e.pvc === 'notes')?.exact, undefined, 'read')
})

t.test('without a Refinement (one-shot commands) a poll reads everything before answering', async (t) => {
  const { root, passwordFile } = await layout(t, RESTIC_PASSWORD)
  const config = sourceConfig(`{name: nas, type: s3-prefix, filesystem: {path: ${join(root, 'repos')}}, resticPasswordFile: ${passwordFile}}`)
  const { poller, published } = watch(t, config, new ResticKeyCache(), false)
  await poller.pollAll()
  t.equal(published.length, 1)
  t.ok(allExact(published[0]!), 'exact in the one answer')
  t.equal(entriesOf(published[0]!).find((e) => e.pvc === 'sonarr')?.newest, '2026-03-01T12:00:00.000Z')
})

t.test('resticFromListing: decided from the listing, never decrypted', async (t) => {
  const { root, passwordFile } = await layout(t, RESTIC_PASSWORD)
  const keys = new ResticKeyCache()
  const config = sourceConfig(`{name: nas, type: s3-prefix, filesystem: {path: ${join(root, 'repos')}}, resticPasswordFile: ${passwordFile}}`)
  const { entries } = await s3PrefixSource(config, { resticKeys: keys, resticFromListing: true }).poll(new AbortController().signal)
  t.same(entries.filter((e) => e.kind === 'restic').map((e) => [e.pvc, e.snapshots, e.exact]), [['jellyfin', 3, false], ['sonarr', 1, false]])
  t.equal(keys.size, 0, 'no key derived')
})

t.test('ResticKeyCache.derive: at most maxDerivations at once, first come first served, abortable while waiting', async (t) => {
  const keys = new ResticKeyCache({ maxDerivations: 2 })
  const started: number[] = []
  const release: Array<() => void> = []
  let running = 0
  let most = 0
  const task = (i: number) => () => {
    started.push(i)
    running++
    most = Math.max(most, running)
    return new Promise<number>((resolve) => release.push(() => {
      running--
      resolve(i)
    }))
  }
  const waiting = new AbortController()
  const results = [0, 1, 2, 3].map((i) => keys.derive(task(i), i === 3 ? waiting.signal : undefined))
  await new Promise((resolve) => setImmediate(resolve))
  t.same(started, [0, 1], 'two start')
  t.equal(keys.derivationsRunning, 2)
  waiting.abort(new Error('stopped'))
  await t.rejects(results[3]!, /stopped/, 'a waiting task is dropped unrun when its signal aborts')
  release.shift()!()
  await results[0]
  await new Promise((resolve) => setImmediate(resolve))
  t.same(started, [0, 1, 2], 'the next in line starts when one ends')
  while (release.length > 0) release.shift()!()
  t.same(await Promise.all(results.slice(0, 3)), [0, 1, 2])
  t.equal(most, 2, 'never more than two at once')
  t.equal(keys.derivationsRunning, 0)
  t.throws(() => new ResticKeyCache({ maxDerivations: 0 }), RangeError)
})

t.test('CatalogPoller and a Refinement: a later publish replaces the results only while the source is live', async (t) => {
  let refinement: Refinement | undefined
  const entry = (snapshots: number): CatalogEntry => ({ namespace: 'media', pvc: 'jellyfin', source: 'fake', kind: 'restic', snapshots })
  const published: CatalogState[] = []
  const poller = new CatalogPoller([{
    name: 'fake', type: 'fake',
    async poll(_signal, given) {
      refinement = given
      return { entries: [{ ...entry(3), exact: false }] }
    },
  }], (c) => published.push(c), { intervalMs: 60_000, log: silent, now: () => 1000 })
  await poller.pollAll()
  t.ok(refinement, 'the server\'s poller gives each poll a Refinement')
  refinement!.publish({ entries: [entry(3)] })
  t.equal(published.length, 2, 'published at once')
  t.same(published[1]!.sources[0]!.entries, [entry(3)])
  t.equal(published[1]!.sources[0]!.lastSuccess, 1000, 'times unchanged')
  refinement!.publish({ entries: [entry(3)] })
  t.equal(published.length, 2, 'an unchanged result publishes nothing')
  poller.stop()
  t.ok(refinement!.signal.aborted, 'stopping aborts the background work')
  refinement!.publish({ entries: [] })
  t.equal(published.length, 2, 'and a publish after it is ignored')

  const oneShot = new CatalogPoller([{ name: 'fake', type: 'fake', async poll(_signal, given) { refinement = given; return { entries: [] } } }], () => {}, { intervalMs: 60_000, log: silent, refine: false })
  await oneShot.pollAll()
  t.equal(refinement, undefined, 'refine: false gives none (one-shot commands read everything first)')
})

// The s3-prefix source over real restic repositories (written by restic 0.14), on a real S3
// server (s3rver on loopback) and in a directory.
import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises'
import { readdirSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { lookupBackup } from '../../src/admission/backup-lookup.ts'
import { CatalogPoller } from '../../src/catalog/poller.ts'
import { s3PrefixSource } from '../../src/catalog/s3-prefix-source.ts'
import { parseConfig } from '../../src/config/load.ts'
import type { S3PrefixSourceConfig } from '../../src/config/schema.ts'
import { ResticKeyCache } from '../../src/restic/key-cache.ts'
import type { CatalogState } from '../../src/state/catalog-state.ts'
import { RESTIC_FIXTURES, RESTIC_PASSWORD, uploadPerPvcLayout, writePerPvcDirectory } from '../support/restic-layout.ts'
import { LocalS3 } from '../support/s3-server.ts'

const silent = { info() {}, warn() {} }
const keys = new ResticKeyCache()
const never = new AbortController().signal

function sourceConfig(yaml: string): S3PrefixSourceConfig {
  const source = parseConfig(`catalog: {sources: [${yaml}]}`).catalog.sources[0]
  if (source?.type !== 's3-prefix') throw new Error('not an s3-prefix source')
  return source
}

async function passwordFile(t: Test, password: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'password-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await writeFile(join(dir, 'RESTIC_PASSWORD'), password)
  return join(dir, 'RESTIC_PASSWORD')
}

const s3 = await LocalS3.start()
t.teardown(() => s3.close())
await s3.createBucket('volsync-backups')
await uploadPerPvcLayout(s3, 'volsync-backups', 'volsync/')
const s3Yaml = (extra = '') => `{name: garage, type: s3-prefix, s3: {endpoint: "${s3.endpoint}", bucket: volsync-backups, prefix: volsync, accessKeyId: S3RVER, secretAccessKey: S3RVER, maxAttempts: 1}${extra}}`

const v2Ids = readdirSync(join(RESTIC_FIXTURES, 'v2', 'snapshots'))

t.test('without a password the listing alone counts snapshots; an empty repository is no backup', async (t) => {
  const { entries, diagnostics } = await s3PrefixSource(sourceConfig(s3Yaml()), { resticKeys: keys }).poll(never)
  t.same(entries.map((e) => [e.namespace, e.pvc, e.kind, e.snapshots]), [
    ['home', 'notes', 'kopia', null],
    ['media', 'jellyfin', 'restic', 3],
    ['media', 'sonarr', 'restic', 1],
  ], 'paperless (initialized, no snapshot) and the folder without a repository are skipped')
  const jellyfin = entries.find((e) => e.pvc === 'jellyfin')!
  t.ok(Math.abs(Date.parse(jellyfin.newest!) - Date.now()) < 10 * 60_000, 'newest: the upload time of the newest snapshot object')
  t.equal(jellyfin.source, 'garage')
  t.same(diagnostics?.map((d) => [d.code, d.namespace, d.pvc, d.s3]), [['kopia-prefix-without-slash', 'media', 'prowlarr', { bucket: 'volsync-backups', prefix: 'volsync/media/prowlarr' }]])
  t.match(diagnostics?.[0]?.message, /s3:\/\/volsync-backups\/volsync\/media\/prowlarrkopia\.repository .* current movers look under s3:\/\/volsync-backups\/volsync\/media\/prowlarr\//)
})

t.test('with the password: exact times from the snapshots themselves', async (t) => {
  const file = await passwordFile(t, RESTIC_PASSWORD)
  const source = s3PrefixSource(sourceConfig(s3Yaml(`, resticPasswordFile: ${file}`)), { resticKeys: keys })
  const { entries, diagnostics } = await source.poll(never)
  const jellyfin = entries.find((e) => e.pvc === 'jellyfin')!
  t.equal(jellyfin.snapshots, 3)
  // restic's own record of the repository: the newest of its times, whichever host wrote it.
  const recorded = JSON.parse(readFileSync(join(RESTIC_FIXTURES, 'v2.snapshots.json'), 'utf8')) as Array<{ time: string }>
  const expected = Math.max(...recorded.map((s) => Date.parse(s.time)))
  t.equal(Date.parse(jellyfin.newest!), expected, 'the newest snapshot time as restic recorded it (in UTC)')
  t.equal(entries.find((e) => e.pvc === 'sonarr')?.newest, '2026-03-01T12:00:00.000Z', 'format v1 too')
  t.same(diagnostics?.map((d) => d.code), ['kopia-prefix-without-slash'], 'no repository problems')
  const again = await source.poll(never)
  t.same(again.entries, entries, 'a second poll (cached keys and snapshots) finds the same')
})

t.test('a wrong password still counts by listing, and says which repositories it could not read', async (t) => {
  const file = await passwordFile(t, 'not-the-password')
  const { entries, diagnostics } = await s3PrefixSource(sourceConfig(s3Yaml(`, resticPasswordFile: ${file}`)), { resticKeys: keys }).poll(never)
  t.same(entries.filter((e) => e.kind === 'restic').map((e) => [e.pvc, e.snapshots]), [['jellyfin', 3], ['sonarr', 1]])
  const unreadable = diagnostics!.filter((d) => d.code === 'repository-unreadable')
  t.same(unreadable.map((d) => d.pvc), ['jellyfin', 'sonarr'])
  t.match(unreadable[0]!.message, /wrong password for restic repository s3:\/\/volsync-backups\/volsync\/media\/jellyfin\//)
  t.notMatch(JSON.stringify(diagnostics), /not-the-password/, 'the password appears nowhere')
})

t.test('a directory (an NFS mount) works the same, and a truncated snapshot file is named', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'per-pvc-'))
  t.teardown(() => rm(root, { recursive: true, force: true }))
  await writePerPvcDirectory(root)
  const file = await passwordFile(t, RESTIC_PASSWORD)
  const config = sourceConfig(`{name: nas, type: s3-prefix, filesystem: {path: ${root}}, resticPasswordFile: ${file}}`)
  const before = await s3PrefixSource(config, { resticKeys: keys }).poll(never)
  t.same(before.entries.map((e) => [e.namespace, e.pvc, e.kind, e.snapshots]), [['home', 'notes', 'kopia', null], ['media', 'jellyfin', 'restic', 3], ['media', 'sonarr', 'restic', 1]])
  await truncate(join(root, 'media', 'jellyfin', 'snapshots', v2Ids[0]!), 40)
  const after = await s3PrefixSource(config, { resticKeys: keys }).poll(never)
  t.equal(after.entries.find((e) => e.pvc === 'jellyfin')?.snapshots, 3, 'still counted by its listing')
  const problem = after.diagnostics!.find((d) => d.code === 'repository-unreadable')
  t.match(problem?.message, new RegExp(`media/jellyfin/snapshots/${v2Ids[0]}`), 'the message names the file')
})

t.test('an S3 outage: the last known entries stay, age, then turn unknown; recovery resumes', async (t) => {
  const outage = await LocalS3.start()
  t.teardown(() => outage.close())
  await outage.createBucket('backups')
  await uploadPerPvcLayout(outage, 'backups', '')
  let clock = 1_000_000
  const published: CatalogState[] = []
  const config = sourceConfig(`{name: garage, type: s3-prefix, s3: {endpoint: "${outage.endpoint}", bucket: backups, accessKeyId: S3RVER, secretAccessKey: S3RVER, maxAttempts: 1, requestTimeout: 2s}}`)
  const poller = new CatalogPoller([s3PrefixSource(config, { resticKeys: keys })], (c) => published.push(c), { intervalMs: 60_000, log: silent, now: () => clock })
  t.teardown(() => poller.stop())
  const staleAfter = 10 * 60_000
  await poller.pollAll()
  t.equal(lookupBackup(published.at(-1)!, 'media', 'jellyfin', clock, staleAfter).state, 'backup')
  t.equal(lookupBackup(published.at(-1)!, 'home', 'paperless', clock, staleAfter).state, 'none', 'an empty repository is not a backup')

  await outage.stop()
  clock += 5 * 60_000
  await poller.pollAll()
  const down = published.at(-1)!.sources[0]!
  t.match(down.error, /ECONNREFUSED/, 'the error says why')
  t.equal(down.entries.length, 3, 'last known entries kept')
  t.equal(lookupBackup(published.at(-1)!, 'media', 'jellyfin', clock, staleAfter).state, 'backup', 'still within staleAfter')
  clock += 6 * 60_000
  await poller.pollAll()
  t.equal(lookupBackup(published.at(-1)!, 'media', 'jellyfin', clock, staleAfter).state, 'unknown', 'older than staleAfter: unknown, not "no backup"')
  t.equal(lookupBackup(published.at(-1)!, 'home', 'paperless', clock, staleAfter).state, 'unknown')

  await outage.resume()
  await poller.pollAll()
  t.equal(published.at(-1)!.sources[0]!.error, null)
  t.equal(lookupBackup(published.at(-1)!, 'media', 'jellyfin', clock, staleAfter).state, 'backup', 'back once the server is')
})

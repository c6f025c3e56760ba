// The kopia source (one shared repository) and per-PVC Kopia repositories in the s3-prefix source,
// on a directory and on a real S3 server (s3rver), over repositories built by the test writer.
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { kopiaSource, unslashedPrefixMessage } from '../../src/catalog/kopia-source.ts'
import { lookupBackup } from '../../src/admission/backup-lookup.ts'
import { buildCatalogState } from '../../src/state/catalog-state.ts'
import { kopiaUsername } from '../../src/volsync/names.ts'
import { s3PrefixSource } from '../../src/catalog/s3-prefix-source.ts'
import { parseConfig } from '../../src/config/load.ts'
import type { CatalogSourceConfig } from '../../src/config/schema.ts'
import { ResticKeyCache } from '../../src/restic/key-cache.ts'
import { PasswordVerdictQueue } from '../../src/catalog/password-verdicts.ts'
import type { OpenedRepository } from '../../src/state/catalog-state.ts'
import { passwordDigest } from '../../src/state/password-verdicts.ts'
import { directoryTarget } from '../support/kopia-target.ts'
import { KopiaTestWriter } from '../support/kopia-writer.ts'
import { LocalS3 } from '../support/s3-server.ts'

const PASSWORD = 'shared-kopia-password'
// One uniqueID for every repository here: the scrypt derivation runs once per password.
const uniqueId = randomBytes(32)
const never = new AbortController().signal

function sourceConfig<T extends CatalogSourceConfig['type']>(type: T, yaml: string): Extract<CatalogSourceConfig, { type: T }> {
  const source = parseConfig(`catalog: {sources: [${yaml}]}`).catalog.sources[0]
  if (source?.type !== type) throw new Error(`not a ${type} source`)
  return source as Extract<CatalogSourceConfig, { type: T }>
}

/** A shared repository as VolSync's Kopia movers fill it: username = RS (= PVC) name, hostname = namespace. */
async function fillShared(writer: KopiaTestWriter): Promise<void> {
  writer.addSnapshot({ username: 'jellyfin', hostname: 'media', path: '/data', startTime: '2026-03-10T02:00:00Z', sizeBytes: 1000 })
  writer.addSnapshot({ username: 'jellyfin', hostname: 'media', path: '/data', startTime: '2026-03-11T02:00:00.123456789Z', sizeBytes: 1200 })
  writer.addSnapshot({ username: 'sonarr', hostname: 'media', path: '/data', startTime: '2026-03-11T03:00:00Z', sizeBytes: 50 })
  writer.addSnapshot({ username: 'paperless', hostname: 'home', path: '/data', startTime: '2026-03-12T00:00:00Z', incomplete: 'canceled' })
  writer.addSnapshot({ username: 'Root', hostname: 'laptop', path: '/home', startTime: '2026-03-12T00:00:00Z' })
  writer.flushManifests({ compression: 0x1101 })
  await writer.flushIndex()
}

const EXPECTED = [
  ['media', 'jellyfin', 'kopia', 2, '2026-03-11T02:00:00.123Z', 1200],
  ['media', 'sonarr', 'kopia', 1, '2026-03-11T03:00:00.000Z', 50],
]

const dir = await mkdtemp(join(tmpdir(), 'kopia-source-'))
t.teardown(() => rm(dir, { recursive: true, force: true }))
await writeFile(join(dir, 'password'), PASSWORD)
await writeFile(join(dir, 'wrong'), 'per-app-password')

t.test('a shared repository in a directory: PVCs by identity, incomplete and foreign snapshots left out', async (t) => {
  const target = await directoryTarget()
  t.teardown(() => target.cleanup())
  await fillShared(await KopiaTestWriter.create({ password: PASSWORD, uniqueId, put: target.put }))
  const source = kopiaSource(sourceConfig('kopia', `{name: nas, type: kopia, filesystem: {path: ${target.root}}, passwordFile: ${dir}/password}`))
  const { entries, repositories } = await source.poll(never)
  t.same(entries.map((e) => [e.namespace, e.pvc, e.kind, e.snapshots, e.newest, e.sizeBytes]), EXPECTED)
  t.equal(repositories?.length, 1)
  const [opened] = repositories as OpenedRepository[]
  t.equal(opened!.filesystem, target.root)
  t.equal(opened!.format.uniqueId, uniqueId.toString('hex'), 'the format blob, as data')
  t.equal(opened!.openedWithDigest, passwordDigest(PASSWORD), 'the digest of the password it opened with, not the password')
  t.notOk(JSON.stringify(opened).includes(PASSWORD))
  const queue = new PasswordVerdictQueue({ onChange: () => undefined })
  queue.setRepositories(repositories ?? [])
  t.equal(queue.verdicts.verdictOf(opened!.id, passwordDigest(PASSWORD)), 'opens', 'the catalog\'s own password, without a derivation')
  t.equal(queue.counts.accepted, 0)
  t.equal(queue.request({ repository: opened!.id, password: 'per-app-password' }), 'accepted')
  await queue.idle()
  t.equal(queue.verdicts.verdictOf(opened!.id, passwordDigest('per-app-password')), 'wrong', 'another password: derived off-thread by the queue, then answered')
  const again = await source.poll(never)
  t.same(again.entries, entries, 'an unchanged poll finds the same')
  t.equal(again.repositories?.[0], opened, 'and keeps the same opened repository')
})

t.test('a wrong password fails the poll with an error that says so', async (t) => {
  const target = await directoryTarget()
  t.teardown(() => target.cleanup())
  await fillShared(await KopiaTestWriter.create({ password: PASSWORD, uniqueId, put: target.put }))
  const source = kopiaSource(sourceConfig('kopia', `{name: nas, type: kopia, filesystem: {path: ${target.root}}, passwordFile: ${dir}/wrong}`))
  await t.rejects(source.poll(never), { name: 'KopiaError', code: 'wrong-password' })
  await source.poll(never).catch((error: Error) => t.notMatch(error.message, /per-app-password/, 'the password is not in the message'))
})

t.test('on S3: a shared repository below a prefix, and per-PVC repositories of the s3-prefix source', async (t) => {
  const s3 = await LocalS3.start()
  t.teardown(() => s3.close())
  await s3.createBucket('kopia')
  await fillShared(await KopiaTestWriter.create({ password: PASSWORD, uniqueId, put: (key, bytes) => s3.put('kopia', key, bytes), layout: { kind: 'flat', keyPrefix: 'shared/' } }))
  const s3Yaml = `s3: {endpoint: "${s3.endpoint}", bucket: kopia, prefix: shared/, accessKeyId: S3RVER, secretAccessKey: S3RVER, maxAttempts: 1}`
  const shared = await kopiaSource(sourceConfig('kopia', `{name: garage, type: kopia, ${s3Yaml}, passwordFile: ${dir}/password}`)).poll(never)
  t.same(shared.entries.map((e) => [e.namespace, e.pvc, e.kind, e.snapshots, e.newest, e.sizeBytes]), EXPECTED)
  t.same(shared.repositories?.[0]?.s3, { bucket: 'kopia', prefix: 'shared' })

  // Issue 10 item 5: the prefix without its '/' reads shared + kopia.repository; the error names that key,
  // says the repository is one '/' further, and what to set.
  const unslashed = s3Yaml.replace('prefix: shared/', 'prefix: shared')
  await t.rejects(kopiaSource(sourceConfig('kopia', `{name: garage, type: kopia, ${unslashed}, passwordFile: ${dir}/password}`)).poll(never), {
    name: 'KopiaError',
    message: /no Kopia repository at s3:\/\/kopia\/sharedkopia\.repository: the key read is sharedkopia\.repository.*a repository does exist at s3:\/\/kopia\/shared\/kopia\.repository.*set s3\.prefix: "shared\/"/,
  })
  const nowhere = s3Yaml.replace('prefix: shared/', 'prefix: elsewhere')
  await t.rejects(kopiaSource(sourceConfig('kopia', `{name: garage, type: kopia, ${nowhere}, passwordFile: ${dir}/password}`)).poll(never), {
    message: /elsewherekopia\.repository.*there is none at s3:\/\/kopia\/elsewhere\/kopia\.repository either/,
  })

  // VolSync per-PVC: s3://bucket/volsync/<ns>/<pvc>/ (movers >= v0.16.11 add the slash).
  const perPvc = async (namespace: string, pvc: string, fill: (w: KopiaTestWriter) => Promise<void>) =>
    fill(await KopiaTestWriter.create({ password: PASSWORD, uniqueId, put: (key, bytes) => s3.put('kopia', key, bytes), layout: { kind: 'flat', keyPrefix: `volsync/${namespace}/${pvc}/` } }))
  await perPvc('media', 'radarr', async (w) => {
    w.addSnapshot({ username: 'radarr-src', hostname: 'media', path: '/data', startTime: '2026-03-01T00:00:00Z' })
    w.addSnapshot({ username: 'radarr-src', hostname: 'media', path: '/data', startTime: '2026-03-02T00:00:00Z', sizeBytes: 9 })
    w.flushManifests({ compression: 0x1101 })
    await w.flushIndex()
  })
  await perPvc('home', 'wiki', async (w) => {
    w.addSnapshot({ username: 'wiki', hostname: 'home', path: '/data', startTime: '2026-03-01T00:00:00Z', incomplete: 'checkpoint' })
    w.flushManifests()
    await w.flushIndex()
  })
  const prefixYaml = `s3: {endpoint: "${s3.endpoint}", bucket: kopia, prefix: volsync, accessKeyId: S3RVER, secretAccessKey: S3RVER, maxAttempts: 1}`
  const withPassword = await s3PrefixSource(sourceConfig('s3-prefix', `{name: garage, type: s3-prefix, ${prefixYaml}, kopiaPasswordFile: ${dir}/password}`), { resticKeys: new ResticKeyCache() }).poll(never)
  t.same(withPassword.entries.map((e) => [e.namespace, e.pvc, e.kind, e.snapshots, e.newest, e.sizeBytes]), [
    ['media', 'radarr', 'kopia', 2, '2026-03-02T00:00:00.000Z', 9],
  ], 'any identity counts in a per-PVC repository; one with only an incomplete snapshot is no backup')
  t.same(withPassword.repositories?.map((r) => r.s3), [{ bucket: 'kopia', prefix: 'volsync/home/wiki' }, { bucket: 'kopia', prefix: 'volsync/media/radarr' }])

  const without = await s3PrefixSource(sourceConfig('s3-prefix', `{name: garage, type: s3-prefix, ${prefixYaml}}`), { resticKeys: new ResticKeyCache() }).poll(never)
  t.same(without.entries.map((e) => [e.pvc, e.snapshots]), [['wiki', null], ['radarr', null]], 'without kopiaPasswordFile: present, count unknown')

  const wrong = await s3PrefixSource(sourceConfig('s3-prefix', `{name: garage, type: s3-prefix, ${prefixYaml}, kopiaPasswordFile: ${dir}/wrong}`), { resticKeys: new ResticKeyCache() }).poll(never)
  t.same(wrong.entries.map((e) => [e.pvc, e.snapshots]), [['wiki', null], ['radarr', null]], 'a wrong password: unknown, never "no backup"')
  t.match(wrong.diagnostics?.map((d) => d.message), [/kopia repository s3:\/\/kopia\/volsync\/home\/wiki\/.*password/i, /kopia repository s3:\/\/kopia\/volsync\/media\/radarr\/.*password/i])
})

t.test('a shared repository with names VolSync sanitized: listed under the username, found by the PVC name', async (t) => {
  const target = await directoryTarget()
  t.teardown(() => target.cleanup())
  const repo = target.root
  const long = 'kube-prometheus-stack-prometheus-db-prometheus-kube-prometheus-0'
  const writer = await KopiaTestWriter.create({ password: PASSWORD, uniqueId, put: target.put })
  writer.addSnapshot({ username: 'zigbee2mqttdata', hostname: 'home', path: '/data', startTime: '2026-03-10T02:00:00Z' })
  writer.addSnapshot({ username: kopiaUsername(long), hostname: 'monitoring', path: '/data', startTime: '2026-03-10T02:00:00Z' })
  writer.addSnapshot({ username: `${'b'.repeat(49)}-`, hostname: 'home', path: '/data', startTime: '2026-03-10T02:00:00Z' })
  writer.flushManifests()
  await writer.flushIndex()
  const poll = await kopiaSource(sourceConfig('kopia', `{name: nas, type: kopia, filesystem: {path: ${repo}}, passwordFile: ${dir}/password}`)).poll(never)
  t.same(poll.entries.map((e) => `${e.namespace}/${e.pvc}`).sort(), [`home/${'b'.repeat(49)}-`, 'home/zigbee2mqttdata', `monitoring/${kopiaUsername(long)}`], 'every identity VolSync writes is listed')
  const catalog = buildCatalogState([{ name: 'nas', type: 'kopia', lastSuccess: 0, lastAttempt: 0, error: null, entries: poll.entries, diagnostics: [], repositories: [] }])
  for (const [namespace, pvc] of [['home', 'zigbee2mqtt.data'], ['monitoring', long], ['home', `${'b'.repeat(49)}-tail`]] as const) {
    t.equal(lookupBackup(catalog, namespace, pvc, 0, 60_000).state, 'backup', `${namespace}/${pvc} finds its backup`)
  }
})

t.test('unslashedPrefixMessage wording', async (t) => {
  t.equal(unslashedPrefixMessage('b', 'kopia/app', null), 'no Kopia repository at s3://b/kopia/appkopia.repository: the key read is kopia/appkopia.repository, because Kopia uses s3.prefix "kopia/app" verbatim, without adding a \'/\'. If the repository is in the folder kopia/app/, set s3.prefix: "kopia/app/" (VolSync\'s movers from v0.16.11 always add the \'/\')')
})

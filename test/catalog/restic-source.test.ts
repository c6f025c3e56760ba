// The restic source: one shared repository (written by restic 0.14) whose snapshots map to PVCs
// by hostname/tag/path patterns, in a directory and on a real S3 server.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { resticSource } from '../../src/catalog/restic-source.ts'
import { parseConfig } from '../../src/config/load.ts'
import type { ResticSourceConfig } from '../../src/config/schema.ts'
import { ResticKeyCache } from '../../src/restic/key-cache.ts'
import { RESTIC_FIXTURES, RESTIC_PASSWORD } from '../support/restic-layout.ts'
import { LocalS3 } from '../support/s3-server.ts'

const keys = new ResticKeyCache()
const never = new AbortController().signal
const SHARED = join(RESTIC_FIXTURES, 'shared')

interface Recorded { time: string; hostname: string; tags?: string[]; paths: string[] }
const recorded = JSON.parse(await readFile(join(RESTIC_FIXTURES, 'shared.snapshots.json'), 'utf8')) as Recorded[]

/** What restic itself says, grouped the way the default identity (hostname = namespace, tag = pvc) groups it. */
function expectedByHostAndTag(): Array<[string, string, number, string]> {
  const groups = new Map<string, Recorded[]>()
  for (const s of recorded) {
    for (const tag of s.tags ?? []) {
      const key = `${s.hostname}/${tag}`
      groups.set(key, [...(groups.get(key) ?? []), s])
    }
  }
  return [...groups.keys()].sort().map((key) => {
    const list = groups.get(key)!
    const [namespace, pvc] = key.split('/') as [string, string]
    return [namespace, pvc, list.length, new Date(Math.max(...list.map((s) => Date.parse(s.time)))).toISOString()]
  })
}

function config(yaml: string): ResticSourceConfig {
  const source = parseConfig(`catalog: {sources: [${yaml}]}`).catalog.sources[0]
  if (source?.type !== 'restic') throw new Error('not a restic source')
  return source
}

const dir = await mkdtemp(join(tmpdir(), 'restic-source-'))
t.teardown(() => rm(dir, { recursive: true, force: true }))
await writeFile(join(dir, 'password'), RESTIC_PASSWORD)
await writeFile(join(dir, 'wrong'), 'nope')

t.test('the default identity maps hostname to namespace and a tag to the pvc', async (t) => {
  const { entries } = await resticSource(config(`{name: shared, type: restic, filesystem: {path: ${SHARED}}, passwordFile: ${dir}/password}`), { resticKeys: keys }).poll(never)
  const expected = expectedByHostAndTag()
  t.ok(expected.length >= 3, 'the fixture has several PVCs')
  t.same(entries.map((e) => [e.namespace, e.pvc, e.snapshots, e.newest]), expected)
  t.ok(entries.every((e) => e.kind === 'restic' && e.source === 'shared'))
})

t.test('a path pattern maps the same snapshots, read from S3 below a prefix', async (t) => {
  const s3 = await LocalS3.start()
  t.teardown(() => s3.close())
  await s3.createBucket('restic')
  await s3.putTree('restic', 'cluster/shared/', SHARED)
  const source = resticSource(config(`{name: shared, type: restic, s3: {endpoint: "${s3.endpoint}", bucket: restic, prefix: cluster/shared, accessKeyId: S3RVER, secretAccessKey: S3RVER}, passwordFile: ${dir}/password, identity: {path: "/data/{{namespace}}/{{pvc}}"}}`), { resticKeys: keys })
  const { entries } = await source.poll(never)
  t.same(entries.map((e) => [e.namespace, e.pvc, e.snapshots, e.newest]), expectedByHostAndTag())
})

t.test('snapshots that match no PVC are left out; fields must agree', async (t) => {
  // hostname says the namespace, the path says it too: a snapshot whose two answers differ belongs to no PVC.
  const { entries } = await resticSource(config(`{name: shared, type: restic, filesystem: {path: ${SHARED}}, passwordFile: ${dir}/password, identity: {hostname: "{{namespace}}", path: "/data/media/{{pvc}}"}}`), { resticKeys: keys }).poll(never)
  t.ok(entries.length > 0)
  t.ok(entries.every((e) => e.namespace === 'media'), 'only snapshots whose hostname and path agree on the namespace')
})

t.test('a wrong password fails the poll with an error naming the repository', async (t) => {
  const source = resticSource(config(`{name: shared, type: restic, filesystem: {path: ${SHARED}}, passwordFile: ${dir}/wrong}`), { resticKeys: keys })
  await t.rejects(source.poll(never), { name: 'ResticError', message: /wrong password for restic repository .*fixtures\/restic\/shared\// })
  const missing = resticSource(config(`{name: shared, type: restic, filesystem: {path: ${SHARED}}, passwordFile: ${dir}/absent}`), { resticKeys: keys })
  await t.rejects(missing.poll(never), { message: /cannot read passwordFile .*absent: ENOENT/ })
})

// Issue "backup catalog", done when: `catalog --json` against a local S3 server holding restic
// repositories that restic wrote lists exactly the PVCs with snapshots and their counts, skips an
// initialized repository without snapshots, and the server's decisions use it. The commands run
// in-process (their argv and output), against s3rver on loopback.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import t from 'tap'
import { catalogCommand } from '../../src/commands/catalog.ts'
import { reviewCommand } from '../../src/commands/review.ts'
import { RESTIC_PASSWORD, uploadPerPvcLayout } from '../support/restic-layout.ts'
import { LocalS3 } from '../support/s3-server.ts'

class Collect extends Writable {
  text = ''
  override _write(chunk: Buffer, _encoding: BufferEncoding, done: () => void): void {
    this.text += chunk.toString('utf8')
    done()
  }
}

const s3 = await LocalS3.start()
t.teardown(() => s3.close())
await s3.createBucket('volsync-backups')
await uploadPerPvcLayout(s3, 'volsync-backups', 'volsync/')
const dir = await mkdtemp(join(tmpdir(), 'catalog-s3-'))
t.teardown(() => rm(dir, { recursive: true, force: true }))
await writeFile(join(dir, 'AWS_ACCESS_KEY_ID'), 'S3RVER')
await writeFile(join(dir, 'AWS_SECRET_ACCESS_KEY'), 'S3RVER')
await writeFile(join(dir, 'RESTIC_PASSWORD'), RESTIC_PASSWORD)
const config = join(dir, 'config.yaml')
await writeFile(config, `
state: { directory: examples/state }
log: { level: silent }
catalog:
  sources:
    - name: garage
      type: s3-prefix
      s3: { endpoint: "${s3.endpoint}", bucket: volsync-backups, prefix: volsync/, region: garage, forcePathStyle: true,
            accessKeyIdFile: ${dir}/AWS_ACCESS_KEY_ID, secretAccessKeyFile: ${dir}/AWS_SECRET_ACCESS_KEY }
      resticPasswordFile: ${dir}/RESTIC_PASSWORD
`)

interface CatalogJson { sources: Array<{ name: string; ok: boolean; error: string | null; entries: Array<{ namespace: string; pvc: string; kind: string; snapshots: number | null; newest?: string }>; diagnostics: Array<{ code: string; pvc?: string }> }> }

t.test('catalog --json lists exactly the PVCs with snapshots', async (t) => {
  const out = new Collect()
  t.equal(await catalogCommand(['--config', config, '--json'], out), 0)
  const doc = JSON.parse(out.text) as CatalogJson
  t.equal(doc.sources.length, 1)
  t.match(doc.sources[0], { name: 'garage', ok: true, error: null })
  t.same(doc.sources[0]!.entries.map((e) => [e.namespace, e.pvc, e.kind, e.snapshots]), [
    ['home', 'notes', 'kopia', null],
    ['media', 'jellyfin', 'restic', 3],
    ['media', 'sonarr', 'restic', 1],
  ], 'home/paperless, initialized without a snapshot, is not listed')
  t.equal(doc.sources[0]!.entries[2]!.newest, '2026-03-01T12:00:00.000Z', 'the time restic recorded')
  t.same(doc.sources[0]!.diagnostics.map((d) => [d.code, d.pvc]), [['kopia-prefix-without-slash', 'prowlarr']])
})

/** A PVC CREATE review as the API server sends it. */
async function pvcReview(namespace: string, name: string): Promise<string> {
  const file = join(dir, `${namespace}-${name}.json`)
  await writeFile(file, JSON.stringify({
    apiVersion: 'v1', kind: 'PersistentVolumeClaim',
    metadata: { name, namespace, labels: { backup: 'daily' } },
    spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
  }))
  return file
}

t.test('the decisions use it', async (t) => {
  const decide = async (namespace: string, pvc: string) => {
    const out = new Collect()
    t.equal(await reviewCommand(['--config', config, '--explain', await pvcReview(namespace, pvc)], out), 0)
    return (JSON.parse(out.text) as { explain: { decision: string; reasons: string[]; catalog: { read: string } } }).explain
  }
  const jellyfin = await decide('media', 'jellyfin')
  t.equal(jellyfin.decision, 'restore', 'a backup and a ready RD (examples/state): restore')
  const sonarr = await decide('media', 'sonarr')
  t.equal(sonarr.decision, 'wait', 'a backup whose RD has not synced yet: wait')
  // review decides from the listing (no key derivation): the newest snapshot file's upload time, and says so.
  t.match(sonarr.reasons[0], /restic backup in source garage \(1 snapshot, newest \d{4}-\d\d-\d\dT[\d:.]+Z\) exists for media\/sonarr/)
  t.equal(sonarr.catalog.read, 'listing')
  const paperless = await decide('home', 'paperless')
  t.equal(paperless.decision, 'fresh', 'an initialized, empty repository: a new, empty volume')
  const notes = await decide('home', 'notes')
  t.not(notes.decision, 'restore', 'a Kopia repository not read yet is never taken for a backup')
  t.match(notes.reasons.join(' '), /a kopia repository exists in source garage but its snapshots could not be read/, 'it is "catalog unknown" for that PVC')
})

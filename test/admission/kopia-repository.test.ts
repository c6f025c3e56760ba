import { test } from 'tap'
import { type KopiaRepositoryTarget, parseKopiaRepository } from '../../src/admission/kopia-repository.ts'

const s3 = (bucket: string, prefix: string): KopiaRepositoryTarget => ({ s3: { bucket, prefix } })
const fs = (path: string): KopiaRepositoryTarget => ({ filesystem: path })

// [what it shows, Secret values, what the mover connects to (null: it cannot, or not a compared backend)]
const TABLE: ReadonlyArray<readonly [string, Record<string, string | null>, KopiaRepositoryTarget | null]> = [
  ['bucket root', { KOPIA_REPOSITORY: 's3://volsync-kopia' }, s3('volsync-kopia', '')],
  ['bucket root with a slash', { KOPIA_REPOSITORY: 's3://volsync-kopia/' }, s3('volsync-kopia', '')],
  ['a prefix', { KOPIA_REPOSITORY: 's3://volsync-kopia/volsync/media' }, s3('volsync-kopia', 'volsync/media')],
  ['a trailing slash is the same place (>= v0.16.11 always adds one)', { KOPIA_REPOSITORY: 's3://volsync-kopia/volsync/media/' }, s3('volsync-kopia', 'volsync/media')],
  ['leading and repeated slashes collapse', { KOPIA_REPOSITORY: 's3://volsync-kopia//volsync//media//' }, s3('volsync-kopia', 'volsync/media')],
  ['surrounding whitespace is ignored', { KOPIA_REPOSITORY: '  s3://volsync-kopia/app \n' }, s3('volsync-kopia', 'app')],
  ['KOPIA_S3_BUCKET wins, the URL still gives the prefix', { KOPIA_REPOSITORY: 's3://other-bucket/volsync/media', KOPIA_S3_BUCKET: 'volsync-kopia' }, s3('volsync-kopia', 'volsync/media')],
  ['KOPIA_S3_BUCKET alone is S3 at the bucket root', { KOPIA_S3_BUCKET: 'volsync-kopia' }, s3('volsync-kopia', '')],
  ['KOPIA_S3_BUCKET makes any URL S3, without its path', { KOPIA_REPOSITORY: 'filesystem:///mnt/repository', KOPIA_S3_BUCKET: 'volsync-kopia' }, s3('volsync-kopia', '')],
  ['an empty KOPIA_S3_BUCKET falls through to the URL', { KOPIA_REPOSITORY: 's3://volsync-kopia/app', KOPIA_S3_BUCKET: '' }, s3('volsync-kopia', 'app')],
  ['an uppercase bucket is refused by the mover', { KOPIA_REPOSITORY: 's3://Volsync/app' }, null],
  ['a bucket of two characters is refused', { KOPIA_REPOSITORY: 's3://ab/app' }, null],
  ['no bucket at all', { KOPIA_REPOSITORY: 's3:///app' }, null],
  ['a prefix with .. is refused', { KOPIA_REPOSITORY: 's3://volsync-kopia/a/../b' }, null],
  ['a prefix with characters outside [a-zA-Z0-9._/-] is refused', { KOPIA_REPOSITORY: 's3://volsync-kopia/my app' }, null],
  ['filesystem path', { KOPIA_REPOSITORY: 'filesystem:///mnt/repository' }, fs('/mnt/repository')],
  ['filesystem path with a trailing slash', { KOPIA_REPOSITORY: 'filesystem:///mnt/repository/' }, fs('/mnt/repository')],
  ['filesystem root', { KOPIA_REPOSITORY: 'filesystem:///' }, fs('/')],
  ['filesystem://path (relative) is refused', { KOPIA_REPOSITORY: 'filesystem://mnt/repository' }, null],
  ['filesystem path with .. is refused', { KOPIA_REPOSITORY: 'filesystem:///mnt/../etc' }, null],
  ['bare filesystem: (a PVC moverVolume overrides it)', { KOPIA_REPOSITORY: 'filesystem:' }, null],
  ['another backend', { KOPIA_REPOSITORY: 'gcs://bucket/prefix' }, null],
  ['no KOPIA_REPOSITORY', { KOPIA_PASSWORD: 'x' }, null],
  ['a non-string KOPIA_REPOSITORY', { KOPIA_REPOSITORY: null }, null],
]

test('parseKopiaRepository reads KOPIA_REPOSITORY as the mover does', async (t) => {
  for (const [what, values, expected] of TABLE) {
    t.same(parseKopiaRepository(new Map(Object.entries(values))), expected, what)
  }
})

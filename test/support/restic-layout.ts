// Per-PVC restic repositories laid out as VolSync's per-PVC layout puts them
// (<prefix><namespace>/<pvc>/), built from the real restic fixture repositories, on S3 or in a
// directory.
import { cp, mkdir, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import type { LocalS3 } from './s3-server.ts'

export const RESTIC_FIXTURES = new URL('../fixtures/restic/', import.meta.url).pathname
export const RESTIC_PASSWORD = 'test-password'

/** namespace/pvc -> fixture repository ('v2': 3 snapshots, 'v1': 1, 'empty': initialized, none). */
export const PER_PVC_LAYOUT: Record<string, 'v2' | 'v1' | 'empty'> = {
  'media/jellyfin': 'v2',
  'media/sonarr': 'v1',
  'home/paperless': 'empty',
}

/** Objects that are not restic repositories: a Kopia one, the stripped-slash pitfall, junk. */
export const OTHER_OBJECTS: Record<string, string> = {
  'home/notes/kopia.repository': '{"tool":"https://github.com/kopia/kopia","buildVersion":"0.20.1","uniqueID":"AAAA","keyAlgo":"DEFAULT","version":"1","encryption":"AES256_GCM_HMAC_SHA256","encryptedBlockFormat":"AAAA"}',
  'home/notes/kopia.blobcfg': '{}',
  'media/prowlarrkopia.repository': '{}',
  'media/prowlarrp0123456789abcdef': 'pack',
  'media/readme/notes.txt': 'not a repository',
}

export async function writePerPvcDirectory(root: string): Promise<void> {
  for (const [pvc, fixture] of Object.entries(PER_PVC_LAYOUT)) {
    await cp(join(RESTIC_FIXTURES, fixture), join(root, ...pvc.split('/')), { recursive: true })
  }
  for (const [key, body] of Object.entries(OTHER_OBJECTS)) {
    const file = join(root, ...key.split('/'))
    await mkdir(dirname(file), { recursive: true })
    await writeFile(file, body)
  }
}

/** Uploads the same layout with plain PUTs, below `prefix`. */
export async function uploadPerPvcLayout(s3: LocalS3, bucket: string, prefix: string): Promise<void> {
  for (const [pvc, fixture] of Object.entries(PER_PVC_LAYOUT)) {
    await s3.putTree(bucket, `${prefix}${pvc}/`, join(RESTIC_FIXTURES, fixture))
  }
  for (const [key, body] of Object.entries(OTHER_OBJECTS)) await s3.put(bucket, `${prefix}${key}`, body)
}

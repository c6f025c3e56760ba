// The blob store a source reads: its `s3` or `filesystem` location from config.
import type { FilesystemLocationConfig, S3LocationConfig } from '../config/schema.ts'
import type { BlobStore } from '../storage/blob-store.ts'
import { FsBlobStore } from '../storage/fs-store.ts'
import { s3BlobStore } from '../storage/s3-store.ts'

export interface SourceLocation {
  readonly s3?: S3LocationConfig
  readonly filesystem?: FilesystemLocationConfig
}

/**
 * `folder`: the prefix names a folder (restic, per-PVC layouts), so "volsync" means "volsync/".
 * Kopia uses its S3 prefix verbatim, like kopia itself.
 */
export function storeFor(location: SourceLocation, folder: boolean): BlobStore {
  if (location.s3) {
    const prefix = folder && location.s3.prefix !== '' && !location.s3.prefix.endsWith('/') ? `${location.s3.prefix}/` : location.s3.prefix
    return s3BlobStore(location.s3, prefix)
  }
  if (location.filesystem) return new FsBlobStore(location.filesystem.path)
  // load.ts rejects such a config; reaching this is a programming error.
  throw new Error('catalog source has neither s3 nor filesystem')
}

// Where the S3 client's credentials come from: files (a mounted Secret, re-read so a rotated
// Secret is picked up), inline config, or the SDK's default chain (env, profile, IMDS).
import type { S3ClientConfig } from '@aws-sdk/client-s3'
import type { S3LocationConfig } from '../config/schema.ts'
import { readSecretFile } from '../config/secret-file.ts'
import { errorMessage } from '../errors.ts'
import { BlobStoreError } from './blob-store.ts'

/** Mounted Secrets change in place; re-reading every few minutes costs two small file reads. */
const FILE_CREDENTIALS_TTL_MS = 5 * 60_000

/** Access keys never contain whitespace; a newline from `echo` into a Secret is not part of them. */
async function readKeyFile(file: string, key: string): Promise<string> {
  try {
    return (await readSecretFile(file, `s3.${key}`)).trim()
  } catch (error) {
    throw new BlobStoreError(errorMessage(error))
  }
}

/**
 * The S3 client's credentials for `config`: a provider that re-reads
 * `accessKeyIdFile`/`secretAccessKeyFile` (trimmed) every 5 minutes, so a rotated Secret takes effect;
 * else the inline keys; else undefined, for the SDK's default chain (env, profile, IMDS). The provider
 * rejects with BlobStoreError naming the file, never its content.
 */
export function s3Credentials(config: S3LocationConfig): S3ClientConfig['credentials'] {
  if (config.accessKeyIdFile !== undefined && config.secretAccessKeyFile !== undefined) {
    const idFile = config.accessKeyIdFile
    const secretFile = config.secretAccessKeyFile
    return async () => ({
      accessKeyId: await readKeyFile(idFile, 'accessKeyIdFile'),
      secretAccessKey: await readKeyFile(secretFile, 'secretAccessKeyFile'),
      expiration: new Date(Date.now() + FILE_CREDENTIALS_TTL_MS),
    })
  }
  if (config.accessKeyId !== undefined && config.secretAccessKey !== undefined) {
    return { accessKeyId: config.accessKeyId, secretAccessKey: config.secretAccessKey }
  }
  return undefined
}

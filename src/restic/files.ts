// The repository's files as restic lays them out in a store, read through BlobStore: store
// failures become ResticErrors naming the file, a missing file is null, an abort stays an abort.
import { BlobNotFoundError, listAll, type BlobStore } from '../storage/blob-store.ts'
import { errorMessage } from '../errors.ts'
import { ResticError } from './errors.ts'

/** Names of everything but `config`: the lower-case hex SHA-256 of the file's content. */
const STORAGE_ID = /^[0-9a-f]{64}$/

/**
 * Whether `name` is a restic storage ID (64 lower-case hex digits); other files in a repository directory
 * (temporary uploads, stray files) are not restic's.
 */
export function isStorageId(name: string): boolean {
  return STORAGE_ID.test(name)
}

function isAbort(error: unknown, signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true || (error instanceof Error && error.name === 'AbortError')
}

function storageFailure(store: BlobStore, file: string, error: unknown): ResticError {
  const reason = errorMessage(error)
  return new ResticError('storage', store.location, file, `cannot read ${file} of restic repository ${store.location}: ${reason}`, { cause: error })
}

/** The whole file, or null when it does not exist. */
export async function readFile(store: BlobStore, file: string, signal?: AbortSignal): Promise<Buffer | null> {
  try {
    return await store.get(file, signal)
  } catch (error) {
    if (error instanceof BlobNotFoundError) return null
    if (isAbort(error, signal)) throw error
    throw storageFailure(store, file, error)
  }
}

/**
 * Storage IDs of the files directly in `dir` (e.g. 'snapshots'), in byte order. Other names are
 * skipped: the local backend writes `<id>-tmp-<random>` files before renaming them into place.
 */
export async function listIds(store: BlobStore, dir: string, signal?: AbortSignal): Promise<string[]> {
  const prefix = `${dir}/`
  try {
    const { blobs } = await listAll(store, prefix, signal ? { delimiter: '/', signal } : { delimiter: '/' })
    return blobs.map((b) => b.key.slice(prefix.length)).filter(isStorageId)
  } catch (error) {
    if (isAbort(error, signal)) throw error
    throw storageFailure(store, prefix, error)
  }
}

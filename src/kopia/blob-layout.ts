// Kopia blob IDs (flat names without '/') -> keys of a BlobStore. A directory repository stores
// `<id>.f` files in shard directories described by `.shards`; S3 (and GCS/Azure/B2) store the ID
// as the key, concatenated to the configured prefix, with no sharding at all.
import { type BlobStore, listAll } from '../storage/blob-store.ts'
import { KopiaError } from './errors.ts'

export interface BlobMeta {
  readonly id: string
  /** Where it was listed: use this key to read it (robust even if `.shards` were wrong). */
  readonly key: string
  readonly size: number
  readonly modifiedMs: number
}

export interface BlobLayout {
  /** For messages: "sharded [1,3]/20", "flat". */
  readonly description: string
  keyOf(blobId: string): string
  /** Every blob whose ID starts with `prefix` (a non-empty kopia prefix such as "x" or "n"). */
  list(prefix: string, signal?: AbortSignal): Promise<BlobMeta[]>
}

export interface ShardParameters {
  readonly defaultShards: readonly number[]
  readonly maxNonShardedLength: number
  readonly overrides: readonly { readonly prefix: string; readonly shards: readonly number[] }[]
}

export const SHARDS_FILE = '.shards'
const BLOB_SUFFIX = '.f'
/** What kopia assumes when a directory repository has no `.shards` (very old repositories). */
export const LEGACY_SHARDS: ShardParameters = { defaultShards: [3, 3], maxNonShardedLength: 20, overrides: [] }

function widths(value: unknown): number[] | null {
  if (value === undefined || value === null) return []
  return Array.isArray(value) && value.every((w) => Number.isInteger(w) && w > 0) ? (value as number[]) : null
}

/**
 * The shard parameters of a `.shards` file (JSON: `default` widths, `maxNonShardedLength`, `overrides` by
 * prefix); null when the bytes are not such a document, so the caller can report the file rather than
 * throw.
 */
export function parseShards(bytes: Buffer): ShardParameters | null {
  let json: unknown
  try {
    json = JSON.parse(bytes.toString('utf8'))
  } catch {
    return null
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return null
  const raw = json as Record<string, unknown>
  const defaultShards = widths(raw['default'])
  const limit = raw['maxNonShardedLength'] ?? 0
  if (defaultShards === null || typeof limit !== 'number' || !Number.isInteger(limit)) return null
  const overrides: { prefix: string; shards: number[] }[] = []
  for (const o of Array.isArray(raw['overrides']) ? raw['overrides'] : []) {
    const override = typeof o === 'object' && o !== null ? (o as Record<string, unknown>) : {}
    const shards = widths(override['shards'])
    if (typeof override['prefix'] !== 'string' || shards === null) return null
    overrides.push({ prefix: override['prefix'], shards })
  }
  return { defaultShards, maxNonShardedLength: limit, overrides }
}

/** Kopia's GetShardDirectoryAndBlob: peel shard-width directory names off the ID, then add `.f`. */
export function shardedKey(params: ShardParameters, blobId: string): string {
  if (blobId.length <= params.maxNonShardedLength) return blobId + BLOB_SUFFIX
  const shards = params.overrides.find((o) => blobId.startsWith(o.prefix))?.shards ?? params.defaultShards
  const dirs: string[] = []
  let rest = blobId
  for (const width of shards) {
    if (rest.length <= width) break
    dirs.push(rest.slice(0, width))
    rest = rest.slice(width)
  }
  dirs.push(rest + BLOB_SUFFIX)
  return dirs.join('/')
}

/**
 * A kopia directory repository: blob `<id>` is the file `<shard>/<shard>/<rest>.f` per `params`. Listing
 * reads the whole shard tree under the prefix's first character (recursive), and takes IDs from the paths
 * found, not from `params`.
 */
export class ShardedLayout implements BlobLayout {
  readonly description: string
  readonly #store: BlobStore
  readonly #params: ShardParameters

  constructor(store: BlobStore, params: ShardParameters) {
    this.#store = store
    this.#params = params
    this.description = `sharded [${params.defaultShards.join(',')}]/${params.maxNonShardedLength}`
  }

  keyOf(blobId: string): string {
    return shardedKey(this.#params, blobId)
  }

  async list(prefix: string, signal?: AbortSignal): Promise<BlobMeta[]> {
    // Shard directories start with the ID's first character whatever the widths are, and the ID is
    // rebuilt from the path alone, as kopia does; files without `.f` (temporary files, markers) are not blobs.
    const { blobs } = await listAll(this.#store, prefix.slice(0, 1), signal ? { signal } : {})
    const result: BlobMeta[] = []
    for (const blob of blobs) {
      if (!blob.key.endsWith(BLOB_SUFFIX)) continue
      const id = blob.key.slice(0, -BLOB_SUFFIX.length).replaceAll('/', '')
      if (id.startsWith(prefix)) result.push({ id, key: blob.key, size: blob.size, modifiedMs: blob.modifiedMs })
    }
    return result.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  }
}

/** An object store repository (S3): blob `<id>` is the key `keyPrefix + id`, listed one level deep (delimiter '/'). */
export class FlatLayout implements BlobLayout {
  readonly description = 'flat'
  readonly #store: BlobStore
  readonly #keyPrefix: string

  /** `keyPrefix`: a kopia S3 prefix that does not end in '/' (e.g. "snapshot-") is part of every key. */
  constructor(store: BlobStore, keyPrefix = '') {
    this.#store = store
    this.#keyPrefix = keyPrefix
  }

  keyOf(blobId: string): string {
    return this.#keyPrefix + blobId
  }

  async list(prefix: string, signal?: AbortSignal): Promise<BlobMeta[]> {
    // Delimiter '/': kopia lists without recursion, so keys with a '/' after the prefix are not blobs.
    const { blobs } = await listAll(this.#store, this.#keyPrefix + prefix, signal ? { delimiter: '/', signal } : { delimiter: '/' })
    return blobs
      .filter((b) => b.key.startsWith(this.#keyPrefix + prefix) && !b.key.includes('/', this.#keyPrefix.length))
      .map((b) => ({ id: b.key.slice(this.#keyPrefix.length), key: b.key, size: b.size, modifiedMs: b.modifiedMs }))
  }
}

/**
 * Which layout this store holds: `.shards` or `kopia.repository.f` means a kopia directory
 * repository (shared over NFS or a local path), `kopia.repository` an object-store one.
 */
export async function detectLayout(store: BlobStore, signal?: AbortSignal): Promise<BlobLayout> {
  if (await store.stat(SHARDS_FILE, signal)) {
    const params = parseShards(await store.get(SHARDS_FILE, signal))
    if (params === null) throw new KopiaError('corrupt', store.location, `${SHARDS_FILE} is not valid sharding JSON`, { blobId: SHARDS_FILE })
    return new ShardedLayout(store, params)
  }
  if (await store.stat(`kopia.repository${BLOB_SUFFIX}`, signal)) return new ShardedLayout(store, LEGACY_SHARDS)
  if (await store.stat('kopia.repository', signal)) return new FlatLayout(store)
  throw new KopiaError('not-a-repository', store.location, 'no kopia.repository here (neither a directory repository nor an object-store one)')
}

// What a poll of a per-PVC layout learns from listings alone, by one of two ways that give the same
// answer for the same keys: a flat scan of a namespace in key order (a few requests per thousand
// keys: S3, where every listing is a request) or one listing per repository (a directory, where a
// listing is a readdir and a flat walk would stat every pack; and for the few repositories a poll
// re-examines, see s3-prefix-source.ts). Whole-layout forms of both are kept for comparison.
import { forEachLimit } from '../async/for-each-limit.ts'
import { isStorageId } from '../restic/files.ts'
import { type BlobInfo, type BlobStore, listAll } from '../storage/blob-store.ts'
import { KOPIA_FORMAT_BLOB, placeOf, resumeAfter, SNAPSHOTS_FOLDER } from './repository-scan.ts'

/** One repository folder `<namespace>/<pvc>/` as its listing shows it. */
export interface RepositoryListing {
  readonly namespace: string
  readonly pvc: string
  /** restic snapshot files directly under `snapshots/` (keys relative to the repository, `snapshots/<id>`), in key order. */
  readonly snapshots: BlobInfo[]
  /** The Kopia format blob (key `kopia.repository`); may be absent when `snapshots` is not empty. */
  format?: BlobInfo
}

/** Every repository folder of a layout, and the blobs that sit directly in a namespace. */
export interface LayoutListing {
  /** By `<namespace>/<pvc>`. A per-repository listing also holds folders without a key (a directory's empty folder). */
  readonly repositories: Map<string, RepositoryListing>
  /** `<namespace>/<name>` blobs (keys relative to the layout's root), in key order per namespace. */
  readonly namespaceBlobs: BlobInfo[]
}

export interface LayoutListingOptions {
  /** Namespaces listed at once. */
  readonly concurrency: number
  /** MaxKeys of the scan's requests; S3's default (1,000) when absent. */
  readonly pageSize?: number
  readonly signal?: AbortSignal
}

/**
 * `store` with every listPage (of it and of its sub views) counted in `count.requests`: the listing
 * requests a poll makes (benchmarks, tests). Reads and writes nothing else.
 */
export function countingListings(store: BlobStore, count: { requests: number }): BlobStore {
  return {
    location: store.location,
    listPage: (prefix, options) => {
      count.requests++
      return store.listPage(prefix, options)
    },
    get: (key, signal) => store.get(key, signal),
    getRange: (key, offset, length, signal) => store.getRange(key, offset, length, signal),
    stat: (key, signal) => store.stat(key, signal),
    sub: (prefix) => countingListings(store.sub(prefix), count),
  }
}

function emptyListing(): LayoutListing {
  return { repositories: new Map(), namespaceBlobs: [] }
}

function repositoryIn(listing: LayoutListing, namespace: string, pvc: string): RepositoryListing {
  const key = `${namespace}/${pvc}`
  let repository = listing.repositories.get(key)
  if (repository === undefined) {
    repository = { namespace, pvc, snapshots: [] }
    listing.repositories.set(key, repository)
  }
  return repository
}

/** Files one level under `snapshots/` whose name is a storage id: restic's snapshot files. */
function isSnapshotFile(rest: string): boolean {
  return rest.startsWith(SNAPSHOTS_FOLDER) && isStorageId(rest.slice(SNAPSHOTS_FOLDER.length))
}

/** Adds what one listed key tells (a snapshot file, a format blob, a repository, a namespace blob) to `listing`. */
function record(listing: LayoutListing, blob: BlobInfo): void {
  const place = placeOf(blob.key)
  if (place.at === 'root') return
  if (place.at === 'namespace') {
    listing.namespaceBlobs.push(blob)
    return
  }
  const repository = repositoryIn(listing, place.namespace, place.pvc)
  if (isSnapshotFile(place.rest)) repository.snapshots.push({ ...blob, key: place.rest })
  else if (place.rest === KOPIA_FORMAT_BLOB) repository.format = { ...blob, key: place.rest }
}

/** The namespaces of a layout: its root's folders (one delimiter listing, more past 1,000). A storage failure throws. */
export async function listNamespaces(root: BlobStore, signal?: AbortSignal): Promise<string[]> {
  return (await listAll(root, '', { delimiter: '/', ...(signal ? { signal } : {}) })).prefixes.map((p) => p.slice(0, -1))
}

const byKey = <T>(key: (item: T) => string) => (a: T, b: T) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0)

/** `listing`'s repositories in key order, so both ways list them alike whatever order namespaces finished in. */
function sorted(listing: LayoutListing): LayoutListing {
  const repositories = new Map([...listing.repositories].sort(byKey(([key]) => key)))
  const namespaceBlobs = [...listing.namespaceBlobs].sort(byKey((b) => b.key))
  return { repositories, namespaceBlobs }
}

/**
 * One namespace by a flat scan: its keys without delimiter, in key order, each next request starting
 * where `resumeAfter` says (so a page ending inside a repository's packs jumps over the rest of them).
 * Gives every repository folder holding a key (S3 has no empty folders) and the namespace's own blobs,
 * in key order. A storage failure throws.
 */
export async function scanNamespace(root: BlobStore, namespace: string, options: { readonly pageSize?: number; readonly signal?: AbortSignal } = {}): Promise<LayoutListing> {
  const { signal, pageSize } = options
  const listing = emptyListing()
  let startAfter: string | undefined
  let continuation: string | undefined
  for (;;) {
    const page = await root.listPage(`${namespace}/`, {
      ...(startAfter !== undefined ? { startAfter } : {}),
      ...(continuation !== undefined ? { continuation } : {}),
      ...(pageSize !== undefined ? { maxKeys: pageSize } : {}),
      ...(signal ? { signal } : {}),
    })
    for (const blob of page.blobs) record(listing, blob)
    if (page.next === undefined) return sorted(listing)
    const last = page.blobs.at(-1)?.key
    // A truncated page without a key (S3 may answer one): its token is the only way on.
    if (last === undefined) {
      continuation = page.next
    } else {
      continuation = undefined
      startAfter = resumeAfter(last)
    }
  }
}

/**
 * One namespace's folders (the PVCs' repository folders, in key order; in a directory also an empty
 * one) and its own blobs (keys relative to the root), by one delimiter listing (more past 1,000). Reads
 * nothing inside a repository. A storage failure throws.
 */
export async function listNamespaceFolders(root: BlobStore, namespace: string, signal?: AbortSignal): Promise<{ pvcs: string[]; namespaceBlobs: BlobInfo[] }> {
  const folder = await listAll(root, `${namespace}/`, { delimiter: '/', ...(signal ? { signal } : {}) })
  return { pvcs: folder.prefixes.map((p) => p.slice(namespace.length + 1, -1)), namespaceBlobs: folder.blobs }
}

/**
 * One repository `<namespace>/<pvc>/` by its own listings: its `snapshots/` and, when that holds no
 * snapshot file, the first page of its keys starting with `k` (for `kopia.repository`): one or two
 * requests. A storage failure throws.
 */
export async function listRepository(root: BlobStore, namespace: string, pvc: string, signal?: AbortSignal): Promise<RepositoryListing> {
  const withSignal = signal ? { signal } : {}
  const repository: RepositoryListing = { namespace, pvc, snapshots: [] }
  const repo = root.sub(`${namespace}/${pvc}/`)
  const snapshots = await listAll(repo, SNAPSHOTS_FOLDER, { delimiter: '/', ...withSignal })
  repository.snapshots.push(...snapshots.blobs.filter((b) => isSnapshotFile(b.key)))
  if (repository.snapshots.length > 0) return repository
  // One listing tells a Kopia repository (kopia.repository) from an initialized restic one (keys/).
  const marker = await repo.listPage('k', { delimiter: '/', ...withSignal })
  const format = marker.blobs.find((b) => b.key === KOPIA_FORMAT_BLOB)
  if (format !== undefined) repository.format = format
  return repository
}

/**
 * Lists a whole per-PVC layout, `way` `scan` or `per-repository` (what a cold poll does, in one call:
 * tests compare the two and count their requests). Both start with the root's folders (one delimiter
 * listing) and take `concurrency` namespaces at a time. `scan`: each namespace by `scanNamespace`, so a
 * repository of a few dozen keys costs a few hundredths of a request and one of thousands of packs about
 * one. `per-repository`: each namespace's folders and blobs (delimiter listings), then each repository by
 * `listRepository`. Returns the listing and the number of listing requests (pages) made. A storage
 * failure throws.
 */
export async function listLayout(root: BlobStore, options: LayoutListingOptions, way: 'scan' | 'per-repository'): Promise<{ listing: LayoutListing; requests: number }> {
  const { signal } = options
  const listing = emptyListing()
  const count = { requests: 0 }
  const store = countingListings(root, count)
  const namespaces = await listNamespaces(store, signal)
  await forEachLimit(namespaces, options.concurrency, async (namespace) => {
    if (way === 'scan') {
      const scanned = await scanNamespace(store, namespace, options)
      for (const [key, repository] of scanned.repositories) listing.repositories.set(key, repository)
      listing.namespaceBlobs.push(...scanned.namespaceBlobs)
    } else {
      const folder = await listNamespaceFolders(store, namespace, signal)
      for (const pvc of folder.pvcs) repositoryIn(listing, namespace, pvc)
      listing.namespaceBlobs.push(...folder.namespaceBlobs)
    }
  }, signal)
  if (way === 'per-repository') {
    await forEachLimit([...listing.repositories.values()], options.concurrency, async (repository) => {
      const listed = await listRepository(store, repository.namespace, repository.pvc, signal)
      repository.snapshots.push(...listed.snapshots)
      if (listed.format !== undefined) repository.format = listed.format
    }, signal)
  }
  return { listing: sorted(listing), requests: count.requests }
}

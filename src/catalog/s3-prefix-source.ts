// Per-PVC repositories at <prefix><namespace>/<pvc>/ (VolSync's one-repository-per-PVC layout),
// restic or Kopia, on S3 or in a directory. A repository is a backup only when it holds a
// snapshot: VolSync's restore of an initialized, empty repository "succeeds" with an empty volume.
import { forEachLimit } from '../async/for-each-limit.ts'
import type { S3PrefixSourceConfig } from '../config/schema.ts'
import { readSecretFile } from '../config/secret-file.ts'
import { KopiaError } from '../kopia/errors.ts'
import { ResticError } from '../restic/errors.ts'
import { isStorageId } from '../restic/files.ts'
import type { ResticKeyCache } from '../restic/key-cache.ts'
import { ResticRepository } from '../restic/repository.ts'
import type { CatalogDiagnostic, CatalogEntry, OpenedRepository, SourcePoll } from '../state/catalog-state.ts'
import { type BlobInfo, type BlobStore, listAll } from '../storage/blob-store.ts'
import { catalogEntry, type SnapshotSummary } from './catalog-entry.ts'
import type { CatalogSource } from './source.ts'
import { storeFor } from './source-store.ts'
import { summarizeKopiaSources } from './kopia-summary.ts'
import { openKopia, type OpenedKopia } from './opened-kopia.ts'
import { OpenedRepositories } from './opened-repositories.ts'
import { summarizeResticSnapshots } from './restic-summary.ts'

const KOPIA_FORMAT_BLOB = 'kopia.repository'

interface Found {
  entry?: CatalogEntry
  diagnostic?: CatalogDiagnostic
  repository?: OpenedRepository
}

export interface S3PrefixContext {
  readonly resticKeys: ResticKeyCache
}

/** The bucket and key prefix of a location, for diagnostics a Secret's KOPIA_REPOSITORY can be matched against. */
function s3Where(config: S3PrefixSourceConfig, keyPrefix: string): { bucket: string; prefix: string } | undefined {
  if (!config.s3) return undefined
  const root = config.s3.prefix === '' || config.s3.prefix.endsWith('/') ? config.s3.prefix : `${config.s3.prefix}/`
  return { bucket: config.s3.bucket, prefix: `${root}${keyPrefix}`.replace(/\/$/, '') }
}

/**
 * The catalog source of per-PVC repositories at `<prefix><namespace>/<pvc>/`, restic or Kopia, on S3 or in
 * a directory. Each poll reads the configured password files (SecretFileError), lists namespaces and PVCs
 * (`concurrency` at a time), and gives one entry per repository holding a snapshot: exact times and sizes
 * with the password, the snapshot files' count and upload time without (restic), `snapshots: null` without
 * the Kopia password. An unreadable repository is an entry plus a `repository-unreadable` diagnostic; a
 * Kopia format blob beside a PVC folder is a `kopia-prefix-without-slash` diagnostic. A storage outage
 * throws, failing the whole poll.
 */
export function s3PrefixSource(config: S3PrefixSourceConfig, context: S3PrefixContext): CatalogSource {
  const store = storeFor(config, true)
  // Opened repositories survive across polls: their snapshot files are read once.
  const openedRestic = new OpenedRepositories<ResticRepository>()
  const openedKopia = new OpenedRepositories<OpenedKopia>()

  const entry = (namespace: string, pvc: string, kind: 'restic' | 'kopia', summary: SnapshotSummary): CatalogEntry => catalogEntry(config.name, namespace, pvc, kind, summary)

  const unreadable = (namespace: string, pvc: string, repo: BlobStore, message: string): CatalogDiagnostic => {
    const s3 = s3Where(config, `${namespace}/${pvc}/`)
    return { code: 'repository-unreadable', namespace, pvc, location: repo.location, ...(s3 ? { s3 } : {}), message }
  }

  /** With the password: exact times and sizes. A repository it cannot open still counts by its listing. */
  async function readRestic(namespace: string, pvc: string, repo: BlobStore, listed: readonly BlobInfo[], password: string, signal: AbortSignal): Promise<Found> {
    const key = `${namespace}/${pvc}`
    try {
      const repository = await openedRestic.get(key, password, () => ResticRepository.open(repo, password, { signal, keyCache: context.resticKeys }))
      const snapshots = await repository.listSnapshots(signal)
      return { entry: entry(namespace, pvc, 'restic', summarizeResticSnapshots(snapshots)) }
    } catch (error) {
      openedRestic.forget(key)
      // An outage fails the whole poll (last known state kept); a bad repository is one diagnostic.
      if (!(error instanceof ResticError) || error.code === 'storage') throw error
      return { entry: entry(namespace, pvc, 'restic', listingSummary(listed)), diagnostic: unreadable(namespace, pvc, repo, error.message) }
    }
  }

  /** A per-PVC Kopia repository: every snapshot in it belongs to the PVC, whatever its identity. */
  async function readKopia(namespace: string, pvc: string, repo: BlobStore, password: string, signal: AbortSignal): Promise<Found> {
    const key = `${namespace}/${pvc}`
    try {
      const s3 = s3Where(config, `${namespace}/${pvc}/`)
      const cached = await openedKopia.get(key, password, () => openKopia(repo, password, s3 ? { s3 } : { filesystem: repo.location }, signal))
      const summary = summarizeKopiaSources(await cached.repository.poll(signal))
      // An initialized repository without a complete snapshot restores nothing: no backup.
      return summary.snapshots === 0 ? { repository: cached.reference } : { entry: entry(namespace, pvc, 'kopia', summary), repository: cached.reference }
    } catch (error) {
      openedKopia.forget(key)
      if (!(error instanceof KopiaError)) throw error
      return { entry: entry(namespace, pvc, 'kopia', { snapshots: null }), diagnostic: unreadable(namespace, pvc, repo, error.message) }
    }
  }

  async function examine(namespace: string, pvc: string, passwords: { restic?: string; kopia?: string }, signal: AbortSignal): Promise<Found> {
    const repo = store.sub(`${namespace}/${pvc}/`)
    const snapshots = (await listAll(repo, 'snapshots/', { delimiter: '/', signal })).blobs.filter((b) => isStorageId(b.key.slice('snapshots/'.length)))
    if (snapshots.length > 0) {
      if (passwords.restic !== undefined) return readRestic(namespace, pvc, repo, snapshots, passwords.restic, signal)
      return { entry: entry(namespace, pvc, 'restic', listingSummary(snapshots)) }
    }
    openedRestic.forget(`${namespace}/${pvc}`)
    // One listing tells a Kopia repository (kopia.repository) from an initialized restic one (keys/).
    const marker = await repo.listPage('k', { delimiter: '/', signal })
    if (marker.blobs.some((b) => b.key === KOPIA_FORMAT_BLOB)) {
      if (passwords.kopia !== undefined) return readKopia(namespace, pvc, repo, passwords.kopia, signal)
      // Without kopiaPasswordFile nothing says whether it holds a snapshot: "unknown", never a backup.
      return { entry: entry(namespace, pvc, 'kopia', { snapshots: null }) }
    }
    openedKopia.forget(`${namespace}/${pvc}`)
    return {}
  }

  async function poll(signal: AbortSignal): Promise<SourcePoll> {
    const passwords = {
      ...(config.resticPasswordFile !== undefined ? { restic: await readSecretFile(config.resticPasswordFile, 'resticPasswordFile') } : {}),
      ...(config.kopiaPasswordFile !== undefined ? { kopia: await readSecretFile(config.kopiaPasswordFile, 'kopiaPasswordFile') } : {}),
    }
    const namespaces = (await listAll(store, '', { delimiter: '/', signal })).prefixes.map((p) => p.slice(0, -1))
    const pvcs: Array<readonly [string, string]> = []
    const diagnostics: CatalogDiagnostic[] = []
    await forEachLimit(namespaces, config.concurrency, async (namespace) => {
      const listing = await listAll(store, `${namespace}/`, { delimiter: '/', signal })
      for (const p of listing.prefixes) pvcs.push([namespace, p.slice(namespace.length + 1, -1)])
      for (const blob of listing.blobs) {
        const name = blob.key.slice(namespace.length + 1)
        if (!name.endsWith(KOPIA_FORMAT_BLOB) || name === KOPIA_FORMAT_BLOB) continue
        const pvc = name.slice(0, -KOPIA_FORMAT_BLOB.length)
        const s3 = s3Where(config, `${namespace}/${pvc}`)
        diagnostics.push({
          code: 'kopia-prefix-without-slash', namespace, pvc, location: `${store.location}${namespace}/${pvc}`, ...(s3 ? { s3 } : {}),
          message: `a Kopia repository sits at ${store.location}${blob.key} (written by a mover that dropped the trailing slash of the prefix, VolSync fork v0.15.43-v0.16.10); current movers look under ${store.location}${namespace}/${pvc}/ and will create a new, empty repository there`,
        })
      }
    }, signal)
    const found: Found[] = new Array(pvcs.length)
    await forEachLimit(pvcs, config.concurrency, async ([namespace, pvc], i) => {
      found[i] = await examine(namespace, pvc, passwords, signal)
    }, signal)
    const byKey = (a: { namespace?: string; pvc?: string }, b: { namespace?: string; pvc?: string }) => `${a.namespace}/${a.pvc}`.localeCompare(`${b.namespace}/${b.pvc}`)
    return {
      entries: found.flatMap((f) => (f.entry ? [f.entry] : [])).sort(byKey),
      diagnostics: [...diagnostics, ...found.flatMap((f) => (f.diagnostic ? [f.diagnostic] : []))].sort(byKey),
      repositories: found.flatMap((f) => (f.repository ? [f.repository] : [])),
    }
  }

  return { name: config.name, type: 's3-prefix', poll }
}

/** Without the password: the number of snapshot files and the newest one's upload time. */
function listingSummary(snapshots: readonly BlobInfo[]): SnapshotSummary {
  const newest = snapshots.reduce((max, b) => Math.max(max, b.modifiedMs), 0)
  return newest > 0 ? { snapshots: snapshots.length, newest: new Date(newest).toISOString() } : { snapshots: snapshots.length }
}

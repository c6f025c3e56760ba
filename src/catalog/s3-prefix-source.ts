// Per-PVC repositories at <prefix><namespace>/<pvc>/ (VolSync's one-repository-per-PVC layout),
// restic or Kopia, on S3 or in a directory. A repository is a backup only when it holds a
// snapshot: VolSync's restore of an initialized, empty repository "succeeds" with an empty volume.
// Opening a repository costs a key derivation (scrypt, ~0.2-0.5 s), so in the server a poll answers
// from the listing first (a snapshot file proves a restic backup) and reads what it has not opened
// yet in the background, a few derivations at a time, publishing exact figures as they come.
// Every poll lists the namespaces and their PVC folders, so a new or removed repository is seen
// within one interval; a repository with a known backup is examined again only once per
// catalog.backupRecheckInterval (recheck-schedule.ts), its last answer standing in between.
import { forEachLimit } from '../async/for-each-limit.ts'
import type { S3PrefixSourceConfig } from '../config/schema.ts'
import { readSecretFile } from '../config/secret-file.ts'
import { KopiaError } from '../kopia/errors.ts'
import { ResticError } from '../restic/errors.ts'
import type { ResticKeyCache } from '../restic/key-cache.ts'
import { ResticRepository } from '../restic/repository.ts'
import type { CatalogDiagnostic, CatalogEntry, OpenedRepository, SourcePoll } from '../state/catalog-state.ts'
import type { BlobInfo, BlobStore } from '../storage/blob-store.ts'
import { catalogEntry, type SnapshotSummary } from './catalog-entry.ts'
import type { CatalogSource, Refinement } from './source.ts'
import { storeFor } from './source-store.ts'
import { summarizeKopiaSources } from './kopia-summary.ts'
import { openKopia, type OpenedKopia } from './opened-kopia.ts'
import { OpenedRepositories } from './opened-repositories.ts'
import { countingListings, listNamespaceFolders, listNamespaces, listRepository, type RepositoryListing, scanNamespace } from './repository-listing.ts'
import { KOPIA_FORMAT_BLOB } from './repository-scan.ts'
import { recheckDue, type RecheckSetting } from './recheck-schedule.ts'
import { summarizeResticSnapshots } from './restic-summary.ts'

interface Found {
  entry?: CatalogEntry
  diagnostic?: CatalogDiagnostic
  repository?: OpenedRepository
}

/** A repository the listing found but that is not read yet, and how to read it (once, in the background). */
interface Unread {
  readonly key: string
  readonly kind: 'restic' | 'kopia'
  readonly password: string
  /** What the listing showed of it (restic: its snapshot files; Kopia: its format blob), to tell when to read again. */
  readonly signature: string
  readonly read: (signal: AbortSignal) => Promise<Found>
}

/** What one repository's examination gives: the answer now, and the read still owed (deferred mode only). */
interface Examined {
  readonly found: Found
  readonly unread?: Unread
}

type Passwords = { readonly restic?: string; readonly kopia?: string }

/**
 * The last poll's answer, kept so background reads can replace a repository's part of it, and so the
 * next poll can carry over the answers of repositories it does not examine again.
 */
interface Published {
  readonly passwords: Passwords
  readonly listingDiagnostics: readonly CatalogDiagnostic[]
  /** Every repository folder the poll listed, by `namespace/pvc`, in key order ({} when it holds no backup). */
  readonly found: Map<string, Found>
  /** When the poll started (S3PrefixContext.now). */
  readonly at: number
}

export interface S3PrefixContext {
  /** Derived restic keys, and the bound on derivations at once (ResticKeyCache.derive) for both kinds. */
  readonly resticKeys: ResticKeyCache
  /**
   * Decide restic repositories from their listing alone, never decrypting them (one-shot `review`: a
   * snapshot file proves the backup; times are upload times). Kopia repositories are still opened, since
   * their listing proves nothing. Entries read this way carry `exact: false`.
   */
  readonly resticFromListing?: boolean
  /**
   * How the layout is listed: `scan` (a flat scan of each namespace, a few requests per thousand keys) or
   * `per-repository` (listings of each repository's snapshots/). Default: `scan` on S3, where a listing
   * is a request; `per-repository` in a directory, where it is a readdir that never reads the packs.
   */
  readonly listing?: 'scan' | 'per-repository'
  /** MaxKeys of the scan's requests (tests page at a few keys); S3's default, 1,000, when absent. */
  readonly pageSize?: number
  /** Told the number of listing requests each poll made and how many repositories it examined (benchmarks, tests). */
  readonly onListed?: (requests: number, examined: number) => void
  /**
   * catalog.backupRecheckInterval, read at every poll (a reload changes it in place). Absent: every
   * repository is examined every poll.
   */
  readonly recheck?: RecheckSetting
  /** A monotonic clock in ms for the recheck schedule (tests and benchmarks step it); default performance.now. */
  readonly now?: () => number
  /** Tests: the store the source reads through, given the one its config names (e.g. to record its listings). */
  readonly wrapStore?: (store: BlobStore) => BlobStore
}

/** A background read's results are published at most this often while more are coming. */
const REFINED_PUBLISH_MS = 1000

/**
 * A namespace is scanned flat when at least this share of the repositories it held at the last poll is
 * due (a cold poll, a password change, many without a backup); otherwise it costs one delimiter listing
 * plus one or two listings per due repository. A scan reads every key of the namespace (s3rver's cost is
 * per key; S3's per 1,000-key page), so it pays only when a good part of the namespace is examined.
 */
const SCAN_WHEN_DUE_SHARE = 0.25

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
 *
 * Given a Refinement (the server's poller), a poll reads inline only repositories already open with the
 * current password (no key derivation); the others are answered from the listing with `exact: false`
 * (restic: counted snapshot files and upload time; Kopia: `snapshots: null`, unknown) and opened in the
 * background, `concurrency` at a time and at most `resticKeys`' bound deriving keys, each result published
 * through `refinement.publish` (at most once a second while more are coming, and when the last one is in).
 * Without one, every repository is read before the poll answers (`catalog`, tests).
 */
export function s3PrefixSource(config: S3PrefixSourceConfig, context: S3PrefixContext): CatalogSource {
  const configured = storeFor(config, true)
  const store = context.wrapStore ? context.wrapStore(configured) : configured
  // Opened repositories survive across polls: their snapshot files are read once.
  const openedRestic = new OpenedRepositories<ResticRepository>()
  const openedKopia = new OpenedRepositories<OpenedKopia>()
  // The last background read of each repository, success or failure, with the password and listing it
  // was made for: a repository that fails to open is not retried (nor its diagnostic dropped) until
  // either changes, and a read finished during a poll is not lost to that poll's listing-only answer.
  const readInBackground = new Map<string, { readonly password: string; readonly signature: string; readonly found: Found }>()
  const queued = new Set<string>()
  let published: Published | undefined

  const entry = (namespace: string, pvc: string, kind: 'restic' | 'kopia', summary: SnapshotSummary): CatalogEntry => catalogEntry(config.name, namespace, pvc, kind, summary)
  const pendingEntry = (namespace: string, pvc: string, kind: 'restic' | 'kopia', summary: SnapshotSummary): CatalogEntry => ({ ...entry(namespace, pvc, kind, summary), exact: false })

  const unreadable = (namespace: string, pvc: string, repo: BlobStore, message: string): CatalogDiagnostic => {
    const s3 = s3Where(config, `${namespace}/${pvc}/`)
    return { code: 'repository-unreadable', namespace, pvc, location: repo.location, ...(s3 ? { s3 } : {}), message }
  }

  /** With the password: exact times and sizes. A repository it cannot open still counts by its listing. */
  async function readRestic(namespace: string, pvc: string, repo: BlobStore, listed: readonly BlobInfo[], password: string, signal: AbortSignal): Promise<Found> {
    const key = `${namespace}/${pvc}`
    try {
      const repository = await openedRestic.get(key, password, () => context.resticKeys.derive(() => ResticRepository.open(repo, password, { signal, keyCache: context.resticKeys }), signal))
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
      const cached = await openedKopia.get(key, password, () => context.resticKeys.derive(() => openKopia(repo, password, s3 ? { s3 } : { filesystem: repo.location }, signal), signal))
      const summary = summarizeKopiaSources(await cached.repository.poll(signal))
      // An initialized repository without a complete snapshot restores nothing: no backup.
      return summary.snapshots === 0 ? { repository: cached.reference } : { entry: entry(namespace, pvc, 'kopia', summary), repository: cached.reference }
    } catch (error) {
      openedKopia.forget(key)
      if (!(error instanceof KopiaError)) throw error
      return { entry: entry(namespace, pvc, 'kopia', { snapshots: null }), diagnostic: unreadable(namespace, pvc, repo, error.message) }
    }
  }

  /**
   * A repository that is not open with `password`: its earlier background read when that was made for this
   * password and listing, else the listing's answer now and the read owed (deferred), else read now.
   */
  async function readOrDefer(deferred: boolean, listingAnswer: Found, unread: Unread, signal: AbortSignal): Promise<Examined> {
    const earlier = readInBackground.get(unread.key)
    if (earlier !== undefined && earlier.password === unread.password && earlier.signature === unread.signature) return { found: earlier.found }
    if (!deferred) return { found: await unread.read(signal) }
    return { found: listingAnswer, unread }
  }

  async function examine(listed: RepositoryListing, passwords: { restic?: string; kopia?: string }, deferred: boolean, signal: AbortSignal): Promise<Examined> {
    const { namespace, pvc, snapshots } = listed
    const key = `${namespace}/${pvc}`
    const repo = store.sub(`${namespace}/${pvc}/`)
    if (snapshots.length > 0) {
      const password = passwords.restic
      if (password === undefined) return { found: { entry: entry(namespace, pvc, 'restic', listingSummary(snapshots)) } }
      // A snapshot file proves the backup: the listing alone decides, the read only adds times and sizes.
      if (context.resticFromListing === true) return { found: { entry: pendingEntry(namespace, pvc, 'restic', listingSummary(snapshots)) } }
      if (openedRestic.isOpen(key, password)) return { found: await readRestic(namespace, pvc, repo, snapshots, password, signal) }
      const signature = snapshots.map((b) => b.key).sort().join(',')
      const listed = { entry: pendingEntry(namespace, pvc, 'restic', listingSummary(snapshots)) }
      return readOrDefer(deferred, listed, { key, kind: 'restic', password, signature, read: (s) => readRestic(namespace, pvc, repo, snapshots, password, s) }, signal)
    }
    openedRestic.forget(key)
    // A format blob tells a Kopia repository from an initialized restic one.
    const format = listed.format
    if (format !== undefined) {
      const password = passwords.kopia
      // Without kopiaPasswordFile nothing says whether it holds a snapshot: "unknown", never a backup.
      if (password === undefined) return { found: { entry: entry(namespace, pvc, 'kopia', { snapshots: null }) } }
      if (openedKopia.isOpen(key, password)) return { found: await readKopia(namespace, pvc, repo, password, signal) }
      // Its listing proves nothing either way: unknown until it is read.
      const listed = { entry: pendingEntry(namespace, pvc, 'kopia', { snapshots: null }) }
      // A password change rewrites the format blob: a repository that would not open is tried again then.
      const signature = `${format.size}:${format.modifiedMs}`
      return readOrDefer(deferred, listed, { key, kind: 'kopia', password, signature, read: (s) => readKopia(namespace, pvc, repo, password, s) }, signal)
    }
    openedKopia.forget(key)
    return { found: {} }
  }

  const byKey = (a: { namespace?: string; pvc?: string }, b: { namespace?: string; pvc?: string }) => `${a.namespace}/${a.pvc}`.localeCompare(`${b.namespace}/${b.pvc}`)

  function answer(state: Published): SourcePoll {
    const found = [...state.found.values()]
    return {
      entries: found.flatMap((f) => (f.entry ? [f.entry] : [])).sort(byKey),
      diagnostics: [...state.listingDiagnostics, ...found.flatMap((f) => (f.diagnostic ? [f.diagnostic] : []))].sort(byKey),
      repositories: found.flatMap((f) => (f.repository ? [f.repository] : [])),
    }
  }

  /** Reads the owed repositories in the background and publishes what they give, until `refinement.signal` aborts. */
  function readLater(unread: readonly Unread[], refinement: Refinement): void {
    if (unread.length === 0) return
    for (const u of unread) queued.add(u.key)
    let timer: NodeJS.Timeout | undefined
    let left = unread.length
    const flush = () => {
      clearTimeout(timer)
      timer = undefined
      if (published && !refinement.signal.aborted) refinement.publish(answer(published))
    }
    refinement.signal.addEventListener('abort', () => clearTimeout(timer), { once: true })
    void forEachLimit(unread, config.concurrency, async (u) => {
      try {
        const found = await u.read(refinement.signal)
        readInBackground.set(u.key, { password: u.password, signature: u.signature, found })
        // Published only while the repository is still listed and its password unchanged.
        const current = published
        if (current !== undefined && current.found.has(u.key) && current.passwords[u.kind] === u.password) {
          current.found.set(u.key, found)
          timer ??= setTimeout(flush, REFINED_PUBLISH_MS)
        }
      } catch {
        // An outage or an abort: the listing's answer stands, and the next poll owes the read again.
      } finally {
        queued.delete(u.key)
        if (--left === 0) flush()
      }
    }, refinement.signal).catch(() => {
      // Aborted: the unstarted reads are owed to the next poller (a reload's new source).
      for (const u of unread) queued.delete(u.key)
    })
  }

  /** A Kopia format blob beside a PVC folder (`<ns>/<pvc>kopia.repository`): the stripped-slash movers' repository. */
  function prefixWithoutSlash(namespaceBlobs: readonly BlobInfo[]): CatalogDiagnostic[] {
    return namespaceBlobs.flatMap((blob) => {
      const namespace = blob.key.slice(0, blob.key.indexOf('/'))
      const name = blob.key.slice(namespace.length + 1)
      if (!name.endsWith(KOPIA_FORMAT_BLOB) || name === KOPIA_FORMAT_BLOB) return []
      const pvc = name.slice(0, -KOPIA_FORMAT_BLOB.length)
      const s3 = s3Where(config, `${namespace}/${pvc}`)
      return [{
        code: 'kopia-prefix-without-slash', namespace, pvc, location: `${store.location}${namespace}/${pvc}`, ...(s3 ? { s3 } : {}),
        message: `a Kopia repository sits at ${store.location}${blob.key} (written by a mover that dropped the trailing slash of the prefix, VolSync fork v0.15.43-v0.16.10); current movers look under ${store.location}${namespace}/${pvc}/ and will create a new, empty repository there`,
      }]
    })
  }

  /**
   * Whether this poll examines repository `key` (lists its snapshots, reads it when it can) rather than
   * carrying over the last poll's answer: always without a known backup, so a new backup is seen within
   * one interval; with one, when its kind's password changed, when the read its listing-only answer owes
   * did not land, or at its recheck time (recheck-schedule.ts).
   */
  function mustExamine(key: string, last: Published | undefined, passwords: Passwords, now: number, recheckMs: number): boolean {
    const previous = last?.found.get(key)
    const entry = previous?.entry
    if (last === undefined || previous === undefined || entry === undefined || previous.diagnostic !== undefined) return true
    if (entry.snapshots === null || entry.snapshots === 0 || entry.kind === 'static') return true
    if (last.passwords[entry.kind] !== passwords[entry.kind]) return true
    if (entry.exact === false && !queued.has(key)) return true
    return recheckDue(key, last.at, now, recheckMs)
  }

  /** The last poll's repositories by namespace (their `namespace/pvc` keys). */
  function knownByNamespace(last: Published | undefined): Map<string, string[]> {
    const known = new Map<string, string[]>()
    for (const key of last?.found.keys() ?? []) {
      const namespace = key.slice(0, key.indexOf('/'))
      const keys = known.get(namespace)
      if (keys) keys.push(key)
      else known.set(namespace, [key])
    }
    return known
  }

  async function poll(signal: AbortSignal, refinement?: Refinement): Promise<SourcePoll> {
    const passwords: Passwords = {
      ...(config.resticPasswordFile !== undefined ? { restic: await readSecretFile(config.resticPasswordFile, 'resticPasswordFile') } : {}),
      ...(config.kopiaPasswordFile !== undefined ? { kopia: await readSecretFile(config.kopiaPasswordFile, 'kopiaPasswordFile') } : {}),
    }
    const now = context.now ? context.now() : performance.now()
    const recheckMs = context.recheck?.backupRecheckMs ?? 0
    const last = published
    const due = (key: string) => mustExamine(key, last, passwords, now, recheckMs)
    const scanning = (context.listing ?? (config.s3 ? 'scan' : 'per-repository')) === 'scan'
    const known = knownByNamespace(last)
    const count = { requests: 0 }
    const root = countingListings(store, count)
    // Every repository folder found, with its listing when this poll examines it.
    const listed = new Map<string, RepositoryListing | undefined>()
    const perRepository: Array<{ readonly namespace: string; readonly pvc: string }> = []
    const namespaceBlobs: BlobInfo[] = []
    await forEachLimit(await listNamespaces(root, signal), config.concurrency, async (namespace) => {
      const before = known.get(namespace) ?? []
      // A new namespace (every one, cold) is all due: its scan also tells its folders.
      if (scanning && before.filter(due).length >= SCAN_WHEN_DUE_SHARE * before.length) {
        const scanned = await scanNamespace(root, namespace, { signal, ...(context.pageSize !== undefined ? { pageSize: context.pageSize } : {}) })
        for (const [key, repository] of scanned.repositories) listed.set(key, due(key) ? repository : undefined)
        namespaceBlobs.push(...scanned.namespaceBlobs)
        return
      }
      const folders = await listNamespaceFolders(root, namespace, signal)
      for (const pvc of folders.pvcs) {
        const key = `${namespace}/${pvc}`
        listed.set(key, undefined)
        if (due(key)) perRepository.push({ namespace, pvc })
      }
      namespaceBlobs.push(...folders.namespaceBlobs)
    }, signal)
    await forEachLimit(perRepository, config.concurrency, async ({ namespace, pvc }) => {
      listed.set(`${namespace}/${pvc}`, await listRepository(root, namespace, pvc, signal))
    }, signal)
    const keys = [...listed.keys()].sort()
    const repositories = keys.flatMap((key) => listed.get(key) ?? [])
    context.onListed?.(count.requests, repositories.length)
    const diagnostics = prefixWithoutSlash([...namespaceBlobs].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)))
    const examined: Examined[] = new Array(repositories.length)
    await forEachLimit(repositories, config.concurrency, async (repository, i) => {
      examined[i] = await examine(repository, passwords, refinement !== undefined, signal)
    }, signal)
    const answers = new Map<string, Found>()
    const unread: Unread[] = []
    examined.forEach((e, i) => {
      const key = `${repositories[i]!.namespace}/${repositories[i]!.pvc}`
      // A background read that finished while this poll listed is newer than its listing-only answer.
      const done = e.unread ? readInBackground.get(key) : undefined
      const fresh = done !== undefined && done.password === e.unread!.password && done.signature === e.unread!.signature
      answers.set(key, fresh ? done.found : e.found)
      if (e.unread && !fresh && !queued.has(key)) unread.push(e.unread)
    })
    // Read at the end: a background read that landed during this poll has replaced its part of `last`.
    const found = new Map<string, Found>(keys.map((key) => [key, answers.get(key) ?? last!.found.get(key)!]))
    for (const key of last?.found.keys() ?? []) {
      if (found.has(key)) continue
      // Gone from the listing: a repository made again at the same place is a new one.
      openedRestic.forget(key)
      openedKopia.forget(key)
    }
    for (const key of readInBackground.keys()) if (!found.has(key)) readInBackground.delete(key)
    published = { passwords, listingDiagnostics: diagnostics, found, at: now }
    if (refinement) readLater(unread, refinement)
    return answer(published)
  }

  return { name: config.name, type: 's3-prefix', poll }
}

/** Without the password: the number of snapshot files and the newest one's upload time. */
function listingSummary(snapshots: readonly BlobInfo[]): SnapshotSummary {
  const newest = snapshots.reduce((max, b) => Math.max(max, b.modifiedMs), 0)
  return newest > 0 ? { snapshots: snapshots.length, newest: new Date(newest).toISOString() } : { snapshots: snapshots.length }
}

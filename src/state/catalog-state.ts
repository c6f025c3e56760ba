// What the catalog knows about one namespace/pvc in one source. Shared by every source type.
import type { KopiaReadSummary } from '../kopia/read-summary.ts'

export type BackupKind = 'static' | 'restic' | 'kopia'

export interface CatalogEntry {
  readonly namespace: string
  readonly pvc: string
  /** Name of the configured source that found it. */
  readonly source: string
  readonly kind: BackupKind
  /** Snapshot count; null when the repository exists but could not be read (counts as "unknown", never as a backup). */
  readonly snapshots: number | null
  /** RFC 3339 time of the newest snapshot, when known. */
  readonly newest?: string
  readonly sizeBytes?: number
  /** Kopia: the identity (`username@hostname`) of the newest snapshot, which a pre-warmed RD must restore. */
  readonly identity?: { readonly username: string; readonly hostname: string }
  /**
   * false: read from the repository's listing only, while a password to read it is configured and the
   * read is pending (the count of snapshot files and the newest upload time for restic; `snapshots: null`
   * for Kopia, whose listing proves nothing). Absent once read exactly, and where no password is configured.
   */
  readonly exact?: false
}

/**
 * Something a source noticed that a person should fix; surfaced by `catalog`, `/status` and the
 * validation rules. Never contains a secret.
 */
export interface CatalogDiagnostic {
  /**
   * kopia-prefix-without-slash: objects at `<prefix>kopia.repository` (movers v0.15.43-v0.16.10)
   * that current movers will not find; repository-unreadable: a repository that exists but
   * could not be read (wrong password, corrupt file); kopia-no-backups: a shared Kopia repository
   * that was read without error but gives no PVC a backup (no complete snapshot, or none whose
   * source maps to a PVC), with what was read in `read`.
   */
  readonly code: 'kopia-prefix-without-slash' | 'repository-unreadable' | 'kopia-no-backups'
  readonly namespace?: string
  readonly pvc?: string
  /** Where: `s3://bucket/key-prefix` or a directory. */
  readonly location: string
  /** For S3 locations, to match a Secret's KOPIA_REPOSITORY: the key prefix without a trailing '/'. */
  readonly s3?: { readonly bucket: string; readonly prefix: string }
  readonly message: string
  /** kopia-no-backups: the counts of every layer read (index blobs, manifests by type, snapshots). */
  readonly read?: KopiaReadSummary
}

export type { PasswordVerdict } from './password-verdicts.ts'

/**
 * The outer Kopia format blob (`kopia.repository`) as plain immutable data: nothing secret, and all
 * that checking a password against the repository needs (derive the key, open the GCM box).
 */
export interface KopiaFormatData {
  /** The repository's uniqueID (the key-derivation salt), hex. */
  readonly uniqueId: string
  /** `keyAlgo`, e.g. `scrypt-65536-8-1`. */
  readonly keyAlgorithm: string
  /** The box's encryption, `AES256_GCM`. */
  readonly encryption: string
  /** The encrypted repository parameters (`encryptedBlockFormat`), base64. */
  readonly encryptedBlockFormat: string
}

/**
 * A Kopia repository the catalog opened, for the password-check rule: where it is, and what a
 * password verdict needs. Plain data (no live repository behind it); the verdicts themselves are
 * the snapshot's `passwordVerdicts`, keyed by `id`.
 */
export interface OpenedRepository {
  readonly kind: 'kopia'
  /** S3 bucket and key prefix (no trailing '/'). */
  readonly s3?: { readonly bucket: string; readonly prefix: string }
  /** A directory (a shared NFS repository): its path here. */
  readonly filesystem?: string
  readonly location: string
  /**
   * Hex sha256 of the format blob's uniqueID, key algorithm and encrypted box: everything a
   * verdict depends on, so a verdict kept under it cannot go stale (a password change rewrites
   * the box and so changes the id; byte-identical copies share their verdicts, rightly).
   */
  readonly id: string
  readonly format: KopiaFormatData
  /** sha256 hex of the password the catalog opened it with (never the password): 'opens' by construction. */
  readonly openedWithDigest: string
}

/** What one poll of a source found. */
export interface SourcePoll {
  readonly entries: readonly CatalogEntry[]
  readonly diagnostics?: readonly CatalogDiagnostic[]
  readonly repositories?: readonly OpenedRepository[]
}

/** One source's view after its latest poll. Kept across failed polls: `entries` are the last known good ones. */
export interface SourceState {
  readonly name: string
  readonly type: string
  /** ms since epoch of the last successful poll; null before the first success. */
  readonly lastSuccess: number | null
  /** ms since epoch of the last poll attempt, success or failure; null before the first attempt. */
  readonly lastAttempt: number | null
  /** Message of the last failed poll, cleared by a success. Never contains a secret. */
  readonly error: string | null
  readonly entries: readonly CatalogEntry[]
  /** From the last successful poll, like `entries`. */
  readonly diagnostics: readonly CatalogDiagnostic[]
  readonly repositories: readonly OpenedRepository[]
}

export interface CatalogState {
  /** Increments when entries or diagnostics change; an unchanged poll only refreshes the sources' times. */
  readonly revision: number
  readonly sources: readonly SourceState[]
  /** `namespace/pvc` -> entries from every source. */
  readonly byPvc: ReadonlyMap<string, readonly CatalogEntry[]>
}

/** The `namespace/pvc` key of CatalogState.byPvc. */
export function pvcKey(namespace: string, pvc: string): string {
  return `${namespace}/${pvc}`
}

/**
 * A CatalogState over `sources` with the index by PVC built (entries from every source, in source order).
 * Keeps `sources` as given, without copying.
 */
export function buildCatalogState(sources: readonly SourceState[], revision = 0): CatalogState {
  const byPvc = new Map<string, CatalogEntry[]>()
  for (const source of sources) {
    for (const entry of source.entries) {
      const key = pvcKey(entry.namespace, entry.pvc)
      const list = byPvc.get(key)
      if (list) list.push(entry)
      else byPvc.set(key, [entry])
    }
  }
  return { revision, sources, byPvc }
}

export const EMPTY_CATALOG: CatalogState = buildCatalogState([])

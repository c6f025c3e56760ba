// One shared Kopia repository (S3 or a directory), read natively; its sources
// `username@hostname:/path` map to PVCs by identity patterns (default: VolSync's mover,
// username = {{pvc}}, hostname = {{namespace}}).
import type { KopiaSourceConfig } from '../config/schema.ts'
import { compileIdentityPattern, combineIdentities } from '../config/identity-pattern.ts'
import { readSecretFile } from '../config/secret-file.ts'
import { describeRead } from '../kopia/read-summary.ts'
import type { KopiaPollResult, KopiaSourceSnapshots } from '../kopia/repository.ts'
import type { CatalogDiagnostic } from '../state/catalog-state.ts'
import { catalogEntry } from './catalog-entry.ts'
import { OpenedRepositories } from './opened-repositories.ts'
import { groupByPvc } from './group-by-pvc.ts'
import { summarizeKopiaSources } from './kopia-summary.ts'
import { type KopiaWhere, openKopia, type OpenedKopia } from './opened-kopia.ts'
import type { CatalogSource } from './source.ts'
import { storeFor } from './source-store.ts'

/** A function giving the namespace/pvc of a Kopia source, or null when it belongs to no single PVC. */
export function kopiaSourceOwner(identity: KopiaSourceConfig['identity']): (source: KopiaSourceSnapshots) => { namespace: string; pvc: string } | null {
  const fields = (['username', 'hostname', 'path'] as const).flatMap((field) => {
    const pattern = identity[field]
    return pattern === undefined ? [] : [{ field, pattern: compileIdentityPattern(pattern) }]
  })
  return (source) => combineIdentities(fields.map(({ field, pattern }) => pattern.match(source[field])))
}

const LISTED_SOURCES = 5

/**
 * kopia-no-backups for a repository read without error that gives no PVC a backup: says whether
 * it holds no complete snapshot at all or only snapshots of sources no identity pattern maps,
 * and carries the counts of every layer read so that "no backups" can be told apart from "read
 * nothing" (no index blob) or "read only policies" at a glance.
 */
export function kopiaNoBackupsDiagnostic(result: KopiaPollResult, location: string, identity: KopiaSourceConfig['identity'], s3?: CatalogDiagnostic['s3']): CatalogDiagnostic {
  const { read, sources } = result
  const names = sources.map((s) => `${s.username}@${s.hostname}:${s.path}`)
  const listed = names.slice(0, LISTED_SOURCES).join(', ') + (names.length > LISTED_SOURCES ? `, ... (${names.length - LISTED_SOURCES} more)` : '')
  const why = read.snapshots.complete === 0
    ? 'it holds no complete snapshot'
    : `none of its ${names.length} snapshot source(s) (${listed}) maps to a PVC by identity ${JSON.stringify(identity)}`
  return {
    code: 'kopia-no-backups',
    location,
    ...(s3 ? { s3 } : {}),
    message: `no PVC has a backup in this Kopia repository: ${why}; read ${describeRead(read)}`,
    read,
  }
}

/**
 * The catalog source of one shared Kopia repository: each poll reads `passwordFile` (SecretFileError when
 * unreadable or empty), opens the repository once per password (a rotated Secret reopens it), reads its
 * snapshot manifests from S3 or the directory, and gives one entry per PVC that `identity` maps a source
 * to. A poll with no entry carries a `kopia-no-backups` diagnostic. Throws (KopiaError, storage errors)
 * when the repository cannot be read; the poller keeps the last entries.
 */
export function kopiaSource(config: KopiaSourceConfig): CatalogSource {
  // Kopia uses its S3 prefix verbatim ("snapshot-" is a valid prefix), unlike the per-PVC layouts.
  const store = storeFor(config, false)
  const where: KopiaWhere = config.s3
    ? { s3: { bucket: config.s3.bucket, prefix: config.s3.prefix.replace(/\/+$/, '') } }
    : { filesystem: config.filesystem!.path }
  const ownerOf = kopiaSourceOwner(config.identity)
  const opened = new OpenedRepositories<OpenedKopia>()

  return {
    name: config.name,
    type: 'kopia',
    async poll(signal) {
      const password = await readSecretFile(config.passwordFile, 'passwordFile')
      const kopia = await opened.get('', password, () => openKopia(store, password, where, signal))
      const result = await kopia.repository.pollDetailed(signal)
      const entries = groupByPvc(result.sources, ownerOf)
        .map(({ namespace, pvc, items }) => catalogEntry(config.name, namespace, pvc, 'kopia', summarizeKopiaSources(items)))
      const diagnostics = entries.length > 0 ? [] : [kopiaNoBackupsDiagnostic(result, kopia.repository.location, config.identity, where.s3)]
      return { entries, diagnostics, repositories: [kopia.reference] }
    },
  }
}

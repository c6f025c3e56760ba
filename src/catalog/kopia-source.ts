// One shared Kopia repository (S3 or a directory), read natively; its sources
// `username@hostname:/path` map to PVCs by identity patterns (default: VolSync's mover,
// username = {{pvc}}, hostname = {{namespace}}).
import type { KopiaSourceConfig } from '../config/schema.ts'
import { compileIdentityPattern, combineIdentities, KUBERNETES_NAME_PATTERN } from '../config/identity-pattern.ts'
import { readSecretFile } from '../config/secret-file.ts'
import { KopiaError } from '../kopia/errors.ts'
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
import { KOPIA_HOSTNAME_PATTERN, KOPIA_USERNAME_PATTERN } from '../volsync/names.ts'

/**
 * What a variable may match in each field of a Kopia source: the username and hostname VolSync's mover
 * writes are its sanitized RS name (cut at 50, possibly ending in '-') and namespace
 * (volsync/names.ts), not Kubernetes names; the path is matched as a Kubernetes name.
 */
const FIELD_VARIABLE = { username: KOPIA_USERNAME_PATTERN, hostname: KOPIA_HOSTNAME_PATTERN, path: KUBERNETES_NAME_PATTERN } as const

/**
 * A function giving the namespace/pvc a Kopia snapshot source `username@hostname:path` is filed under, or
 * null when it belongs to no single PVC. With the default identity that is hostname/username as VolSync
 * wrote them: a PVC whose name VolSync sanitized or cut (`zigbee2mqtt.data` -> `zigbee2mqttdata`) is
 * listed under that username, and the PVC lookup maps a PVC's backup name to it (admission/backup-lookup.ts).
 */
export function kopiaSourceOwner(identity: KopiaSourceConfig['identity']): (source: KopiaSourceSnapshots) => { namespace: string; pvc: string } | null {
  const fields = (['username', 'hostname', 'path'] as const).flatMap((field) => {
    const pattern = identity[field]
    return pattern === undefined ? [] : [{ field, pattern: compileIdentityPattern(pattern, FIELD_VARIABLE[field]) }]
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
 * The message for a repository not found under an S3 prefix without a trailing '/': Kopia (and so this
 * reader) uses the prefix verbatim, so prefix `kopia/app` reads the key `kopia/appkopia.repository`, not
 * `kopia/app/kopia.repository`. Names the key actually read, says whether the repository exists one
 * '/' further, and what to set. Pure wording; `existsWithSlash` null when that was not checked.
 */
export function unslashedPrefixMessage(bucket: string, prefix: string, existsWithSlash: boolean | null): string {
  const read = `s3://${bucket}/${prefix}kopia.repository`
  const slashed = `s3://${bucket}/${prefix}/kopia.repository`
  const found = existsWithSlash === true
    ? `; a repository does exist at ${slashed}`
    : existsWithSlash === false ? `; there is none at ${slashed} either` : ''
  return `no Kopia repository at ${read}: the key read is ${prefix}kopia.repository, because Kopia uses s3.prefix "${prefix}" verbatim, without adding a '/'${found}. If the repository is in the folder ${prefix}/, set s3.prefix: "${prefix}/" (VolSync's movers from v0.16.11 always add the '/')`
}

/**
 * `error` from opening the repository, reworded when it is "no kopia.repository" under an S3 prefix
 * without a trailing '/' (unslashedPrefixMessage, after one stat of `<prefix>/kopia.repository`); any
 * other error is returned as it is.
 */
async function explainUnslashedPrefix(error: unknown, config: KopiaSourceConfig, signal: AbortSignal): Promise<unknown> {
  const s3 = config.s3
  if (!(error instanceof KopiaError) || error.code !== 'not-a-repository' || !s3 || s3.prefix === '' || s3.prefix.endsWith('/')) return error
  let existsWithSlash: boolean | null = null
  try {
    existsWithSlash = (await storeFor(config, true).stat('kopia.repository', signal)) !== null
  } catch {
    // The stat only sharpens the message; the original failure is what gets reported.
  }
  return new KopiaError('not-a-repository', error.location, unslashedPrefixMessage(s3.bucket, s3.prefix, existsWithSlash), { cause: error })
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
      const kopia = await opened.get('', password, () => openKopia(store, password, where, signal).catch(async (error: unknown) => {
        throw await explainUnslashedPrefix(error, config, signal)
      }))
      const result = await kopia.repository.pollDetailed(signal)
      const entries = groupByPvc(result.sources, ownerOf)
        .map(({ namespace, pvc, items }) => catalogEntry(config.name, namespace, pvc, 'kopia', summarizeKopiaSources(items)))
      const diagnostics = entries.length > 0 ? [] : [kopiaNoBackupsDiagnostic(result, kopia.repository.location, config.identity, where.s3)]
      return { entries, diagnostics, repositories: [kopia.reference] }
    },
  }
}

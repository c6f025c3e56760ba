// One shared Kopia repository (S3 or a directory), read natively; its sources
// `username@hostname:/path` map to PVCs by identity patterns (default: VolSync's mover,
// username = {{pvc}}, hostname = {{namespace}}).
import type { KopiaSourceConfig } from '../config/schema.ts'
import { compileIdentityPattern, combineIdentities } from '../config/identity-pattern.ts'
import { readSecretFile } from '../config/secret-file.ts'
import type { KopiaSourceSnapshots } from '../kopia/repository.ts'
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
      const entries = groupByPvc(await kopia.repository.poll(signal), ownerOf)
        .map(({ namespace, pvc, items }) => catalogEntry(config.name, namespace, pvc, 'kopia', summarizeKopiaSources(items)))
      return { entries, repositories: [kopia.reference] }
    },
  }
}

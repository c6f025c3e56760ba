// One shared restic repository (S3 or a directory) whose snapshots map to PVCs by identity
// patterns on hostname, username, tags or paths.
import type { ResticSourceConfig } from '../config/schema.ts'
import { readSecretFile } from '../config/secret-file.ts'
import type { ResticKeyCache } from '../restic/key-cache.ts'
import { ResticRepository, type ResticSnapshot } from '../restic/repository.ts'
import { catalogEntry } from './catalog-entry.ts'
import { OpenedRepositories } from './opened-repositories.ts'
import { groupByPvc } from './group-by-pvc.ts'
import { combineIdentities, compileIdentityPattern, type IdentityPattern, type PvcIdentity } from '../config/identity-pattern.ts'
import { summarizeResticSnapshots } from './restic-summary.ts'
import type { CatalogSource } from './source.ts'
import { storeFor } from './source-store.ts'

function anyMatch(pattern: IdentityPattern, values: readonly string[]): PvcIdentity | null {
  for (const value of values) {
    const match = pattern.match(value)
    if (match) return match
  }
  return null
}

/** A function giving the namespace/pvc of a snapshot, or null when it belongs to no single PVC. */
export function resticSnapshotOwner(identity: ResticSourceConfig['identity']): (snapshot: ResticSnapshot) => { namespace: string; pvc: string } | null {
  const hostname = identity.hostname !== undefined ? compileIdentityPattern(identity.hostname) : undefined
  const username = identity.username !== undefined ? compileIdentityPattern(identity.username) : undefined
  const tag = identity.tag !== undefined ? compileIdentityPattern(identity.tag) : undefined
  const path = identity.path !== undefined ? compileIdentityPattern(identity.path) : undefined
  return (snapshot) => combineIdentities([
    ...(hostname ? [hostname.match(snapshot.hostname)] : []),
    ...(username ? [username.match(snapshot.username ?? '')] : []),
    ...(tag ? [anyMatch(tag, snapshot.tags)] : []),
    ...(path ? [anyMatch(path, snapshot.paths)] : []),
  ])
}

/**
 * The catalog source of one shared restic repository: each poll reads `passwordFile` (SecretFileError when
 * unreadable or empty), opens the repository once per password (keys derived through the shared
 * `resticKeys` cache, within its bound on derivations at once), lists its snapshots and gives one entry per PVC that `identity` maps snapshots to.
 * Throws (ResticError, storage errors) when it cannot be read; the poller keeps the last entries.
 */
export function resticSource(config: ResticSourceConfig, context: { readonly resticKeys: ResticKeyCache }): CatalogSource {
  const store = storeFor(config, true)
  const ownerOf = resticSnapshotOwner(config.identity)
  const opened = new OpenedRepositories<ResticRepository>()

  return {
    name: config.name,
    type: 'restic',
    async poll(signal) {
      const password = await readSecretFile(config.passwordFile, 'passwordFile')
      const repository = await opened.get('', password, () => context.resticKeys.derive(() => ResticRepository.open(store, password, { signal, keyCache: context.resticKeys }), signal))
      const entries = groupByPvc(await repository.listSnapshots(signal), ownerOf)
        .map(({ namespace, pvc, items }) => catalogEntry(config.name, namespace, pvc, 'restic', summarizeResticSnapshots(items)))
      return { entries }
    },
  }
}

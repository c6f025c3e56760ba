// The `repository` volume (NFS or PVC from movers.repository) and its mount in the mover container.
import type { RepositoryConfig } from '../config/schema.ts'
import { asObject, asString, type JsonObject } from '../json.ts'

export const REPOSITORY_VOLUME = 'repository'

/** A fresh volume entry (never shares objects with the frozen config), or null when neither nfs nor pvc is set. */
export function repositoryVolume(config: RepositoryConfig): JsonObject | null {
  if (config.nfs) return { name: REPOSITORY_VOLUME, nfs: { server: config.nfs.server, path: config.nfs.path } }
  if (config.pvc) return { name: REPOSITORY_VOLUME, persistentVolumeClaim: { claimName: config.pvc.claimName } }
  return null
}

/**
 * The mover container's mount of the `repository` volume at `movers.repository.mountPath`; a fresh object
 * on each call.
 */
export function repositoryMount(config: RepositoryConfig): JsonObject {
  return { name: REPOSITORY_VOLUME, mountPath: config.mountPath }
}

/** "nfs nas.lan:/mnt/tank/kopia" / "pvc kopia-repository". */
export function describeRepository(config: RepositoryConfig): string {
  if (config.nfs) return `nfs ${config.nfs.server}:${config.nfs.path}`
  if (config.pvc) return `pvc ${config.pvc.claimName}`
  return 'no source'
}

/** The same wording for a volume found in a Job. */
export function describeVolumeSource(volume: JsonObject): string {
  const nfs = asObject(volume.nfs)
  if (nfs) return `nfs ${asString(nfs.server) ?? '?'}:${asString(nfs.path) ?? '?'}`
  const pvc = asObject(volume.persistentVolumeClaim)
  if (pvc) return `pvc ${asString(pvc.claimName) ?? '?'}`
  const other = Object.keys(volume).find((key) => key !== 'name')
  return other ?? 'no source'
}

/** Whether a volume points at the configured repository (extra fields such as readOnly are ignored). */
export function isConfiguredRepository(volume: JsonObject, config: RepositoryConfig): boolean {
  if (config.nfs) {
    const nfs = asObject(volume.nfs)
    return nfs?.server === config.nfs.server && nfs.path === config.nfs.path
  }
  if (config.pvc) return asObject(volume.persistentVolumeClaim)?.claimName === config.pvc.claimName
  return false
}

/** The first entry named `name` in a list of volumes or volumeMounts. */
export function findNamed(list: readonly unknown[], name: string): JsonObject | undefined {
  for (const entry of list) {
    const item = asObject(entry)
    if (item?.name === name) return item
  }
  return undefined
}

// VolSync's names and labels (volsync-reference.md sections 2 and 5), defined once.
import type { CatalogEntry } from '../state/catalog-state.ts'
import { asObject, asString, type JsonObject } from '../json.ts'

export const RD_API_GROUP = 'volsync.backube'
export const RD_KIND = 'ReplicationDestination'
export const RS_KIND = 'ReplicationSource'
export const CREATED_BY_LABEL = 'app.kubernetes.io/created-by'
export const KOPIA_MAINTENANCE_LABEL = 'volsync.backube/kopia-maintenance'
/** On KopiaMaintenance Jobs (cron-spawned and manual): the KopiaMaintenance object's name. */
export const MAINTENANCE_NAME_LABEL = 'volsync.backube/maintenance-name'
/** The group of every VolSync kind (ReplicationSource, ReplicationDestination, KopiaMaintenance). */
export const VOLSYNC_API_GROUP = RD_API_GROUP
/** Mover containers: src/dst Jobs run exactly one, at index 0; maintenance Jobs name theirs. */
export const KOPIA_CONTAINER = 'kopia'
export const RESTIC_CONTAINER = 'restic'
export const KOPIA_MAINTENANCE_CONTAINER = 'kopia-maintenance'

/** VolSync's own PVCs (temp copies, caches, vs-prime-*) carry created-by=volsync and are never restored into. */
export function isVolSyncOwned(labels: Readonly<Record<string, string>>): boolean {
  return labels[CREATED_BY_LABEL] === 'volsync'
}

export interface DataSourceReference {
  readonly apiGroup: string
  readonly kind: string
  readonly name: string
}

/** spec.dataSourceRef, else the mirrored spec.dataSource; null when neither is set. */
export function readDataSource(spec: JsonObject | undefined): DataSourceReference | null {
  const ref = asObject(spec?.dataSourceRef) ?? asObject(spec?.dataSource)
  if (!ref) return null
  return { apiGroup: asString(ref.apiGroup) ?? '', kind: asString(ref.kind) ?? '', name: asString(ref.name) ?? '' }
}

/** "the kopia backup in source garage (3 snapshots, newest 2026-03-15T04:00:00Z)". */
export function describeBackup(entry: CatalogEntry): string {
  const count = entry.snapshots === null ? 'unknown count' : `${entry.snapshots} snapshot${entry.snapshots === 1 ? '' : 's'}`
  return `the ${entry.kind} backup in source ${entry.source} (${count}${entry.newest ? `, newest ${entry.newest}` : ''})`
}

/** A Secret with any key of this prefix is a Kopia repository Secret (volsync-reference.md 4.1). */
export const KOPIA_KEY_PREFIX = 'KOPIA_'
/** The two keys the Kopia mover's controller requires (GetAndValidateSecret). */
export const KOPIA_REQUIRED_KEYS = ['KOPIA_REPOSITORY', 'KOPIA_PASSWORD'] as const

/**
 * A Secret's keys with their values as text: `data` decoded from base64, `stringData` as is, and
 * stringData winning on a shared key (as the API server merges them). A value that is not a string
 * maps to null. Holds secret values: callers must never put them in a message.
 */
export function readSecretValues(secret: JsonObject | undefined): ReadonlyMap<string, string | null> {
  const values = new Map<string, string | null>()
  const data = asObject(secret?.data)
  if (data) {
    for (const [key, value] of Object.entries(data)) {
      values.set(key, typeof value === 'string' ? Buffer.from(value, 'base64').toString('utf8') : null)
    }
  }
  const stringData = asObject(secret?.stringData)
  if (stringData) {
    for (const [key, value] of Object.entries(stringData)) values.set(key, typeof value === 'string' ? value : null)
  }
  return values
}

/**
 * Whether `values` (readSecretValues) hold any `KOPIA_` key: how the Kopia rules tell a Kopia repository
 * Secret from any other.
 */
export function isKopiaSecret(values: ReadonlyMap<string, string | null>): boolean {
  for (const key of values.keys()) if (key.startsWith(KOPIA_KEY_PREFIX)) return true
  return false
}

// The Kopia identity rules live in the one naming module; re-exported for the rules that read them here.
export { kopiaHostname, kopiaUsername } from '../volsync/names.ts'

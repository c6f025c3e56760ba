// What one poll of a Kopia repository read, layer by layer: index blobs, manifest contents,
// manifests (live by type, tombstones), snapshots. A repository that "has no backups" is usually
// explained by one of these numbers (no index blob, only policy/maintenance manifests, only
// incomplete snapshots), so the catalog shows them; counts only, never a label value or a key.

export interface KopiaIndexRead {
  /** Index blobs in the current set (epoch manager or legacy selection): what the view is built from. */
  readonly blobs: number
  /** Entries in those blobs, every prefix, an entry repeated in several blobs counted each time. */
  readonly entries: number
  /** Of those, manifest (`m`) entries. */
  readonly manifestEntries: number
}

export interface KopiaManifestContentsRead {
  /** Distinct manifest content IDs in the index, deleted ones included. */
  readonly ids: number
  /** Manifest contents whose newest index entry is not deleted: the ones read. */
  readonly live: number
  /** Distinct pack blobs holding the live ones. */
  readonly packs: number
}

export interface KopiaManifestsRead {
  /** Distinct manifest IDs across the live contents. */
  readonly ids: number
  readonly live: number
  /** IDs whose newest entry is a deletion tombstone. */
  readonly deleted: number
  /** Live manifests by their `type` label ('' when unlabelled), keys sorted. */
  readonly liveByType: Readonly<Record<string, number>>
}

export interface KopiaSnapshotsRead {
  /** Live snapshot manifests without `incomplete`: the ones that count as backups. */
  readonly complete: number
  /** Checkpoints and canceled snapshots: never a backup. */
  readonly incomplete: number
  /** `type: snapshot` manifests whose start or end time does not parse: skipped. */
  readonly unreadable: number
  /** `username@hostname:path` sources with at least one complete snapshot. */
  readonly sources: number
}

export interface KopiaReadSummary {
  readonly index: KopiaIndexRead
  readonly manifestContents: KopiaManifestContentsRead
  readonly manifests: KopiaManifestsRead
  readonly snapshots: KopiaSnapshotsRead
}

function plural(count: number, one: string, many = `${one}s`): string {
  return `${count} ${count === 1 ? one : many}`
}

/**
 * One line for people, e.g. "109 index blobs (398 entries, 398 manifest entries); 105 manifest
 * contents, 9 live in 6 packs; 10 manifests: 2 live (maintenance 1, policy 1), 8 deleted;
 * 0 complete snapshots (0 incomplete) from 0 sources".
 */
export function describeRead(read: KopiaReadSummary): string {
  const { index, manifestContents: c, manifests: m, snapshots: s } = read
  const types = Object.entries(m.liveByType).map(([type, count]) => `${type === '' ? '(no type)' : type} ${count}`).join(', ')
  const unreadable = s.unreadable === 0 ? '' : `, ${s.unreadable} unreadable`
  return [
    `${plural(index.blobs, 'index blob')} (${plural(index.entries, 'entry', 'entries')}, ${plural(index.manifestEntries, 'manifest entry', 'manifest entries')})`,
    `${plural(c.ids, 'manifest content')}, ${c.live} live in ${plural(c.packs, 'pack')}`,
    `${plural(m.ids, 'manifest')}: ${m.live} live${types === '' ? '' : ` (${types})`}, ${m.deleted} deleted`,
    `${plural(s.complete, 'complete snapshot')} (${s.incomplete} incomplete${unreadable}) from ${plural(s.sources, 'source')}`,
  ].join('; ')
}

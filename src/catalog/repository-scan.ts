// The flat scan of a per-PVC layout (<namespace>/<pvc>/<repository files>), pure part: where a key
// sits, and where the next request may start after a page so that it skips only keys no catalog
// answer depends on. S3 lists keys in byte order, so every repository is one contiguous run of keys,
// and of each the catalog needs only two things:
//   - restic: the files directly under `snapshots/`;
//   - Kopia: the format blob `kopia.repository` (its size and time tell a rewritten one).
// In byte order a restic repository is config, data/..., index/..., keys/..., locks/..., snapshots/...
// and a Kopia one _log..., kopia.blobcfg, kopia.repository, n..., p..., q..., x...: the bulk (data/
// and p... packs) lies before one of the two, so a page that ends in it jumps over the rest of it.

/** Where a key of the layout sits. */
export type KeyPlace =
  | { readonly at: 'root' }
  | { readonly at: 'namespace'; readonly namespace: string; readonly name: string }
  | { readonly at: 'repository'; readonly namespace: string; readonly pvc: string; readonly rest: string }

/** The Kopia format blob, relative to a repository. */
export const KOPIA_FORMAT_BLOB = 'kopia.repository'
/** restic's snapshot folder, relative to a repository. */
export const SNAPSHOTS_FOLDER = 'snapshots/'

// StartAfter returns keys strictly greater: the format blob's name less its last character is
// below it and above everything before it that a repository holds (keys/, index/, data/, _log...).
const BEFORE_FORMAT_BLOB = KOPIA_FORMAT_BLOB.slice(0, -1)

/** Splits `key` (relative to the layout's root) into namespace, PVC and the repository's own key. */
export function placeOf(key: string): KeyPlace {
  const first = key.indexOf('/')
  if (first === -1) return { at: 'root' }
  const second = key.indexOf('/', first + 1)
  if (second === -1) return { at: 'namespace', namespace: key.slice(0, first), name: key.slice(first + 1) }
  return { at: 'repository', namespace: key.slice(0, first), pvc: key.slice(first + 1, second), rest: key.slice(second + 1) }
}

/**
 * The StartAfter of the request that follows a truncated page whose last key is `last`: the largest key
 * such that nothing between `last` and it is a key the catalog reads (a snapshot file, a format blob) or
 * the first key of another repository. Within repository P (`<ns>/<P>/`):
 *   - before `kopia.repository`: just before it (skipping data/, index/, keys/, Kopia's _log and blobcfg);
 *   - from it up to `snapshots/`: `snapshots/` (skipping locks/ and Kopia's n, p, q packs);
 *   - inside `snapshots/`: `last` (every snapshot file counts);
 *   - past `snapshots/`: past P, `<ns>/<P>0` ('0' follows '/', so every key of P is below it, and a PVC
 *     named `<P>-x` or `<P>.x` sorts before P's keys, one named `<P>0` or `<P>_x` after; the one key
 *     skipped outside P is a namespace blob named `<P>0`, which is neither a repository nor a format blob).
 * Outside a repository (a namespace's own blobs, the root's): `last`. Never less than `last`.
 */
export function resumeAfter(last: string): string {
  const place = placeOf(last)
  if (place.at !== 'repository') return last
  const repository = `${place.namespace}/${place.pvc}/`
  const at = (target: string) => {
    const key = repository + target
    return key > last ? key : last
  }
  if (place.rest < KOPIA_FORMAT_BLOB) return at(BEFORE_FORMAT_BLOB)
  if (place.rest < SNAPSHOTS_FOLDER) return at(SNAPSHOTS_FOLDER)
  if (place.rest.startsWith(SNAPSHOTS_FOLDER)) return last
  return `${place.namespace}/${place.pvc}0`
}

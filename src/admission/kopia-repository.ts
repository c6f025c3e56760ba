// Where a Kopia repository Secret points, read the way the VolSync fork's mover entry.sh reads it
// (volsync-reference.md 4.1, "Repository URL handling"), so that the rules comparing a Secret with
// what the catalog opened agree with each other and with the mover. Pure.

/**
 * A Kopia repository location: an S3 bucket and key prefix (no leading or trailing '/', '' for the
 * bucket root; current movers put the objects under `<prefix>/`), or an absolute directory path
 * inside the mover (no trailing '/', except the root itself).
 */
export type KopiaRepositoryTarget =
  | { readonly s3: { readonly bucket: string; readonly prefix: string } }
  | { readonly filesystem: string }

// entry.sh's bucket pattern: lowercase only, 3 to 63 characters.
const S3_BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/
// entry.sh's prefix pattern (checked before its own slash handling); `..` is refused separately.
const S3_PREFIX = /^[a-zA-Z0-9._/-]*$/

/**
 * Parses a Kopia Secret's values (decoded, as readSecretValues returns them) into the repository
 * the mover would connect to, or null when the mover could not use them (or they name a backend
 * this server does not compare). The rules, in entry.sh's order:
 * - S3 when KOPIA_S3_BUCKET is non-empty or KOPIA_REPOSITORY (trimmed) starts with `s3://`. The
 *   bucket is KOPIA_S3_BUCKET when set, else the URL's host; it must be a lowercase S3 bucket name.
 *   The prefix is the URL's path (only from an `s3://` URL): `[a-zA-Z0-9._/-]`, no `..` anywhere,
 *   repeated '/' collapsed, leading and trailing '/' removed (movers >= v0.16.11 always add one).
 * - `filesystem:///path`: the absolute path, trailing '/' removed. `filesystem://path` (relative),
 *   a path with a `..` segment, and the bare `filesystem:` are refused (null).
 * - Anything else (other backends, empty): null.
 */
export function parseKopiaRepository(values: ReadonlyMap<string, string | null>): KopiaRepositoryTarget | null {
  const repository = values.get('KOPIA_REPOSITORY')?.trim() ?? ''
  const bucketOverride = values.get('KOPIA_S3_BUCKET')?.trim() ?? ''
  const url = /^s3:\/\/([^/]*)(.*)$/.exec(repository)
  if (bucketOverride !== '' || url) {
    const bucket = bucketOverride !== '' ? bucketOverride : url?.[1] ?? ''
    const path = url?.[2] ?? ''
    if (!S3_BUCKET.test(bucket) || !S3_PREFIX.test(path) || path.includes('..')) return null
    return { s3: { bucket, prefix: path.replace(/\/{2,}/g, '/').replace(/^\/+|\/+$/g, '') } }
  }
  const fs = /^filesystem:\/\/(\/.*)$/.exec(repository)
  if (!fs || fs[1]!.split('/').includes('..')) return null
  return { filesystem: fs[1]!.replace(/\/+$/, '') || '/' }
}

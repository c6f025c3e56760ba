// Which fs.watch events on a directory concern the files watched in it. A directory watch reports
// every name in the directory; reacting to all of them lets an unrelated busy writer (a log file
// beside the certificates) re-arm a debounce on every write, so a real change waits until it stops.

/**
 * Whether an fs.watch event on a directory, reporting `changed` (a name in it; null when the platform
 * does not say), may concern one of `names` (base names of the watched files in that directory): one of
 * them, an unknown name, or a name starting with `..`, since Kubernetes' atomic writer updates a Secret
 * or ConfigMap volume by swapping its `..data` link, so the files change with no event of their own
 * name. Pure.
 */
export function concernsWatchedFiles(changed: string | null, names: ReadonlySet<string>): boolean {
  return changed === null || names.has(changed) || changed.startsWith('..')
}

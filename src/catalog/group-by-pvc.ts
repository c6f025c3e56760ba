// Snapshots (restic) or sources (Kopia) of a shared repository, grouped by the PVC their identity
// maps to; those that map to none are left out. Sorted by namespace/pvc for stable output.

export interface PvcGroup<T> {
  readonly namespace: string
  readonly pvc: string
  readonly items: readonly T[]
}

/**
 * `items` grouped by the PVC `ownerOf` maps each to (null: left out), in first-seen order within a group,
 * groups sorted by `namespace/pvc`.
 */
export function groupByPvc<T>(items: Iterable<T>, ownerOf: (item: T) => { namespace: string; pvc: string } | null): PvcGroup<T>[] {
  const groups = new Map<string, { namespace: string; pvc: string; items: T[] }>()
  for (const item of items) {
    const owner = ownerOf(item)
    if (!owner) continue
    const key = `${owner.namespace}/${owner.pvc}`
    const group = groups.get(key)
    if (group) group.items.push(item)
    else groups.set(key, { ...owner, items: [item] })
  }
  return [...groups.keys()].sort().map((key) => groups.get(key)!)
}

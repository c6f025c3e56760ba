// Narrow, allocation-free readers for the untyped objects inside an AdmissionReview.
// An admission request can carry anything; these never throw on a wrong shape.

export type JsonObject = Record<string, unknown>

export function asObject(value: unknown): JsonObject | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as JsonObject) : undefined
}

export function asArray(value: unknown): readonly unknown[] {
  return Array.isArray(value) ? value : []
}

export function asString(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined
}

/** metadata.labels / metadata.annotations as a string map (non-string values are ignored). */
export function stringMap(object: JsonObject | undefined, field: 'labels' | 'annotations'): Readonly<Record<string, string>> {
  const map = asObject(asObject(object?.metadata)?.[field])
  if (!map) return EMPTY
  for (const value of Object.values(map)) {
    if (typeof value !== 'string') {
      return Object.fromEntries(Object.entries(map).filter((entry): entry is [string, string] => typeof entry[1] === 'string'))
    }
  }
  return map as Record<string, string>
}

const EMPTY: Readonly<Record<string, string>> = Object.freeze({})

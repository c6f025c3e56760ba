// Admission-specific readers for the untyped objects inside an AdmissionReview; the generic JSON
// readers (asObject, asString, ...) are in src/json.ts. These never throw on a wrong shape.
import { asObject, type JsonObject } from '../json.ts'

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

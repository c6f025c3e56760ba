// Plain-JSON helpers shared by the fake API server's modules.

export type JsonObject = { [key: string]: unknown }

export function isObject(value: unknown): value is JsonObject {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

export function clone<T>(value: T): T {
  return structuredClone(value)
}

export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true
  if (Array.isArray(a)) {
    return Array.isArray(b) && a.length === b.length && a.every((item, i) => deepEqual(item, b[i]))
  }
  if (isObject(a) && isObject(b)) {
    const keys = Object.keys(a)
    return keys.length === Object.keys(b).length && keys.every((k) => Object.hasOwn(b, k) && deepEqual(a[k], b[k]))
  }
  return false
}

export function str(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined
}

/** The object's metadata, created if absent (objects in the store always have one). */
export function meta(object: JsonObject): JsonObject {
  if (!isObject(object.metadata)) object.metadata = {}
  return object.metadata as JsonObject
}

/** Reads a dotted path such as `involvedObject.name`; missing fields read as ''. */
export function fieldValue(object: JsonObject, path: string): string {
  let current: unknown = object
  for (const part of path.split('.')) current = isObject(current) ? current[part] : undefined
  if (typeof current === 'string') return current
  if (typeof current === 'number' || typeof current === 'boolean') return String(current)
  return ''
}

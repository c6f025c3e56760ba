// Narrow, allocation-free readers for untyped JSON (admission requests, Kubernetes objects, Kopia
// blobs). Pure and dependency-free, so src/admission/ may import it. They never throw on a wrong shape.

/** A JSON object (or any plain object read from untyped input), keys not yet checked. */
export type JsonObject = Record<string, unknown>

/** True for a non-null object that is not an array. */
export function isObject(value: unknown): value is JsonObject {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

/** `value` when it is a non-null, non-array object; otherwise undefined. */
export function asObject(value: unknown): JsonObject | undefined {
  return isObject(value) ? value : undefined
}

/** `value` when it is an array; otherwise an empty array. */
export function asArray(value: unknown): readonly unknown[] {
  return Array.isArray(value) ? value : []
}

/** `value` when it is a string (the empty string included); otherwise undefined. */
export function asString(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined
}

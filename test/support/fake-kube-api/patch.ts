// PATCH bodies: JSON merge patch (RFC 7386) and JSON patch (RFC 6902, via fast-json-patch).
import fastJsonPatch from 'fast-json-patch'
import type { Operation } from 'fast-json-patch'
import { clone, isObject, type JsonObject } from './json.ts'
import { badRequest, unprocessable, unsupportedMediaType } from './status.ts'

export const PATCH_TYPES = ['application/json-patch+json', 'application/merge-patch+json', 'application/strategic-merge-patch+json'] as const

export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return clone(patch)
  const result: JsonObject = isObject(target) ? clone(target) : {}
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key]
    else result[key] = mergePatch(result[key], value)
  }
  return result
}

function jsonPatch(document: JsonObject, patch: unknown): unknown {
  if (!Array.isArray(patch)) throw badRequest('json: cannot unmarshal object into Go value of type jsonpatch.Patch')
  try {
    return fastJsonPatch.applyPatch(clone(document), patch as Operation[], true, false).newDocument
  } catch (error) {
    // The apiserver answers 422 for a patch that decodes but cannot be applied (failed test, missing path).
    throw unprocessable(error instanceof Error ? error.message.split('\n')[0]! : String(error))
  }
}

/** Applies a PATCH body of the given media type to a copy of the current object. */
export function applyPatch(current: JsonObject, contentType: string, body: unknown): unknown {
  switch (contentType) {
    case 'application/json-patch+json':
      return jsonPatch(current, body)
    case 'application/merge-patch+json':
    // Simplification: strategic merge patch is applied as a plain merge patch, so lists are replaced
    // whole instead of merged by their patchMergeKey, and $patch/$retainKeys directives are not understood.
    case 'application/strategic-merge-patch+json':
      if (!isObject(body)) throw badRequest('json: cannot unmarshal into Go value of type map[string]interface {}')
      return mergePatch(current, body)
    default:
      // Server-side apply (application/apply-patch+yaml) is routed to apply.ts before this.
      throw unsupportedMediaType(contentType, PATCH_TYPES)
  }
}

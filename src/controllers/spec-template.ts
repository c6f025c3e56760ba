// The templates of the objects the leader generates (prewarm.template for ReplicationDestinations,
// backup.template for ReplicationSources): rendered for one PVC, then merged under the generated
// fields. One implementation, so both controllers treat a template the same way. Pure.
import { renderName } from '../admission/name-template.ts'
import { isObject, type JsonObject } from '../json.ts'

/**
 * `value` with `{{pvc}}` and `{{namespace}}` rendered in every string it holds, at any depth (e.g.
 * `repository: "{{pvc}}-volsync-secret"`); keys, numbers and booleans are kept. A new value: `value` is
 * not changed.
 */
export function renderTemplate(value: unknown, vars: { readonly pvc: string; readonly namespace: string }): unknown {
  if (typeof value === 'string') return renderName(value, vars)
  if (Array.isArray(value)) return value.map((v) => renderTemplate(v, vars))
  if (isObject(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, renderTemplate(v, vars)]))
  return value
}

/** `base` with `over` merged in: objects merge key by key, anything else (lists included) in `over` wins. A new object. */
export function mergeSpec(base: JsonObject, over: JsonObject): JsonObject {
  const out: JsonObject = { ...base }
  for (const [key, value] of Object.entries(over)) {
    const current = out[key]
    out[key] = isObject(current) && isObject(value) ? mergeSpec(current, value) : value
  }
  return out
}

// labelSelector and fieldSelector query parameters, parsed the way the apiserver reads them.
import { fieldValue, isObject, meta, type JsonObject } from './json.ts'
import type { ResourceDef } from './resources.ts'
import { badRequest } from './status.ts'

type LabelRequirement =
  | { readonly op: 'exists' | 'notexists'; readonly key: string }
  | { readonly op: 'in' | 'notin'; readonly key: string; readonly values: readonly string[] }

/** Splits on commas that are not inside `in (a,b)` value lists. */
function splitTopLevel(text: string): string[] {
  const parts: string[] = []
  let depth = 0
  let current = ''
  for (const ch of text) {
    if (ch === '(') depth++
    if (ch === ')') depth--
    if (ch === ',' && depth === 0) {
      parts.push(current)
      current = ''
    } else {
      current += ch
    }
  }
  parts.push(current)
  return parts.map((p) => p.trim()).filter((p) => p !== '')
}

const KEY = String.raw`[A-Za-z0-9][-A-Za-z0-9_./]*`
const VALUE = String.raw`[-A-Za-z0-9_.]*`

function parseLabelRequirement(text: string): LabelRequirement {
  let m = new RegExp(`^!\\s*(${KEY})$`).exec(text)
  if (m) return { op: 'notexists', key: m[1]! }
  m = new RegExp(`^(${KEY})$`).exec(text)
  if (m) return { op: 'exists', key: m[1]! }
  m = new RegExp(`^(${KEY})\\s*(==|=|!=)\\s*(${VALUE})$`).exec(text)
  if (m) return { op: m[2] === '!=' ? 'notin' : 'in', key: m[1]!, values: [m[3]!] }
  m = new RegExp(`^(${KEY})\\s+(in|notin)\\s*\\(([^)]*)\\)$`).exec(text)
  if (m) {
    const values = m[3]!.split(',').map((v) => v.trim())
    if (values.some((v) => !new RegExp(`^${VALUE}$`).test(v))) throw badRequest(`unable to parse requirement: invalid label value in ${JSON.stringify(text)}`)
    return { op: m[2] === 'in' ? 'in' : 'notin', key: m[1]!, values }
  }
  throw badRequest(`unable to parse requirement: ${JSON.stringify(text)}`)
}

export type Matcher = (object: JsonObject) => boolean

export function parseLabelSelector(selector: string | null): Matcher {
  if (selector === null || selector.trim() === '') return () => true
  const requirements = splitTopLevel(selector).map(parseLabelRequirement)
  return (object) => {
    const labels = isObject(meta(object).labels) ? (meta(object).labels as JsonObject) : {}
    return requirements.every((r) => {
      const has = Object.hasOwn(labels, r.key)
      const value = labels[r.key]
      switch (r.op) {
        case 'exists': return has
        case 'notexists': return !has
        case 'in': return has && r.values.includes(String(value))
        case 'notin': return !has || !r.values.includes(String(value)) // != and notin match objects without the label
      }
    })
  }
}

export function parseFieldSelector(selector: string | null, d: ResourceDef): Matcher {
  if (selector === null || selector.trim() === '') return () => true
  const requirements = selector.split(',').map((part) => {
    const m = /^\s*([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(.*?)\s*$/.exec(part)
    if (!m) throw badRequest(`invalid selector: '${selector}'; can't understand '${part}'`)
    const field = m[1]!
    const path = field === 'metadata.name' || field === 'metadata.namespace' ? field : d.fields[field]
    if (path === undefined) throw badRequest(`field label not supported: ${field}`)
    return { path, negate: m[2] === '!=', value: m[3]! }
  })
  return (object) => requirements.every((r) => (fieldValue(object, r.path) === r.value) !== r.negate)
}

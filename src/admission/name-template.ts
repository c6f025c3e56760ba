// Renders names such as "{{pvc}}-dst" or `{{label "app.kubernetes.io/name"}}` from config.
// Variables: {{pvc}}, {{namespace}}, and (pvc.backupName) {{label "KEY"}}.
// A template is split into its parts once and the parts are remembered: every admission renders the
// same few config templates, and scanning each with a regular expression per request costs more than
// the rest of the name handling.

/** `{{label "KEY"}}`, spaces allowed inside the braces. */
const LABEL = /\{\{\s*label\s+"([^"]*)"\s*\}\}/g
const PVC = '{{pvc}}'
const NAMESPACE = '{{namespace}}'

/** One piece of a template: text as written, or a variable. */
type Part = string | { readonly pvc: true } | { readonly namespace: true } | { readonly label: string }

interface Compiled {
  /** For renderName: `{{label}}` left as text. */
  readonly plain: readonly Part[]
  /** For renderForPvc: `{{label "KEY"}}` a variable too. */
  readonly withLabels: readonly Part[]
}

// Bounded: spec templates (src/controllers/spec-template.ts) render every string of a config's spec
// templates, which is many but finite; past the bound the cache starts over.
const MAX_CACHED = 512
const compiled = new Map<string, Compiled>()

function splitVariables(text: string): Part[] {
  const parts: Part[] = []
  let at = 0
  for (;;) {
    const pvc = text.indexOf(PVC, at)
    const namespace = text.indexOf(NAMESPACE, at)
    const next = pvc === -1 ? namespace : namespace === -1 ? pvc : Math.min(pvc, namespace)
    if (next === -1) break
    if (next > at) parts.push(text.slice(at, next))
    parts.push(next === pvc ? { pvc: true } : { namespace: true })
    at = next + (next === pvc ? PVC.length : NAMESPACE.length)
  }
  if (at < text.length) parts.push(text.slice(at))
  return parts
}

function compile(template: string): Compiled {
  let found = compiled.get(template)
  if (found) return found
  const withLabels: Part[] = []
  let at = 0
  for (const match of template.matchAll(LABEL)) {
    withLabels.push(...splitVariables(template.slice(at, match.index)), { label: match[1]! })
    at = match.index + match[0].length
  }
  withLabels.push(...splitVariables(template.slice(at)))
  found = { plain: splitVariables(template), withLabels }
  if (compiled.size >= MAX_CACHED) compiled.clear()
  compiled.set(template, found)
  return found
}

/** `template` with every `{{pvc}}` and `{{namespace}}` replaced; any other `{{...}}` is left as it is. */
export function renderName(template: string, vars: { readonly pvc: string; readonly namespace: string }): string {
  let value = ''
  for (const part of compile(template).plain) {
    value += typeof part === 'string' ? part : 'pvc' in part ? vars.pvc : vars.namespace
  }
  return value
}

/** A rendered template, or why it cannot be rendered for this object (a person can act on `missing`). */
export type Rendered = { readonly value: string } | { readonly missing: string }

/**
 * `template` rendered for one PVC: `{{pvc}}` (its name; `pvc` null for a `generateName` PVC, whose name
 * the API server picks after admission), `{{namespace}}`, and `{{label "KEY"}}` (the value of its label
 * KEY). `missing` names every variable that has no value here, e.g. `label "app" (the PVC has no such
 * label)`; an empty result is `missing` too. Never throws.
 */
export function renderForPvc(template: string, vars: { readonly pvc: string | null; readonly namespace: string; readonly labels: Readonly<Record<string, string>> }): Rendered {
  let missing: string[] | undefined
  let pvcMissing = false
  let value = ''
  for (const part of compile(template).withLabels) {
    if (typeof part === 'string') value += part
    else if ('label' in part) {
      const label = Object.hasOwn(vars.labels, part.label) ? vars.labels[part.label] : undefined
      if (label === undefined || label === '') (missing ??= []).push(`label "${part.label}" (the PVC has no such label${label === '' ? ' value' : ''})`)
      else value += label
    } else if ('pvc' in part) {
      if (vars.pvc === null) pvcMissing = true
      else value += vars.pvc
    } else value += vars.namespace
  }
  if (pvcMissing) (missing ??= []).push('{{pvc}} (a generateName PVC has no name until the API server picks one, after admission)')
  if (missing) return { missing: missing.join(' and ') }
  if (value === '') return { missing: `a value: "${template}" renders empty` }
  return { value }
}

// Renders names such as "{{pvc}}-dst" or `{{label "app.kubernetes.io/name"}}` from config.
// Variables: {{pvc}}, {{namespace}}, and (pvc.backupName) {{label "KEY"}}.

/** `{{label "KEY"}}`, spaces allowed inside the braces. */
const LABEL = /\{\{\s*label\s+"([^"]*)"\s*\}\}/g

/** `template` with every `{{pvc}}` and `{{namespace}}` replaced; any other `{{...}}` is left as it is. */
export function renderName(template: string, vars: { readonly pvc: string; readonly namespace: string }): string {
  return template.replaceAll('{{pvc}}', vars.pvc).replaceAll('{{namespace}}', vars.namespace)
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
  const missing: string[] = []
  let value = template.replace(LABEL, (_all, key: string) => {
    const label = Object.hasOwn(vars.labels, key) ? vars.labels[key] : undefined
    if (label === undefined || label === '') {
      missing.push(`label "${key}" (the PVC has no such label${label === '' ? ' value' : ''})`)
      return ''
    }
    return label
  })
  if (value.includes('{{pvc}}')) {
    if (vars.pvc === null) missing.push('{{pvc}} (a generateName PVC has no name until the API server picks one, after admission)')
    else value = value.replaceAll('{{pvc}}', vars.pvc)
  }
  value = value.replaceAll('{{namespace}}', vars.namespace)
  if (missing.length > 0) return { missing: missing.join(' and ') }
  if (value === '') return { missing: `a value: "${template}" renders empty` }
  return { value }
}

// Renders names such as "{{pvc}}-dst" from config. Only the two documented variables exist.

/** `template` with every `{{pvc}}` and `{{namespace}}` replaced; any other `{{...}}` is left as it is. */
export function renderName(template: string, vars: { readonly pvc: string; readonly namespace: string }): string {
  return template.replaceAll('{{pvc}}', vars.pvc).replaceAll('{{namespace}}', vars.namespace)
}

// Renders names such as "{{pvc}}-dst" from config. Only the two documented variables exist.

export function renderName(template: string, vars: { readonly pvc: string; readonly namespace: string }): string {
  return template.replaceAll('{{pvc}}', vars.pvc).replaceAll('{{namespace}}', vars.namespace)
}

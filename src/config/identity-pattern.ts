// Patterns such as "{{namespace}}", "/data/{{namespace}}/{{pvc}}" or "{{pvc}}-backup": matched
// against a snapshot's hostname, username, tag or path to find the PVC it belongs to.

export interface PvcIdentity {
  namespace?: string
  pvc?: string
}

export interface IdentityPattern {
  readonly source: string
  readonly variables: ReadonlySet<'namespace' | 'pvc'>
  match(value: string): PvcIdentity | null
}

const VARIABLE = /\{\{(namespace|pvc)\}\}/g
/** Kubernetes names are DNS labels/subdomains: never '/', never empty. */
const NAME = '([a-z0-9](?:[a-z0-9.-]*[a-z0-9])?)'

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

/** The default text a variable matches: a Kubernetes name (no '/', never empty), as a regular-expression fragment. */
export const KUBERNETES_NAME_PATTERN = NAME.slice(1, -1)

/**
 * A matcher for a pattern such as `/data/{{namespace}}/{{pvc}}`: the literal parts must match exactly,
 * each variable a Kubernetes name (no '/', not empty) or, with `variable`, text matching that
 * regular-expression fragment (a Kopia username is not a Kubernetes name: VolSync's sanitized, cut RS
 * name may end in '-', volsync/names.ts), and a variable used twice the same text both times.
 * Never throws: any other `{{...}}` is literal text.
 */
export function compileIdentityPattern(source: string, variable: string = KUBERNETES_NAME_PATTERN): IdentityPattern {
  const group = `(${variable})`
  const variables: Array<'namespace' | 'pvc'> = []
  let regex = '^'
  let last = 0
  for (const found of source.matchAll(VARIABLE)) {
    const name = found[1] as 'namespace' | 'pvc'
    regex += escapeRegExp(source.slice(last, found.index))
    regex += variables.includes(name) ? `\\${variables.indexOf(name) + 1}` : group
    if (!variables.includes(name)) variables.push(name)
    last = found.index + found[0].length
  }
  regex += `${escapeRegExp(source.slice(last))}$`
  const compiled = new RegExp(regex)
  return {
    source,
    variables: new Set(variables),
    match(value) {
      const found = compiled.exec(value)
      if (!found) return null
      const identity: PvcIdentity = {}
      variables.forEach((name, i) => { identity[name] = found[i + 1] })
      return identity
    },
  }
}

/**
 * Combines the matches of several fields: every pattern must match, and a variable captured by
 * two fields must agree. null when the snapshot does not belong to one PVC.
 */
export function combineIdentities(matches: ReadonlyArray<PvcIdentity | null>): { namespace: string; pvc: string } | null {
  const combined: PvcIdentity = {}
  for (const match of matches) {
    if (match === null) return null
    for (const key of ['namespace', 'pvc'] as const) {
      const value = match[key]
      if (value === undefined) continue
      if (combined[key] !== undefined && combined[key] !== value) return null
      combined[key] = value
    }
  }
  return combined.namespace !== undefined && combined.pvc !== undefined ? { namespace: combined.namespace, pvc: combined.pvc } : null
}

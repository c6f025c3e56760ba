// Validates rendered Kubernetes objects against their OpenAPI schemas with kubernetes-models and its
// CRD packages (cert-manager, prometheus-operator, Flux, Argo CD), chosen by apiVersion and kind.

/** A model class of kubernetes-models: constructed from a plain object, `validate()` throws when invalid. */
type ModelClass = new (data: never) => { validate(): void }

// API group -> the package holding its models; the core groups are in kubernetes-models itself.
const CRD_PACKAGES: readonly [RegExp, string][] = [
  [/^cert-manager\.io$/, '@kubernetes-models/cert-manager'],
  [/^monitoring\.coreos\.com$/, '@kubernetes-models/prometheus-operator'],
  [/\.toolkit\.fluxcd\.io$/, '@kubernetes-models/flux-cd'],
  [/^argoproj\.io$/, '@kubernetes-models/argo-cd'],
]

/** The module path of the model of apiVersion/kind, e.g. `kubernetes-models/apps/v1/Deployment`. */
export function modelModule(apiVersion: string, kind: string): string {
  const group = apiVersion.includes('/') ? apiVersion.slice(0, apiVersion.indexOf('/')) : ''
  const crd = CRD_PACKAGES.find(([pattern]) => pattern.test(group))
  return `${crd ? crd[1] : 'kubernetes-models'}/${apiVersion}/${kind}`
}

/**
 * Validates one object against its schema. Throws with the object's kind/name and the schema's
 * complaint, or when no model exists for its apiVersion and kind (an object nothing can check is a
 * failure, not a pass).
 */
export async function validateObject(object: { apiVersion: string; kind: string; metadata?: { name?: string } }): Promise<void> {
  const path = modelModule(object.apiVersion, object.kind)
  let Model: ModelClass | undefined
  try {
    Model = ((await import(path)) as Record<string, ModelClass | undefined>)[object.kind]
  } catch (error) {
    throw new Error(`no model for ${object.apiVersion} ${object.kind} (${path})`, { cause: error })
  }
  if (!Model) throw new Error(`no model for ${object.apiVersion} ${object.kind} (${path})`)
  try {
    new Model(object as never).validate()
  } catch (error) {
    throw new Error(`${object.kind} ${object.metadata?.name ?? '?'}: ${(error as Error).message}`, { cause: error })
  }
}

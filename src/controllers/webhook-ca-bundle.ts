// Writes the CA bundle into clientConfig.caBundle of every webhook in the named webhook
// configurations, so the API server trusts the serving certificate. A JSON patch that first tests
// metadata.resourceVersion: if the configuration changed since it was read (webhooks reordered by
// a Helm upgrade, say), the patch fails instead of writing to the wrong index, and is redone.
import {
  AdmissionregistrationV1Api,
  PatchStrategy,
  setHeaderOptions,
  type V1MutatingWebhookConfiguration,
  type V1ValidatingWebhookConfiguration,
} from '@kubernetes/client-node'
import { apiStatusCode } from './api-status.ts'

export interface WebhookConfigurationNames {
  readonly mutating: readonly string[]
  readonly validating: readonly string[]
}

export interface CaBundleSyncResult {
  /** `mutatingwebhookconfigurations/<name>` for each configuration patched. */
  readonly patched: string[]
  /** Configurations that do not exist (yet): retried at the next pass. */
  readonly missing: string[]
}

export interface JsonPatchOperation {
  readonly op: 'add' | 'test'
  readonly path: string
  readonly value: unknown
}

type WebhookConfiguration = V1MutatingWebhookConfiguration | V1ValidatingWebhookConfiguration

interface ConfigurationAccess {
  readonly kind: string
  read(name: string): Promise<WebhookConfiguration>
  patch(name: string, body: JsonPatchOperation[]): Promise<unknown>
}

const ATTEMPTS = 3
const JSON_PATCH = setHeaderOptions('Content-Type', PatchStrategy.JsonPatch)

/** The JSON patch that sets `caBundle` (base64) on every webhook that lacks it; empty when all have it. */
export function caBundlePatch(configuration: WebhookConfiguration, caBundle: string): JsonPatchOperation[] {
  const changes: JsonPatchOperation[] = []
  ;(configuration.webhooks ?? []).forEach((webhook, i) => {
    if (webhook.clientConfig?.caBundle === caBundle) return
    changes.push(
      webhook.clientConfig
        ? { op: 'add', path: `/webhooks/${i}/clientConfig/caBundle`, value: caBundle }
        : { op: 'add', path: `/webhooks/${i}/clientConfig`, value: { caBundle } },
    )
  })
  if (changes.length === 0) return []
  return [{ op: 'test', path: '/metadata/resourceVersion', value: configuration.metadata?.resourceVersion }, ...changes]
}

/**
 * Writes `caBundle` (base64 PEM) into every webhook of the named mutating and validating configurations,
 * one after another: each is read, then patched only if some webhook lacks it, with a resourceVersion test
 * so a concurrent change (409/422) means read and patch again, up to 3 times. A configuration that does
 * not exist is listed in `missing`, not an error; any other API error is thrown, and so is
 * `signal`'s reason when it aborts before a patch.
 */
export async function syncCaBundles(api: AdmissionregistrationV1Api, names: WebhookConfigurationNames, caBundle: string, signal?: AbortSignal): Promise<CaBundleSyncResult> {
  const mutating: ConfigurationAccess = {
    kind: 'mutatingwebhookconfigurations',
    read: (name) => api.readMutatingWebhookConfiguration({ name }),
    patch: (name, body) => api.patchMutatingWebhookConfiguration({ name, body }, JSON_PATCH),
  }
  const validating: ConfigurationAccess = {
    kind: 'validatingwebhookconfigurations',
    read: (name) => api.readValidatingWebhookConfiguration({ name }),
    patch: (name, body) => api.patchValidatingWebhookConfiguration({ name, body }, JSON_PATCH),
  }
  const result: CaBundleSyncResult = { patched: [], missing: [] }
  const work = [...names.mutating.map((name) => ({ access: mutating, name })), ...names.validating.map((name) => ({ access: validating, name }))]
  for (const { access, name } of work) {
    const outcome = await syncOne(access, name, caBundle, signal)
    if (outcome === 'patched') result.patched.push(`${access.kind}/${name}`)
    if (outcome === 'missing') result.missing.push(`${access.kind}/${name}`)
  }
  return result
}

async function syncOne(access: ConfigurationAccess, name: string, caBundle: string, signal: AbortSignal | undefined): Promise<'patched' | 'unchanged' | 'missing'> {
  for (let attempt = 1; ; attempt++) {
    let configuration: WebhookConfiguration
    try {
      configuration = await access.read(name)
    } catch (error) {
      if (apiStatusCode(error) === 404) return 'missing'
      throw error
    }
    const patch = caBundlePatch(configuration, caBundle)
    if (patch.length === 0) return 'unchanged'
    signal?.throwIfAborted()
    try {
      await access.patch(name, patch)
      return 'patched'
    } catch (error) {
      // 422: the resourceVersion test failed; 409: a conflict. Either way, read again.
      const code = apiStatusCode(error)
      if ((code !== 409 && code !== 422) || attempt >= ATTEMPTS) throw error
    }
  }
}

// Where the API-server credentials come from: an explicit kubeconfig file, else the pod's service
// account, else the usual KUBECONFIG / ~/.kube/config. Errors name what was tried, never a token.
import { existsSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { KubeConfig } from '@kubernetes/client-node'

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount'

export interface KubeConfigOptions {
  /** A kubeconfig file; when set, nothing else is tried. */
  readonly kubeconfig?: string
  /** For tests: a prefix put in front of the service-account directory, as client-node's loadFromCluster takes it. */
  readonly serviceAccountPrefix?: string
}

/**
 * Parser messages (js-yaml) quote the offending lines, which in a kubeconfig can hold a token or a
 * client key: keep only the first line, which names the problem and its position.
 */
function safeReason(error: unknown): string {
  const e = error as { code?: unknown; message?: unknown }
  if (typeof e.code === 'string') return e.code
  const first = typeof e.message === 'string' ? (e.message.split('\n')[0] ?? '') : ''
  return first.length > 0 && first.length <= 200 ? first : 'not a valid kubeconfig'
}

function fromFile(file: string): KubeConfig {
  const kc = new KubeConfig()
  try {
    kc.loadFromFile(file)
  } catch (error) {
    throw new Error(`cannot load kubeconfig ${file}: ${safeReason(error)}`)
  }
  return kc
}

function requireCluster(kc: KubeConfig, what: string): KubeConfig {
  const cluster = kc.getCurrentCluster()
  if (!cluster?.server) throw new Error(`${what} has no current context with a cluster server (current-context: ${JSON.stringify(kc.getCurrentContext() ?? '')})`)
  return kc
}

/** Loads credentials for the API server, or throws an Error listing every place that was tried. */
export function loadKubeConfig(options: KubeConfigOptions = {}): KubeConfig {
  const env = process.env
  if (options.kubeconfig !== undefined) return requireCluster(fromFile(options.kubeconfig), `kubeconfig ${options.kubeconfig}`)

  const tried: string[] = []
  const prefix = options.serviceAccountPrefix ?? ''
  const tokenFile = `${prefix}${SERVICE_ACCOUNT_DIR}/token`
  const host = env.KUBERNETES_SERVICE_HOST
  const port = env.KUBERNETES_SERVICE_PORT
  if (host && port && existsSync(tokenFile)) {
    const kc = new KubeConfig()
    kc.loadFromCluster(prefix)
    return requireCluster(kc, 'the in-cluster service account')
  }
  tried.push(host && port ? `in-cluster service account (no ${tokenFile})` : 'in-cluster service account (KUBERNETES_SERVICE_HOST/PORT not set)')

  const fromEnv = (env.KUBECONFIG ?? '').split(process.platform === 'win32' ? ';' : ':').filter((f) => f !== '')
  const home = env.HOME ?? homedir()
  const defaultFile = join(home, '.kube', 'config')
  const files = fromEnv.length > 0 ? fromEnv : [defaultFile]
  const existing = files.filter((f) => existsSync(f))
  if (existing.length > 0) {
    const [first, ...rest] = existing
    const kc = fromFile(first!)
    for (const file of rest) kc.mergeConfig(fromFile(file), true)
    return requireCluster(kc, `kubeconfig ${existing.join(', ')}`)
  }
  tried.push(fromEnv.length > 0 ? `KUBECONFIG (${fromEnv.join(', ')}: not found)` : `${defaultFile} (not found; KUBECONFIG not set)`)
  throw new Error(`no Kubernetes API credentials found; tried: ${tried.join('; ')}. Set kube.kubeconfig to a kubeconfig file, run in a pod with a service account, or set state.directory to read cluster state from YAML files instead`)
}

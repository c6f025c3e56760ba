// The repository Secret per app (backup.secret), applied by the leader: reads the shared Secret in the
// server's namespace, plans (backup-secret-plan.ts) and writes only what changed. It needs no read of
// app Secrets: it creates, and updates with a JSON patch that the API server applies only to a Secret
// carrying our managed-by label (a 422 otherwise: someone else's Secret, left alone). What it wrote is
// remembered by digest for this leadership term; every `resyncMs` everything is written again, which
// recreates a deleted Secret and undoes an edit. No value is ever logged: log lines name the Secret, the
// PVC and the keys, and an API error is reduced to its status code and reason.
import { ApiException, CoreV1Api, type KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node'
import type { Log } from '../log.ts'
import type { Snapshot } from '../state/snapshot.ts'
import { planBackupSecrets, secretBody, secretPatch, type DesiredSecret } from './backup-secret-plan.ts'

/** The API calls the controller makes; RBAC: get on the shared Secret (by name), create and patch Secrets. */
export interface SecretWrites {
  /** The shared Secret's `data` (base64 values); null when it does not exist (404). */
  readShared(namespace: string, name: string): Promise<Record<string, string> | null>
  /** false when a Secret of that name exists (409). */
  create(namespace: string, body: Record<string, unknown>): Promise<boolean>
  /** `patched`; `missing` (404); `not-managed` (422: the managed-by test failed). */
  patch(namespace: string, name: string, operations: Array<Record<string, unknown>>): Promise<'patched' | 'missing' | 'not-managed'>
}

/**
 * An API error without its body: the status code and the Status reason only, since a response body may
 * echo what was sent (a Secret's data).
 */
export class SecretWriteError extends Error {
  readonly code: number | undefined
  constructor(what: string, error: unknown) {
    const code = error instanceof ApiException ? error.code : undefined
    let reason = ''
    if (error instanceof ApiException) {
      try {
        const parsed = JSON.parse(typeof error.body === 'string' ? error.body : JSON.stringify(error.body)) as { reason?: unknown }
        if (typeof parsed.reason === 'string' && /^[A-Za-z]+$/.test(parsed.reason)) reason = ` ${parsed.reason}`
      } catch {
        // no reason to add
      }
    }
    super(`${what}: ${code === undefined ? (error instanceof Error ? error.name : 'error') : `HTTP ${code}${reason}`}`)
    this.name = 'SecretWriteError'
    this.code = code
  }
}

/** SecretWrites through @kubernetes/client-node with `kubeConfig`'s credentials. Errors are SecretWriteErrors (no body). */
export function secretWrites(kubeConfig: KubeConfig): SecretWrites {
  const core = kubeConfig.makeApiClient(CoreV1Api)
  const jsonPatch = setHeaderOptions('Content-Type', PatchStrategy.JsonPatch)
  const code = (error: unknown): number | undefined => (error instanceof ApiException ? error.code : undefined)
  return {
    async readShared(namespace, name) {
      try {
        const secret = await core.readNamespacedSecret({ namespace, name })
        return { ...(secret.data ?? {}) }
      } catch (error) {
        if (code(error) === 404) return null
        throw new SecretWriteError(`read Secret ${namespace}/${name}`, error)
      }
    },
    async create(namespace, body) {
      try {
        await core.createNamespacedSecret({ namespace, body })
        return true
      } catch (error) {
        if (code(error) === 409) return false
        throw new SecretWriteError(`create Secret ${namespace}/${String((body.metadata as { name?: unknown } | undefined)?.name)}`, error)
      }
    },
    async patch(namespace, name, operations) {
      try {
        await core.patchNamespacedSecret({ namespace, name, body: operations }, jsonPatch)
        return 'patched'
      } catch (error) {
        if (code(error) === 404) return 'missing'
        if (code(error) === 422) return 'not-managed'
        throw new SecretWriteError(`update Secret ${namespace}/${name}`, error)
      }
    },
  }
}

export interface BackupSecretOptions {
  readonly writes: SecretWrites
  readonly readSnapshot: () => Snapshot
  readonly log: Pick<Log, 'info' | 'warn' | 'error'>
  /** Everything is written again this often, even unchanged (default 10 min). */
  readonly resyncMs?: number
  readonly now?: () => number
}

/** Default period of the full rewrite (recreates deleted Secrets, undoes edits to ours). */
export const DEFAULT_SECRET_RESYNC_MS = 10 * 60_000

/** See the file comment. One instance per runtime; `lead()` at the start of every leadership term. */
export class BackupSecretController {
  readonly #options: BackupSecretOptions
  /** `namespace/name` -> digest written this term. */
  #written = new Map<string, string>()
  /** `namespace/name` of Secrets found not ours this term (said once). */
  #foreign = new Set<string>()
  #lastResync = 0
  #lastProblems = ''

  constructor(options: BackupSecretOptions) {
    this.#options = options
  }

  /** A new leadership term: forget what was written (another leader may have run meanwhile). */
  lead(): void {
    this.#written = new Map()
    this.#foreign = new Set()
    this.#lastResync = 0
    this.#lastProblems = ''
  }

  /**
   * One pass: read the shared Secret, plan, write what changed (everything on a resync). Stops before
   * the next write once `signal` aborts. A failed write is logged and retried on the next pass;
   * problems (missing shared Secret or key, unrenderable template) are logged when they change.
   */
  async run(signal: AbortSignal): Promise<void> {
    const snapshot = this.#options.readSnapshot()
    const config = snapshot.config.backup.secret
    if (!config) return
    const log = this.#options.log
    const now = this.#options.now?.() ?? Date.now()
    const sharedNamespace = snapshot.config.kube.namespace
    const shared = await this.#options.writes.readShared(sharedNamespace, config.from)
    const plan = planBackupSecrets(snapshot, config, shared, sharedNamespace)
    const problems = plan.problems.join('\n')
    if (problems !== this.#lastProblems) {
      for (const problem of plan.problems) log.warn({ loop: 'backup-secret' }, problem)
      this.#lastProblems = problems
    }
    const resync = now - this.#lastResync >= (this.#options.resyncMs ?? DEFAULT_SECRET_RESYNC_MS)
    if (resync) {
      this.#lastResync = now
      this.#foreign.clear()
    }
    for (const desired of plan.secrets) {
      if (signal.aborted) return
      const key = `${desired.namespace}/${desired.name}`
      if (!resync && (this.#written.get(key) === desired.digest || this.#foreign.has(key))) continue
      try {
        await this.#apply(desired, key)
      } catch (err) {
        log.error({ err, namespace: desired.namespace, secret: desired.name }, 'repository Secret not written; retrying on the next pass')
      }
    }
  }

  async #apply(desired: DesiredSecret, key: string): Promise<void> {
    const { writes, log } = this.#options
    const fields = { namespace: desired.namespace, secret: desired.name, pvc: desired.pvc, keys: Object.keys(desired.data).sort() }
    const patched = await writes.patch(desired.namespace, desired.name, secretPatch(desired))
    if (patched === 'not-managed') {
      this.#foreign.add(key)
      log.warn(fields, `Secret ${key} exists and was not created by volsync-autorestore: left as it is`)
      return
    }
    if (patched === 'missing') {
      // Created by someone else between the two calls: the next pass patches it or leaves it alone.
      if (!(await writes.create(desired.namespace, secretBody(desired)))) return
      log.info(fields, 'created repository Secret')
    } else {
      // A patch that changes nothing is not stored by the API server; say only what this term changed.
      const before = this.#written.get(key)
      if (before !== undefined && before !== desired.digest) log.info(fields, 'updated repository Secret')
    }
    this.#written.set(key, desired.digest)
  }
}

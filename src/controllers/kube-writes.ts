// The few writes the controllers make, through @kubernetes/client-node, behind one small interface
// so that the controllers stay testable and the RBAC they need is listed in one place:
//   replicationdestinations (volsync.backube): create, patch   (pre-warm)
//   replicationsources (volsync.backube): patch                 (missed-restore guard, pauseSource)
//   replicationsources (volsync.backube): create, patch         (backup generator: server-side apply,
//                                          which creates a missing object through PATCH; the API server
//                                          then also checks `create` (apiserver handlers/patch.go))
//   events (core): create                                       (missed-restore guard)
import { ApiException, CoreV1Api, type CoreV1Event, CustomObjectsApi, type KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node'

const VOLSYNC = { group: 'volsync.backube', version: 'v1alpha1' }

/** The field manager of the backup generator's server-side applies (metadata.managedFields). */
export const APPLY_FIELD_MANAGER = 'volsync-autorestore'

export interface KubeWrites {
  /** false when it already exists (another replica or a person made it first). */
  createReplicationDestination(namespace: string, body: Record<string, unknown>): Promise<boolean>
  triggerReplicationDestination(namespace: string, name: string, manual: string): Promise<void>
  pauseReplicationSource(namespace: string, name: string, annotations: Record<string, string>): Promise<void>
  /**
   * Server-side apply of `body` (a whole ReplicationSource) as field manager APPLY_FIELD_MANAGER:
   * creates it when missing, sets the fields `body` holds, and removes only fields this manager applied
   * before and `body` no longer holds, so a field it never applies (spec.paused) is never reset.
   * `force` takes fields another manager changed back (the API answers 409 Conflict without it).
   */
  applyReplicationSource(namespace: string, name: string, body: Record<string, unknown>, force: boolean): Promise<void>
  /** A plain create as field manager `fieldManager`; false when it already exists (409). */
  createReplicationSource(namespace: string, body: Record<string, unknown>, fieldManager: string): Promise<boolean>
  /**
   * Creates an Event with the name in `event.metadata.name`; false when an Event of that name
   * already exists (409): with a deterministic name that means "already reported", by this
   * replica or an earlier leader.
   */
  createEvent(namespace: string, event: CoreV1Event): Promise<boolean>
}

/** Whether `error` is the API's answer with this HTTP status (404 Not Found, 409 AlreadyExists/Conflict). */
export function isConflict(error: unknown, code: 404 | 409): boolean {
  return error instanceof ApiException && error.code === code
}

/** The writes above through @kubernetes/client-node with `kubeConfig`'s credentials; API errors other than the 409s named are thrown. */
export function kubeWrites(kubeConfig: KubeConfig): KubeWrites {
  const custom = kubeConfig.makeApiClient(CustomObjectsApi)
  const core = kubeConfig.makeApiClient(CoreV1Api)
  const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch)
  // client-node sends the body as JSON, which is YAML: what kubectl sends for --server-side too.
  const apply = setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply)
  return {
    async createReplicationDestination(namespace, body) {
      try {
        await custom.createNamespacedCustomObject({ ...VOLSYNC, namespace, plural: 'replicationdestinations', body })
        return true
      } catch (error) {
        if (isConflict(error, 409)) return false
        throw error
      }
    },
    async triggerReplicationDestination(namespace, name, manual) {
      await custom.patchNamespacedCustomObject({ ...VOLSYNC, namespace, plural: 'replicationdestinations', name, body: { spec: { trigger: { manual } } } }, merge)
    },
    async pauseReplicationSource(namespace, name, annotations) {
      await custom.patchNamespacedCustomObject({ ...VOLSYNC, namespace, plural: 'replicationsources', name, body: { metadata: { annotations }, spec: { paused: true } } }, merge)
    },
    async applyReplicationSource(namespace, name, body, force) {
      await custom.patchNamespacedCustomObject({ ...VOLSYNC, namespace, plural: 'replicationsources', name, body, fieldManager: APPLY_FIELD_MANAGER, force }, apply)
    },
    async createReplicationSource(namespace, body, fieldManager) {
      try {
        await custom.createNamespacedCustomObject({ ...VOLSYNC, namespace, plural: 'replicationsources', body, fieldManager })
        return true
      } catch (error) {
        if (isConflict(error, 409)) return false
        throw error
      }
    },
    async createEvent(namespace, event) {
      try {
        await core.createNamespacedEvent({ namespace, body: event })
        return true
      } catch (error) {
        if (isConflict(error, 409)) return false
        throw error
      }
    },
  }
}

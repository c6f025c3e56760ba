// Kubernetes Pod Security admission, as far as what this server injects is concerned: the level a
// namespace enforces (label `pod-security.kubernetes.io/enforce`) and the volume types each level
// lets a pod use (Pod Security Standards, kubernetes.io/docs/concepts/security/pod-security-standards:
// `baseline` forbids only `hostPath` volumes; `restricted` allows only configMap, csi, downwardAPI,
// emptyDir, ephemeral, persistentVolumeClaim, projected and secret). `audit` and `warn` labels never
// stop a pod, only annotate the audit event or warn the client. Pure.

export type PodSecurityLevel = 'privileged' | 'baseline' | 'restricted'
export type PodSecurityMode = 'enforce' | 'audit' | 'warn'

const LABEL_PREFIX = 'pod-security.kubernetes.io/'
/** Volume types the `restricted` profile allows ("Volume Types" control). */
const RESTRICTED_VOLUME_TYPES: ReadonlySet<string> = new Set(['configMap', 'csi', 'downwardAPI', 'emptyDir', 'ephemeral', 'persistentVolumeClaim', 'projected', 'secret'])
/** Volume types the `baseline` profile forbids ("HostPath Volumes" control). */
const BASELINE_FORBIDDEN_VOLUME_TYPES: ReadonlySet<string> = new Set(['hostPath'])

/**
 * The level a namespace's `pod-security.kubernetes.io/<mode>` label sets: null when the label is absent
 * (the cluster's default applies, `privileged` unless the API server's PodSecurity configuration says
 * otherwise, which is not visible here). An unknown value reads as `restricted`, as Pod Security
 * admission evaluates a namespace whose level it cannot parse.
 */
export function podSecurityLevel(labels: Readonly<Record<string, string>>, mode: PodSecurityMode): PodSecurityLevel | null {
  const value = labels[`${LABEL_PREFIX}${mode}`]
  if (value === undefined) return null
  return value === 'privileged' || value === 'baseline' ? value : 'restricted'
}

/** The type of a pod volume entry: its one key other than `name` (`nfs`, `persistentVolumeClaim`, ...). */
export function volumeType(volume: Readonly<Record<string, unknown>>): string {
  return Object.keys(volume).find((key) => key !== 'name') ?? ''
}

/** Whether a pod volume of type `type` passes `level` (null: no label, nothing known to forbid it). */
export function volumeAllowed(type: string, level: PodSecurityLevel | null): boolean {
  if (level === 'restricted') return RESTRICTED_VOLUME_TYPES.has(type)
  if (level === 'baseline') return !BASELINE_FORBIDDEN_VOLUME_TYPES.has(type)
  return true
}

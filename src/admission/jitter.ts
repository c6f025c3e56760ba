// The `jitter` initContainer that spreads scheduled backups over a window (design section 5).
// The delay is fixed per Job: the patch must be identical on every admission of the same Job, or
// VolSync's next UPDATE looks like drift on an immutable pod template (volsync-reference.md 2.4).
import { createHash } from 'node:crypto'
import { asObject, type JsonObject } from '../json.ts'

export const JITTER_CONTAINER = 'jitter'

/**
 * 0..maxSeconds from sha256("<namespace>/<name>"), first 4 bytes big-endian. Never the UID:
 * metadata.uid is empty at CREATE admission.
 */
export function jitterSeconds(namespace: string, name: string, maxSeconds: number): number {
  const digest = createHash('sha256').update(`${namespace}/${name}`).digest()
  return digest.readUInt32BE(0) % (Math.max(0, Math.floor(maxSeconds)) + 1)
}

/** A fresh container that sleeps `seconds`; passes Pod Security `restricted`. */
export function jitterContainer(image: string, seconds: number): JsonObject {
  return {
    name: JITTER_CONTAINER,
    image,
    imagePullPolicy: 'IfNotPresent',
    command: ['sh', '-c', `sleep ${seconds}`],
    resources: { requests: { cpu: '1m', memory: '4Mi' }, limits: { memory: '16Mi' } },
    securityContext: {
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      runAsUser: 65534,
      seccompProfile: { type: 'RuntimeDefault' },
    },
  }
}

/** The `jitter` entry of an initContainers list, if any. */
export function findJitter(initContainers: readonly unknown[]): JsonObject | undefined {
  for (const entry of initContainers) {
    const container = asObject(entry)
    if (container?.name === JITTER_CONTAINER) return container
  }
  return undefined
}

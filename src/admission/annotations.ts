// The one annotation prefix this server writes. Chosen once: renaming it would orphan the
// annotations on every object admitted before.
export const ANNOTATION_PREFIX = 'volsync-autorestore.io/'
export const DECISION_ANNOTATION = `${ANNOTATION_PREFIX}decision`
export const REASON_ANNOTATION = `${ANNOTATION_PREFIX}reason`

type Metadata = { annotations?: Record<string, string> }

/**
 * Records the decision on a mutated copy of an object (never on the request's own object). The
 * copy's `metadata` must be its own; the annotations map is replaced, not written into.
 */
export function annotate(object: Record<string, unknown>, decision: string, reason: string): void {
  const metadata = (object.metadata ??= {}) as Metadata
  // Assigned one by one: an object literal with computed keys after a spread takes V8's slow path.
  const annotations: Record<string, string> = { ...metadata.annotations }
  annotations[DECISION_ANNOTATION] = decision
  annotations[REASON_ANNOTATION] = reason
  metadata.annotations = annotations
}

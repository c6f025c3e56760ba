// The one table of what the webhook handles: for each entry of the Mutating/Validating
// WebhookConfigurations, its path, resources, operations, object selector (derived from config)
// and the rule that decides. Dispatch, the metric's kind label and the chart's webhook
// configurations all read this table, so they cannot disagree.
import type { Config, LabelSelector } from '../config/schema.ts'
import type { Snapshot } from '../state/snapshot.ts'
import { skip, type AdmissionInput, type AdmissionRule, type Decision } from './decision.ts'
import { decideMoverJob } from './mover-jobs.ts'
import { decidePvcCreate } from './pvc-restore.ts'
import { PVC_CHECKS, REPLICATION_DESTINATION_CHECKS, SECRET_CHECKS, validationRule } from './validation/validate.ts'
import { CREATED_BY_LABEL, KOPIA_MAINTENANCE_LABEL } from './volsync-objects.ts'

export type Webhook = 'mutate' | 'validate'

/** One resource as the API server names it in a webhook rule and in an AdmissionReview. */
export interface WebhookResource {
  readonly group: string
  readonly version: string
  /** Plural, as in RBAC and webhook rules. */
  readonly resource: string
  readonly kind: string
}

/** One webhook of a Mutating/ValidatingWebhookConfiguration. */
export interface WebhookEntry {
  /** The webhook's name in its configuration (a qualified name, unique within it). */
  readonly name: string
  readonly webhook: Webhook
  /** The server path: `/mutate` or `/validate`. */
  readonly path: `/${Webhook}`
  readonly resources: readonly WebhookResource[]
  readonly operations: readonly ('CREATE' | 'UPDATE')[]
  /** The objectSelector: only objects it matches are sent (undefined: every object). */
  readonly objectSelector: (config: Config) => LabelSelector | undefined
  /** Why this entry exists, for the chart and the README. */
  readonly purpose: string
  readonly decide: AdmissionRule
}

const PVC: WebhookResource = { group: '', version: 'v1', resource: 'persistentvolumeclaims', kind: 'PersistentVolumeClaim' }
const JOB: WebhookResource = { group: 'batch', version: 'v1', resource: 'jobs', kind: 'Job' }
const SECRET: WebhookResource = { group: '', version: 'v1', resource: 'secrets', kind: 'Secret' }
const RD: WebhookResource = { group: 'volsync.backube', version: 'v1alpha1', resource: 'replicationdestinations', kind: 'ReplicationDestination' }

const participating = (config: Config): LabelSelector => config.pvc.selector

/** Every webhook, mutating first. */
export const WEBHOOKS: readonly WebhookEntry[] = [
  {
    name: 'pvc.volsync-autorestore.io', webhook: 'mutate', path: '/mutate', resources: [PVC], operations: ['CREATE'],
    objectSelector: participating, decide: decidePvcCreate,
    purpose: 'restore a participating PVC from its backup, or let it start empty (dataSourceRef is immutable: CREATE only)',
  },
  {
    // VolSync's src/dst mover Jobs carry only this label (volsync-reference.md); maintenance Jobs another.
    name: 'mover-jobs.volsync-autorestore.io', webhook: 'mutate', path: '/mutate', resources: [JOB], operations: ['CREATE', 'UPDATE'],
    objectSelector: () => ({ matchLabels: { [CREATED_BY_LABEL]: 'volsync' } }), decide: decideMoverJob,
    purpose: 'jitter and the repository volume for backup and restore mover Jobs, identically on CREATE and UPDATE',
  },
  {
    name: 'maintenance-jobs.volsync-autorestore.io', webhook: 'mutate', path: '/mutate', resources: [JOB], operations: ['CREATE', 'UPDATE'],
    objectSelector: () => ({ matchLabels: { [KOPIA_MAINTENANCE_LABEL]: 'true' } }), decide: decideMoverJob,
    purpose: 'jitter and the repository volume for Kopia maintenance Jobs',
  },
  {
    name: 'secrets.validate.volsync-autorestore.io', webhook: 'validate', path: '/validate', resources: [SECRET], operations: ['CREATE', 'UPDATE'],
    objectSelector: () => undefined, decide: validationRule(SECRET_CHECKS),
    purpose: 'Kopia/restic repository Secret pitfalls (missing keys, plain http, prefix without slash, wrong password)',
  },
  {
    name: 'replicationdestinations.validate.volsync-autorestore.io', webhook: 'validate', path: '/validate', resources: [RD], operations: ['CREATE', 'UPDATE'],
    objectSelector: () => undefined, decide: validationRule(REPLICATION_DESTINATION_CHECKS),
    purpose: 'ReplicationDestination pitfalls (no sourceIdentity, no trigger, a restore source that can never give the volume populator an image)',
  },
  {
    name: 'pvc.validate.volsync-autorestore.io', webhook: 'validate', path: '/validate', resources: [PVC], operations: ['CREATE'],
    objectSelector: participating, decide: validationRule(PVC_CHECKS),
    purpose: 'a participating PVC whose dataSourceRef names an RD that does not exist and no backup is known',
  },
]

/** Kinds named in the table, for the admission metric's bounded `kind` label. */
export const HANDLED_KINDS: ReadonlySet<string> = new Set(WEBHOOKS.flatMap((w) => w.resources.map((r) => r.kind)))

/** The entry that handles this request on this webhook, matched by group and kind; undefined: not ours. */
export function findWebhook(webhook: Webhook, input: Pick<AdmissionInput, 'kind'>): WebhookEntry | undefined {
  return WEBHOOKS.find((w) => w.webhook === webhook && w.resources.some((r) => r.group === input.kind.group && r.kind === input.kind.kind))
}

/**
 * Dispatch: the decision of the table's rule for this request, or `skip` for a kind this webhook
 * does not handle. Pure; a rule that throws propagates (handleReview turns it into internal-error).
 */
export function decide(webhook: Webhook, snapshot: Snapshot, input: AdmissionInput, now: number): Decision {
  const entry = findWebhook(webhook, input)
  if (entry) return entry.decide(snapshot, input, now)
  const { group, kind } = input.kind
  const what = `kind ${group ? `${group}/` : ''}${kind}`
  return webhook === 'validate' ? skip('validation', `${what} is not validated`) : skip('mutate', `${what} is not handled by /mutate`)
}

// Which rule answers which request: the one dispatch table for both webhooks.
import type { Snapshot } from '../state/snapshot.ts'
import { skip, type AdmissionInput, type Decision } from './decision.ts'
import { decideMoverJob } from './mover-jobs.ts'
import { decidePvcCreate } from './pvc-restore.ts'
import { decideValidation } from './validation/validate.ts'

export type Webhook = 'mutate' | 'validate'

export function decide(webhook: Webhook, snapshot: Snapshot, input: AdmissionInput, now: number): Decision {
  if (webhook === 'validate') return decideValidation(snapshot, input, now)
  const { group, kind } = input.kind
  if (group === '' && kind === 'PersistentVolumeClaim') return decidePvcCreate(snapshot, input, now)
  if (group === 'batch' && kind === 'Job') return decideMoverJob(snapshot, input, now)
  return skip('mutate', `kind ${group ? `${group}/` : ''}${kind} is not handled by /mutate`)
}

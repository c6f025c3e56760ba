// The one readiness definition, used by /readyz and /status alike.
import type { LoopHealth } from '../loop.ts'

/** Whether the webhook's answers rest on real data, and what else a person should know. */
export interface Readiness {
  /** Every input that gates readiness has loaded once since this process started. */
  readonly ready: boolean
  /** What readiness still waits for, one line each; empty when ready. */
  readonly pending: readonly string[]
  /** Loops that are loaded but failing now: answers come from their last good state. */
  readonly degraded: readonly string[]
}

/**
 * Pure: readiness from the loops' health. A loop that loaded once stays "ready" while it fails,
 * because it keeps serving its last good state (its age is in /status and the metrics); turning
 * 503 then would make the API server skip the webhook on every replica at once (failurePolicy
 * Ignore) and start PVCs empty over good backups. The one exception is a loop's `unready` (e.g. the
 * served certificate has expired): then no answer reaches the API server anyway, and a 503 at least
 * says so (it is listed in `pending`, whether or not the loop gates readiness).
 */
export function readiness(health: readonly LoopHealth[]): Readiness {
  const pending: string[] = []
  const degraded: string[] = []
  for (const h of health) {
    if (h.gatesReadiness && !h.loaded) pending.push(`${h.name}: ${h.waitingFor ?? 'not loaded yet'}${h.error !== null ? ` (${h.error})` : ''}`)
    else if (h.unready !== undefined) pending.push(`${h.name}: ${h.unready}`)
    else if (h.error !== null) degraded.push(`${h.name}: ${h.error}`)
  }
  return { ready: pending.length === 0, pending, degraded }
}

// One contract for every background loop (config watch, cluster state, catalog poller, TLS, the
// leader's controllers), after controller-runtime's Runnable + NeedLeaderElection: the supervisor
// starts, stops and leads them, and readiness and /status read their health the same way.
import type { Config } from './config/schema.ts'

/** What a loop says about itself; read by readiness(), /status and the metrics. */
export interface LoopHealth {
  readonly name: string
  /**
   * Its input has loaded once since this process started. Never reset (not by a reload, not by a
   * failure): readiness means "the answers rest on real data", and a reload keeps the data.
   */
  readonly loaded: boolean
  /** Whether /readyz waits for `loaded` (inputs of decisions do; the leader's controllers do not). */
  readonly gatesReadiness: boolean
  /** The current failure in one line (never a secret), or null. A failing loop keeps its last good state. */
  readonly error: string | null
  /** ms since epoch of the last success, or null when never or not applicable. */
  readonly lastSuccess: number | null
  /** What it is waiting for while not loaded, in words (e.g. "first catalog poll not finished"). */
  readonly waitingFor?: string
  /**
   * Set when this replica cannot answer correctly now although it loaded, in words (e.g. "the served
   * certificate expired at ..."): readiness() reports it as pending, so /readyz is 503. Unlike `error`
   * (a failing input whose last good state still gives right answers), this is for a state in which
   * every answer fails, such as a served certificate the API server will refuse. Rare by design.
   */
  readonly unready?: string
}

/** A background loop. */
export interface Loop {
  readonly name: string
  /** Runs only while this replica holds the Lease, and is stopped the moment it is lost. */
  readonly leaderOnly: boolean
  /**
   * Starts the loop and settles once it has stopped after `signal` aborted. Must not reject: a
   * loop handles its own failures (retries, keeps the last good state, reports them in health()).
   */
  run(signal: AbortSignal): Promise<void>
  health(): LoopHealth
  /**
   * Applies a new valid config without forgetting what the loop knows. Absent: nothing of the
   * loop depends on config that can change live (keys marked restartRequired in the schema).
   */
  reconfigure?(config: Config): void
}

/** Loop health for a loop that has no input of its own to load. */
export function alwaysLoaded(name: string, error: string | null = null): LoopHealth {
  return { name, loaded: true, gatesReadiness: false, error, lastSuccess: null }
}

/** Resolves once `signal` has aborted (at once if it already has): the idle half of a Loop.run. */
export function untilAborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve()
    else signal.addEventListener('abort', () => resolve(), { once: true })
  })
}

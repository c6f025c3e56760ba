// A leader-only controller as a Loop: one pass at once, then every `intervalMs`, and within
// `reactMs` of any state change (a new backup, namespace, RD or PVC should not wait for the next
// tick). Passes never overlap; none starts after the leader's signal aborted.
import { errorMessage } from '../errors.ts'
import type { Log } from '../log.ts'
import { type Loop, type LoopHealth, untilAborted } from '../loop.ts'
import type { StateStore } from '../state/store.ts'

export interface ControllerLoopOptions {
  readonly name: string
  readonly store: StateStore
  /** One reconcile pass; `signal` is the leader's (check it before every write). Must not reject. */
  readonly pass: (signal: AbortSignal) => Promise<void>
  /** Periodic passes; absent when the controller keeps its own schedule (see `lead`). */
  readonly intervalMs?: number
  /** Called once per leadership term, before the first pass: a controller with its own schedule starts it here. */
  readonly lead?: (signal: AbortSignal) => void
  /** Default 500 ms: coalesces bursts of watch events into one pass. */
  readonly reactMs?: number
  readonly log: Log
}

/** See the file comment. health() is always loaded (controllers do not gate readiness). */
export function controllerLoop(options: ControllerLoopOptions): Loop {
  const reactMs = options.reactMs ?? 500
  let lastError: string | null = null
  return {
    name: options.name,
    leaderOnly: true,
    async run(signal) {
      let running: Promise<void> = Promise.resolve()
      let timer: NodeJS.Timeout | undefined
      let reactTimer: NodeJS.Timeout | undefined
      const pass = (): Promise<void> => {
        running = running.then(async () => {
          if (signal.aborted) return
          try {
            await options.pass(signal)
            lastError = null
          } catch (err) {
            lastError = errorMessage(err)
            options.log.error({ err, loop: options.name }, 'controller pass failed; retrying on the next one')
          }
        })
        return running
      }
      const tick = (): void => {
        void pass().finally(() => {
          if (!signal.aborted && options.intervalMs !== undefined) timer = setTimeout(tick, options.intervalMs).unref()
        })
      }
      const unsubscribe = options.store.subscribe(() => {
        if (signal.aborted || reactTimer) return
        reactTimer = setTimeout(() => {
          reactTimer = undefined
          void pass()
        }, reactMs).unref()
      })
      options.lead?.(signal)
      if (options.intervalMs !== undefined) tick()
      await untilAborted(signal)
      unsubscribe()
      clearTimeout(timer)
      clearTimeout(reactTimer)
      await running
    },
    health: (): LoopHealth => ({ name: options.name, loaded: true, gatesReadiness: false, error: lastError, lastSuccess: null }),
  }
}

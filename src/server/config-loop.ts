// The config file as a Loop: a valid change is handed to `apply` (which publishes it and
// reconfigures the other loops); an invalid one keeps the last good config and is reported.
import type { Config } from '../config/schema.ts'
import { ConfigWatcher } from '../config/watch.ts'
import type { Log } from '../log.ts'
import { type Loop, type LoopHealth, untilAborted } from '../loop.ts'

export interface ConfigLoopOptions {
  readonly file: string
  readonly initial: Config
  /** A new valid config that differs from the current one. */
  readonly apply: (next: Config) => void
  /** Counts reloads by result (the config_reloads_total metric). */
  readonly counted: (result: 'success' | 'failure') => void
  readonly log: Log
}

/** Watches the config file (see ConfigWatcher); health().error is the last rejected reload, cleared by a good one. */
export function configLoop(options: ConfigLoopOptions): Loop & { readonly watcher: ConfigWatcher } {
  const { log } = options
  const watcher = new ConfigWatcher(options.file, options.initial, {
    changed(next) {
      options.counted('success')
      options.apply(next)
    },
    rejected(error) {
      options.counted('failure')
      log.error({ err: error, file: options.file }, 'new configuration rejected; the last good one stays in force')
    },
  })
  return {
    name: 'config',
    leaderOnly: false,
    watcher,
    async run(signal) {
      await watcher.start()
      await untilAborted(signal)
      watcher.stop()
    },
    health(): LoopHealth {
      // Loaded at start (an invalid file never gets this far); a rejected reload is a degradation, not unreadiness.
      return { name: 'config', loaded: true, gatesReadiness: false, error: watcher.lastError === null ? null : `reload rejected: ${watcher.lastError}`, lastSuccess: null }
    },
  }
}

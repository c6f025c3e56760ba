// The backup catalog as a Loop: the poller over the configured sources, reconfigured in place on
// reload (see CatalogPoller.reconfigure), publishing every new CatalogState into the store.
import { CatalogPoller, type PollObserver } from '../catalog/poller.ts'
import type { CatalogSource } from '../catalog/source.ts'
import { createSource, createSourceContext } from '../catalog/sources.ts'
import { durationMs } from '../config/duration.ts'
import type { CatalogSourceConfig, Config } from '../config/schema.ts'
import type { Log } from '../log.ts'
import type { Loop, LoopHealth } from '../loop.ts'
import type { CatalogState } from '../state/catalog-state.ts'

export interface CatalogLoopOptions {
  readonly config: Config
  readonly publish: (catalog: CatalogState) => void
  readonly observer?: PollObserver
  readonly log: Log
}

/** The catalog loop; health().loaded turns true after the first round and stays true. */
export function catalogLoop(options: CatalogLoopOptions): Loop & { readonly poller: CatalogPoller } {
  // Shared across reloads: derived keys, so a changed source does not re-run scrypt.
  const context = createSourceContext(durationMs(options.config.catalog.backupRecheckInterval))
  const make = (config: CatalogSourceConfig): CatalogSource => ({ ...createSource(config, context), config })
  const sourcesOf = (config: Config): CatalogSource[] => config.catalog.sources.map(make)
  const poller = new CatalogPoller(sourcesOf(options.config), options.publish, {
    intervalMs: durationMs(options.config.catalog.interval),
    log: options.log,
    ...(options.observer ? { observer: options.observer } : {}),
  })
  return {
    name: 'catalog',
    leaderOnly: false,
    poller,
    run: (signal) => poller.run(signal),
    reconfigure(config) {
      // Read by the running sources at their next poll: a new recheck interval keeps their state.
      context.recheck.backupRecheckMs = durationMs(config.catalog.backupRecheckInterval)
      poller.reconfigure(sourcesOf(config), durationMs(config.catalog.interval))
    },
    health(): LoopHealth {
      const failing = poller.states.filter((s) => s.error !== null).map((s) => `source ${s.name}: ${s.error}`)
      const successes = poller.states.map((s) => s.lastSuccess).filter((t): t is number => t !== null)
      return {
        name: 'catalog',
        loaded: poller.firstPollDone,
        gatesReadiness: true,
        error: failing.length === 0 ? null : failing.join('; '),
        lastSuccess: successes.length === 0 ? null : Math.min(...successes),
        waitingFor: 'first catalog poll not finished',
      }
    },
  }
}

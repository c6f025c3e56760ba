// For the one-shot commands (review, catalog): config, cluster state and catalog read once,
// through the same code the server's loops use.
import { CatalogPoller } from '../catalog/poller.ts'
import { createSource, createSourceContext, type SourceContext } from '../catalog/sources.ts'
import { readClusterDirectory } from '../cluster/directory-source.ts'
import { ConfigError, defaultConfig, loadConfigFile } from '../config/load.ts'
import type { Config } from '../config/schema.ts'
import { errorMessage } from '../errors.ts'
import type { Log } from '../log.ts'
import { buildCatalogState, type CatalogState, type SourceState } from '../state/catalog-state.ts'
import { StateStore } from '../state/store.ts'
import type { Snapshot } from '../state/snapshot.ts'
import { UsageError } from './usage-error.ts'

/** The config file (or the built-in defaults without one); an invalid one is a UsageError naming the key. */
export function loadConfigOrUsage(file: string | undefined): Config {
  try {
    return file ? loadConfigFile(file) : defaultConfig()
  } catch (error) {
    if (error instanceof ConfigError) throw new UsageError(error.message)
    throw error
  }
}

// One per process, like the server's across reloads: derived keys are keyed by repository, key
// file and password, so a second one-shot poll in the same process (tests) skips scrypt.
let sharedContext: SourceContext | undefined

export interface PollOnceOptions {
  /**
   * Decide per-PVC restic repositories from their listing, without opening them (no key derivation):
   * enough for a decision, since a snapshot file proves the backup; their entries say `exact: false`.
   * Default false: every repository is read (exact times and sizes) before the poll answers.
   */
  readonly resticFromListing?: boolean
}

/** Polls every configured source once; per-source failures are in `sources`, never thrown. */
export async function pollCatalogOnce(config: Config, log: Log, options: PollOnceOptions = {}): Promise<{ catalog: CatalogState; sources: readonly SourceState[] }> {
  let catalog: CatalogState | undefined
  sharedContext ??= createSourceContext()
  const context: SourceContext = options.resticFromListing === true ? { ...sharedContext, resticFromListing: true } : sharedContext
  // refine: false, so that each poll reads what it means to before answering: nothing comes later.
  const poller = new CatalogPoller(config.catalog.sources.map((source) => createSource(source, context)), (c) => { catalog = c }, { intervalMs: 60_000, log, refine: false })
  await poller.pollAll()
  poller.stop()
  const sources = poller.states
  return { catalog: catalog ?? buildCatalogState(sources), sources }
}

/**
 * A snapshot as the server would publish it: `stateDir` (else state.directory) read once, every
 * catalog source polled once (`options` as pollCatalogOnce). An unreadable state directory is a UsageError.
 */
export async function oneShotSnapshot(config: Config, stateDir: string | undefined, log: Log, options: PollOnceOptions = {}): Promise<Snapshot> {
  const store = new StateStore(config)
  const dir = stateDir ?? config.state.directory
  if (dir) {
    try {
      const { state, problems } = await readClusterDirectory(dir)
      for (const problem of problems) log.warn(problem, 'ignored an object in the state directory')
      store.publish({ cluster: state })
    } catch (error) {
      throw new UsageError(`--state ${dir}: ${errorMessage(error)}`)
    }
  }
  const { catalog } = await pollCatalogOnce(config, log, options)
  return store.publish({ catalog })
}

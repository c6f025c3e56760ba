// The immutable state every admission decision reads. A loop that learns something publishes a
// new snapshot through state/store.ts; nothing ever mutates one in place.
import type { CatalogState } from './catalog-state.ts'
import type { ClusterState } from './cluster-state.ts'
import type { Config } from '../config/schema.ts'
import type { PasswordVerdicts } from './password-verdicts.ts'

export interface Snapshot {
  readonly config: Config
  /** config.catalog.staleAfter in ms, parsed once per config. */
  readonly staleAfterMs: number
  readonly cluster: ClusterState
  readonly catalog: CatalogState
  /** Which passwords open the Kopia repositories in `catalog` (by repository id and password digest). */
  readonly passwordVerdicts: PasswordVerdicts
  /** Increments with every publish; shows in /status and logs. */
  readonly generation: number
}

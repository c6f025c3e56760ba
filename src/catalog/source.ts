// A backup catalog source: something that can be polled for which PVCs have backups.
// New source types (s3-prefix, kopia, restic) implement this and register in sources.ts;
// admission never sees them, only the CatalogState the poller publishes.
import type { SourcePoll } from '../state/catalog-state.ts'

export interface CatalogSource {
  readonly name: string
  readonly type: string
  /**
   * The config the source was made from. A reload keeps the running source (its state, schedule
   * and opened repositories) when the new config's entry is deep-equal to this.
   */
  readonly config?: unknown
  /** Everything the source knows now. Throws with a message that names the source's location, never a secret. */
  poll(signal: AbortSignal): Promise<SourcePoll>
}

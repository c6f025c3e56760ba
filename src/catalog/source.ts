// A backup catalog source: something that can be polled for which PVCs have backups.
// New source types (s3-prefix, kopia, restic) implement this and register in sources.ts;
// admission never sees them, only the CatalogState the poller publishes.
import type { SourcePoll } from '../state/catalog-state.ts'

/**
 * What the poller hands a source that may answer before it has read everything (the server's): a way to
 * publish what it reads afterwards. A poll that is given one answers with what is certain now (e.g. a
 * listing: which repositories hold snapshots) and calls `publish` with a whole new result as it learns more
 * (exact times and sizes from decrypted snapshots); without one, a poll reads everything before answering.
 */
export interface Refinement {
  /** Aborted when the poller stops or drops the source: background work should end. */
  readonly signal: AbortSignal
  /**
   * Replaces the source's published entries, diagnostics and repositories at once (ignored once `signal`
   * is aborted). Not a poll: the source's lastSuccess and schedule are unchanged. Every call carries the
   * source's whole result, so the last call wins.
   */
  publish(poll: SourcePoll): void
}

export interface CatalogSource {
  readonly name: string
  readonly type: string
  /**
   * The config the source was made from. A reload keeps the running source (its state, schedule
   * and opened repositories) when the new config's entry is deep-equal to this.
   */
  readonly config?: unknown
  /**
   * Everything the source knows now. Throws with a message that names the source's location, never a
   * secret. With `refinement`, it may answer first with what a listing proves and publish the rest later.
   */
  poll(signal: AbortSignal, refinement?: Refinement): Promise<SourcePoll>
}

// Config -> source instances. The one place that knows every source type.
import type { CatalogSourceConfig } from '../config/schema.ts'
import { ResticKeyCache } from '../restic/key-cache.ts'
import { kopiaSource } from './kopia-source.ts'
import { resticSource } from './restic-source.ts'
import { s3PrefixSource } from './s3-prefix-source.ts'
import type { CatalogSource } from './source.ts'
import { staticSource } from './static-source.ts'

/** What sources share across config reloads: derived keys, so a reload does not re-run scrypt. */
export interface SourceContext {
  readonly resticKeys: ResticKeyCache
  /** Per-PVC restic repositories decided from their listing, never decrypted (see S3PrefixContext). */
  readonly resticFromListing?: boolean
  /** catalog.backupRecheckInterval in ms, changed in place on reload: sources read it at every poll. */
  readonly recheck: { backupRecheckMs: number }
}

/**
 * A fresh context, made once per process and kept across config reloads. `backupRecheckMs`:
 * catalog.backupRecheckInterval in ms (default 0: every repository every poll, as one-shot commands poll once).
 */
export function createSourceContext(backupRecheckMs = 0): SourceContext {
  return { resticKeys: new ResticKeyCache(), recheck: { backupRecheckMs } }
}

/** The source for one `catalog.sources` entry. Opens nothing: every read happens in its `poll`. */
export function createSource(config: CatalogSourceConfig, context: SourceContext): CatalogSource {
  switch (config.type) {
    case 'static':
      return staticSource(config)
    case 's3-prefix':
      return s3PrefixSource(config, context)
    case 'restic':
      return resticSource(config, context)
    case 'kopia':
      return kopiaSource(config)
  }
}

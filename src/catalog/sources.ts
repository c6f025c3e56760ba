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
}

/** A fresh context, made once per process and kept across config reloads. */
export function createSourceContext(): SourceContext {
  return { resticKeys: new ResticKeyCache() }
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

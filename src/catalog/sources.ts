// Config -> source instances. The one place that knows every source type.
import type { CatalogSourceConfig } from '../config/schema.ts'
import type { CatalogSource } from './source.ts'
import { staticSource } from './static-source.ts'

export function createSource(config: CatalogSourceConfig): CatalogSource {
  switch (config.type) {
    case 'static':
      return staticSource(config)
  }
}

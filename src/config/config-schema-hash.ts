// What the generated config validator (config-validator.generated.js) is made from: ajv's options,
// the TypeBox version and the schema's source file, hashed, so a validator generated from another
// schema is never used. The source text, not the built schema: building it loads TypeBox (~200
// modules), which a start that finds the generated validator current never needs.
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import type { Options } from 'ajv'

/** ajv's options for the config schema: defaults filled in, no coercion, the first error only, errors with their schema. */
export const AJV_OPTIONS: Options = { useDefaults: true, allErrors: false, strict: false, coerceTypes: false, discriminator: true, verbose: true }

/** The installed TypeBox's version ('unknown' when it cannot be read: the hash then matches nothing generated). */
function typeboxVersion(): string {
  try {
    // Its exports map hides package.json: found beside build/cjs/index.js, its main.
    const main = createRequire(import.meta.url).resolve('@sinclair/typebox')
    const manifest = JSON.parse(readFileSync(join(dirname(main), '..', '..', 'package.json'), 'utf8')) as { name?: unknown; version?: unknown }
    return manifest.name === '@sinclair/typebox' && typeof manifest.version === 'string' ? manifest.version : 'unknown'
  } catch {
    return 'unknown'
  }
}

/**
 * Hex sha256 over AJV_OPTIONS, the installed @sinclair/typebox version and the text of schema.ts (its
 * only input besides TypeBox). Any edit of schema.ts, even a comment, changes it: then the schema is
 * compiled at start until the generated file is made again (scripts/config-validator.ts).
 */
export function configSchemaHash(): string {
  return createHash('sha256')
    .update(JSON.stringify(AJV_OPTIONS)).update('\n')
    .update(typeboxVersion()).update('\n')
    .update(readFileSync(new URL('./schema.ts', import.meta.url)))
    .digest('hex')
}

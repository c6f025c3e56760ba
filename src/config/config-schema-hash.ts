// What the generated config validator (config-validator.generated.js) is made from: ajv's options and
// a hash of the schema with them, so a validator generated from another schema is never used.
import { createHash } from 'node:crypto'
import type { Options } from 'ajv'
import { Config } from './schema.ts'

/** ajv's options for the config schema: defaults filled in, no coercion, the first error only, errors with their schema. */
export const AJV_OPTIONS: Options = { useDefaults: true, allErrors: false, strict: false, coerceTypes: false, discriminator: true, verbose: true }

/**
 * Hex sha256 over AJV_OPTIONS and the schema (as JSON). Take it before compiling: ajv's compile
 * annotates the schema objects it is given.
 */
export function configSchemaHash(): string {
  return createHash('sha256').update(JSON.stringify(AJV_OPTIONS)).update('\n').update(JSON.stringify(Config)).digest('hex')
}

// The config schema's ajv validator without compiling it at every start: ajv's compile of the schema
// costs 0.2-0.35 s (a third of a one-shot `review`), so its standalone code is generated once into
// config-validator.generated.js (`node scripts/config-validator.ts`) and used while it was generated
// from this very schema and these options (a hash says so). When the schema changed since, the
// schema is compiled at run time as before: a stale file costs time, never a wrong answer. Neither
// ajv nor TypeBox is loaded when the generated file is current.
import type { ValidateFunction } from 'ajv'
import { AJV_OPTIONS, configSchemaHash } from './config-schema-hash.ts'
import type { Config } from './schema.ts'
import * as generated from './config-validator.generated.js'

/**
 * The validator of Config: the generated one when its hash matches the schema, else compiled now.
 * It fills in defaults in the object it validates (useDefaults) and sets `errors` like ajv's.
 */
export async function configValidator(): Promise<ValidateFunction<Config>> {
  if (generated.SCHEMA_HASH === configSchemaHash()) return generated.validate as unknown as ValidateFunction<Config>
  return compileConfigValidator()
}

/**
 * The validator compiled now from the schema (0.2-0.35 s: ajv and TypeBox loaded, the schema built and
 * compiled): what configValidator falls back to when the generated file is stale.
 */
export async function compileConfigValidator(): Promise<ValidateFunction<Config>> {
  // import(), not require(): a require() of an ES module fails under loaders that do not support it
  // (tap's TypeScript plugin, in a fresh clone), where import() always works.
  const [{ Ajv }, schema] = await Promise.all([import('ajv'), import('./schema.ts')])
  return new Ajv(AJV_OPTIONS).compile<Config>(schema.Config)
}

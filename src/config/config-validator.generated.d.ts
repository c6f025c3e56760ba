// Types of the generated ajv standalone validator (config-validator.generated.js, made by
// scripts/config-validator.ts).

/** Hex sha256 of the schema and options the code was generated from (configSchemaHash). */
export declare const SCHEMA_HASH: string

/** ajv's validate function: true when valid (defaults filled in), else false with `validate.errors` set. */
export declare const validate: ((data: unknown) => boolean) & { errors?: import('ajv').ErrorObject[] | null }

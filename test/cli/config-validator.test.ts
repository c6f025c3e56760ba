// The config validator the CLI and the server start with: ajv's standalone code generated from the
// schema (src/config/config-validator.generated.js), so no start pays for compiling the schema.
import { readFileSync } from 'node:fs'
import t from 'tap'
import { compileConfigValidator, configValidator } from '../../src/config/config-validator.ts'
import * as generated from '../../src/config/config-validator.generated.js'
import { configSchemaHash } from '../../src/config/config-schema-hash.ts'
import { ConfigError, parseConfig } from '../../src/config/load.ts'
import { generatedValidatorSource } from '../../scripts/config-validator.ts'

t.test('the generated validator is current: run `node_modules/.bin/node scripts/config-validator.ts` after changing the schema', async (t) => {
  t.equal(generated.SCHEMA_HASH, configSchemaHash(), 'made from this schema and these options')
  t.equal(readFileSync(new URL('../../src/config/config-validator.generated.js', import.meta.url), 'utf8'), generatedValidatorSource(), 'byte for byte what the generator writes')
  t.equal(await configValidator(), generated.validate, 'so it is the one used (no compile at start)')
})

t.test('validation through it: defaults filled in, errors named by key and said as before', async (t) => {
  const config = parseConfig('catalog: {sources: [{name: nas, type: s3-prefix, filesystem: {path: /x}}]}')
  t.equal(config.server.port, 8443, 'a default')
  t.equal(config.catalog.sources[0]?.type === 's3-prefix' ? config.catalog.sources[0].concurrency > 0 : false, true, 'a default inside a union branch')
  t.throws(() => parseConfig('pvc: {whenBackupNotReady: later}'), new ConfigError('config: pvc.whenBackupNotReady: must be one of "wait", "deny", "fresh"'))
  t.throws(() => parseConfig('catalog: {sources: [{name: a, type: s3-prefix, s3: {bucket: "Not_A_Bucket"}}]}'), /catalog\.sources\[0\]\.s3\.bucket: must be an S3 bucket name/, 'a pattern error says what the pattern means (verbose errors carry their schema)')
  t.throws(() => parseConfig('catalog: {sources: [{name: a, type: nope}]}'), /catalog\.sources\[0\]\.type: must be one of "static", "s3-prefix", "restic", "kopia"/)
  t.throws(() => parseConfig('surprise: 1'), /surprise: unknown key/)
})

t.test('the fallback for a stale file (the schema compiled at start) judges alike', async (t) => {
  const compiled = await compileConfigValidator()
  const inputs: unknown[] = [{}, { pvc: { whenBackupNotReady: 'later' } }, { catalog: { sources: [{ name: 'a', type: 'nope' }] } }, { catalog: { sources: [{ name: 'a', type: 's3-prefix', filesystem: { path: '/x' } }] } }, { surprise: 1 }]
  for (const input of inputs) {
    const [a, b] = [structuredClone(input), structuredClone(input)]
    t.equal(compiled(a), generated.validate(b), JSON.stringify(input))
    t.same(a, b, 'the same defaults filled in')
    t.same(compiled.errors?.map((e) => [e.keyword, e.instancePath]) ?? null, generated.validate.errors?.map((e) => [e.keyword, e.instancePath]) ?? null, 'the same first error')
  }
})

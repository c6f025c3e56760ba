// ajv standalone code for a TypeBox schema, as an ES module: what scripts/config-validator.ts and
// scripts/review-validator.ts write, so that neither TypeBox nor ajv's compiler is loaded at run time.
import { createRequire } from 'node:module'
import type { Ajv as AjvClass, Options } from 'ajv'

const require = createRequire(import.meta.url)
const standaloneCode = require('ajv/dist/standalone') as typeof import('ajv/dist/standalone/index.js').default
const { Ajv } = require('ajv') as { Ajv: new (options: object) => AjvClass }

/**
 * The module text exporting `validate` (and default) for `schema` compiled with `options`, after the
 * `header` lines (comments, extra exports). The one runtime helper ajv's code may require (ucs2length,
 * for minLength/maxLength) becomes an ES import. Throws when the code requires any other helper.
 */
export function standaloneValidatorSource(schema: object, options: Options, header: readonly string[]): string {
  const ajv = new Ajv({ ...options, code: { source: true, esm: true } })
  const validate = ajv.compile(schema)
  const code = standaloneCode(ajv, validate)
    .replace(/require\("ajv\/dist\/runtime\/ucs2length"\)\.default/g, 'ucs2length')
    .replace(/^"use strict";/, '')
  if (/require\(/.test(code)) throw new Error('the standalone code needs another runtime helper: import it in scripts/standalone-validator.ts')
  return [
    ...header,
    // CommonJS with exports.default: Node's default import is the exports object.
    "import ucs2lengthModule from 'ajv/dist/runtime/ucs2length.js'",
    'const ucs2length = ucs2lengthModule.default',
    code,
    '',
  ].join('\n')
}

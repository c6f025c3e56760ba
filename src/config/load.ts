// Reads and validates the YAML configuration. Errors name the key path so a user can fix the file.
import { readFileSync } from 'node:fs'
import { Ajv, type ErrorObject } from 'ajv'
import { parseDocument } from 'yaml'
import { Config } from './schema.ts'

export class ConfigError extends Error {
  override readonly name = 'ConfigError'
}

const ajv = new Ajv({ useDefaults: true, allErrors: false, strict: false, coerceTypes: false })
const validate = ajv.compile<Config>(Config)

function keyPath(error: ErrorObject): string {
  const base = error.instancePath.replace(/^\//, '').split('/').filter(Boolean)
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((part, i) => (/^[0-9]+$/.test(part) ? `[${part}]` : i === 0 ? part : `.${part}`)).join('')
  if (error.keyword === 'additionalProperties') {
    const extra = String((error.params as { additionalProperty?: unknown }).additionalProperty)
    return base ? `${base}.${extra}` : extra
  }
  if (error.keyword === 'required') {
    const missing = String((error.params as { missingProperty?: unknown }).missingProperty)
    return base ? `${base}.${missing}` : missing
  }
  return base || '(top level)'
}

function describe(error: ErrorObject): string {
  switch (error.keyword) {
    case 'additionalProperties': return 'unknown key'
    case 'required': return 'is required'
    case 'enum': {
      const allowed = (error.params as { allowedValues?: unknown[] }).allowedValues ?? []
      return `must be one of ${allowed.map((v) => JSON.stringify(v)).join(', ')}`
    }
    default: return error.message ?? error.keyword
  }
}

/** The most useful of ajv's errors: for a union, the branch that got furthest. */
function bestError(errors: ErrorObject[]): ErrorObject {
  const deepest = [...errors].sort((a, b) => b.instancePath.length - a.instancePath.length)
  const nonUnion = deepest.find((e) => e.keyword !== 'anyOf' && e.keyword !== 'const')
  const consts = errors.filter((e) => e.keyword === 'const' && e.instancePath === deepest[0]?.instancePath)
  if (consts.length > 0 && (!nonUnion || nonUnion.instancePath.length <= consts[0]!.instancePath.length)) {
    const allowed = consts.map((e) => (e.params as { allowedValue?: unknown }).allowedValue)
    return { ...consts[0]!, keyword: 'enum', params: { allowedValues: allowed } }
  }
  return nonUnion ?? deepest[0]!
}

/** Semantics the schema cannot say. */
function crossCheck(config: Config): void {
  const repo = config.movers.repository
  if (repo && Boolean(repo.nfs) === Boolean(repo.pvc)) {
    throw new ConfigError('movers.repository: set exactly one of nfs or pvc')
  }
  const names = new Set<string>()
  config.catalog.sources.forEach((source, i) => {
    if (names.has(source.name)) throw new ConfigError(`catalog.sources[${i}].name: duplicate source name ${JSON.stringify(source.name)}`)
    names.add(source.name)
  })
  if (!config.pvc.destinationName.includes('{{pvc}}')) {
    throw new ConfigError('pvc.destinationName: must contain {{pvc}} so each PVC gets its own ReplicationDestination')
  }
}

/** Parses YAML text into a validated Config with every default filled in. */
export function parseConfig(text: string, origin = 'config'): Config {
  const doc = parseDocument(text, { prettyErrors: true })
  if (doc.errors.length > 0) {
    throw new ConfigError(`${origin}: not valid YAML: ${doc.errors[0]!.message.split('\n')[0]}`)
  }
  const value: unknown = doc.toJS() ?? {}
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigError(`${origin}: the top level must be a mapping of keys`)
  }
  if (!validate(value)) {
    const error = bestError(validate.errors ?? [])
    throw new ConfigError(`${origin}: ${keyPath(error)}: ${describe(error)}`)
  }
  crossCheck(value)
  return Object.freeze(value)
}

export function loadConfigFile(file: string): Config {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (error) {
    throw new ConfigError(`${file}: cannot read: ${(error as NodeJS.ErrnoException).code ?? String(error)}`)
  }
  return parseConfig(text, file)
}

/** The configuration with every default (no file). */
export function defaultConfig(): Config {
  return parseConfig('{}', 'defaults')
}

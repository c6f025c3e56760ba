// Reads and validates the YAML configuration. Errors name the key path so a user can fix the file.
import { readFileSync } from 'node:fs'
import type { ErrorObject } from 'ajv'
import { parseDocument } from 'yaml'
import { configValidator } from './config-validator.ts'
import { compileIdentityPattern } from './identity-pattern.ts'
import type { Config, S3LocationConfig } from './schema.ts'
import { durationMs, MAX_TIMER_DURATION } from './duration.ts'

/**
 * An invalid or unreadable config: its message is one line naming the file and, for a bad key, the key
 * path, shown as is to the user (CLI exit 2, or a rejected reload).
 */
export class ConfigError extends Error {
  override readonly name = 'ConfigError'
}

// Generated standalone code while it matches the schema (config-validator.ts): no compile at start.
const validate = await configValidator()

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
    case 'pattern': {
      // "must be an S3 bucket name" says more than the regular expression.
      const description = (error.parentSchema as { description?: unknown } | undefined)?.description
      return typeof description === 'string' ? `must be ${description}` : error.message ?? error.keyword
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

function checkS3Credentials(s3: S3LocationConfig, at: string): void {
  // userinfo in the endpoint would be printed wherever the endpoint is (logs, /status, catalog): the
  // message names the keys that hold credentials, and never echoes the value.
  if (s3.endpoint !== undefined && /^[a-z]+:\/\/[^/]*@/i.test(s3.endpoint)) {
    throw new ConfigError(`${at}.endpoint: must not contain credentials (user:password@); put them in accessKeyIdFile/secretAccessKeyFile (a mounted Secret) or accessKeyId/secretAccessKey`)
  }
  const pairs = [['accessKeyIdFile', 'secretAccessKeyFile'], ['accessKeyId', 'secretAccessKey']] as const
  for (const [id, secret] of pairs) {
    if ((s3[id] === undefined) !== (s3[secret] === undefined)) throw new ConfigError(`${at}: set both ${id} and ${secret}, or neither`)
  }
  if (s3.accessKeyIdFile !== undefined && s3.accessKeyId !== undefined) throw new ConfigError(`${at}: set the credentials either as files or inline, not both`)
}

function checkIdentity(identity: Record<string, string | undefined>, at: string): void {
  const captured = new Set<string>()
  for (const [field, pattern] of Object.entries(identity)) {
    if (pattern === undefined) continue
    const variables = compileIdentityPattern(pattern).variables
    if (variables.size === 0) throw new ConfigError(`${at}.${field}: must contain {{namespace}} or {{pvc}}`)
    for (const v of variables) captured.add(v)
  }
  for (const v of ['namespace', 'pvc']) {
    if (!captured.has(v)) throw new ConfigError(`${at}: no field contains {{${v}}}, so snapshots cannot be mapped to a PVC`)
  }
}

/** ajv's discriminator error for a missing or unknown source `type`, said the way the other enums are. */
function sourceTypeError(errors: ErrorObject[]): ErrorObject | undefined {
  const error = errors.find((e) => e.keyword === 'discriminator')
  if (!error) return undefined
  // The branches' `type` constants, read from the union the error carries (verbose errors), so that
  // validating never needs the TypeBox-built schema loaded.
  const branches = (error.parentSchema as { oneOf?: Array<{ properties?: { type?: { const?: unknown } } }> } | undefined)?.oneOf ?? []
  const allowed = branches.map((branch) => branch.properties?.type?.const).filter((c) => c !== undefined)
  return { ...error, keyword: 'enum', instancePath: `${error.instancePath}/type`, params: { allowedValues: allowed } }
}

const WILDCARD_HOSTS = new Set(['', '0.0.0.0', '::', '[::]'])

/** The webhook and the metrics/status server would bind the same address (0 picks a free port each). */
function portsCollide(server: Config['server']): boolean {
  if (server.port === 0 || server.port !== server.metricsPort) return false
  return server.host === server.metricsHost || WILDCARD_HOSTS.has(server.host) || WILDCARD_HOSTS.has(server.metricsHost)
}

/** Semantics the schema cannot say. */
function crossCheck(config: Config): void {
  if (portsCollide(config.server)) {
    throw new ConfigError(`server.port and server.metricsPort: both are ${config.server.port}; the webhook (TLS) and the metrics/status server (plain HTTP) need a port each`)
  }
  const repo = config.movers.repository
  if (repo && Boolean(repo.nfs) === Boolean(repo.pvc)) {
    throw new ConfigError('movers.repository: set exactly one of nfs or pvc')
  }
  const names = new Set<string>()
  config.catalog.sources.forEach((source, i) => {
    const at = `catalog.sources[${i}]`
    if (names.has(source.name)) throw new ConfigError(`${at}.name: duplicate source name ${JSON.stringify(source.name)}`)
    names.add(source.name)
    if (source.type === 'static') return
    if (Boolean(source.s3) === Boolean(source.filesystem)) throw new ConfigError(`${at}: set exactly one of s3 or filesystem`)
    if (source.s3) checkS3Credentials(source.s3, `${at}.s3`)
    if (source.type === 'restic' || source.type === 'kopia') checkIdentity(source.identity, `${at}.identity`)
  })
  if (config.server.tls.selfManaged && config.state.directory !== undefined) {
    throw new ConfigError('server.tls.selfManaged: needs the API server (its Secret and webhook configurations); remove state.directory or selfManaged')
  }
  checkTimerDurations(config)
  if (!config.pvc.destinationName.includes('{{pvc}}')) {
    throw new ConfigError('pvc.destinationName: must contain {{pvc}} so each PVC gets its own ReplicationDestination')
  }
}

/**
 * Durations that become Node timers must be below a timer's limit: a longer one would fire after 1 ms
 * (a catalog.interval of 1000h polled every millisecond). Throws ConfigError naming the key.
 */
function checkTimerDurations(config: Config): void {
  const limitMs = durationMs(MAX_TIMER_DURATION)
  const keys: Array<[string, string]> = [
    ['server.shutdown.drainPeriod', config.server.shutdown.drainPeriod],
    ['server.shutdown.timeout', config.server.shutdown.timeout],
    ['kube.leaseDuration', config.kube.leaseDuration],
    ['kube.renewDeadline', config.kube.renewDeadline],
    ['kube.retryPeriod', config.kube.retryPeriod],
    ['catalog.interval', config.catalog.interval],
    ...config.catalog.sources.flatMap((source, i): Array<[string, string]> => ('s3' in source && source.s3 ? [[`catalog.sources[${i}].s3.requestTimeout`, source.s3.requestTimeout]] : [])),
  ]
  for (const [key, value] of keys) {
    if (durationMs(value) > limitMs) throw new ConfigError(`${key}: ${value} is longer than ${MAX_TIMER_DURATION} (24 days), the longest delay a timer can wait`)
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
    const error = sourceTypeError(validate.errors ?? []) ?? bestError(validate.errors ?? [])
    throw new ConfigError(`${origin}: ${keyPath(error)}: ${describe(error)}`)
  }
  try {
    crossCheck(value)
  } catch (error) {
    if (error instanceof ConfigError) throw new ConfigError(`${origin}: ${error.message}`)
    throw error
  }
  return Object.freeze(value)
}

/**
 * Reads `file` synchronously and parses it (parseConfig). Throws ConfigError when it cannot be read (with
 * the errno code) or is invalid.
 */
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

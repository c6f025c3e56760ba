// Generates charts/volsync-autorestore/values.schema.json: the chart's own values, and under `config`
// the server's config schema (src/config/schema.ts), made acceptable to helm without accepting what
// the server refuses. `npm run chart:schema` writes it; `--check` exits 1 when the file is stale
// (test/chart/chart.test.ts does the same comparison).
import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { Config } from '../src/config/schema.ts'

/** The generated file, from the repository root. */
export const VALUES_SCHEMA_FILE = fileURLToPath(new URL('../charts/volsync-autorestore/values.schema.json', import.meta.url))

type Json = null | boolean | number | string | readonly Json[] | { readonly [key: string]: Json }
type JsonObject = { [key: string]: Json }

const isObject = (value: Json | undefined): value is JsonObject => typeof value === 'object' && value !== null && !Array.isArray(value)

// Go's RE2 (helm's validator) has no lookaround or backreferences; a pattern using them would make
// `helm install` fail for every user, so the generator refuses it (fix the pattern in schema.ts).
const RE2_UNSUPPORTED = /\(\?[=!<]|\\[1-9]/

/**
 * The server's config schema as helm can use it. JSON only (TypeBox's symbol keys dropped), and:
 * - a key with a `default` is not `required`: TypeBox lists it, ajv fills it in, but helm validates
 *   the values as given, so `config: {}` would be refused;
 * - `restartRequired` (this project's mark, read by config/restart-required.ts) is dropped;
 * - a union of literals (TypeBox's anyOf of consts) is an `enum`, so helm says "must be one of";
 * - a oneOf with a discriminator (catalog sources) is one if/then per `type`, the same branches,
 *   so helm's errors name the branch the `type` picks instead of every branch's complaints;
 * - every `pattern` must be RE2: throws an Error naming the pattern otherwise.
 * Everything else (types, enums, patterns, additionalProperties: false, oneOf) is kept, so helm
 * still refuses what the server refuses, by its path.
 */
export function configSchemaForHelm(schema: unknown = Config): JsonObject {
  const json = JSON.parse(JSON.stringify(schema)) as Json
  const visit = (node: Json): Json => {
    if (Array.isArray(node)) return node.map(visit)
    if (!isObject(node)) return node
    const out: JsonObject = {}
    for (const [key, value] of Object.entries(node)) {
      if (key === 'restartRequired') continue
      out[key] = key === 'default' || key === 'const' || key === 'enum' ? value : visit(value)
    }
    const literals = Array.isArray(out.anyOf) ? out.anyOf : undefined
    if (literals && literals.every((branch) => isObject(branch) && 'const' in branch)) {
      delete out.anyOf
      out.enum = literals.map((branch) => (branch as JsonObject).const as Json)
    }
    const discriminated = discriminatedUnion(out)
    if (discriminated) return discriminated
    const pattern = out.pattern
    if (typeof pattern === 'string' && RE2_UNSUPPORTED.test(pattern)) {
      throw new Error(`config schema pattern ${JSON.stringify(pattern)} is not RE2 (no lookaround or backreferences): helm could not validate it`)
    }
    const properties = out.properties
    if (Array.isArray(out.required) && isObject(properties)) {
      const required = out.required.filter((key) => typeof key === 'string' && !(isObject(properties[key]) && 'default' in (properties[key] as JsonObject)))
      if (required.length > 0) out.required = required
      else delete out.required
    }
    return out
  }
  return visit(json) as JsonObject
}

/** `{oneOf, discriminator}` as `{required: [key], properties: {key: enum}, allOf: [if key = c then branch]}`; undefined when not one. */
function discriminatedUnion(node: JsonObject): JsonObject | undefined {
  const discriminator = node.discriminator
  if (!isObject(discriminator) || typeof discriminator.propertyName !== 'string' || !Array.isArray(node.oneOf)) return undefined
  const key = discriminator.propertyName
  const branches = node.oneOf.map((branch) => {
    const value = isObject(branch) && isObject(branch.properties) && isObject(branch.properties[key]) ? branch.properties[key].const : undefined
    if (value === undefined) throw new Error(`a oneOf branch without a const ${key}: cannot turn the discriminator into if/then`)
    return { value, branch }
  })
  return {
    type: 'object',
    required: [key],
    properties: { [key]: { enum: branches.map((b) => b.value) } },
    allOf: branches.map(({ value, branch }) => ({ if: { properties: { [key]: { const: value } }, required: [key] }, then: branch })),
  }
}

const str = { type: 'string' } as const
const bool = { type: 'boolean' } as const
const obj = { type: 'object' } as const
const arr = { type: 'array' } as const
const failurePolicy = {
  type: 'object', additionalProperties: false,
  properties: { failurePolicy: { type: 'string', enum: ['Ignore', 'Fail'] } },
} as const

/** The whole values.schema.json: the chart's values (design section 8) with `config` the server's schema. */
export function chartValuesSchema(): JsonObject {
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: 'volsync-autorestore chart values',
    description: 'Generated by scripts/chart-schema.ts (npm run chart:schema) from src/config/schema.ts; do not edit.',
    type: 'object',
    additionalProperties: false,
    properties: {
      global: obj,
      nameOverride: str,
      fullnameOverride: str,
      config: { ...configSchemaForHelm(), description: 'The server\'s config file (src/config/schema.ts), rendered into the ConfigMap.' },
      tls: {
        type: 'object', additionalProperties: false,
        properties: {
          mode: { type: 'string', enum: ['self', 'cert-manager', 'secret'] },
          certManager: {
            type: 'object', additionalProperties: false,
            properties: {
              issuerRef: { type: 'object', additionalProperties: false, properties: { name: str, kind: str, group: str } },
              duration: str, renewBefore: str,
            },
          },
          secret: { type: 'object', additionalProperties: false, properties: { name: str, caBundle: str } },
        },
      },
      webhooks: {
        type: 'object', additionalProperties: false,
        properties: {
          timeoutSeconds: { type: 'integer', minimum: 1, maximum: 30 },
          excludeNamespaces: { type: 'array', items: { type: 'string', minLength: 1 } },
          pvc: failurePolicy, jobs: failurePolicy, validate: failurePolicy,
        },
      },
      credentials: { type: 'object', additionalProperties: false, properties: { existingSecret: str } },
      image: {
        type: 'object', additionalProperties: false,
        properties: { repository: { type: 'string', minLength: 1 }, tag: str, digest: str, pullPolicy: { type: 'string', enum: ['Always', 'IfNotPresent', 'Never'] } },
      },
      imagePullSecrets: arr,
      replicaCount: { type: 'integer', minimum: 0 },
      podDisruptionBudget: {
        type: 'object', additionalProperties: false,
        properties: { enabled: bool, minAvailable: { type: ['integer', 'string'] }, maxUnavailable: { type: ['integer', 'string', 'null'] } },
      },
      preStopSleepSeconds: { type: 'integer', minimum: 0 },
      terminationGracePeriodSeconds: { type: 'integer', minimum: 0 },
      resources: obj,
      startupProbe: obj, readinessProbe: obj, livenessProbe: obj,
      podSecurityContext: obj, securityContext: obj,
      affinity: obj, topologySpreadConstraints: arr, nodeSelector: obj, tolerations: arr,
      priorityClassName: str, podAnnotations: obj, podLabels: obj, extraEnv: arr,
      serviceAccount: { type: 'object', additionalProperties: false, properties: { create: bool, name: str, annotations: obj } },
      service: { type: 'object', additionalProperties: false, properties: { port: { type: 'integer', minimum: 1, maximum: 65535 }, annotations: obj } },
      metrics: {
        type: 'object', additionalProperties: false,
        properties: {
          serviceMonitor: { type: 'object', additionalProperties: false, properties: { enabled: bool, interval: str, scrapeTimeout: str, labels: obj } },
          prometheusRule: { type: 'object', additionalProperties: false, properties: { enabled: bool, labels: obj } },
          grafanaDashboard: { type: 'object', additionalProperties: false, properties: { enabled: bool, namespace: str, labels: obj, annotations: obj } },
        },
      },
      networkPolicy: {
        type: 'object', additionalProperties: false,
        properties: {
          enabled: bool,
          apiServer: { type: 'object', additionalProperties: false, properties: { cidrs: { type: 'array', items: str }, ports: { type: 'array', items: { type: 'integer' } } } },
          prometheus: { type: 'object', additionalProperties: false, properties: { namespaceSelector: obj, podSelector: obj } },
          dns: { type: 'object', additionalProperties: false, properties: { namespaceSelector: obj, podSelector: obj } },
          s3: { type: 'object', additionalProperties: false, properties: { cidrs: { type: 'array', items: str } } },
          extraEgress: arr,
        },
      },
    },
  }
}

/** The file's text: two-space JSON and a final newline. */
export function valuesSchemaText(): string {
  return `${JSON.stringify(chartValuesSchema(), null, 2)}\n`
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const text = valuesSchemaText()
  if (process.argv.includes('--check')) {
    const current = readFileSync(VALUES_SCHEMA_FILE, 'utf8')
    if (current !== text) {
      console.error(`${VALUES_SCHEMA_FILE} is out of date: run npm run chart:schema`)
      process.exit(1)
    }
  } else {
    writeFileSync(VALUES_SCHEMA_FILE, text)
    console.log(`wrote ${VALUES_SCHEMA_FILE}`)
  }
}

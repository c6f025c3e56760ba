// Which keys of a reloaded config cannot take effect until a restart, derived from the schema's
// `restartRequired` marks, so the reload warning always says exactly what was not applied.
import { isDeepStrictEqual } from 'node:util'
import { Config } from './schema.ts'

interface SchemaNode {
  readonly restartRequired?: boolean
  readonly properties?: Readonly<Record<string, SchemaNode>>
}

function markedPaths(node: SchemaNode, prefix: readonly string[]): string[][] {
  if (node.restartRequired) return [[...prefix]]
  return Object.entries(node.properties ?? {}).flatMap(([key, child]) => markedPaths(child, [...prefix, key]))
}

/** Dotted key paths marked restartRequired in the config schema, e.g. `server`, `kube`. */
export const RESTART_REQUIRED_KEYS: readonly string[] = markedPaths(Config as SchemaNode, []).map((path) => path.join('.'))

function at(value: unknown, path: readonly string[]): unknown {
  let current = value
  for (const key of path) current = current !== null && typeof current === 'object' ? (current as Record<string, unknown>)[key] : undefined
  return current
}

/**
 * Pure: the restart-required key paths (see RESTART_REQUIRED_KEYS) whose values differ between
 * two valid configs, in schema order; empty when the whole change applies live.
 */
export function restartRequiredChanges(previous: Config, next: Config): string[] {
  return RESTART_REQUIRED_KEYS.filter((key) => !isDeepStrictEqual(at(previous, key.split('.')), at(next, key.split('.'))))
}

/**
 * The config in force after a reload: `next`, except that every restart-required key keeps its
 * value from `running` (it has not taken effect). Pure; returns a new object.
 */
export function configInForce(running: Config, next: Config): Config {
  const result = structuredClone(next) as unknown as Record<string, unknown>
  for (const key of RESTART_REQUIRED_KEYS) {
    const path = key.split('.')
    let target = result
    for (const part of path.slice(0, -1)) target = target[part] as Record<string, unknown>
    target[path.at(-1)!] = structuredClone(at(running, path))
  }
  return result as unknown as Config
}

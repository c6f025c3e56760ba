// RFC 6902 operations between a request's object and the object a rule decided. The rules are
// copy-on-write (a changed node is a new object, an untouched subtree is the request's own), so
// walking both trees and skipping every pair that is the same reference visits only the top-level
// keys and the paths a rule changed. The operations are the ones fast-json-patch's compare() makes
// (same ops, same order), without its deep clone of every value: the values are serialized at once.

/** One RFC 6902 operation of the kinds a diff needs. */
export type PatchOperation =
  | { readonly op: 'add'; readonly path: string; readonly value: unknown }
  | { readonly op: 'remove'; readonly path: string }
  | { readonly op: 'replace'; readonly path: string; readonly value: unknown }

/**
 * The operations that turn `before` into `after` (both JSON values: plain objects and arrays),
 * equal op for op to fast-json-patch's `compare(before, after)`. Subtrees that are the same
 * reference in both are not walked. The `value`s are shared with `after`, not copied: serialize
 * them, never modify them. Pure; reads both trees, writes neither.
 */
export function diffOperations(before: Readonly<Record<string, unknown>> | readonly unknown[], after: Readonly<Record<string, unknown>> | readonly unknown[]): PatchOperation[] {
  const operations: PatchOperation[] = []
  generate(before as Node, after as Node, operations, '')
  return operations
}

type Node = Record<string, unknown> | unknown[]

function keysOf(node: Node): string[] {
  if (!Array.isArray(node)) return Object.keys(node)
  const keys = new Array<string>(node.length)
  for (let i = 0; i < node.length; i++) keys[i] = String(i)
  return keys
}

// RFC 6901: '~' is '~0' and '/' is '~1' in a path segment.
function escape(key: string): string {
  if (!key.includes('/') && !key.includes('~')) return key
  return key.replace(/~/g, '~0').replace(/\//g, '~1')
}

function isNode(value: unknown): value is Node {
  return typeof value === 'object' && value !== null
}

// fast-json-patch's _generate, step for step: old keys from last to first (replace, remove, or
// replace of the whole node when an array meets an object), then the new keys in order (add), the
// latter only when something was removed or the key counts differ.
function generate(mirror: Node, node: Node, operations: PatchOperation[], path: string): void {
  if (node === mirror) return
  const current = typeof (node as { toJSON?: unknown }).toJSON === 'function' ? (node as { toJSON(): Node }).toJSON() : node
  const newKeys = keysOf(current)
  const oldKeys = keysOf(mirror)
  const oldRecord = mirror as Record<string, unknown>
  const newRecord = current as Record<string, unknown>
  let deleted = false
  for (let t = oldKeys.length - 1; t >= 0; t--) {
    const key = oldKeys[t]!
    const oldValue = oldRecord[key]
    const newValue = newRecord[key]
    if (Object.hasOwn(current, key) && !(newValue === undefined && oldValue !== undefined && !Array.isArray(current))) {
      if (isNode(oldValue) && isNode(newValue) && Array.isArray(oldValue) === Array.isArray(newValue)) {
        generate(oldValue, newValue, operations, `${path}/${escape(key)}`)
      } else if (oldValue !== newValue) {
        operations.push({ op: 'replace', path: `${path}/${escape(key)}`, value: newValue })
      }
    } else if (Array.isArray(mirror) === Array.isArray(current)) {
      operations.push({ op: 'remove', path: `${path}/${escape(key)}` })
      deleted = true
    } else {
      operations.push({ op: 'replace', path, value: current })
    }
  }
  if (!deleted && newKeys.length === oldKeys.length) return
  for (const key of newKeys) {
    const value = newRecord[key]
    if (!Object.hasOwn(mirror, key) && value !== undefined) operations.push({ op: 'add', path: `${path}/${escape(key)}`, value })
  }
}

// The direct JSON patch (src/admission/json-patch.ts) against fast-json-patch, on random objects
// edited copy-on-write as the rules edit them, on unrelated random pairs, and on every example
// review's real decision: the same operations, and applied to the object they give `mutated`.
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { isDeepStrictEqual } from 'node:util'
import fc from 'fast-check'
import fastJsonPatch from 'fast-json-patch'
import t from 'tap'
import { parseAllDocuments } from 'yaml'
import { handleReview } from '../../src/admission/handle.ts'
import { diffOperations } from '../../src/admission/json-patch.ts'
import { patchOperations } from '../../src/admission/review.ts'
import { snapshotOf, source } from '../support/snapshot.ts'

const SEED = Number(process.env.FUZZ_SEED ?? 20260316)

type Json = null | boolean | number | string | Json[] | { [key: string]: Json }

/** One copy-on-write edit: walk `steps` down the tree (each picks a child by index), then change it. */
interface Edit {
  readonly steps: readonly number[]
  readonly kind: 'set' | 'delete' | 'add'
  readonly key: string
  readonly value: Json
}

function isContainer(value: Json | undefined): value is Json[] | { [key: string]: Json } {
  return typeof value === 'object' && value !== null
}

function keysOf(node: Json[] | { [key: string]: Json }): string[] {
  return Array.isArray(node) ? node.map((_v, i) => String(i)) : Object.keys(node)
}

/** `root` with `edit` applied as a rule would: every container on the path copied, the rest shared. */
function applyCopyOnWrite(root: Json, edit: Edit): Json {
  const visit = (node: Json, depth: number): Json => {
    if (!isContainer(node)) return edit.value
    const keys = keysOf(node)
    const step = edit.steps[depth]
    const copy: Json[] | { [key: string]: Json } = Array.isArray(node) ? [...node] : { ...node }
    if (step !== undefined && keys.length > 0) {
      const key = keys[step % keys.length]!
      const child = (node as Record<string, Json>)[key]!
      if (isContainer(child) && depth + 1 < edit.steps.length) {
        ;(copy as Record<string, Json>)[key] = visit(child, depth + 1)
        return copy
      }
      if (edit.kind === 'set') (copy as Record<string, Json>)[key] = edit.value
      else if (edit.kind === 'delete') {
        if (Array.isArray(copy)) copy.splice(Number(key), 1)
        else delete copy[key]
      } else if (Array.isArray(copy)) copy.push(edit.value)
      else copy[edit.key] = edit.value
      return copy
    }
    if (Array.isArray(copy)) copy.push(edit.value)
    else copy[edit.key] = edit.value
    return copy
  }
  return visit(root, 0)
}

// Keys with '/' and '~' (escaped in paths) and keys a Kubernetes object has, beside random ones.
const keyArb = fc.oneof(fc.string({ maxLength: 6 }), fc.constantFrom('a/b', '~x', 'metadata', 'spec', 'annotations', '0', 'volsync-autorestore.io/decision'))
const jsonArb: fc.Arbitrary<Json> = fc.letrec<{ json: Json }>((tie) => ({
  json: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constantFrom<Json>(null, true, false, 0, 1, '', 'x'),
    fc.integer(),
    fc.string({ maxLength: 8 }),
    fc.array(tie('json'), { maxLength: 4 }),
    fc.dictionary(keyArb, tie('json'), { maxKeys: 5 }),
  ),
})).json
const objectArb = fc.dictionary(keyArb, jsonArb, { minKeys: 1, maxKeys: 6 })
const editArb: fc.Arbitrary<Edit> = fc.record({
  steps: fc.array(fc.nat(20), { maxLength: 5 }),
  kind: fc.constantFrom('set', 'delete', 'add'),
  key: keyArb,
  value: jsonArb,
})

function applied(before: Json, operations: readonly fastJsonPatch.Operation[]): Json {
  return fastJsonPatch.applyPatch(structuredClone(before), [...operations], true, false).newDocument
}

/** Equal as JSON documents: key order and prototypes (fast-check's dictionaries have none) aside. */
function sameJson(a: unknown, b: unknown): boolean {
  return isDeepStrictEqual(JSON.parse(JSON.stringify(a)), JSON.parse(JSON.stringify(b)))
}

t.test('copy-on-write edits: the direct patch is fast-json-patch\'s, and applied it gives mutated', async (t) => {
  fc.assert(fc.property(objectArb, fc.array(editArb, { minLength: 1, maxLength: 6 }), (before, edits) => {
    const pristine = JSON.stringify(before)
    const mutated = edits.reduce<Json>((node, edit) => applyCopyOnWrite(node, edit), before) as { [key: string]: Json }
    const direct = diffOperations(before, mutated)
    // The request object is never written (by the edits or the diff).
    if (JSON.stringify(before) !== pristine) return false
    if (JSON.stringify(direct) !== JSON.stringify(fastJsonPatch.compare(before, mutated))) return false
    return sameJson(applied(before, direct as fastJsonPatch.Operation[]), mutated)
  }), { seed: SEED, numRuns: 1500 })
  t.pass('1,500 random objects, each with 1-6 copy-on-write edits')
})

t.test('unrelated pairs (nothing shared): the same operations as fast-json-patch', async (t) => {
  fc.assert(fc.property(objectArb, objectArb, (before, after) => {
    const direct = diffOperations(before, after)
    if (!sameJson(applied(before, direct as fastJsonPatch.Operation[]), after)) return false
    return JSON.stringify(direct) === JSON.stringify(fastJsonPatch.compare(before, after))
  }), { seed: SEED, numRuns: 500 })
  t.pass('500 unrelated pairs')
})

t.test('an untouched subtree is not walked: a shared reference gives no operation', async (t) => {
  const shared = { deep: { value: 1 } }
  const before = { metadata: { name: 'a' }, spec: shared }
  const after = { metadata: { name: 'a', annotations: { 'volsync-autorestore.io/decision': 'restore' } }, spec: shared }
  t.strictSame(diffOperations(before, after), [
    { op: 'add', path: '/metadata/annotations', value: { 'volsync-autorestore.io/decision': 'restore' } },
  ])
  t.strictSame(diffOperations(before, before), [])
})

t.test('every example review: patchOperations equals fast-json-patch on the real decision', async (t) => {
  const examples = join(import.meta.dirname, '..', '..', 'examples')
  const objects = ['namespaces.yaml', 'replicationdestinations.yaml'].flatMap((file) =>
    parseAllDocuments(readFileSync(join(examples, 'state', file), 'utf8')).map((doc) => doc.toJS() as unknown).filter(Boolean))
  const snapshot = snapshotOf({
    config: readFileSync(join(examples, 'config.yaml'), 'utf8'),
    objects,
    sources: [source({ name: 'declared', entries: [{ namespace: 'media', pvc: 'jellyfin', snapshots: 3 }, { namespace: 'media', pvc: 'sonarr', snapshots: 1 }] })],
  })
  let mutatedCount = 0
  for (const file of readdirSync(join(examples, 'admission')).filter((name) => name.endsWith('.json'))) {
    const body: unknown = JSON.parse(readFileSync(join(examples, 'admission', file), 'utf8'))
    for (const webhook of ['mutate', 'validate'] as const) {
      const result = handleReview(webhook, snapshot, body, Date.now())
      if (!result.ok || !result.decision.mutated || !result.input.object) continue
      mutatedCount++
      const direct = patchOperations(result.input, result.decision)
      t.strictSame(JSON.parse(JSON.stringify(direct)), fastJsonPatch.compare(result.input.object, result.decision.mutated), `${file} ${webhook}`)
      t.same(applied(result.input.object as Json, direct as fastJsonPatch.Operation[]), result.decision.mutated, `${file} ${webhook}: applied`)
    }
  }
  t.ok(mutatedCount >= 5, `examples with a mutation: ${mutatedCount}`)
})

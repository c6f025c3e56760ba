// The request path when a rule throws: answered (allowed, unpatched, with a warning), counted as
// decision="internal-error", logged at error level with the thrown Error, which never reaches the response.
import { readFileSync } from 'node:fs'
import { fastify } from 'fastify'
import { test } from 'tap'
import type { Log } from '../../src/log.ts'
import { admissionRoutes } from '../../src/server/admission-routes.ts'
import { createMetrics } from '../../src/server/metrics.ts'
import type { Snapshot } from '../../src/state/snapshot.ts'
import { snapshotOf } from '../support/snapshot.ts'

interface Line { readonly level: 'info' | 'error'; readonly obj: Record<string, unknown>; readonly msg: string }

/** A snapshot whose cluster state throws when a rule reads it, as a bug in a rule would. */
function explodingSnapshot(): Snapshot {
  return new Proxy(snapshotOf(), {
    get(target, property, receiver) {
      if (property === 'cluster') throw new TypeError('cluster state exploded')
      return Reflect.get(target, property, receiver) as unknown
    },
  })
}

test('a rule that throws: allowed unchanged with a warning, counted as internal-error, logged with { err }', async (t) => {
  const snapshot = explodingSnapshot()
  const metrics = createMetrics({ readSnapshot: () => snapshotOf() })
  const lines: Line[] = []
  const log: Pick<Log, 'info' | 'error'> = {
    info: (obj, msg) => void lines.push({ level: 'info', obj: obj as Record<string, unknown>, msg }),
    error: (obj, msg) => void lines.push({ level: 'error', obj: obj as Record<string, unknown>, msg }),
  }
  const app = fastify()
  t.teardown(() => app.close())
  await app.register(async (scope) => admissionRoutes(scope, { snapshot: () => snapshot, metrics, log }))

  const body = readFileSync(new URL('../../examples/admission/pvc-restore.json', import.meta.url), 'utf8')
  const reply = await app.inject({ method: 'POST', url: '/mutate', headers: { 'content-type': 'application/json' }, payload: body })
  t.equal(reply.statusCode, 200)
  const response = (reply.json() as { response: Record<string, unknown> }).response
  t.equal(response.allowed, true, 'a failing rule never blocks the API request')
  t.equal(response.patch, undefined, 'nothing is patched')
  t.equal(response.status, undefined)
  t.match(response.warnings, [/could not decide \(internal error: cluster state exploded\); the object was admitted unchanged/])
  t.notMatch(reply.body, /at .*\.ts:\d+/, 'no stack trace in the response')

  const counted = (await metrics.admissionRequests.get()).values
  t.same(counted.map((v) => [v.labels.decision, v.value]), [['internal-error', 1]], 'counted under decision="internal-error", nothing else')
  t.match(counted[0]?.labels, { webhook: 'mutate', kind: 'PersistentVolumeClaim', operation: 'CREATE' })

  t.equal(lines.length, 1)
  t.equal(lines[0]?.level, 'error')
  t.match(lines[0]?.msg, /admission rule failed; admitted unchanged/)
  const err = lines[0]?.obj.err
  t.ok(err instanceof TypeError, 'the thrown Error itself, so pino keeps its type and stack')
  t.equal((err as Error).message, 'cluster state exploded')
})

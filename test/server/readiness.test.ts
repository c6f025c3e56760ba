// The one readiness definition (server/readiness.ts): loaded-once is ready, a failing loop is
// degraded, and a loop's `unready` (e.g. the served certificate has expired) is not ready.
import t from 'tap'
import type { LoopHealth } from '../../src/loop.ts'
import { readiness } from '../../src/server/readiness.ts'

const loop = (name: string, more: Partial<LoopHealth> = {}): LoopHealth => ({ name, loaded: true, gatesReadiness: true, error: null, lastSuccess: null, ...more })

t.test('loaded once is ready; a failing loaded loop is degraded, not unready', async (t) => {
  t.strictSame(readiness([loop('cluster'), loop('catalog', { error: 'source nas: boom' })]), { ready: true, pending: [], degraded: ['catalog: source nas: boom'] })
})

t.test('a gating loop not loaded yet is pending with what it waits for', async (t) => {
  t.strictSame(readiness([loop('catalog', { loaded: false, waitingFor: 'first catalog poll not finished' })]).pending, ['catalog: first catalog poll not finished'])
  t.equal(readiness([loop('prewarm', { loaded: false, gatesReadiness: false })]).ready, true, 'a loop that does not gate never holds readiness')
})

t.test('unready: a loaded loop that cannot answer correctly now is pending, its error aside', async (t) => {
  const r = readiness([loop('cluster'), loop('tls', { unready: 'the served certificate expired at 2026-01-01T00:00:00.000Z', error: 'refused a new certificate' })])
  t.equal(r.ready, false)
  t.strictSame(r.pending, ['tls: the served certificate expired at 2026-01-01T00:00:00.000Z'])
  t.strictSame(r.degraded, [])
})

import t from 'tap'
import { parseConfig } from '../../src/config/load.ts'
import { configInForce, RESTART_REQUIRED_KEYS, restartRequiredChanges } from '../../src/config/restart-required.ts'

const base = parseConfig('server: { port: 8443 }\ncatalog: { interval: 60s }\n', 'base')

t.test('the restart-required keys come from the schema marks', async (t) => {
  t.same(RESTART_REQUIRED_KEYS, ['server', 'state', 'kube'])
})

t.test('a change of a live key needs no restart; a change under a marked key names it', async (t) => {
  t.same(restartRequiredChanges(base, parseConfig('server: { port: 8443 }\ncatalog: { interval: 30s }\nlog: { level: debug }\n', 'next')), [], 'catalog and log apply live')
  t.same(restartRequiredChanges(base, parseConfig('server: { port: 9443 }\ncatalog: { interval: 60s }\n', 'next')), ['server'])
  t.same(restartRequiredChanges(base, parseConfig('server: { port: 9443 }\nkube: { namespace: other }\n', 'next')), ['server', 'kube'])
  t.same(restartRequiredChanges(base, parseConfig('server: { port: 8443 }\nstate: { directory: x }\n', 'next')), ['state'])
  t.same(restartRequiredChanges(base, parseConfig('server: { port: 8443 }\npvc: { selector: { matchLabels: { a: b } } }\nprewarm: { requireSecret: s }\n', 'next')), [], 'pvc.selector and prewarm.requireSecret apply live')
})

t.test('configInForce: live keys from the new file, restart-required keys from the running config', async (t) => {
  const next = parseConfig('server: { port: 9443 }\ncatalog: { interval: 30s }\nkube: { namespace: other }\n', 'next')
  const inForce = configInForce(base, next)
  t.equal(inForce.server.port, 8443, 'the listening port does not change until a restart')
  t.equal(inForce.kube.namespace, base.kube.namespace)
  t.equal(inForce.catalog.interval, '30s', 'the catalog interval applies now')
  t.equal(next.server.port, 9443, 'the inputs are not modified')
  t.same(restartRequiredChanges(inForce, next), ['server', 'kube'], 'so the next reload of the same file still names them')
})

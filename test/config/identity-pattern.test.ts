import t from 'tap'
import { combineIdentities, compileIdentityPattern } from '../../src/config/identity-pattern.ts'

t.test('patterns capture namespace and pvc as Kubernetes names', async (t) => {
  const path = compileIdentityPattern('/data/{{namespace}}/{{pvc}}')
  t.same(path.match('/data/media/jellyfin'), { namespace: 'media', pvc: 'jellyfin' })
  t.equal(path.match('/data/media/jellyfin/extra'), null, 'anchored at both ends')
  t.equal(path.match('/data/Media/jellyfin'), null, 'upper case is not a Kubernetes name')
  t.same([...path.variables].sort(), ['namespace', 'pvc'])
  t.same(compileIdentityPattern('{{pvc}}-backup.lan').match('sonarr-backup.lan'), { pvc: 'sonarr' }, 'literal dots are literal')
  t.equal(compileIdentityPattern('{{pvc}}-backup.lan').match('sonarr-backupxlan'), null)
  t.same(compileIdentityPattern('{{pvc}}@{{pvc}}').match('a@a'), { pvc: 'a' }, 'a repeated variable must repeat its value')
  t.equal(compileIdentityPattern('{{pvc}}@{{pvc}}').match('a@b'), null)
})

t.test('combining fields: all must match and agree', async (t) => {
  t.same(combineIdentities([{ namespace: 'media' }, { pvc: 'jellyfin' }]), { namespace: 'media', pvc: 'jellyfin' })
  t.equal(combineIdentities([{ namespace: 'media' }, null]), null, 'a field that did not match')
  t.equal(combineIdentities([{ namespace: 'media' }, { namespace: 'home', pvc: 'x' }]), null, 'two answers for the namespace')
  t.equal(combineIdentities([{ namespace: 'media' }]), null, 'no pvc')
})

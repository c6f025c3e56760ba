import t from 'tap'
import { OpenedRepositories } from '../../src/catalog/opened-repositories.ts'

t.test('kept while the password stays, reopened when it changes, never cached after a failed open', async (t) => {
  const opened = new OpenedRepositories<string>()
  let opens = 0
  const open = (label: string) => async () => `${label}#${++opens}`
  t.equal(await opened.get('media/jellyfin', 'one', open('a')), 'a#1')
  t.equal(await opened.get('media/jellyfin', 'one', open('a')), 'a#1', 'same password: the same repository, not reopened')
  t.equal(await opened.get('media/sonarr', 'one', open('b')), 'b#2', 'another key is another repository')
  t.equal(await opened.get('media/jellyfin', 'two', open('a')), 'a#3', 'a rotated password reopens')
  await t.rejects(opened.get('media/jellyfin', 'three', async () => { throw new Error('wrong password') }), /wrong password/)
  t.equal(await opened.get('media/jellyfin', 'two', open('a')), 'a#4', 'the failed open dropped the old one too')
  opened.forget('media/sonarr')
  t.equal(await opened.get('media/sonarr', 'one', open('b')), 'b#5', 'forget drops it')
})

import { randomBytes } from 'node:crypto'
import t from 'tap'
import { cipherKeysFromBytes } from '../../src/restic/crypto.ts'
import { ResticError } from '../../src/restic/errors.ts'
import { ResticKeyCache } from '../../src/restic/key-cache.ts'
import { ResticRepository } from '../../src/restic/repository.ts'
import { FsBlobStore } from '../../src/storage/fs-store.ts'
import { copyFixture, CountingStore, fixtureStore, PASSWORD, SECOND_PASSWORD } from '../support/restic-fixtures.ts'

// scrypt only ever runs on a key file just read, so "no key file read" is "no scrypt run".

t.test('re-opening with a cache reads no key file, so runs no scrypt', async (t) => {
  const keyCache = new ResticKeyCache()
  const first = new CountingStore(fixtureStore('v2'))
  const repo1 = await ResticRepository.open(first, PASSWORD, { keyCache })
  t.equal(first.getCount('keys/'), 1)
  t.equal(keyCache.size, 1)

  const again = new CountingStore(fixtureStore('v2'))
  const repo2 = await ResticRepository.open(again, PASSWORD, { keyCache })
  t.equal(again.getCount('keys/'), 0, 'answered from the cache')
  t.equal(repo2.keyId, repo1.keyId)
  t.same(await repo2.listSnapshots(), await repo1.listSnapshots())

  const otherPassword = new CountingStore(fixtureStore('v2'))
  await t.rejects(ResticRepository.open(otherPassword, 'not-the-password', { keyCache }), ResticError)
  t.equal(otherPassword.getCount('keys/'), 1, 'another password is another entry')

  const elsewhere = new CountingStore(new FsBlobStore(copyFixture('v2', t.testdir())))
  await ResticRepository.open(elsewhere, PASSWORD, { keyCache })
  t.equal(elsewhere.getCount('keys/'), 1, 'another location is another entry')
})

t.test('a wrong password is remembered too: the second failure costs no scrypt', async (t) => {
  const keyCache = new ResticKeyCache()
  const store = new CountingStore(fixtureStore('two-keys'))
  await t.rejects(ResticRepository.open(store, 'wrong', { keyCache }), { code: 'wrong-password' })
  t.equal(store.getCount('keys/'), 2, 'both key files tried once')
  await t.rejects(ResticRepository.open(store, 'wrong', { keyCache }), { code: 'wrong-password', message: /^wrong password for restic repository / })
  t.equal(store.getCount('keys/'), 2, 'no key file read the second time')
})

t.test('the second key of two-keys is found, then served from the cache', async (t) => {
  const keyCache = new ResticKeyCache()
  const store = new CountingStore(fixtureStore('two-keys'))
  const repo = await ResticRepository.open(store, SECOND_PASSWORD, { keyCache })
  const reads = store.getCount('keys/')
  t.ok(reads === 1 || reads === 2, `read ${reads} key file(s) to find it`)
  const again = await ResticRepository.open(store, SECOND_PASSWORD, { keyCache })
  t.equal(store.getCount('keys/'), reads)
  t.equal(again.keyId, repo.keyId)
})

t.test('bounded: the least recently used entry goes first', async (t) => {
  const cache = new ResticKeyCache({ maxEntries: 2 })
  const keys = cipherKeysFromBytes(randomBytes(64))
  cache.set('loc/', 'a', 'pw', keys)
  cache.set('loc/', 'b', 'pw', null)
  t.equal(cache.get('loc/', 'a', 'pw'), keys, 'refreshes a')
  cache.set('loc/', 'c', 'pw', keys)
  t.equal(cache.size, 2)
  t.equal(cache.get('loc/', 'b', 'pw'), undefined, 'b was the oldest')
  t.equal(cache.get('loc/', 'a', 'pw'), keys)
  t.equal(cache.get('loc/', 'c', 'pw'), keys)
  t.equal(cache.get('loc/', 'c', 'other'), undefined, 'keyed by password')
  cache.clear()
  t.equal(cache.size, 0)
  t.throws(() => new ResticKeyCache({ maxEntries: 0 }), RangeError)
})

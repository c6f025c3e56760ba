import t from 'tap'
import { CatalogPoller } from '../../src/catalog/poller.ts'
import type { CatalogSource } from '../../src/catalog/source.ts'
import { staticSource } from '../../src/catalog/static-source.ts'
import type { CatalogState } from '../../src/state/catalog-state.ts'
import { lookupBackup } from '../../src/admission/backup-lookup.ts'

const silent = { info() {}, warn() {} }

t.test('static source: declared backups become entries', async (t) => {
  const source = staticSource({ name: 'declared', type: 'static', backups: [{ namespace: 'media', pvc: 'jellyfin', snapshots: 3, newest: '2026-03-16T08:00:00Z' }] })
  const { entries } = await source.poll(new AbortController().signal)
  t.same(entries, [{ namespace: 'media', pvc: 'jellyfin', source: 'declared', kind: 'static', snapshots: 3, newest: '2026-03-16T08:00:00Z' }])
})

t.test('a failing source keeps its last known entries, ages, then becomes unknown', async (t) => {
  let clock = 1_000_000
  let fail = false
  const flaky: CatalogSource = {
    name: 'flaky',
    type: 'test',
    poll: async () => {
      if (fail) throw new Error('connect ECONNREFUSED 127.0.0.1:9000')
      return { entries: [{ namespace: 'media', pvc: 'jellyfin', source: 'flaky', kind: 'restic', snapshots: 2 }] }
    },
  }
  const published: CatalogState[] = []
  const poller = new CatalogPoller([flaky], (c) => published.push(c), { intervalMs: 60_000, log: silent, now: () => clock })
  t.teardown(() => poller.stop())
  t.equal(poller.firstPollDone, false)
  await poller.pollAll()
  t.equal(poller.firstPollDone, true)
  const staleAfter = 10 * 60_000
  t.equal(lookupBackup(published.at(-1)!, 'media', 'jellyfin', clock, staleAfter).state, 'backup')

  fail = true
  clock += 5 * 60_000
  await poller.pollAll()
  const afterFailure = published.at(-1)!
  t.equal(afterFailure.sources[0]!.entries.length, 1, 'entries kept')
  t.equal(afterFailure.sources[0]!.lastSuccess, 1_000_000, 'age visible through lastSuccess')
  t.match(afterFailure.sources[0]!.error, /ECONNREFUSED/)
  t.equal(lookupBackup(afterFailure, 'media', 'jellyfin', clock, staleAfter).state, 'backup', 'still within staleAfter')

  clock += 6 * 60_000
  const answer = lookupBackup(afterFailure, 'media', 'jellyfin', clock, staleAfter)
  t.equal(answer.state, 'unknown', 'past staleAfter the last known state is no longer trusted')

  fail = false
  await poller.pollAll()
  t.equal(published.at(-1)!.sources[0]!.error, null, 'a success clears the error')
})

t.test('backoff grows with failures and is jittered', async (t) => {
  let calls = 0
  const failing: CatalogSource = { name: 'down', type: 'test', poll: async () => { calls++; throw new Error('down') } }
  const poller = new CatalogPoller([failing], () => {}, { intervalMs: 200, maxBackoffMs: 400, log: silent })
  await poller.start()
  await new Promise((r) => setTimeout(r, 1500))
  poller.stop()
  const after = calls
  await new Promise((r) => setTimeout(r, 600))
  t.ok(after >= 3 && after <= 9, `retried a bounded number of times (${after})`)
  t.equal(calls, after, 'stop() stops polling')
})

t.test('a source that hangs is cut off by the poll timeout', async (t) => {
  const hanging: CatalogSource = {
    name: 'hang',
    type: 'test',
    poll: () => new Promise(() => {}), // ignores its signal entirely
  }
  const poller = new CatalogPoller([hanging], () => {}, { intervalMs: 60_000, timeoutMs: 100, log: silent })
  await poller.pollAll()
  t.match(poller.states[0]!.error, /timed out/)
  poller.stop()
})

t.test('an unchanged poll refreshes freshness but keeps the catalog index and revision', async (t) => {
  let clock = 1_000_000
  let snapshots = 2
  const source: CatalogSource = {
    name: 'changing',
    type: 'test',
    poll: async () => ({ entries: [{ namespace: 'media', pvc: 'jellyfin', source: 'changing', kind: 'restic', snapshots }] }),
  }
  const published: CatalogState[] = []
  const poller = new CatalogPoller([source], (c) => published.push(c), { intervalMs: 60_000, log: silent, now: () => clock })
  t.teardown(() => poller.stop())
  await poller.pollAll()
  clock += 60_000
  await poller.pollAll()
  const [first, second] = published
  t.equal(second!.revision, first!.revision, 'same revision')
  t.equal(second!.byPvc, first!.byPvc, 'same index object')
  t.equal(second!.sources[0]!.entries, first!.sources[0]!.entries, 'same entries array')
  t.equal(second!.sources[0]!.lastSuccess, clock, 'but a newer lastSuccess')
  snapshots = 3
  await poller.pollAll()
  const third = published.at(-1)!
  t.equal(third.revision, second!.revision + 1, 'a change bumps the revision')
  t.equal(third.byPvc.get('media/jellyfin')![0]!.snapshots, 3)
})

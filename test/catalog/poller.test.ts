import t from 'tap'
import { CatalogPoller, pollDelayMs } from '../../src/catalog/poller.ts'
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

t.test('pollDelayMs: the interval after a success, exponential backoff after failures, capped, always jittered +-20%', async (t) => {
  t.equal(pollDelayMs(0, 60_000, 600_000, 0.5), 60_000, 'a success waits one interval')
  t.equal(pollDelayMs(0, 60_000, 600_000, 0), 48_000, '-20%')
  t.equal(pollDelayMs(0, 60_000, 600_000, 0.999999), 72_000, '+20%')
  t.same([1, 2, 3, 4].map((f) => pollDelayMs(f, 60_000, 600_000, 0.5)), [5_000, 10_000, 20_000, 40_000], 'failures double from min(interval, 5 s)')
  t.equal(pollDelayMs(1, 2_000, 600_000, 0.5), 2_000, 'a short interval starts the backoff at the interval')
  t.equal(pollDelayMs(20, 60_000, 600_000, 0.5), 600_000, 'capped at maxBackoffMs')
  t.equal(pollDelayMs(10_000, 60_000, 600_000, 0.5), 600_000, 'no overflow for absurd failure counts')
  t.equal(pollDelayMs(3, 3_600_000, 600_000, 0.5), 20_000, 'a long interval does not slow the retries of a failing source')
  t.equal(pollDelayMs(0, 576 * 3_600_000, 600_000, 0.999), 2 ** 31 - 1, 'the jitter never takes a delay past a timer\'s limit (where it would fire after 1 ms)')
  for (let failures = 0; failures < 40; failures++) {
    for (const random of [0, 0.25, 0.5, 0.75, 0.999]) {
      const delay = pollDelayMs(failures, 60_000, 600_000, random)
      if (delay < 0.8 * Math.min(60_000, 5000) || delay > 1.2 * 600_000) t.fail(`out of range: ${failures} failures, random ${random} -> ${delay}`)
    }
  }
})

t.test('stop() stops polling: no poll after it, and a poll in flight publishes nothing', async (t) => {
  let calls = 0
  let release: (() => void) | undefined
  const slow: CatalogSource = { name: 'slow', type: 'test', poll: (signal) => { calls++; return new Promise((resolve, reject) => { release = () => resolve({ entries: [] }); signal.addEventListener('abort', () => reject(signal.reason)) }) } }
  const published: CatalogState[] = []
  const poller = new CatalogPoller([slow], (c) => published.push(c), { intervalMs: 10, log: silent })
  const stop = new AbortController()
  const running = poller.run(stop.signal)
  await new Promise((r) => setImmediate(r))
  t.equal(calls, 1, 'the first round started')
  stop.abort()
  await running
  release?.()
  await new Promise((r) => setTimeout(r, 50))
  t.equal(calls, 1, 'nothing polled after stop')
  t.equal(published.length, 0, 'the aborted poll published nothing')
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

t.test('reconfigure keeps what is known: unchanged sources keep state and schedule, changed ones keep entries until they answer', async (t) => {
  let clock = 1_000_000
  const polls: string[] = []
  const make = (name: string, config: unknown, answer: () => Promise<number>): CatalogSource => ({
    name, type: 'test', config,
    poll: async () => {
      polls.push(`${name}:${JSON.stringify(config)}`)
      return { entries: [{ namespace: 'media', pvc: name, source: name, kind: 'restic', snapshots: await answer() }] }
    },
  })
  let gate: Promise<void> = Promise.resolve()
  const published: CatalogState[] = []
  const poller = new CatalogPoller([make('a', { endpoint: 1 }, async () => 1), make('b', { endpoint: 1 }, async () => 2)], (c) => published.push(c), { intervalMs: 60_000, log: silent, now: () => clock })
  const stop = new AbortController()
  t.teardown(() => stop.abort())
  void poller.run(stop.signal)
  await new Promise((r) => setTimeout(r, 20))
  t.equal(poller.firstPollDone, true)
  const before = published.at(-1)!
  t.same(polls.sort(), ['a:{"endpoint":1}', 'b:{"endpoint":1}'])
  polls.length = 0

  // Same configs as new objects, a new interval: nothing is re-polled, nothing forgotten.
  clock += 1000
  poller.reconfigure([make('a', { endpoint: 1 }, async () => 1), make('b', { endpoint: 1 }, async () => 2)], 30_000)
  await new Promise((r) => setTimeout(r, 20))
  t.same(polls, [], 'unchanged sources are not re-polled')
  t.equal(poller.states[0]!.lastSuccess, before.sources[0]!.lastSuccess)

  // b's endpoint changes and its new poll hangs: its last known entries stay meanwhile.
  let open: () => void = () => {}
  gate = new Promise((resolve) => { open = resolve })
  poller.reconfigure([make('a', { endpoint: 1 }, async () => 1), make('b', { endpoint: 2 }, async () => { await gate; return 5 })], 30_000)
  await new Promise((r) => setTimeout(r, 20))
  t.same(polls, ['b:{"endpoint":2}'], 'only the changed source is polled, at once')
  const during = published.at(-1)!
  t.equal(lookupBackup(during, 'media', 'b', clock, 600_000).state, 'backup', 'the changed source keeps its last known entries until it answers')
  t.equal(lookupBackup(during, 'media', 'a', clock, 600_000).state, 'backup')
  open()
  await new Promise((r) => setTimeout(r, 20))
  t.equal(published.at(-1)!.byPvc.get('media/b')![0]!.snapshots, 5, 'then its new answer replaces them')

  // Removing a source drops its entries at once; adding one polls it at once.
  polls.length = 0
  poller.reconfigure([make('c', { endpoint: 3 }, async () => 7)], 30_000)
  await new Promise((r) => setTimeout(r, 20))
  t.same(polls, ['c:{"endpoint":3}'])
  t.same([...published.at(-1)!.byPvc.keys()], ['media/c'], 'a and b are gone, c is there')
  t.equal(poller.firstPollDone, true, 'still ready: readiness never goes back')
})

t.test('a source replaced while its poll is in flight: the old answer is dropped', async (t) => {
  let release: (n: number) => void = () => {}
  const slowOld: CatalogSource = { name: 's', type: 'test', config: { v: 1 }, poll: () => new Promise((resolve) => { release = (n) => resolve({ entries: [{ namespace: 'ns', pvc: 'p', source: 's', kind: 'restic', snapshots: n }] }) }) }
  const published: CatalogState[] = []
  const poller = new CatalogPoller([slowOld], (c) => published.push(c), { intervalMs: 60_000, log: silent })
  const stop = new AbortController()
  t.teardown(() => stop.abort())
  void poller.run(stop.signal)
  await new Promise((r) => setImmediate(r))
  const oldRelease = release
  poller.reconfigure([{ name: 's', type: 'test', config: { v: 2 }, poll: async () => ({ entries: [{ namespace: 'ns', pvc: 'p', source: 's', kind: 'restic', snapshots: 2 }] }) }], 60_000)
  await new Promise((r) => setTimeout(r, 20))
  oldRelease(1)
  await new Promise((r) => setTimeout(r, 20))
  t.equal(published.at(-1)!.byPvc.get('ns/p')![0]!.snapshots, 2, 'the replaced source cannot overwrite its successor')
})

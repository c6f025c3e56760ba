// LeaderLease against the fake API server, through the real client-node. Loops run on real timers
// with a short retry period; every time-dependent decision reads an injected clock, so nothing
// here depends on how fast the machine is.
import t from 'tap'
import { CoordinationV1Api, KubeConfig, V1MicroTime } from '@kubernetes/client-node'
import { apiStatusCode } from '../../src/controllers/api-status.ts'
import { LeaderLease, type LeaderLeaseOptions } from '../../src/controllers/leader-lease.ts'
import { FakeKubeApi, field, type JsonObject } from '../support/fake-kube-api.ts'

type Test = Parameters<NonNullable<Parameters<typeof t.test>[0]>>[0]

const NS = 'volsync-system'
const NAME = 'volsync-autorestore'
const LEASE_PATH = `/apis/coordination.k8s.io/v1/namespaces/${NS}/leases/${NAME}`
const silent = { debug() {}, info() {}, warn() {}, error() {} }
const MICRO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/

class ManualClock {
  ms = Date.parse('2025-06-01T12:00:00Z')
  readonly now = (): number => this.ms
  advance(ms: number): void {
    this.ms += ms
  }
}

interface Harness {
  fake: FakeKubeApi
  /** Ordered record of `<identity>:started|aborted|stopped|work-done`. */
  events: string[]
  lease(identity: string, extra?: Partial<LeaderLeaseOptions>): LeaderLease
  /** The Lease as stored. */
  stored(): unknown
  leaseWrites(): { method: string; status: number | undefined; body: unknown }[]
}

async function harness(t: Test): Promise<Harness> {
  const fake = await FakeKubeApi.start()
  fake.seed({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } })
  const leases: LeaderLease[] = []
  const events: string[] = []
  // One teardown, so the leases stop (and release) before the server goes away.
  t.teardown(async () => {
    await Promise.all(leases.map((l) => l.stop()))
    await fake.close()
  })
  return {
    fake,
    events,
    lease(identity, extra = {}) {
      const lease = new LeaderLease({
        api: fake.kubeConfig(),
        namespace: NS,
        name: NAME,
        identity,
        retryPeriodMs: 10,
        onStartedLeading: (signal) => {
          events.push(`${identity}:started`)
          signal.addEventListener('abort', () => events.push(`${identity}:aborted`))
        },
        onStoppedLeading: () => events.push(`${identity}:stopped`),
        ...extra,
      })
      leases.push(lease)
      return lease
    },
    stored: () => fake.get('leases.coordination.k8s.io', NS, NAME),
    leaseWrites: () => fake.requests.filter((r) => r.path.startsWith(`/apis/coordination.k8s.io/v1/namespaces/${NS}/leases`) && r.method !== 'GET').map((r) => ({ method: r.method, status: r.status, body: r.body })),
  }
}

/** Resolves after `n` more requests reached the fake: some rounds of both loops have run. */
async function rounds(fake: FakeKubeApi, n = 20): Promise<void> {
  const target = fake.requests.length + n
  await fake.waitFor(() => fake.requests.length >= target)
}

t.test('two contenders: exactly one leads, the other keeps watching the Lease', async (t) => {
  const h = await harness(t)
  const alice = h.lease('alice')
  const bob = h.lease('bob')
  alice.start()
  bob.start()
  await h.fake.waitFor(() => alice.isLeader || bob.isLeader)
  await rounds(h.fake, 30)
  t.equal([alice, bob].filter((l) => l.isLeader).length, 1, 'exactly one leader')
  const [leader, follower] = alice.isLeader ? [alice, bob] : [bob, alice]
  const leaderName = leader === alice ? 'alice' : 'bob'
  t.equal(field(h.stored(), 'spec.holderIdentity'), leaderName)
  t.equal(follower.holderIdentity, leaderName, 'the follower sees who leads')
  t.same(h.events, [`${leaderName}:started`])
  t.match(h.stored(), { spec: { leaseDurationSeconds: 15, leaseTransitions: 0, acquireTime: MICRO_TIME, renewTime: MICRO_TIME } })

  const writes = h.leaseWrites()
  t.equal(writes.filter((w) => w.method === 'POST' && w.status === 201).length, 1, 'one create won')
  t.ok(writes.filter((w) => w.method === 'PUT' && w.status === 200).length > 1, 'the leader renews')
  t.ok(writes.every((w) => w.status === 200 || w.status === 201 || w.status === 409), 'losers only ever see 409')
  for (const w of writes) t.match(w.body, { spec: { renewTime: MICRO_TIME } }, 'microTime on the wire')
  t.ok(writes.filter((w) => w.method === 'PUT').every((w) => typeof field(w.body, 'metadata.resourceVersion') === 'string'), 'every update carries a resourceVersion')
})

t.test('stop() aborts the work, waits for it, releases; the other replica takes over at once', async (t) => {
  const h = await harness(t)
  let holderWhenWorkEnded: unknown
  const alice = h.lease('alice', {
    onStartedLeading: (signal) => {
      h.events.push('alice:started')
      return new Promise<void>((resolve) => {
        signal.addEventListener('abort', () => {
          h.events.push('alice:aborted')
          // Leader work winding down asynchronously; the Lease must still be ours meanwhile.
          setImmediate(() => {
            holderWhenWorkEnded = field(h.stored(), 'spec.holderIdentity')
            h.events.push('alice:work-done')
            resolve()
          })
        })
      })
    },
  })
  // Bob would only take an unreleased Lease after 15 s without changes: minutes here, as his clock stands still.
  const bobClock = new ManualClock()
  const bob = h.lease('bob', { now: bobClock.now })
  alice.start()
  await h.fake.waitFor(() => alice.isLeader)
  bob.start()
  await h.fake.waitFor(() => bob.holderIdentity === 'alice')
  await rounds(h.fake)
  t.notOk(bob.isLeader)

  await alice.stop()
  t.notOk(alice.isLeader)
  t.same(h.events, ['alice:started', 'alice:aborted', 'alice:work-done', 'alice:stopped'])
  t.equal(holderWhenWorkEnded, 'alice', 'released only after the leader work finished')
  t.ok(h.leaseWrites().some((w) => w.method === 'PUT' && field(w.body, 'spec.holderIdentity') === ''), 'released with an empty holder')

  await h.fake.waitFor(() => bob.isLeader)
  t.match(h.stored(), { spec: { holderIdentity: 'bob', leaseTransitions: 1, leaseDurationSeconds: 15 } })
  t.same(h.events.slice(4), ['bob:started'])
  await alice.stop()
  t.equal(field(h.stored(), 'spec.holderIdentity'), 'bob', 'a second stop() does nothing')
})

t.test('renewals failing past the renew deadline: abort, onStoppedLeading, then another replica leads', async (t) => {
  const h = await harness(t)
  const aliceClock = new ManualClock()
  const bobClock = new ManualClock()
  let aliceFailures = 0
  const log = { ...silent, debug: () => void (aliceFailures += 1) }
  const alice = h.lease('alice', { now: aliceClock.now, log })
  const bob = h.lease('bob', { now: bobClock.now })
  alice.start()
  await h.fake.waitFor(() => alice.isLeader)
  bob.start()
  await h.fake.waitFor(() => bob.holderIdentity === 'alice')

  // The API server fails Lease updates from now on (50 is plenty: alice gives up within a few).
  // While alice's Lease is valid only she writes.
  h.fake.injectFailure({ method: 'PUT', path: LEASE_PATH, code: 503, reason: 'ServiceUnavailable', times: 50 })
  await h.fake.waitFor(() => aliceFailures >= 2)
  t.ok(alice.isLeader, 'failed renewals inside the renew deadline are tolerated')

  aliceClock.advance(10_001)
  await h.fake.waitFor(() => !alice.isLeader)
  t.same(h.events, ['alice:started', 'alice:aborted', 'alice:stopped'], 'signal aborted before onStoppedLeading')

  // The outage ends: use up the injected failures with updates that could never apply (a stale
  // resourceVersion: 409 once the server really serves them).
  const api = h.fake.kubeConfig().makeApiClient(CoordinationV1Api)
  const stillFailing = async (): Promise<boolean> => {
    try {
      await api.replaceNamespacedLease({ namespace: NS, name: NAME, body: { metadata: { name: NAME, namespace: NS, resourceVersion: '1' } } })
    } catch (error) {
      return apiStatusCode(error) === 503
    }
    return false
  }
  while (await stillFailing());
  await rounds(h.fake)
  t.notOk(bob.isLeader, 'bob waits out the Lease duration')
  t.notOk(alice.isLeader, 'alice does not grab back the Lease she failed to renew')

  bobClock.advance(15_001)
  await h.fake.waitFor(() => bob.isLeader)
  t.same(h.events, ['alice:started', 'alice:aborted', 'alice:stopped', 'bob:started'])
  t.match(h.stored(), { spec: { holderIdentity: 'bob', leaseTransitions: 1 } })
  await rounds(h.fake)
  t.notOk(alice.isLeader)
  t.equal(alice.holderIdentity, 'bob')
})

t.test('an expired Lease is taken over; an old renewTime alone is not enough', async (t) => {
  const h = await harness(t)
  const clock = new ManualClock()
  const hourAgo = new V1MicroTime(clock.ms - 3_600_000).toISOString()
  h.fake.seed({
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { name: NAME, namespace: NS },
    spec: { holderIdentity: 'ghost', leaseDurationSeconds: 15, acquireTime: hourAgo, renewTime: hourAgo, leaseTransitions: 4 },
  })
  const bob = h.lease('bob', { now: clock.now })
  bob.start()
  await h.fake.waitFor(() => bob.holderIdentity === 'ghost')
  await rounds(h.fake)
  // Expiry counts from when bob saw the Lease change, so a skewed clock cannot steal a live Lease.
  t.notOk(bob.isLeader, 'not taken on first sight, whatever renewTime says')

  clock.advance(14_000)
  await rounds(h.fake)
  t.notOk(bob.isLeader, 'not before the Lease duration')
  clock.advance(1_001)
  await h.fake.waitFor(() => bob.isLeader)
  const stored = h.stored()
  t.match(stored, { spec: { holderIdentity: 'bob', leaseTransitions: 5, leaseDurationSeconds: 15, acquireTime: MICRO_TIME, renewTime: MICRO_TIME } })
  t.equal(Date.parse(String(field(stored, 'spec.acquireTime'))), clock.ms, 'acquired now, by the injected clock')
})

t.test('a Lease taken by someone else ends leadership at the next renewal', async (t) => {
  const h = await harness(t)
  const alice = h.lease('alice')
  alice.start()
  await h.fake.waitFor(() => alice.isLeader)
  // An intruder writes the Lease behind alice's back (in one step, so no renewal slips in between):
  // her next renewal gets 409, her re-read shows the intruder.
  const current = h.stored() as JsonObject
  h.fake.seed({ ...current, spec: { ...(current.spec as JsonObject), holderIdentity: 'intruder' } })
  await h.fake.waitFor(() => !alice.isLeader)
  t.same(h.events, ['alice:started', 'alice:aborted', 'alice:stopped'])
  t.equal(alice.holderIdentity, 'intruder')
  await alice.stop()
  t.equal(field(h.stored(), 'spec.holderIdentity'), 'intruder', 'stop() does not release a Lease that is not ours')
})

t.test('options are checked', async (t) => {
  const base = { api: new KubeConfig(), namespace: NS, name: NAME, identity: 'a', onStartedLeading: () => {} }
  t.throws(() => new LeaderLease({ ...base, leaseDurationMs: 10_000, renewDeadlineMs: 10_000 }), /leaseDurationMs > renewDeadlineMs/)
  t.throws(() => new LeaderLease({ ...base, renewDeadlineMs: 1_000, retryPeriodMs: 2_000 }), /renewDeadlineMs > retryPeriodMs/)
  t.throws(() => new LeaderLease({ ...base, identity: '' }), /identity/)
})

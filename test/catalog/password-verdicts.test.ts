// The bounded password-check queue (catalog/password-verdicts.ts), the immutable verdicts it
// publishes, and the whole loop with a writer-made Kopia repository: the pure kopiaPassword rule
// nudges, the queue derives, the next decision warns.
import { Writable } from 'node:stream'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import t from 'tap'
import type { AdmissionInput } from '../../src/admission/decision.ts'
import { decide as dispatch } from '../../src/admission/webhooks.ts'
import { kopiaSource } from '../../src/catalog/kopia-source.ts'
import { checkAgainstFormat, DUTY_CYCLE, MAX_IN_FLIGHT, MAX_PENDING, type PasswordCheck, PasswordVerdictQueue, startPasswordVerdicts } from '../../src/catalog/password-verdicts.ts'
import { parseConfig } from '../../src/config/load.ts'
import { createLogger } from '../../src/log.ts'
import { buildCatalogState, type OpenedRepository } from '../../src/state/catalog-state.ts'
import { MAX_WRONG_PER_REPOSITORY, PasswordVerdicts, passwordDigest } from '../../src/state/password-verdicts.ts'
import type { Snapshot } from '../../src/state/snapshot.ts'
import { StateStore } from '../../src/state/store.ts'
import { directoryTarget } from '../support/kopia-target.ts'
import { KopiaTestWriter } from '../support/kopia-writer.ts'

const OWN = 'the-catalogs-own-password'

function repository(id: string): OpenedRepository {
  return Object.freeze({
    kind: 'kopia',
    filesystem: `/mnt/${id}`,
    location: `/mnt/${id}`,
    id,
    format: { uniqueId: '00'.repeat(32), keyAlgorithm: 'scrypt-65536-8-1', encryption: 'AES256_GCM', encryptedBlockFormat: 'AAAA' },
    openedWithDigest: passwordDigest(OWN),
  })
}

/** A check that holds every call until released, counting how many run at once. */
function heldCheck(answer: (password: string) => 'opens' | 'wrong' | 'unknown' = () => 'wrong') {
  const held: Array<() => void> = []
  const seen: string[] = []
  const state = { running: 0, maxRunning: 0 }
  const check: PasswordCheck = (_format, password) => new Promise((resolve) => {
    seen.push(password)
    state.running++
    state.maxRunning = Math.max(state.maxRunning, state.running)
    held.push(() => {
      state.running--
      resolve(answer(password))
    })
  })
  /** Releases held checks one at a time (each release lets the queue start the next) until none is left. */
  const drain = async () => {
    while (held.length > 0) {
      held.shift()!()
      await new Promise((resolve) => setImmediate(resolve))
    }
  }
  return { check, held, seen, state, drain }
}

t.test('a flood of 1,000 distinct passwords: at most MAX_IN_FLIGHT run, MAX_PENDING wait, the oldest are dropped', async (t) => {
  const { check, seen, state, drain } = heldCheck()
  const published: PasswordVerdicts[] = []
  // A clock that never moves: no duty-cycle pause, so this test is about the bounds alone.
  const queue = new PasswordVerdictQueue({ check, onChange: (v) => published.push(v), now: () => 0 })
  queue.setRepositories([repository('r1')])
  const passwords = Array.from({ length: 1000 }, (_, i) => `flood-${i}`)
  for (const password of passwords) t.equal(queue.request({ repository: 'r1', password }), 'accepted', password) || t.bailout()
  t.equal(MAX_IN_FLIGHT, 1)
  t.equal(MAX_PENDING, 64)
  t.same(queue.counts, { accepted: 1000, dropped: 1000 - MAX_IN_FLIGHT - MAX_PENDING, duplicates: 0, unknownRepository: 0, completed: 0, failed: 0, inFlight: MAX_IN_FLIGHT, pending: MAX_PENDING })
  t.same(seen, ['flood-0'], 'the first started at once')

  const idle = queue.idle()
  await drain()
  await idle
  t.equal(state.maxRunning, MAX_IN_FLIGHT, 'never more than MAX_IN_FLIGHT checks at once')
  t.same(seen, [...passwords.slice(0, 1), ...passwords.slice(-MAX_PENDING)], 'the newest 64 ran; the oldest pending were dropped')
  t.same(queue.counts, { accepted: 1000, dropped: 935, duplicates: 0, unknownRepository: 0, completed: 65, failed: 0, inFlight: 0, pending: 0 })
  t.equal(queue.verdicts.verdictOf('r1', passwordDigest('flood-999')), 'wrong')
  t.equal(queue.verdicts.verdictOf('r1', passwordDigest('flood-500')), 'unknown', 'a dropped one stays unknown (the next admission nudges again)')
  t.equal(queue.verdicts.size, 66, '65 checked and the catalog\'s own')
  t.equal(published.length, 66, 'one publish for the own password, one per verdict')
  t.equal(queue.request({ repository: 'r1', password: 'flood-500' }), 'accepted', 'a dropped password can be asked again')
  queue.close()
})

t.test('the duty cycle: after a check that took d ms, the next starts d * (1/DUTY_CYCLE - 1) ms later', async (t) => {
  const { check, held, seen } = heldCheck()
  let clock = 0
  const queue = new PasswordVerdictQueue({ check, onChange: () => undefined, now: () => clock })
  t.teardown(() => queue.close())
  queue.setRepositories([repository('r1')])
  t.equal(DUTY_CYCLE, 0.2)
  queue.request({ repository: 'r1', password: 'a' })
  queue.request({ repository: 'r1', password: 'b' })
  t.same(seen, ['a'], 'the first check starts at once')
  clock = 50 // the check took 50 ms: the next may start at 50 + 50 * 4 = 250
  held.shift()!()
  await new Promise((resolve) => setTimeout(resolve, 250))
  t.same(seen, ['a'], 'no check starts before the pause is over (the clock is still at 50)')
  t.equal(queue.counts.pending, 1)
  clock = 249
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.same(seen, ['a'], 'not even 1 ms early')
  clock = 250
  await eventuallySeen(() => seen.length === 2)
  t.same(seen, ['a', 'b'], 'then the next one starts')
})

/** Waits (bounded) until the queue's timer has fired and started the next check. */
async function eventuallySeen(done: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !done(); i++) await new Promise((resolve) => setTimeout(resolve, 20))
}

t.test('duplicates are ignored: pending, running or answered; the catalog\'s own password is never derived', async (t) => {
  const { check, seen, drain } = heldCheck((p) => (p === 'right' ? 'opens' : 'wrong'))
  const queue = new PasswordVerdictQueue({ check, onChange: () => undefined, maxInFlight: 1, dutyCycle: 1 })
  queue.setRepositories([repository('r1'), repository('r2')])
  t.equal(queue.verdicts.verdictOf('r1', passwordDigest(OWN)), 'opens')
  t.equal(queue.verdicts.verdictOf('r2', passwordDigest(OWN)), 'opens')
  t.equal(queue.request({ repository: 'r1', password: OWN }), 'duplicate', 'known by construction')
  t.equal(queue.request({ repository: 'r1', password: 'a' }), 'accepted')
  t.equal(queue.request({ repository: 'r1', password: 'a' }), 'duplicate', 'running')
  t.equal(queue.request({ repository: 'r1', password: 'b' }), 'accepted')
  t.equal(queue.request({ repository: 'r1', password: 'b' }), 'duplicate', 'pending')
  t.equal(queue.request({ repository: 'r2', password: 'a' }), 'accepted', 'the same password on another repository is another check')
  t.equal(queue.request({ repository: 'gone', password: 'a' }), 'unknown-repository')
  await drain()
  await queue.idle()
  t.equal(queue.request({ repository: 'r1', password: 'a' }), 'duplicate', 'answered')
  t.same(seen, ['a', 'b', 'a'], 'three derivations, no more')
  t.same(queue.counts, { accepted: 3, dropped: 0, duplicates: 4, unknownRepository: 1, completed: 3, failed: 0, inFlight: 0, pending: 0 })
  queue.close()
})

t.test('verdicts are published as new immutable instances; a published one never changes', async (t) => {
  const { check, drain } = heldCheck((p) => (p === 'right' ? 'opens' : 'wrong'))
  const published: PasswordVerdicts[] = []
  const queue = new PasswordVerdictQueue({ check, onChange: (v) => published.push(v), dutyCycle: 1 })
  queue.setRepositories([repository('r1')])
  const first = queue.verdicts
  queue.request({ repository: 'r1', password: 'right' })
  queue.request({ repository: 'r1', password: 'nope' })
  await drain()
  await queue.idle()
  t.equal(published.length, 3)
  t.equal(published[0], first)
  t.not(published[1], published[0])
  t.equal(first.verdictOf('r1', passwordDigest('nope')), 'unknown', 'the first instance is as it was')
  t.equal(published[2]?.verdictOf('r1', passwordDigest('nope')), 'wrong')
  t.ok(Object.isFrozen(published[2]))
  t.same(JSON.parse(JSON.stringify(published[2])), { repositories: 1, verdicts: 3 }, 'JSON shows counts, never digests')
  t.equal(queue.verdicts.with('r1', passwordDigest('nope'), 'wrong'), queue.verdicts, 'an unchanged verdict is the same instance')

  // The catalog drops r1: its verdicts go; a check finishing after that records nothing.
  queue.request({ repository: 'r1', password: 'late' })
  queue.setRepositories([repository('r2')])
  await drain()
  await queue.idle()
  t.same(queue.verdicts.repositories, ['r2'])
  t.equal(queue.verdicts.verdictOf('r1', passwordDigest('late')), 'unknown')
  queue.close()
})

t.test('wrong verdicts are capped per repository, the oldest forgotten first, never the one that opens', async (t) => {
  let verdicts = new PasswordVerdicts().with('r', passwordDigest('right'), 'opens')
  for (let i = 0; i < MAX_WRONG_PER_REPOSITORY + 10; i++) verdicts = verdicts.with('r', passwordDigest(`w${i}`), 'wrong')
  t.equal(verdicts.size, MAX_WRONG_PER_REPOSITORY + 1)
  t.equal(verdicts.verdictOf('r', passwordDigest('right')), 'opens')
  t.equal(verdicts.verdictOf('r', passwordDigest('w9')), 'unknown')
  t.equal(verdicts.verdictOf('r', passwordDigest('w10')), 'wrong')
})

t.test('a failing check is counted and logged with its error, never with the password; pending requests for a gone repository go', async (t) => {
  const lines: string[] = []
  const log = createLogger('info', new Writable({ write(chunk: Buffer, _encoding, done) { lines.push(chunk.toString()); done() } }))
  const failing: PasswordCheck = async (_format, password) => {
    if (password === 'odd') return 'unknown'
    throw new Error('uniqueID is 3 bytes; key derivation needs at least 16')
  }
  const queue = new PasswordVerdictQueue({ check: failing, onChange: () => undefined, log, dutyCycle: 1 })
  queue.setRepositories([repository('r1')])
  queue.request({ repository: 'r1', password: 'fails-with-this-password' })
  queue.request({ repository: 'r1', password: 'odd' })
  await queue.idle()
  t.same(queue.counts, { accepted: 2, dropped: 0, duplicates: 0, unknownRepository: 0, completed: 1, failed: 1, inFlight: 0, pending: 0 })
  t.equal(queue.verdicts.verdictOf('r1', passwordDigest('odd')), 'unknown', '"unknown" is not recorded')
  t.equal(lines.length, 1)
  t.match(JSON.parse(lines[0]!), { level: 40, repository: '/mnt/r1', err: { message: /key derivation needs/ } })
  t.notOk(lines[0]!.includes('fails-with-this-password'))
  t.equal(queue.request({ repository: 'r1', password: 'fails-with-this-password' }), 'accepted', 'a failure can be retried')
  await queue.idle()
  queue.close()
  t.equal(queue.request({ repository: 'r1', password: 'x' }), 'closed')
})

t.test('startPasswordVerdicts: follows the catalog in the store and publishes verdicts as the snapshot\'s own part', async (t) => {
  const { check, held } = heldCheck()
  const store = new StateStore(parseConfig('{}'))
  const queue = startPasswordVerdicts(store, { check, dutyCycle: 1, maxInFlight: 2 })
  const seen: Array<[number, number]> = []
  store.subscribe((next, previous) => seen.push([previous.generation, next.generation]))
  const catalog = buildCatalogState([{ name: 'nas', type: 'kopia', lastSuccess: 1, lastAttempt: 1, error: null, entries: [], diagnostics: [], repositories: [repository('r1')] }])
  store.publish({ catalog })
  t.equal(store.current.passwordVerdicts.verdictOf('r1', passwordDigest(OWN)), 'unknown', 'not published from inside the catalog publish')
  await Promise.resolve()
  t.equal(store.current.passwordVerdicts.verdictOf('r1', passwordDigest(OWN)), 'opens', 'a microtask later')
  t.equal(store.current.catalog, catalog, 'the catalog part is untouched')
  queue.request({ repository: 'r1', password: 'p1' })
  queue.request({ repository: 'r1', password: 'p2' })
  t.equal(held.length, 2)
  for (const release of held.splice(0)) release() // both finish in the same tick
  await queue.idle()
  await Promise.resolve()
  t.equal(store.current.passwordVerdicts.verdictOf('r1', passwordDigest('p2')), 'wrong')
  t.same(seen, [[1, 2], [2, 3], [3, 4]], 'in order: the catalog, the own password, both verdicts (coalesced into one publish)')

  queue.close()
  store.publish({ catalog: buildCatalogState([]) })
  await Promise.resolve()
  t.equal(store.current.passwordVerdicts.verdictOf('r1', passwordDigest('p2')), 'wrong', 'closed: unsubscribed, publishes nothing more')
})

t.test('end to end: a writer-made Kopia repository, the real kopia source, the queue, the pure rule', async (t) => {
  const target = await directoryTarget()
  const dir = await mkdtemp(join(tmpdir(), 'password-verdicts-'))
  t.teardown(async () => { await target.cleanup(); await rm(dir, { recursive: true, force: true }) })
  const password = 'the-shared-repository-password'
  const writer = await KopiaTestWriter.create({ password, uniqueId: randomBytes(32), put: target.put })
  writer.addSnapshot({ username: 'jellyfin', hostname: 'media', path: '/data', startTime: '2026-03-10T02:00:00Z' })
  writer.flushManifests()
  await writer.flushIndex()
  await writeFile(join(dir, 'password'), password)

  const config = parseConfig(`
movers: { repository: { nfs: { server: nas, path: /tank/kopia }, mountPath: /repository } }
catalog: { sources: [{ name: nas, type: kopia, filesystem: { path: ${target.root} }, passwordFile: ${dir}/password }] }
`)
  const sourceConfig = config.catalog.sources[0]
  if (sourceConfig?.type !== 'kopia') throw new Error('not a kopia source')
  const found = await kopiaSource(sourceConfig).poll(new AbortController().signal)
  const store = new StateStore(config)
  let derivations = 0
  const counted: PasswordCheck = (format, candidate, signal) => {
    derivations++
    return checkAgainstFormat(format, candidate, signal)
  }
  const queue = startPasswordVerdicts(store, { check: counted, dutyCycle: 1 })
  t.teardown(() => queue.close())
  store.publish({ catalog: buildCatalogState([{ name: 'nas', type: 'kopia', lastSuccess: 1, lastAttempt: 1, error: null, entries: found.entries, diagnostics: [], repositories: found.repositories ?? [] }]) })
  await Promise.resolve()

  const secret = (kopiaPassword: string) => ({
    apiVersion: 'v1', kind: 'Secret', metadata: { name: 'jellyfin-volsync', namespace: 'media' },
    stringData: { KOPIA_REPOSITORY: 'filesystem:///repository', KOPIA_PASSWORD: kopiaPassword },
  })
  const review = (object: Record<string, unknown>): AdmissionInput => ({
    uid: 'u', kind: { group: '', version: 'v1', kind: 'Secret' }, operation: 'CREATE', namespace: 'media', name: 'jellyfin-volsync', object, oldObject: null, dryRun: false,
  })
  const decide = (s: Snapshot, kopiaPassword: string) => dispatch('validate', s, review(secret(kopiaPassword)), Date.now())

  const right = decide(store.current, password)
  t.same({ outcome: right.outcome, nudge: right.nudge }, { outcome: 'unchanged', nudge: undefined }, 'the catalog\'s own password opens, without any derivation')

  const wrongPassword = 'a-per-app-password-that-is-wrong'
  const before = store.current
  const first = decide(before, wrongPassword)
  t.equal(first.outcome, 'unchanged', 'not checked yet: no finding')
  t.equal(first.nudge?.type, 'check-kopia-password')
  t.equal(store.current, before, 'deciding published nothing')
  t.equal(queue.counts.accepted, 0, 'and started nothing')
  t.notOk(JSON.stringify(first).includes(wrongPassword))

  t.equal(queue.request(first.nudge as { repository: string; password: string }), 'accepted')
  t.equal(queue.request(decide(store.current, wrongPassword).nudge as { repository: string; password: string }), 'duplicate', 'the retry while it runs')
  await queue.idle()
  await Promise.resolve()
  const second = decide(store.current, wrongPassword)
  t.equal(second.outcome, 'warn')
  t.match(second.warnings, [/^Secret media\/jellyfin-volsync: KOPIA_PASSWORD does not open the Kopia repository at .* \(opened by catalog source nas\)/])
  t.equal(second.nudge, undefined)
  t.equal(derivations, 1, 'one derivation for the wrong password, none for the right one')
  t.equal(before.passwordVerdicts.verdictOf(found.repositories![0]!.id, passwordDigest(wrongPassword)), 'unknown', 'the earlier snapshot is unchanged')
})

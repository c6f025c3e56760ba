import t from 'tap'
import { compareSnapshots, decodeSnapshot, parseResticTime, type ResticSnapshot } from '../../src/restic/snapshots.ts'

const ID = 'a'.repeat(64)
const TREE = 'b'.repeat(64)

t.test('restic times: Z and offsets, 0-9 fraction digits, sub-ms digits dropped', async (t) => {
  t.equal(parseResticTime('2026-03-14T08:00:00Z'), Date.UTC(2026, 2, 14, 8))
  t.equal(parseResticTime('2026-03-15T09:30:00.123456789+01:00'), Date.UTC(2026, 2, 15, 8, 30, 0, 123))
  t.equal(parseResticTime('2026-03-15T09:30:00.5-02:30'), Date.UTC(2026, 2, 15, 12, 0, 0, 500))
  t.equal(parseResticTime('2015-01-02T18:10:50.895208559+01:00'), Date.UTC(2015, 0, 2, 17, 10, 50, 895))
  for (const bad of ['2026-03-14 08:00:00Z', '2026-03-14T08:00:00', '2026-13-14T08:00:00Z', 'yesterday', '2026-03-14T08:00:00.1234567890Z']) {
    t.equal(parseResticTime(bad), null, bad)
  }
})

t.test('decodes what a catalog needs, defaults what restic omits', async (t) => {
  const full = decodeSnapshot(ID, {
    time: '2026-03-14T08:00:00Z',
    tree: TREE,
    paths: ['/srv/b', '/srv/a'],
    hostname: 'media',
    username: 'backup',
    uid: 0,
    tags: ['jellyfin', 'daily'],
    summary: { total_bytes_processed: 1234, total_files_processed: 2 },
    program_version: 'restic 0.18.0',
  })
  t.same(full, { id: ID, time: '2026-03-14T08:00:00Z', timeMs: Date.UTC(2026, 2, 14, 8), hostname: 'media', username: 'backup', paths: ['/srv/a', '/srv/b'], tags: ['jellyfin', 'daily'], tree: TREE, sizeBytes: 1234 })
  t.ok(Object.isFrozen(full) && typeof full !== 'string' && Object.isFrozen(full.paths), 'shared cached objects are frozen')

  const minimal = decodeSnapshot(ID, { time: '2026-03-14T08:00:00Z', tree: TREE, paths: null })
  t.same(minimal, { id: ID, time: '2026-03-14T08:00:00Z', timeMs: Date.UTC(2026, 2, 14, 8), hostname: '', paths: [], tags: [], tree: TREE })
  t.notOk(typeof minimal !== 'string' && 'username' in minimal)
  t.notOk(typeof minimal !== 'string' && 'sizeBytes' in minimal)
})

t.test('JSON that is not a snapshot says why', async (t) => {
  const ok = { time: '2026-03-14T08:00:00Z', tree: TREE, paths: ['/x'] }
  const cases: [unknown, RegExp][] = [
    [[], /not a JSON object/],
    [{ version: 2, id: ID }, /no "time"/],
    [{ ...ok, time: 'now' }, /not RFC 3339/],
    [{ ...ok, tree: undefined }, /tree/],
    [{ ...ok, paths: '/x' }, /"paths"/],
    [{ ...ok, tags: [1] }, /"tags"/],
    [{ ...ok, hostname: 7 }, /"hostname"/],
    [{ ...ok, username: {} }, /"username"/],
  ]
  for (const [json, problem] of cases) t.match(decodeSnapshot(ID, json), problem)
  t.notOk('sizeBytes' in (decodeSnapshot(ID, { ...ok, summary: { total_bytes_processed: -1 } }) as ResticSnapshot), 'nonsense size ignored')
})

t.test('order: oldest first, ties by id', async (t) => {
  const at = (id: string, time: string) => decodeSnapshot(id.repeat(64), { time, tree: TREE, paths: [] }) as ResticSnapshot
  const list = [at('c', '2026-03-02T00:00:00Z'), at('b', '2026-03-01T00:00:00Z'), at('a', '2026-03-02T01:00:00+01:00')]
  t.same(list.sort(compareSnapshots).map((s) => s.id[0]), ['b', 'a', 'c'])
})

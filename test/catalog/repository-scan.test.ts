// The flat scan's planner: where a key sits, and where the request after a page may start without
// skipping a key the catalog reads or the first key of another repository.
import t from 'tap'
import { placeOf, resumeAfter } from '../../src/catalog/repository-scan.ts'

t.test('placeOf splits a key into namespace, PVC and the repository key', async (t) => {
  t.same(placeOf('junk'), { at: 'root' })
  t.same(placeOf('media/prowlarrkopia.repository'), { at: 'namespace', namespace: 'media', name: 'prowlarrkopia.repository' })
  t.same(placeOf('media/jellyfin/data/ab/abcd'), { at: 'repository', namespace: 'media', pvc: 'jellyfin', rest: 'data/ab/abcd' })
  t.same(placeOf('media/jellyfin/'), { at: 'repository', namespace: 'media', pvc: 'jellyfin', rest: '' })
})

t.test('resumeAfter, page by page through a restic and a Kopia repository', async (t) => {
  const rows: Array<[last: string, next: string, why: string]> = [
    ['ns/app/config', 'ns/app/kopia.repositor', 'restic head: jump over data/, index/, keys/ to just before kopia.repository'],
    ['ns/app/data/00/0011', 'ns/app/kopia.repositor', 'inside the packs'],
    ['ns/app/keys/0011', 'ns/app/kopia.repositor', 'keys/ sorts before kopia.repository'],
    ['ns/app/kopia.repositorx', 'ns/app/kopia.repositorx', 'between the jump target and the blob: never backwards'],
    ['ns/app/kopia.repository', 'ns/app/snapshots/', 'the format blob seen: jump over n, p, q packs and locks/'],
    ['ns/app/locks/0011', 'ns/app/snapshots/', 'restic locks'],
    ['ns/app/p0123', 'ns/app/snapshots/', 'Kopia packs'],
    ['ns/app/snapshots', 'ns/app/snapshots/', 'a blob named like the folder'],
    ['ns/app/snapshots/0011', 'ns/app/snapshots/0011', 'every snapshot file counts: go on from the last one'],
    ['ns/app/snapshots/sub/0011', 'ns/app/snapshots/sub/0011', 'nested below snapshots/: go on (rare)'],
    ['ns/app/x0123', 'ns/app0', 'past snapshots/: past the repository'],
    ['ns/app/snapshots0', 'ns/app0', 'past the folder'],
    ['ns/_log0', 'ns/_log0', 'a namespace blob: go on'],
    ['ns/appkopia.repository', 'ns/appkopia.repository', 'the stripped-slash blob is a namespace blob'],
    ['junk', 'junk', 'a root blob'],
    ['ns/app/_log_0011', 'ns/app/kopia.repositor', "Kopia's _log blobs sort first"],
    ['ns/app/kopia.blobcfg', 'ns/app/kopia.repositor', "Kopia's blobcfg"],
  ]
  for (const [last, next, why] of rows) t.equal(resumeAfter(last), next, `${last}: ${why}`)
})

t.test('a jump never skips a snapshot file, a format blob or another repository, whatever the names', async (t) => {
  const pvcs = ['app', 'app-db', 'app.x', 'app0', 'app_x', 'appa', 'ap', 'a', 'app-', 'z']
  const repositoryKeys = ['config', 'data/00/0011', 'data/ff/ff11', 'index/0011', 'keys/0011', 'locks/0011', 'snapshots/0011', 'snapshots/0022', 'snapshots/sub/0033', 'snapshots0',
    '_log_1', 'kopia.blobcfg', 'kopia.repository', 'kopia.repositorx', 'n0011', 'p0011', 'q0011', 'x0011', 'xn0_1']
  const keys = [
    ...pvcs.flatMap((pvc) => repositoryKeys.map((k) => `ns/${pvc}/${k}`)),
    ...pvcs.map((pvc) => `ns/${pvc}kopia.repository`), 'ns/app0', 'ns/readme', 'ns/kopia.repository',
  ].sort()
  const needed = (key: string, previous: string | undefined) => {
    const place = placeOf(key)
    // Of a namespace's own blobs only the stripped-slash format blobs count (`<ns>/<P>0`, skipped by the jump past P, is not one).
    if (place.at === 'namespace') return place.name.endsWith('kopia.repository')
    if (place.at === 'root') return false
    const first = previous === undefined || placeOf(previous).at !== 'repository' || !previous.startsWith(`${place.namespace}/${place.pvc}/`)
    return first || place.rest === 'kopia.repository' || place.rest.startsWith('snapshots/')
  }
  let skipped = 0
  keys.forEach((last) => {
    const next = resumeAfter(last)
    t.ok(next >= last, `never backwards from ${last}`)
    keys.forEach((key, i) => {
      if (key <= last || key > next) return
      skipped++
      if (needed(key, keys[i - 1])) t.fail(`a jump from ${last} to ${next} skips ${key}`)
    })
  })
  t.ok(skipped > 100, `the jumps do skip packs (${skipped} key skips over the table)`)
})

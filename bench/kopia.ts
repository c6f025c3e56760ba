// `npm run bench` (Kopia part): a shared Kopia repository holding 100,000 snapshot manifests of
// 1,000 sources, as kopia leaves it after maintenance (one compacted manifest content plus the 16
// small ones of later sessions), in a directory on tmpfs. Times opening (key derivation reported
// apart), a cold poll and an unchanged poll, with peak heap and RSS. Goals printed beside the
// figures: cold < 2 s after key derivation, unchanged < 100 ms. Enforces nothing.
// Flags: --sources N (1000), --per-source N (100), --rounds N (3: the median is reported).
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { parseArgs } from 'node:util'
import { KopiaRepository } from '../src/kopia/repository.ts'
import { FsBlobStore } from '../src/storage/fs-store.ts'
import { KopiaTestWriter } from '../test/support/kopia-writer.ts'
import { fmt, median, pad, padLeft } from './stats.ts'

const GOAL_COLD_MS = 2000
const GOAL_UNCHANGED_MS = 100
const PASSWORD = 'bench-password'
const { values } = parseArgs({ options: {
  sources: { type: 'string', default: '1000' },
  'per-source': { type: 'string', default: '100' },
  rounds: { type: 'string', default: '3' },
} })
const SOURCES = Number(values.sources)
const PER_SOURCE = Number(values['per-source'])
const ROUNDS = Number(values.rounds)
const parent = existsSync('/dev/shm') ? '/dev/shm' : tmpdir()
const root = await mkdtemp(join(parent, 'bench-kopia-'))

try {
  const writing = performance.now()
  const writer = await KopiaTestWriter.create({
    password: PASSWORD,
    put: async (key, bytes) => {
      const file = join(root, ...key.split('/'))
      await mkdir(dirname(file), { recursive: true })
      await writeFile(file, bytes)
    },
  })
  const recent = 16
  const total = SOURCES * PER_SOURCE
  for (let i = 0; i < total - recent; i++) {
    const source = i % SOURCES
    writer.addSnapshot({ username: `app-${source}`, hostname: `ns-${source % 50}`, path: '/data', startTime: new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString(), sizeBytes: i, files: 10, dirs: 2 })
    if ((i + 1) % 10_000 === 0) writer.flushManifests({ compression: 0x1101 })
  }
  writer.flushManifests({ compression: 0x1101 })
  writer.compactManifests({ compression: 0x1101 })
  await writer.flushIndex()
  for (let i = 0; i < recent; i++) {
    writer.addSnapshot({ username: `app-${i}`, hostname: `ns-${i % 50}`, path: '/data', startTime: new Date(Date.UTC(2026, 6, 1) + i * 1000).toISOString() })
    writer.flushManifests({ compression: 0x1101 })
    await writer.flushIndex()
  }
  console.log(`kopia bench: ${total} snapshot manifests of ${SOURCES} sources (1 compacted manifest content + ${recent} recent ones), written in ${fmt((performance.now() - writing) / 1000, 1)} s to ${root}`)

  const rows: Array<{ name: string; ms: number[]; goal: string }> = [
    { name: 'open (key derivation: scrypt N=65536, off-thread)', ms: [], goal: '-' },
    { name: 'cold poll (after key derivation)', ms: [], goal: `< ${GOAL_COLD_MS} ms` },
    { name: 'unchanged poll', ms: [], goal: `< ${GOAL_UNCHANGED_MS} ms` },
  ]
  let peakHeap = 0
  let peakRss = 0
  const sampler = setInterval(() => {
    const m = process.memoryUsage()
    peakHeap = Math.max(peakHeap, m.heapUsed)
    peakRss = Math.max(peakRss, m.rss)
  }, 5)
  for (let round = 0; round < ROUNDS; round++) {
    // A fresh store and repository each round: nothing read is cached, only the derived key is
    // (after round one), which is why opening is timed apart.
    const store = new FsBlobStore(root)
    let started = performance.now()
    const repository = await KopiaRepository.open(store, PASSWORD)
    rows[0]!.ms.push(performance.now() - started)
    started = performance.now()
    const sources = await repository.poll()
    rows[1]!.ms.push(performance.now() - started)
    if (sources.length !== SOURCES || sources.reduce((n, s) => n + s.snapshots, 0) !== total) throw new Error(`expected ${SOURCES} sources and ${total} snapshots, got ${sources.length}`)
    started = performance.now()
    await repository.poll()
    rows[2]!.ms.push(performance.now() - started)
  }
  clearInterval(sampler)
  console.log('')
  console.log(`${pad('step', 52)}${padLeft('median ms', 11)}${padLeft('all rounds', 26)}  goal`)
  for (const row of rows) console.log(`${pad(row.name, 52)}${padLeft(fmt(median(row.ms), 0), 11)}${padLeft(row.ms.map((v) => fmt(v, 0)).join(' / '), 26)}  ${row.goal}`)
  console.log(`\npeak heap ${fmt(peakHeap / 2 ** 20, 0)} MiB, peak RSS ${fmt(peakRss / 2 ** 20, 0)} MiB (the first open pays scrypt; later opens find the derived key cached)`)
} finally {
  await rm(root, { recursive: true, force: true })
}

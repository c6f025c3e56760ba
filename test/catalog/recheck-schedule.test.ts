// The recheck schedule of repositories with a known backup: each is due once per period, at a phase
// fixed by its name, so the re-checks spread evenly over the polls whatever their spacing.
import t from 'tap'
import { recheckDue, recheckPhaseMs } from '../../src/catalog/recheck-schedule.ts'

const MINUTE = 60_000
const PERIOD = 10 * MINUTE
const names = Array.from({ length: 5000 }, (_, i) => `ns-${String(Math.floor(i / 100)).padStart(3, '0')}/pvc-${String(i % 100).padStart(3, '0')}`)

t.test('table: when a repository is due', async (t) => {
  const key = 'media/jellyfin'
  const phase = recheckPhaseMs(key, PERIOD)
  const cases: Array<[string, number, number, number, boolean]> = [
    ['a period of 0 re-checks every poll', 0, 1, 0, true],
    ['a negative period too', 0, 1, -5, true],
    ['its recheck time inside (previous, now]', phase - 1, phase + 1, PERIOD, true],
    ['its recheck time exactly now', phase - MINUTE, phase, PERIOD, true],
    ['its recheck time exactly at the previous poll (already seen then)', phase, phase + MINUTE, PERIOD, false],
    ['the next period\'s recheck time', phase + PERIOD - 1, phase + PERIOD, PERIOD, true],
    ['between two recheck times', phase + 1, phase + PERIOD - 1, PERIOD, false],
    ['a gap of a whole period always holds one', phase + 1, phase + 1 + PERIOD, PERIOD, true],
    ['a clock that did not move', phase, phase, PERIOD, false],
  ]
  for (const [what, previous, now, period, due] of cases) t.equal(recheckDue(key, previous, now, period), due, what)
})

t.test('the phase is in [0, period) and fixed by the name (the same in every process and release)', async (t) => {
  for (const name of names) {
    const phase = recheckPhaseMs(name, PERIOD)
    if (!(phase >= 0 && phase < PERIOD)) t.fail(`${name}: phase ${phase}`)
  }
  t.equal(recheckPhaseMs('media/jellyfin', 2 ** 32), 0x47e5b622, 'the hash of "media/jellyfin" as every release computes it')
  t.equal(recheckPhaseMs('media/jellyfin', PERIOD), recheckPhaseMs('media/jellyfin', PERIOD))
  t.not(recheckPhaseMs('media/jellyfin', PERIOD), recheckPhaseMs('media/sonarr', PERIOD))
})

t.test('polls 60 s apart: each repository once in every 10 polls, about a tenth of them per poll', async (t) => {
  const seen = new Map<string, number[]>()
  const perPoll: number[] = []
  const start = 123_456_789
  for (let poll = 1; poll <= 30; poll++) {
    const due = names.filter((name) => recheckDue(name, start + (poll - 1) * MINUTE, start + poll * MINUTE, PERIOD))
    perPoll.push(due.length)
    for (const name of due) seen.set(name, [...(seen.get(name) ?? []), poll])
  }
  t.equal(seen.size, names.length, 'every repository re-checked')
  t.ok([...seen.values()].every((polls) => polls.length === 3 && polls[1]! - polls[0]! === 10 && polls[2]! - polls[1]! === 10), 'each exactly every 10th poll')
  t.ok(perPoll.every((n) => n >= 425 && n <= 575), `500 +- 75 each poll (${Math.min(...perPoll)}-${Math.max(...perPoll)}): no poll re-lists everything`)
})

t.test('jittered polls (48-72 s apart): two re-checks of a repository are one period apart, give or take one poll', async (t) => {
  let state = 42
  const random = () => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0
    return state / 2 ** 32
  }
  const times = [0]
  for (let i = 0; i < 200; i++) times.push(times.at(-1)! + Math.round(MINUTE * (0.8 + 0.4 * random())))
  const gaps: number[] = []
  for (const name of names.slice(0, 500)) {
    let lastDue: number | undefined
    for (let i = 1; i < times.length; i++) {
      if (!recheckDue(name, times[i - 1]!, times[i]!, PERIOD)) continue
      if (lastDue !== undefined) gaps.push(times[i]! - lastDue)
      lastDue = times[i]!
    }
  }
  t.ok(gaps.length > 500 * 15, `${gaps.length} re-checks`)
  t.ok(Math.max(...gaps) <= PERIOD + 72_000, `longest between two re-checks ${Math.max(...gaps) / 1000} s`)
  t.ok(Math.min(...gaps) >= PERIOD - 72_000, `shortest between two re-checks ${Math.min(...gaps) / 1000} s`)
})

t.test('a gap of a whole period (a failed poll, a backoff) re-checks everyone at the next poll', async (t) => {
  t.equal(names.filter((name) => recheckDue(name, 5 * MINUTE, 5 * MINUTE + PERIOD, PERIOD)).length, names.length)
})

// Jenkins-style H in backup schedules: stable for a key, in range, spread; and the cron grammar
// VolSync's CRD accepts for spec.trigger.schedule.
import fc from 'fast-check'
import t from 'tap'
import { CRON_FIELDS, expandSchedule, validateCron } from '../../src/volsync/schedule.ts'

const cronOf = (template: string, key: string): string => {
  const result = expandSchedule(template, key)
  if ('error' in result) throw new Error(result.error)
  return result.cron
}
const fieldsOf = (cron: string): number[][] => cron.split(' ').map((f) => f.split(',').map(Number))

t.test('property: H expands the same for the same key, every time, and within its range', async (t) => {
  const key = fc.tuple(fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,20}$/), fc.stringMatching(/^[a-z0-9][a-z0-9.-]{0,40}$/)).map(([ns, pvc]) => `${ns}/${pvc}`)
  const range = (min: number, max: number) => fc.tuple(fc.integer({ min, max }), fc.integer({ min, max })).map(([a, b]) => [Math.min(a, b), Math.max(a, b)] as const)
  fc.assert(fc.property(key, range(0, 23), fc.integer({ min: 1, max: 30 }), (k, [lo, hi], step) => {
    const template = `H H(${lo}-${hi}) H * H`
    const first = cronOf(template, k)
    if (cronOf(template, k) !== first) return false // stable
    const [minute, hour, dom, month, dow] = fieldsOf(first)
    const stepped = fieldsOf(cronOf(`H/${step} * * * *`, k))[0]!
    return minute!.length === 1 && minute![0]! >= 0 && minute![0]! <= 59 &&
      hour![0]! >= lo && hour![0]! <= hi &&
      dom![0]! >= 1 && dom![0]! <= 28 && // Jenkins' H for day of month: a day every month has
      month!.length === 1 && Number.isNaN(month![0]) && // '*' kept as written
      dow![0]! >= 0 && dow![0]! <= 6 &&
      stepped[0]! < Math.min(step, 60) && stepped.every((v, i) => v <= 59 && (i === 0 || v - stepped[i - 1]! === step)) &&
      'cron' in validateCron(first)
  }), { numRuns: 500 })
})

t.test('the defaults expand to literal crons VolSync accepts', async (t) => {
  for (const template of ['H * * * *', 'H H(0-5) * * *', 'H H(0-5) * * H', 'H(0-29)/30 * * * *']) {
    const cron = cronOf(template, 'media/jellyfin')
    t.notMatch(cron, /H/, `${template} -> ${cron}`)
    t.same(validateCron(cron), { cron })
  }
  t.not(cronOf('H * * * *', 'media/jellyfin'), cronOf('H * * * *', 'media/sonarr'), 'two PVCs, (here) two minutes')
  t.equal(cronOf('H * * * *', 'media/jellyfin'), cronOf('H * * * *', 'media/jellyfin'))
  t.equal(cronOf('@daily', 'media/jellyfin'), '@daily', 'a macro is kept')
  t.equal(cronOf('15 3 * * 1-5', 'media/jellyfin'), '15 3 * * 1-5', 'no H: kept as written')
})

t.test('H spreads 1,000 PVCs over the hour', async (t) => {
  const perMinute = new Array<number>(60).fill(0)
  for (let i = 0; i < 1000; i++) perMinute[fieldsOf(cronOf('H * * * *', `ns${i % 7}/app-${i}`))[0]![0]!]! += 1
  t.equal(perMinute.filter((n) => n === 0).length, 0, 'every minute is used')
  t.ok(Math.max(...perMinute) < 1000 / 60 * 2.5, `the busiest minute (${Math.max(...perMinute)}) is within 2.5x the ideal`)
})

t.test('errors name the field', async (t) => {
  t.match(expandSchedule('H(50-70) * * * *', 'k'), { error: /minute field "H\(50-70\)": the range must lie within 0-59/ })
  t.match(expandSchedule('H(5-1) * * * *', 'k'), { error: /low to high/ })
  t.match(expandSchedule('Hx * * * *', 'k'), { error: /H must be written/ })
  t.match(expandSchedule('H,5 * * * *', 'k'), { error: /cannot be mixed/ })
  t.match(expandSchedule('H * * *', 'k'), { error: /has 4 field\(s\)/ })
})

t.test('validateCron: the CRD grammar and the ranges', async (t) => {
  for (const ok of ['0 * * * *', '*/15 * * * *', '5,35 1-5 * * 0', '0 3/6 1 1 6', '@hourly', '  7  3 * * *  ']) t.ok('cron' in validateCron(ok), ok)
  t.same(validateCron('  7  3 * * *  '), { cron: '7 3 * * *' }, 'whitespace normalised')
  const bad: Array<[string, RegExp]> = [
    ['60 * * * *', /minute field "60": every value must lie within 0-59/],
    ['* 24 * * *', /hour field/],
    ['* * 0 * *', /day of month field/],
    ['* * * 13 *', /month field/],
    ['* * * * 7', /day of week field/],
    ['*/0 * * * *', /step must be at least 1/],
    ['1-5/2 * * * *', /expected N/], // not in VolSync's CRD pattern
    ['* * * * MON', /expected N/],
    ['@reboot', /a cron has 5/],
    ['', /has 0 field/],
    ['* * * * * *', /has 6 field/],
  ]
  for (const [text, message] of bad) t.match(validateCron(text), { error: message }, text)
  t.equal(CRON_FIELDS.length, 5)
})

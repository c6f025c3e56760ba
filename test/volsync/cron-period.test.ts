// cronPeriodMs: the longest gap between consecutive fire times, for the schedules VolSync accepts.
import t from 'tap'
import { cronPeriodMs } from '../../src/volsync/cron-period.ts'

const MIN = 60_000
const H = 60 * MIN
const D = 24 * H

t.test('regular schedules: the gap between two fires', async (t) => {
  t.equal(cronPeriodMs('17 * * * *'), H, 'hourly at :17 (H expanded)')
  t.equal(cronPeriodMs('@hourly'), H)
  t.equal(cronPeriodMs('* * * * *'), MIN)
  t.equal(cronPeriodMs('*/15 * * * *'), 15 * MIN)
  t.equal(cronPeriodMs('5 3 * * *'), D, 'daily (H H(0-5) expanded)')
  t.equal(cronPeriodMs('@daily'), D)
  t.equal(cronPeriodMs('@midnight'), D)
  t.equal(cronPeriodMs('0 */6 * * *'), 6 * H)
  t.equal(cronPeriodMs('12 4 * * 3'), 7 * D, 'weekly (H H(0-5) * * H expanded)')
  t.equal(cronPeriodMs('@weekly'), 7 * D)
  t.equal(cronPeriodMs('0 0 * * 7'), 7 * D, '7 is Sunday')
})

t.test('irregular schedules: the longest gap, not the next one', async (t) => {
  t.equal(cronPeriodMs('0 1,2 * * *'), 23 * H, 'an hour apart, then 23 h')
  t.equal(cronPeriodMs('0 9-17 * * 1-5'), 2 * D + 16 * H, 'office hours: Friday 17:00 to Monday 09:00')
  t.equal(cronPeriodMs('@monthly'), 31 * D, 'the longest month')
  t.equal(cronPeriodMs('0 0 31 * *'), 61 * D, 'the 31st skips the short months: 31 Mar -> 31 May')
  t.equal(cronPeriodMs('@yearly'), 366 * D, 'a leap year')
  t.equal(cronPeriodMs('0 0 29 2 *'), (4 * 365 + 1) * D, 'leap days only')
})

t.test('day of month and day of week: either, when both are restricted; both when one is *', async (t) => {
  // 1st of the month OR Monday: never more than 7 days apart.
  t.equal(cronPeriodMs('0 0 1 * 1'), 7 * D)
  // Every Monday (dom *): the day of month does not narrow it.
  t.equal(cronPeriodMs('0 0 * * 1'), 7 * D)
  // */2 is not *: the 1st, 3rd, ... OR Sunday.
  t.ok((cronPeriodMs('0 0 */2 * 0') ?? Infinity) <= 2 * D)
})

t.test('not a schedule: null', async (t) => {
  for (const bad of ['', 'hourly', '@every 1h', '* * * *', '60 * * * *', '* 24 * * *', '0 0 0 * *', '0 0 * 13 *', '5-1 * * * *', '*/0 * * * *', 'a b c d e', '0 0 30 2 *']) {
    t.equal(cronPeriodMs(bad), null, JSON.stringify(bad))
  }
})

t.test('the same answer every time (cached by the string alone)', async (t) => {
  t.equal(cronPeriodMs('7 2 * * *'), cronPeriodMs('7 2 * * *'))
  t.equal(cronPeriodMs(' 7 2 * * * '), D, 'surrounding blanks are ignored')
})

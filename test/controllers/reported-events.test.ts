import t from 'tap'
import { ReportedEvents } from '../../src/controllers/reported-events.ts'

t.test('a reported Event is remembered while its problem is current, forgotten once it is not', async (t) => {
  const reported = new ReportedEvents()
  reported.add('missed-a')
  reported.add('missed-b')
  reported.keepOnly(new Set(['missed-a', 'missed-c']))
  t.equal(reported.has('missed-a'), true, 'still current: no POST next pass')
  t.equal(reported.has('missed-b'), false, 'gone: reported anew if it comes back')
  t.equal(reported.has('missed-c'), false, 'current but never created: still to report')
})

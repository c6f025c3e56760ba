import t from 'tap'
import { forEachLimit } from '../../src/async/for-each-limit.ts'

t.test('never more than `limit` at once, every item once', async (t) => {
  let running = 0
  let peak = 0
  const seen: number[] = []
  await forEachLimit([...Array(20).keys()], 3, async (item) => {
    running++
    peak = Math.max(peak, running)
    await new Promise((resolve) => setImmediate(resolve))
    seen.push(item)
    running--
  })
  t.equal(peak, 3)
  t.same(seen.sort((a, b) => a - b), [...Array(20).keys()])
})

t.test('the first failure stops new items and is what rejects', async (t) => {
  const started: number[] = []
  await t.rejects(forEachLimit([...Array(10).keys()], 2, async (item) => {
    started.push(item)
    await new Promise((resolve) => setImmediate(resolve))
    if (item === 1) throw new Error('item 1 failed')
  }), /item 1 failed/)
  t.ok(started.length < 10, `stopped early (started ${started.length})`)
})

t.test('an aborted signal stops it', async (t) => {
  const controller = new AbortController()
  controller.abort(new Error('stopped'))
  let ran = 0
  await t.rejects(forEachLimit([1, 2, 3], 2, async () => { ran++ }, controller.signal), /stopped/)
  t.equal(ran, 0)
})

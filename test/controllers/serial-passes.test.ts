import t from 'tap'
import { SerialPasses } from '../../src/controllers/serial-passes.ts'

t.test('passes run one after another, in order, and a failed one does not stop the next', async (t) => {
  const passes = new SerialPasses()
  const log: string[] = []
  let running = 0
  const pass = (name: string, fail = false) => async () => {
    running++
    t.equal(running, 1, `${name} runs alone`)
    log.push(`start ${name}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
    log.push(`end ${name}`)
    running--
    if (fail) throw new Error(`${name} failed`)
  }
  const a = passes.run(pass('a'))
  const b = passes.run(pass('b', true))
  const c = passes.run(pass('c'))
  await a
  await t.rejects(b, /b failed/, 'the caller of a failed pass sees its error')
  await c
  t.same(log, ['start a', 'end a', 'start b', 'end b', 'start c', 'end c'])
})

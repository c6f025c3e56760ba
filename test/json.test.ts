import { test } from 'tap'
import { asArray, asObject, asString, isObject } from '../src/json.ts'

test('isObject and asObject accept plain objects only', async (t) => {
  const plain = { a: 1 }
  t.equal(isObject(plain), true)
  t.equal(asObject(plain), plain, 'the same object, not a copy')
  for (const value of [null, undefined, [], [1], 'x', 0, true]) {
    t.equal(isObject(value), false, `isObject(${JSON.stringify(value)})`)
    t.equal(asObject(value), undefined, `asObject(${JSON.stringify(value)})`)
  }
})

test('asArray and asString never throw on a wrong shape', async (t) => {
  const list = [1, 2]
  t.equal(asArray(list), list)
  t.same(asArray({ length: 1 }), [])
  t.same(asArray(undefined), [])
  t.equal(asString(''), '')
  t.equal(asString('x'), 'x')
  t.equal(asString(1), undefined)
})

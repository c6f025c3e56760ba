// Name templates, checked against the straightforward replace-based rendering they are compiled from.
import fc from 'fast-check'
import t from 'tap'
import { renderForPvc, renderName, type Rendered } from '../../src/admission/name-template.ts'

const LABEL = /\{\{\s*label\s+"([^"]*)"\s*\}\}/g

// The rendering by regular-expression replacement, as it was written before templates were compiled.
function replaced(template: string, vars: { pvc: string | null; namespace: string; labels: Record<string, string> }): Rendered {
  const missing: string[] = []
  let value = template.replace(LABEL, (_all, key: string) => {
    const label = Object.hasOwn(vars.labels, key) ? vars.labels[key] : undefined
    if (label === undefined || label === '') {
      missing.push(`label "${key}" (the PVC has no such label${label === '' ? ' value' : ''})`)
      return ''
    }
    return label
  })
  if (value.includes('{{pvc}}')) {
    if (vars.pvc === null) missing.push('{{pvc}} (a generateName PVC has no name until the API server picks one, after admission)')
    else value = value.replaceAll('{{pvc}}', vars.pvc)
  }
  value = value.replaceAll('{{namespace}}', vars.namespace)
  if (missing.length > 0) return { missing: missing.join(' and ') }
  if (value === '') return { missing: `a value: "${template}" renders empty` }
  return { value }
}

t.test('examples', async (t) => {
  t.equal(renderName('{{pvc}}-dst', { pvc: 'data', namespace: 'media' }), 'data-dst')
  t.equal(renderName('{{namespace}}-{{pvc}}-{{pvc}}', { pvc: 'a', namespace: 'n' }), 'n-a-a')
  t.equal(renderName('{{label "x"}}-{{pvc}}', { pvc: 'a', namespace: 'n' }), '{{label "x"}}-a', 'renderName leaves a label variable as written')
  t.equal(renderName('plain', { pvc: 'a', namespace: 'n' }), 'plain')
  t.equal(renderName('', { pvc: 'a', namespace: 'n' }), '')
  t.same(renderForPvc('{{ label  "app.kubernetes.io/name" }}-{{namespace}}', { pvc: 'p', namespace: 'n', labels: { 'app.kubernetes.io/name': 'jellyfin' } }), { value: 'jellyfin-n' })
  t.same(renderForPvc('{{label "a"}}-{{label "b"}}-{{pvc}}', { pvc: null, namespace: 'n', labels: { b: '' } }), {
    missing: 'label "a" (the PVC has no such label) and label "b" (the PVC has no such label value) and {{pvc}} (a generateName PVC has no name until the API server picks one, after admission)',
  })
  t.same(renderForPvc('{{label "a"}}', { pvc: 'p', namespace: 'n', labels: { a: '' } }), { missing: 'label "a" (the PVC has no such label value)' })
  t.same(renderForPvc('{{namespace}}', { pvc: 'p', namespace: '', labels: {} }), { missing: 'a value: "{{namespace}}" renders empty' })
  t.same(renderForPvc('{{label "toString"}}', { pvc: 'p', namespace: 'n', labels: {} }), { missing: 'label "toString" (the PVC has no such label)' }, 'only own labels count')
})

t.test('the same answers as replacement, for templates made of any text and variables', async (t) => {
  const piece = fc.oneof(
    fc.constantFrom('{{pvc}}', '{{namespace}}', '{{label "app"}}', '{{ label "b" }}', '{{label ""}}', '{{', '}}', '{{pvc', 'namespace}}', '-', 'x'),
    fc.string({ maxLength: 4 }),
  )
  const template = fc.array(piece, { maxLength: 8 }).map((pieces) => pieces.join(''))
  // Kubernetes names and label values hold no braces, so a value never forms a variable of its own.
  const name = fc.stringMatching(/^[a-z0-9.-]{0,8}$/)
  const labels = fc.dictionary(fc.constantFrom('app', 'b', '', 'c'), name)
  fc.assert(fc.property(template, fc.option(name, { nil: null }), name, labels, (text, pvc, namespace, labelMap) => {
    t.same(renderForPvc(text, { pvc, namespace, labels: labelMap }), replaced(text, { pvc, namespace, labels: labelMap }))
    if (pvc !== null) t.equal(renderName(text, { pvc, namespace }), text.replaceAll('{{pvc}}', pvc).replaceAll('{{namespace}}', namespace))
  }), { numRuns: 2000 })
})

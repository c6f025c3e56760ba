// The AdmissionReview validator is ajv's standalone code generated from review-schema.ts, so a review
// is checked without loading TypeBox or compiling: it must be what the generator writes now, and
// parseReview must still name the bad field in one line.
import { readFileSync } from 'node:fs'
import t from 'tap'
import { parseReview } from '../../src/admission/review.ts'
import { generatedReviewValidatorSource } from '../../scripts/review-validator.ts'

t.test('the generated validator is current: run `npm run generate` after changing review-schema.ts', async (t) => {
  t.equal(readFileSync(new URL('../../src/admission/review-validator.generated.js', import.meta.url), 'utf8'), generatedReviewValidatorSource(), 'byte for byte what the generator writes')
})

const valid = {
  apiVersion: 'admission.k8s.io/v1',
  kind: 'AdmissionReview',
  request: { uid: 'u1', kind: { group: '', version: 'v1', kind: 'PersistentVolumeClaim' }, operation: 'CREATE', namespace: 'media', object: { metadata: { name: 'data' } } },
}

t.test('a valid review parses, with the name and namespace taken from the object where the request has none', async (t) => {
  const result = parseReview(valid)
  t.ok(result.ok)
  if (result.ok) t.match(result.input, { uid: 'u1', operation: 'CREATE', namespace: 'media', name: 'data', dryRun: false })
})

t.test('every kind of bad review is one line naming the field', async (t) => {
  const cases: Array<[string, unknown, string]> = [
    ['not an object', [], 'body must be a JSON object'],
    ['wrong apiVersion', { ...valid, apiVersion: 'admission.k8s.io/v1beta1' }, 'invalid AdmissionReview: apiVersion must be "admission.k8s.io/v1"'],
    ['no request', { apiVersion: valid.apiVersion, kind: valid.kind }, 'invalid AdmissionReview: request is required'],
    ['no uid', { ...valid, request: { ...valid.request, uid: undefined } }, 'invalid AdmissionReview: request.uid is required'],
    ['empty uid', { ...valid, request: { ...valid.request, uid: '' } }, 'invalid AdmissionReview: request.uid must NOT have fewer than 1 characters'],
    ['unknown operation', { ...valid, request: { ...valid.request, operation: 'PATCH' } }, 'invalid AdmissionReview: request.operation'],
    ['object not an object', { ...valid, request: { ...valid.request, object: 'x' } }, 'invalid AdmissionReview: request.object'],
    ['CREATE without object', { ...valid, request: { ...valid.request, object: null } }, 'invalid AdmissionReview: request.object is required for CREATE'],
    ['dryRun not a boolean', { ...valid, request: { ...valid.request, dryRun: 'yes' } }, 'invalid AdmissionReview: request.dryRun must be boolean'],
  ]
  for (const [name, body, expected] of cases) {
    const result = parseReview(JSON.parse(JSON.stringify(body)) as unknown)
    t.equal(result.ok, false, name)
    if (!result.ok) {
      t.ok(result.error.startsWith(expected), `${name}: ${result.error}`)
      t.notMatch(result.error, /\n/, `${name}: one line`)
    }
  }
})

t.test('answering a review loads neither TypeBox nor ajv\'s compiler', async (t) => {
  const { execFileSync } = await import('node:child_process')
  // A fresh process: this one has loaded TypeBox through the generator already.
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', `
    import { registerHooks } from 'node:module'
    const urls = []
    registerHooks({ load(url, context, next) { urls.push(url); return next(url, context) } })
    const { parseReview } = await import(${JSON.stringify(new URL('../../src/admission/review.ts', import.meta.url).href)})
    parseReview({})
    process.stdout.write(JSON.stringify(urls))
  `], { encoding: 'utf8' })
  const urls = JSON.parse(out) as string[]
  t.ok(urls.some((u) => u.endsWith('review-validator.generated.js')), 'the generated validator is loaded')
  t.notOk(urls.some((u) => u.includes('@sinclair/typebox')), 'no TypeBox')
  t.notOk(urls.some((u) => /ajv\/dist\/(ajv|core|compile)/.test(u)), 'no ajv compiler')
})

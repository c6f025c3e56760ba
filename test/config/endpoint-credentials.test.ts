// Issue 13 item 5: an S3 endpoint with userinfo would print its credentials wherever the endpoint
// is printed, so it is refused at load with a message naming the credential keys (never the value).
import t from 'tap'
import { parseConfig } from '../../src/config/load.ts'

const source = (endpoint: string) => `catalog: {sources: [{name: g, type: s3-prefix, s3: {bucket: b-1, endpoint: "${endpoint}"}}]}`

t.test('an endpoint with user:password@ is refused, naming the key path and the credential keys', async (t) => {
  for (const endpoint of ['http://AKIAEXAMPLE:s3cr3t-Value@minio:9000', 'https://user@garage:3900/', 'http://:onlypass@host']) {
    const error = (() => {
      try {
        parseConfig(source(endpoint), 'test.yaml')
        return undefined
      } catch (e) {
        return e as Error
      }
    })()
    t.ok(error, `${endpoint} refused`)
    t.equal(error?.name, 'ConfigError')
    t.match(error?.message, /^test\.yaml: catalog\.sources\[0\]\.s3\.endpoint: must not contain credentials/)
    t.match(error?.message, /accessKeyIdFile\/secretAccessKeyFile/)
    t.notMatch(error?.message, /s3cr3t|AKIAEXAMPLE|onlypass/, 'the value is not echoed')
  }
})

t.test('endpoints without userinfo still load', async (t) => {
  for (const endpoint of ['http://minio:9000', 'https://s3.example.com/', 'http://[::1]:9000']) {
    t.equal(parseConfig(source(endpoint)).catalog.sources[0]?.type, 's3-prefix', endpoint)
  }
})

t.test('server.tls.dnsNames: default none, a list of names when given', async (t) => {
  t.strictSame(parseConfig('{}').server.tls.dnsNames, [])
  t.strictSame(parseConfig('server: {tls: {dnsNames: [volsync-autorestore.volsync-system.svc]}}').server.tls.dnsNames, ['volsync-autorestore.volsync-system.svc'])
  t.throws(() => parseConfig('server: {tls: {dnsNames: [""]}}'), { message: /server\.tls\.dnsNames\[0\]/ })
})

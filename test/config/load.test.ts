import t from 'tap'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ConfigError, defaultConfig, loadConfigFile, parseConfig } from '../../src/config/load.ts'
import { ConfigWatcher } from '../../src/config/watch.ts'
import { readFileSync } from 'node:fs'

t.test('defaults are the contract of design section 7', async (t) => {
  const config = defaultConfig()
  t.equal(config.mode, 'enforce')
  t.equal(config.server.port, 8443)
  t.equal(config.server.metricsPort, 9090)
  t.same(config.pvc.selector, { matchExpressions: [{ key: 'backup', operator: 'Exists' }] })
  t.equal(config.pvc.destinationName, '{{pvc}}-dst')
  t.equal(config.pvc.whenBackupNotReady, 'wait')
  t.equal(config.pvc.whenCatalogUnknown, 'fresh')
  t.same(config.movers.jitter, { enabled: true, maxSeconds: 300, image: 'busybox:1.37' })
  t.equal(config.movers.repository, undefined)
  t.equal(config.catalog.interval, '60s')
  t.equal(config.catalog.staleAfter, '10m')
  t.equal(config.guard.pauseSource, false)
  t.equal(config.validation.rdTrigger, 'warn')
})

t.test('the shipped example config is valid', async (t) => {
  const config = loadConfigFile('examples/config.yaml')
  t.equal(config.state.directory, 'examples/state')
  t.equal(config.catalog.sources[0]?.type, 's3-prefix')
})

t.test('errors name the key path', async (t) => {
  const cases: [string, RegExp][] = [
    ['pvc: {whenBackupNotReady: later}', /pvc\.whenBackupNotReady: must be one of "wait", "deny", "fresh"/],
    ['movers: {jitter: {maxSecond: 3}}', /movers\.jitter\.maxSecond: unknown key/],
    ['movers: {jitter: {maxSeconds: -1}}', /movers\.jitter\.maxSeconds: must be >= 0/],
    ['catalog: {sources: [{name: a, type: static, backups: [{namespace: x}]}]}', /catalog\.sources\[0\]\.backups\[0\]\.pvc: is required/],
    ['catalog: {sources: [{name: a, type: s3-prefixx}]}', /catalog\.sources\[0\]\.type: must be one of "static"/],
    ['catalog: {interval: 5}', /catalog\.interval: must be string/],
    ['catalog: {staleAfter: ten}', /catalog\.staleAfter: must be a duration such as 500ms/],
    ['catalog: {sources: [{name: a}]}', /catalog\.sources\[0\]\.type: must be one of "static", "s3-prefix", "restic", "kopia"/],
    ['catalog: {sources: [{name: g, type: s3-prefix, s3: {bucket: b-1, acessKeyIdFile: /k}}]}', /catalog\.sources\[0\]\.s3\.acessKeyIdFile: unknown key/],
    ['catalog: {sources: [{name: g, type: s3-prefix, s3: {bucket: Bad_Bucket}}]}', /catalog\.sources\[0\]\.s3\.bucket: must be an S3 bucket name/],
    ['catalog: {sources: [{name: g, type: s3-prefix, s3: {bucket: b-1, endpoint: "garage:3900"}}]}', /catalog\.sources\[0\]\.s3\.endpoint: must be an http\(s\):\/\/host:port URL/],
    ['catalog: {sources: [{name: g, type: s3-prefix}]}', /test\.yaml: catalog\.sources\[0\]: set exactly one of s3 or filesystem/],
    ['catalog: {sources: [{name: g, type: s3-prefix, s3: {bucket: b-1}, filesystem: {path: /r}}]}', /catalog\.sources\[0\]: set exactly one of s3 or filesystem/],
    ['catalog: {sources: [{name: g, type: s3-prefix, s3: {bucket: b-1, accessKeyIdFile: /k}}]}', /catalog\.sources\[0\]\.s3: set both accessKeyIdFile and secretAccessKeyFile, or neither/],
    ['catalog: {sources: [{name: r, type: restic, filesystem: {path: /r}}]}', /catalog\.sources\[0\]\.passwordFile: is required/],
    ['catalog: {sources: [{name: r, type: restic, filesystem: {path: /r}, passwordFile: /p, identity: {hostname: "{{namespace}}"}}]}', /catalog\.sources\[0\]\.identity: no field contains \{\{pvc\}\}/],
    ['catalog: {sources: [{name: k, type: kopia, filesystem: {path: /r}, passwordFile: /p, identity: {username: "{{pvc}}"}}]}', /catalog\.sources\[0\]\.identity: no field contains \{\{namespace\}\}/],
    ['catalog: {sources: [{name: k, type: kopia, filesystem: {path: /r}}]}', /catalog\.sources\[0\]\.passwordFile: is required/],
    ['catalog: {sources: [{name: r, type: restic, filesystem: {path: /r}, passwordFile: /p, identity: {hostname: "{{namespace}}", tag: backup}}]}', /catalog\.sources\[0\]\.identity\.tag: must contain \{\{namespace\}\} or \{\{pvc\}\}/],
    ['server: {port: 70000}', /server\.port: must be <= 65535/],
    ['server: {port: 9090}', /^test\.yaml: server\.port and server\.metricsPort: both are 9090; .* need a port each$/],
    ['server: {port: 8443, metricsPort: 8443, host: 127.0.0.1}', /server\.port and server\.metricsPort: both are 8443/],
    ['server: {port: 8443, metricsPort: 8443, host: 127.0.0.1, metricsHost: 127.0.0.1}', /server\.port and server\.metricsPort: both are 8443/],
    ['mode: strict', /mode: must be one of "enforce", "audit"/],
    ['pvc: {selector: {matchExpressions: [{key: a, operator: Has}]}}', /pvc\.selector\.matchExpressions\[0\]\.operator: must be one of/],
    ['movers: {repository: {mountPath: /r}}', /movers\.repository: set exactly one of nfs or pvc/],
    ['movers: {repository: {nfs: {server: a, path: /b}, pvc: {claimName: c}}}', /movers\.repository: set exactly one of nfs or pvc/],
    ['pvc: {destinationName: restore}', /pvc\.destinationName: must contain \{\{pvc\}\}/],
    ['catalog: {sources: [{name: a, type: static}, {name: a, type: static}]}', /catalog\.sources\[1\]\.name: duplicate/],
    ['- a list', /top level must be a mapping/],
    ['pvc: [unclosed', /not valid YAML/],
  ]
  for (const [yaml, message] of cases) {
    t.throws(() => parseConfig(yaml, 'test.yaml'), { name: 'ConfigError', message }, yaml)
  }
  t.throws(() => loadConfigFile('/nonexistent/config.yaml'), ConfigError)
})

t.test('a duration that feeds a timer is at most 576h (24 days): a longer one would fire after 1 ms', async (t) => {
  const cases: Array<[string, string]> = [
    ['catalog: {interval: 1000h}', 'catalog.interval: 1000h is longer than 576h'],
    ['server: {shutdown: {timeout: 600h}}', 'server.shutdown.timeout: 600h'],
    ['server: {shutdown: {drainPeriod: 2073600001ms}}', 'server.shutdown.drainPeriod: 2073600001ms'],
    ['kube: {leaseDuration: 9999h}', 'kube.leaseDuration: 9999h'],
    ['catalog: {sources: [{name: a, type: s3-prefix, s3: {bucket: bkt, requestTimeout: 700h}}]}', 'catalog.sources[0].s3.requestTimeout: 700h'],
  ]
  for (const [yaml, message] of cases) t.throws(() => parseConfig(yaml, 'f.yaml'), { name: 'ConfigError', message: new RegExp(`^f\\.yaml: ${message.replace(/[[\].]/g, (c) => `\\${c}`)}`) }, yaml)
  t.equal(parseConfig('catalog: {interval: 576h}').catalog.interval, '576h', '576h itself is accepted')
  t.equal(parseConfig('catalog: {staleAfter: 9999h, backupRecheckInterval: 9999h}').catalog.staleAfter, '9999h', 'durations that never reach a timer are not limited')
})

t.test('the webhook and the metrics server may share a port number only on different addresses, or as 0', async (t) => {
  for (const yaml of ['server: {port: 0, metricsPort: 0}', 'server: {port: 8443, metricsPort: 8443, host: 10.0.0.5, metricsHost: 127.0.0.1}']) {
    t.doesNotThrow(() => parseConfig(yaml, 'test.yaml'), yaml)
  }
})

t.test('the in-cluster example config is valid', async (t) => {
  const config = loadConfigFile('examples/config-cluster.yaml')
  t.equal(config.state.directory, undefined, 'cluster state from the API server')
  t.equal(config.server.tls.selfManaged?.secretName, 'volsync-autorestore-tls')
  t.same(config.catalog.sources.map((s) => s.type), ['s3-prefix', 'kopia'])
})

t.test('catalog sources get their own defaults, and only their own', async (t) => {
  const config = parseConfig('catalog: {sources: [{name: g, type: s3-prefix, s3: {bucket: backups}}, {name: r, type: restic, filesystem: {path: /r}, passwordFile: /p}]}')
  const [prefix, restic] = config.catalog.sources
  t.same(prefix, { name: 'g', type: 's3-prefix', concurrency: 16, s3: { bucket: 'backups', prefix: '', region: 'us-east-1', forcePathStyle: true, requestTimeout: '30s', maxAttempts: 3 } })
  t.same(restic, { name: 'r', type: 'restic', filesystem: { path: '/r' }, passwordFile: '/p', identity: { hostname: '{{namespace}}', tag: '{{pvc}}' } })
})

t.test('the config is frozen: nothing can change the running config in place', async (t) => {
  const config = parseConfig('{}')
  t.ok(Object.isFrozen(config))
})

t.test('ConfigWatcher: a valid change is published, an invalid one keeps the last good config', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'var-config-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const file = join(dir, 'config.yaml')
  await writeFile(file, 'mode: enforce\n')
  const changed: string[] = []
  const rejected: string[] = []
  const watcher = new ConfigWatcher(file, parseConfig(readFileSync(file, 'utf8')), {
    changed: (config) => changed.push(config.mode),
    rejected: (error) => rejected.push(error.message),
  })
  await watcher.start(60_000)
  t.teardown(() => watcher.stop())

  await writeFile(file, 'mode: audit\n')
  await watcher.check()
  t.same(changed, ['audit'])

  await writeFile(file, 'mode: sometimes\n')
  await watcher.check()
  t.equal(rejected.length, 1)
  t.match(rejected[0], /mode: must be one of/)
  t.match(watcher.lastError, /mode/)
  t.same(changed, ['audit'], 'no change published for an invalid file')

  await writeFile(file, 'mode: audit\n# same config, new comment\n')
  await watcher.check()
  t.same(changed, ['audit'], 'an equivalent file publishes nothing')
  t.equal(watcher.lastError, null, 'a valid file clears the error')

  await writeFile(file, 'mode: enforce\n')
  const deadline = Date.now() + 5000
  while (changed.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
  t.same(changed, ['audit', 'enforce'], 'the directory watch notices a change by itself')
})

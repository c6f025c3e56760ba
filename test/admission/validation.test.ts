// The /validate rules (design section 5, "Validation"), from the VolSync fixtures.
import { readFileSync } from 'node:fs'
import { inspect } from 'node:util'
import fc from 'fast-check'
import t from 'tap'
import { parseAllDocuments } from 'yaml'
import type { AdmissionInput, Decision } from '../../src/admission/decision.ts'
import { KopiaPasswordCheckNudge } from '../../src/admission/kopia-password-nudge.ts'
import { checkKopiaPassword } from '../../src/admission/validation/kopia-password.ts'
import { checkKopiaPrefixSlash } from '../../src/admission/validation/kopia-prefix-slash.ts'
import { checkKopiaSecretKeys } from '../../src/admission/validation/kopia-secret-keys.ts'
import { checkPvcDanglingDataSource } from '../../src/admission/validation/pvc-dangling-data-source.ts'
import { checkRdSourceIdentity } from '../../src/admission/validation/rd-source-identity.ts'
import { checkRdTrigger } from '../../src/admission/validation/rd-trigger.ts'
import { checkS3PlainHttp } from '../../src/admission/validation/s3-plain-http.ts'
import { decide as dispatch } from '../../src/admission/webhooks.ts'
import { kopiaHostname, kopiaUsername, readSecretValues } from '../../src/admission/volsync-objects.ts'
import { parseConfig } from '../../src/config/load.ts'
import { buildCatalogState, type CatalogDiagnostic, type CatalogEntry, type OpenedRepository } from '../../src/state/catalog-state.ts'
import { objectKey, type ClusterState, type ReplicationDestinationInfo } from '../../src/state/cluster-state.ts'
import { EMPTY_PASSWORD_VERDICTS, passwordDigest, type PasswordVerdicts } from '../../src/state/password-verdicts.ts'
import type { Snapshot } from '../../src/state/snapshot.ts'
import { StateStore } from '../../src/state/store.ts'

type Obj = Record<string, unknown>
/** The subtest object tap passes to a callback (plugins included). */
type TapTest = Parameters<Parameters<typeof t.test>[0]>[0]

const NOW = Date.parse('2026-03-16T09:00:00Z')
const FIXTURES = new URL('../fixtures/volsync/', import.meta.url)

function fixture(file: string): Obj[] {
  return parseAllDocuments(readFileSync(new URL(file, FIXTURES), 'utf8')).map((doc) => doc.toJS() as Obj)
}

function named(file: string, name: string): Obj {
  const found = fixture(file).find((doc) => (doc.metadata as Obj).name === name)
  if (!found) throw new Error(`${file}: no ${name}`)
  return found
}

// Every secret value in the fixtures (and their base64 forms) must stay out of every decision.
const SECRET_VALUES = [
  'correct-horse-battery-staple',
  'another-long-random-passphrase',
  'minioadmin',
  '4420d99ef7aa040b8e7cc6f6b2ea8e4a8b1c3fd3f2c6d1e9c0b7a5e4d3c2b1a0',
  '9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a0',
  'GK31c2f218a2e44f485b94239e',
  'pa55w0rd-in-url',
]

function snapshotOf(options: {
  config?: string
  rds?: readonly ReplicationDestinationInfo[]
  synced?: boolean
  backups?: readonly CatalogEntry[] | null
  diagnostics?: readonly CatalogDiagnostic[]
  repositories?: readonly OpenedRepository[]
  verdicts?: PasswordVerdicts
} = {}): Snapshot {
  const store = new StateStore(parseConfig(options.config ?? '{}'))
  const cluster: ClusterState = {
    origin: 'test',
    synced: options.synced ?? true,
    replicationDestinations: new Map((options.rds ?? []).map((rd) => [objectKey(rd.namespace, rd.name), rd])),
    namespaces: new Set(['media', 'home']),
    secrets: new Map(),
    pvcs: new Map(),
    replicationSources: new Map(),
    watches: [],
  }
  store.publish({ cluster })
  // null: no catalog source at all (catalog unknown); otherwise one source polled just now.
  if (options.backups === null) return store.current
  return store.publish({
    catalog: buildCatalogState([{ name: 'static', type: 'static', lastSuccess: NOW, lastAttempt: NOW, error: null, entries: options.backups ?? [], diagnostics: options.diagnostics ?? [], repositories: options.repositories ?? [] }]),
    ...(options.verdicts ? { passwordVerdicts: options.verdicts } : {}),
  })
}

const KINDS: Record<string, AdmissionInput['kind']> = {
  Secret: { group: '', version: 'v1', kind: 'Secret' },
  PersistentVolumeClaim: { group: '', version: 'v1', kind: 'PersistentVolumeClaim' },
  ReplicationDestination: { group: 'volsync.backube', version: 'v1alpha1', kind: 'ReplicationDestination' },
  ConfigMap: { group: '', version: 'v1', kind: 'ConfigMap' },
  Job: { group: 'batch', version: 'v1', kind: 'Job' },
}

function request(object: Obj | null, options: { operation?: AdmissionInput['operation']; oldObject?: Obj | null; kind?: string } = {}): AdmissionInput {
  const metadata = (object?.metadata ?? {}) as Obj
  const kind = KINDS[options.kind ?? String(object?.kind)]
  if (!kind) throw new Error(`no kind for ${String(object?.kind)}`)
  return {
    uid: 'uid-1',
    kind,
    operation: options.operation ?? 'CREATE',
    namespace: typeof metadata.namespace === 'string' ? metadata.namespace : '',
    name: typeof metadata.name === 'string' ? metadata.name : '',
    object,
    oldObject: options.oldObject ?? null,
    dryRun: false,
  }
}

/** The /validate dispatch plus the invariants of every decision: no secret, no mutation, one-line warnings. */
function decide(tt: TapTest, snapshot: Snapshot, input: AdmissionInput): Decision {
  const decision = dispatch('validate', snapshot, input, NOW)
  const json = JSON.stringify(decision)
  const inspected = inspect(decision, { depth: null })
  for (const value of SECRET_VALUES) {
    if (json.includes(value) || json.includes(Buffer.from(value).toString('base64'))) tt.fail(`decision leaks a secret value: ${value}`)
    if (inspected.includes(value)) tt.fail(`inspecting the decision shows a secret value: ${value}`)
  }
  tt.equal(decision.mutated, undefined, 'validation never mutates')
  tt.equal(decision.rule, 'validation')
  for (const warning of decision.warnings) tt.notOk(warning.includes('\n'), 'a warning is one line')
  return decision
}

/** The Secret as the API server stores it: every stringData value base64-encoded into data. */
function asData(secret: Obj): Obj {
  const copy = structuredClone(secret)
  const stringData = (copy.stringData ?? {}) as Record<string, string>
  copy.data = Object.fromEntries(Object.entries(stringData).map(([k, v]) => [k, Buffer.from(v).toString('base64')]))
  delete copy.stringData
  return copy
}

function withStringData(secret: Obj, change: (data: Record<string, unknown>) => void): Obj {
  const copy = structuredClone(secret)
  change(copy.stringData as Record<string, unknown>)
  return copy
}

function withKopia(rd: Obj, change: (kopia: Obj, spec: Obj) => void): Obj {
  const copy = structuredClone(rd)
  const spec = copy.spec as Obj
  change(spec.kopia as Obj, spec)
  return copy
}

const fsSecret = named('secret-kopia-filesystem.yaml', 'jellyfin-volsync-secret')
const goodS3 = named('secret-kopia-s3.yaml', 'jellyfin-volsync-s3')
const brokenS3 = named('secret-kopia-s3.yaml', 'broken-volsync-s3')
const rdKopia = named('rd-kopia-with-latestimage.yaml', 'jellyfin-dst')
const rdRestic = named('rd-restic.yaml', 'home-assistant-dst')
const pvc = named('pvc-backup-labeled.yaml', 'jellyfin')
const noPassword = withStringData(fsSecret, (d) => delete d.KOPIA_PASSWORD)

// Meta-check: the leak assertion would catch a leak.
t.test('the leak check sees a secret value in a decision', async (tt) => {
  tt.ok(JSON.stringify({ warnings: ['x correct-horse-battery-staple'] }).includes(SECRET_VALUES[0]!))
  tt.equal(readSecretValues(asData(fsSecret)).get('KOPIA_PASSWORD'), 'correct-horse-battery-staple', 'data is decoded')
})

t.test('clean fixtures have no findings', async (tt) => {
  const snapshot = snapshotOf()
  const clean: Obj[] = [
    ...fixture('secret-kopia-filesystem.yaml'),
    goodS3,
    ...fixture('secret-restic-s3.yaml'),
    ...fixture('rd-kopia-with-latestimage.yaml'),
    ...fixture('rd-kopia-no-latestimage.yaml'),
    ...fixture('rd-restic.yaml'),
    ...fixture('rd-restic-empty-restore.yaml'),
    pvc,
  ]
  for (const object of clean) {
    for (const variant of object.stringData ? [object, asData(object)] : [object]) {
      for (const operation of ['CREATE', 'UPDATE'] as const) {
        const decision = decide(tt, snapshot, request(variant, { operation, oldObject: operation === 'UPDATE' ? variant : null }))
        tt.same({ outcome: decision.outcome, reasons: decision.reasons, warnings: decision.warnings }, { outcome: 'unchanged', reasons: ['no findings'], warnings: [] },
          `${String(object.kind)} ${String((object.metadata as Obj).name)} ${operation}`)
      }
    }
  }
})

t.test('kopiaSecretKeys', async (tt) => {
  tt.test('KOPIA_PASSWORD missing: stringData and data', async (t2) => {
    for (const secret of [noPassword, asData(noPassword)]) {
      const findings = checkKopiaSecretKeys(snapshotOf(), request(secret), NOW)
      t2.equal(findings.length, 1)
      t2.equal(findings[0]!.rule, 'kopiaSecretKeys')
      t2.match(findings[0]!.message, /^Secret media\/jellyfin-volsync-secret: .*has no KOPIA_PASSWORD key.*Set KOPIA_PASSWORD/)
      t2.notMatch(findings[0]!.message, /filesystem:\/\/\/repository/, 'the repository value is not echoed either')
      const decision = decide(t2, snapshotOf(), request(secret))
      t2.equal(decision.outcome, 'warn')
      t2.same(decision.warnings, [findings[0]!.message])
      t2.equal(decision.denial, undefined)
    }
  })

  tt.test('both keys missing, or empty', async (t2) => {
    const onlyDeadKey = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 's', namespace: 'media' }, stringData: { KOPIA_FS_PATH: '/repository' } }
    const [both] = checkKopiaSecretKeys(snapshotOf(), request(onlyDeadKey), NOW)
    t2.match(both?.message, /has no KOPIA_REPOSITORY and no KOPIA_PASSWORD key/)
    const empty = asData(withStringData(fsSecret, (d) => { d.KOPIA_PASSWORD = '' }))
    const [finding] = checkKopiaSecretKeys(snapshotOf(), request(empty), NOW)
    t2.match(finding?.message, /has an empty KOPIA_PASSWORD/)
  })

  tt.test('not a Kopia Secret: restic, TLS, empty', async (t2) => {
    for (const secret of [...fixture('secret-restic-s3.yaml'), { kind: 'Secret', metadata: { name: 'tls', namespace: 'x' }, type: 'kubernetes.io/tls', data: { 'tls.crt': 'AA==' } }]) {
      t2.same(checkKopiaSecretKeys(snapshotOf(), request(secret), NOW), [])
    }
  })

  tt.test('deny', async (t2) => {
    const decision = decide(t2, snapshotOf({ config: 'validation: { kopiaSecretKeys: deny }' }), request(asData(noPassword)))
    t2.equal(decision.outcome, 'deny')
    t2.match(decision.denial, /Secret media\/jellyfin-volsync-secret: .*KOPIA_PASSWORD/)
    t2.same(decision.warnings, [])
    t2.match(decision.reasons[0], /^kopiaSecretKeys \(deny\)/)
  })

  tt.test('malformed', async (t2) => {
    const malformed: Obj[] = [
      { kind: 'Secret', metadata: { name: 'a', namespace: 'x' }, data: 'KOPIA_REPOSITORY' },
      { kind: 'Secret', metadata: { name: 'b', namespace: 'x' }, data: ['KOPIA_REPOSITORY'], stringData: null },
      { kind: 'Secret', metadata: 'nope', stringData: { KOPIA_REPOSITORY: 's3://b', KOPIA_PASSWORD: 42 } },
      { kind: 'Secret', data: { KOPIA_REPOSITORY: '!!!not base64!!!', KOPIA_PASSWORD: null } },
      { kind: 'Secret' },
    ]
    for (const secret of malformed) decide(t2, snapshotOf(), request(secret))
    const [numeric] = checkKopiaSecretKeys(snapshotOf(), request(malformed[2]!), NOW)
    t2.match(numeric?.message, /^Secret \(no namespace\)\/\(no name\): .*has no KOPIA_PASSWORD key/, 'a non-string value counts as missing')
    const [nulls] = checkKopiaSecretKeys(snapshotOf(), request(malformed[3]!), NOW)
    t2.match(nulls?.message, /has no KOPIA_PASSWORD key/)
  })
})

t.test('s3PlainHttp', async (tt) => {
  tt.test('http:// endpoint without a TLS flag: stringData and data', async (t2) => {
    for (const secret of [brokenS3, asData(brokenS3)]) {
      const findings = checkS3PlainHttp(snapshotOf(), request(secret), NOW)
      t2.equal(findings.length, 1)
      t2.equal(findings[0]!.rule, 's3PlainHttp')
      t2.match(findings[0]!.message, /^Secret media\/broken-volsync-s3: KOPIA_S3_ENDPOINT is the plain-HTTP endpoint http:\/\/minio\.minio\.svc:9000 .*KOPIA_S3_DISABLE_TLS: "true"/)
      const decision = decide(t2, snapshotOf(), request(secret))
      t2.equal(decision.outcome, 'warn')
      t2.same(decision.warnings, [findings[0]!.message], 'the broken fixture has both required keys')
    }
  })

  tt.test('AWS_S3_ENDPOINT, and an empty KOPIA_S3_ENDPOINT falls through to it', async (t2) => {
    const noFlag = withStringData(goodS3, (d) => { delete d.AWS_S3_DISABLE_TLS; d.KOPIA_S3_ENDPOINT = '' })
    const [finding] = checkS3PlainHttp(snapshotOf(), request(asData(noFlag)), NOW)
    t2.match(finding?.message, /AWS_S3_ENDPOINT is the plain-HTTP endpoint http:\/\/garage\.storage\.svc\.cluster\.local:3900 /)
  })

  tt.test('a flag that is not exactly "true" is named, its value is not', async (t2) => {
    const nearMiss = withStringData(brokenS3, (d) => { d.KOPIA_S3_DISABLE_TLS = 'True' })
    const [finding] = checkS3PlainHttp(snapshotOf(), request(nearMiss), NOW)
    t2.match(finding?.message, /KOPIA_S3_DISABLE_TLS is set, but only the exact string "true" disables TLS/)
    t2.notMatch(finding?.message, /True/)
  })

  tt.test('credentials in the endpoint URL are redacted', async (t2) => {
    const withUser = withStringData(brokenS3, (d) => { d.KOPIA_S3_ENDPOINT = 'http://admin:pa55w0rd-in-url@minio:9000\nsecond line' })
    const decision = decide(t2, snapshotOf(), request(asData(withUser)))
    t2.match(decision.warnings[0], /http:\/\/<redacted>@minio:9000 but/)
    const long = withStringData(brokenS3, (d) => { d.KOPIA_S3_ENDPOINT = `http://minio:9000/${'x'.repeat(300)}` })
    t2.match(checkS3PlainHttp(snapshotOf(), request(long), NOW)[0]?.message, /x{100}\.\.\. but/, 'cut at 200 characters')
  })

  tt.test('no finding: TLS flag, https, no endpoint, filesystem repository, not Kopia', async (t2) => {
    const cases: Obj[] = [
      goodS3,
      withStringData(goodS3, (d) => { delete d.AWS_S3_DISABLE_TLS; d.KOPIA_S3_DISABLE_TLS = 'true' }),
      withStringData(brokenS3, (d) => { d.KOPIA_S3_ENDPOINT = 'https://minio.minio.svc:9000' }),
      withStringData(brokenS3, (d) => { delete d.KOPIA_S3_ENDPOINT }),
      withStringData(fsSecret, (d) => { d.AWS_S3_ENDPOINT = 'http://minio:9000' }),
      { kind: 'Secret', metadata: { name: 'r', namespace: 'home' }, stringData: { RESTIC_REPOSITORY: 's3:http://minio/b', AWS_S3_ENDPOINT: 'http://minio:9000' } },
    ]
    for (const secret of cases) t2.same(checkS3PlainHttp(snapshotOf(), request(asData(secret)), NOW), [])
    const bucketVar = withStringData(fsSecret, (d) => { d.KOPIA_S3_BUCKET = 'b'; d.KOPIA_S3_ENDPOINT = 'http://minio:9000' })
    t2.equal(checkS3PlainHttp(snapshotOf(), request(bucketVar), NOW).length, 1, 'KOPIA_S3_BUCKET makes it S3 whatever the URL says')
  })

  tt.test('deny for s3PlainHttp, warn for kopiaSecretKeys: one decision', async (t2) => {
    const both = withStringData(brokenS3, (d) => delete d.KOPIA_PASSWORD)
    const decision = decide(t2, snapshotOf({ config: 'validation: { s3PlainHttp: deny }' }), request(asData(both)))
    t2.equal(decision.outcome, 'deny')
    t2.match(decision.denial, /plain-HTTP endpoint/)
    t2.notMatch(decision.denial, /KOPIA_PASSWORD key/)
    t2.equal(decision.warnings.length, 1)
    t2.match(decision.warnings[0], /has no KOPIA_PASSWORD key/)
    t2.equal(decision.reasons.length, 2)
  })

  tt.test('malformed', async (t2) => {
    const cases: Obj[] = [
      { kind: 'Secret', stringData: { KOPIA_S3_ENDPOINT: 7, AWS_S3_ENDPOINT: ['http://x'] } },
      { kind: 'Secret', stringData: { KOPIA_REPOSITORY: null, KOPIA_S3_ENDPOINT: 'http://x:9000', KOPIA_S3_DISABLE_TLS: true } },
    ]
    t2.same(checkS3PlainHttp(snapshotOf(), request(cases[0]!), NOW), [])
    const [finding] = checkS3PlainHttp(snapshotOf(), request(cases[1]!), NOW)
    t2.match(finding?.message, /KOPIA_S3_DISABLE_TLS is set, but only the exact string "true"/, 'a boolean true is not the string "true"')
    for (const secret of cases) decide(t2, snapshotOf(), request(secret))
  })
})

t.test('rdSourceIdentity', async (tt) => {
  const noIdentity = withKopia(rdKopia, (kopia) => delete kopia.sourceIdentity)

  tt.test('no sourceIdentity and no username+hostname: names the identity it restores', async (t2) => {
    const findings = checkRdSourceIdentity(snapshotOf(), request(noIdentity), NOW)
    t2.equal(findings.length, 1)
    t2.equal(findings[0]!.rule, 'rdSourceIdentity')
    t2.match(findings[0]!.message, /^ReplicationDestination media\/jellyfin-dst: spec\.kopia has neither sourceIdentity\.sourceName nor username\+hostname, so it restores the Kopia identity jellyfin-dst@media .*EMPTY volume\. Set spec\.kopia\.sourceIdentity\.sourceName: <the ReplicationSource name>\./)
    const decision = decide(t2, snapshotOf(), request(noIdentity))
    t2.equal(decision.outcome, 'warn')
    const emptyName = withKopia(rdKopia, (kopia) => { kopia.sourceIdentity = { sourceName: '', sourceNamespace: 'media' } })
    t2.equal(checkRdSourceIdentity(snapshotOf(), request(emptyName), NOW).length, 1, 'an empty sourceName is no sourceName')
  })

  tt.test('identity sanitizing follows the fork', async (t2) => {
    t2.equal(kopiaUsername('app.v2-dst'), 'appv2-dst')
    t2.equal(kopiaUsername('-_x_-'), 'x')
    t2.equal(kopiaUsername('...'), 'volsync-default')
    t2.equal(kopiaUsername(`${'a'.repeat(49)}-b`), `${'a'.repeat(49)}-`, 'trimmed before the cut to 50')
    t2.equal(kopiaHostname('my_ns.', 'x'), 'my-ns')
    t2.equal(kopiaHostname('', 'app'), 'app')
    t2.equal(kopiaHostname('', ''), 'volsync-default')
    const dotted = withKopia(noIdentity, () => undefined)
    ;(dotted.metadata as Obj).name = 'app.v2-dst'
    t2.match(checkRdSourceIdentity(snapshotOf(), request(dotted), NOW)[0]?.message, /identity appv2-dst@media /)
  })

  tt.test('username and hostname together are enough', async (t2) => {
    const explicit = withKopia(noIdentity, (kopia) => { kopia.username = 'jellyfin'; kopia.hostname = 'media' })
    t2.same(checkRdSourceIdentity(snapshotOf(), request(explicit), NOW), [])
  })

  tt.test('only one of username/hostname is an error, even with sourceIdentity', async (t2) => {
    const onlyUser = withKopia(rdKopia, (kopia) => { kopia.username = 'jellyfin' })
    const [user] = checkRdSourceIdentity(snapshotOf(), request(onlyUser), NOW)
    t2.match(user?.message, /: error: spec\.kopia\.username is set without spec\.kopia\.hostname; VolSync rejects .*never restores/)
    const onlyHost = withKopia(noIdentity, (kopia) => { kopia.hostname = 'media'; kopia.username = '' })
    const findings = checkRdSourceIdentity(snapshotOf(), request(onlyHost), NOW)
    t2.equal(findings.length, 1, 'one finding, not also the missing-identity one')
    t2.match(findings[0]?.message, /spec\.kopia\.hostname is set without spec\.kopia\.username/)
  })

  tt.test('not Kopia: restic RD', async (t2) => {
    t2.same(checkRdSourceIdentity(snapshotOf(), request(rdRestic), NOW), [])
  })

  tt.test('deny', async (t2) => {
    const decision = decide(t2, snapshotOf({ config: 'validation: { rdSourceIdentity: deny }' }), request(noIdentity))
    t2.equal(decision.outcome, 'deny')
    t2.match(decision.denial, /jellyfin-dst@media/)
  })

  tt.test('malformed', async (t2) => {
    const cases: Obj[] = [
      { kind: 'ReplicationDestination', spec: { kopia: 'yes' } },
      { kind: 'ReplicationDestination', spec: { kopia: { sourceIdentity: 'jellyfin', username: 3 } } },
      { kind: 'ReplicationDestination', metadata: { generateName: 'restore-', namespace: 'media' }, spec: { kopia: {}, trigger: { manual: 'x' } } },
      { kind: 'ReplicationDestination', spec: [] },
    ]
    t2.same(checkRdSourceIdentity(snapshotOf(), request(cases[0]!), NOW), [])
    t2.match(checkRdSourceIdentity(snapshotOf(), request(cases[1]!), NOW)[0]?.message, /identity <generated name>@volsync-default /)
    t2.match(checkRdSourceIdentity(snapshotOf(), request(cases[2]!), NOW)[0]?.message,
      /^ReplicationDestination media\/restore-<generated>: .*identity <generated name>@media /)
    for (const rd of cases) decide(t2, snapshotOf(), request(rd))
  })
})

t.test('rdTrigger', async (tt) => {
  tt.test('no trigger, or one with neither schedule nor manual', async (t2) => {
    const cases: [Obj, RegExp][] = [
      [withKopia(rdKopia, (_k, spec) => delete spec.trigger), /^ReplicationDestination media\/jellyfin-dst: spec\.trigger is not set, so VolSync restores continuously.*spec\.trigger\.manual: restore-once/],
      [withKopia(rdKopia, (_k, spec) => { spec.trigger = {} }), /spec\.trigger has neither schedule nor manual/],
      [withKopia(rdKopia, (_k, spec) => { spec.trigger = { manual: '', schedule: '' } }), /spec\.trigger has neither schedule nor manual/],
      [withKopia(rdKopia, (_k, spec) => { spec.trigger = 'hourly' }), /spec\.trigger is not set/],
    ]
    for (const [rd, message] of cases) {
      const findings = checkRdTrigger(snapshotOf(), request(rd), NOW)
      t2.equal(findings.length, 1)
      t2.equal(findings[0]!.rule, 'rdTrigger')
      t2.match(findings[0]!.message, message)
      t2.equal(decide(t2, snapshotOf(), request(rd)).outcome, 'warn')
    }
    const restic = structuredClone(rdRestic)
    delete (restic.spec as Obj).trigger
    t2.equal(checkRdTrigger(snapshotOf(), request(restic), NOW).length, 1, 'any mover')
  })

  tt.test('schedule or manual is enough', async (t2) => {
    t2.same(checkRdTrigger(snapshotOf(), request(rdKopia), NOW), [])
    t2.same(checkRdTrigger(snapshotOf(), request(withKopia(rdKopia, (_k, spec) => { spec.trigger = { schedule: '@hourly' } })), NOW), [])
  })

  tt.test('deny, with a warn-level identity finding beside it', async (t2) => {
    const rd = withKopia(rdKopia, (kopia, spec) => { delete spec.trigger; delete kopia.sourceIdentity })
    const decision = decide(t2, snapshotOf({ config: 'validation: { rdTrigger: deny }' }), request(rd))
    t2.equal(decision.outcome, 'deny')
    t2.match(decision.denial, /spec\.trigger is not set/)
    t2.equal(decision.warnings.length, 1)
    t2.match(decision.warnings[0], /sourceIdentity/)
  })

  tt.test('UPDATE: a problem the stored object already had is not denied; a new one is', async (t2) => {
    const snapshot = snapshotOf({ config: 'validation: { rdTrigger: deny }' })
    const noTrigger = withKopia(rdKopia, (_k, spec) => delete spec.trigger)
    const relabelled = structuredClone(noTrigger)
    ;(relabelled.metadata as Obj).labels = { app: 'jellyfin' }
    const kept = decide(t2, snapshot, request(relabelled, { operation: 'UPDATE', oldObject: noTrigger }))
    t2.equal(kept.outcome, 'warn')
    t2.match(kept.warnings[0], /already had this problem before this update/)
    const introduced = decide(t2, snapshot, request(noTrigger, { operation: 'UPDATE', oldObject: rdKopia }))
    t2.equal(introduced.outcome, 'deny')
    const noOld = decide(t2, snapshot, request(noTrigger, { operation: 'UPDATE', oldObject: null }))
    t2.equal(noOld.outcome, 'deny', 'no oldObject: nothing to compare with')
  })

  tt.test('malformed', async (t2) => {
    for (const rd of [{ kind: 'ReplicationDestination' }, { kind: 'ReplicationDestination', spec: 'x' }, { kind: 'ReplicationDestination', spec: { trigger: { manual: 5 } } }]) {
      t2.equal(checkRdTrigger(snapshotOf(), request(rd), NOW).length, 1)
      decide(t2, snapshotOf(), request(rd))
    }
  })
})

t.test('pvcDanglingDataSource', async (tt) => {
  const ref = { apiGroup: 'volsync.backube', kind: 'ReplicationDestination', name: 'jellyfin-dst' }
  const withRef = (field: 'dataSourceRef' | 'dataSource', value: unknown = ref): Obj => {
    const copy = structuredClone(pvc)
    ;(copy.spec as Obj)[field] = value
    return copy
  }
  const rdInfo: ReplicationDestinationInfo = { namespace: 'media', name: 'jellyfin-dst', latestImage: null, copyMethod: 'Snapshot' }
  const backup: CatalogEntry = { namespace: 'media', pvc: 'jellyfin', source: 'static', kind: 'static', snapshots: 3, newest: '2026-03-16T08:00:00Z' }

  tt.test('RD missing and no backup: dataSourceRef and dataSource', async (t2) => {
    for (const field of ['dataSourceRef', 'dataSource'] as const) {
      const findings = checkPvcDanglingDataSource(snapshotOf(), request(withRef(field)), NOW)
      t2.equal(findings.length, 1)
      t2.equal(findings[0]!.rule, 'pvcDanglingDataSource')
      t2.match(findings[0]!.message, new RegExp(`^PersistentVolumeClaim media/jellyfin: spec\\.${field} names ReplicationDestination jellyfin-dst, which does not exist .*Pending forever\\. Create ReplicationDestination jellyfin-dst first, or remove spec\\.${field}`))
      t2.equal(decide(t2, snapshotOf(), request(withRef(field))).outcome, 'warn')
    }
  })

  tt.test('no finding: RD exists, backup known, catalog unknown, cluster not synced, UPDATE, other data source', async (t2) => {
    const cases: [Snapshot, AdmissionInput, string][] = [
      [snapshotOf({ rds: [rdInfo] }), request(withRef('dataSourceRef')), 'RD exists (even without latestImage)'],
      [snapshotOf({ backups: [backup] }), request(withRef('dataSourceRef')), 'a backup is known'],
      [snapshotOf({ backups: null }), request(withRef('dataSourceRef')), 'no catalog source: unknown'],
      [snapshotOf({ synced: false }), request(withRef('dataSourceRef')), 'cluster state not synced'],
      [snapshotOf(), request(withRef('dataSourceRef'), { operation: 'UPDATE', oldObject: withRef('dataSourceRef') }), 'UPDATE'],
      [snapshotOf(), request(withRef('dataSourceRef', { apiGroup: 'snapshot.storage.k8s.io', kind: 'VolumeSnapshot', name: 'snap' })), 'a VolumeSnapshot'],
      [snapshotOf(), request(withRef('dataSourceRef', { apiGroup: 'volsync.backube', kind: 'ReplicationDestination', name: '' })), 'no name'],
      [snapshotOf(), request(pvc), 'no data source'],
    ]
    for (const [snapshot, input, what] of cases) {
      t2.same(checkPvcDanglingDataSource(snapshot, input, NOW), [], what)
      t2.equal(decide(t2, snapshot, input).outcome, 'unchanged', what)
    }
    const stale = snapshotOf()
    t2.same(checkPvcDanglingDataSource(stale, request(withRef('dataSourceRef')), NOW + stale.staleAfterMs + 1), [], 'stale catalog: unknown')
    const otherNs = snapshotOf({ rds: [{ ...rdInfo, namespace: 'home' }] })
    t2.equal(checkPvcDanglingDataSource(otherNs, request(withRef('dataSourceRef')), NOW).length, 1, 'an RD of that name in another namespace does not count')
  })

  tt.test('deny', async (t2) => {
    const decision = decide(t2, snapshotOf({ config: 'validation: { pvcDanglingDataSource: deny }' }), request(withRef('dataSourceRef')))
    t2.equal(decision.outcome, 'deny')
    t2.match(decision.denial, /Pending forever/)
  })

  tt.test('malformed', async (t2) => {
    const cases: Obj[] = [
      { kind: 'PersistentVolumeClaim', spec: { dataSourceRef: 'jellyfin-dst' } },
      { kind: 'PersistentVolumeClaim', spec: { dataSourceRef: { apiGroup: 'volsync.backube', kind: 'ReplicationDestination', name: 7 } } },
      { kind: 'PersistentVolumeClaim', metadata: { generateName: 'data-' }, spec: { dataSource: ref } },
    ]
    t2.same(checkPvcDanglingDataSource(snapshotOf(), request(cases[0]!), NOW), [])
    t2.same(checkPvcDanglingDataSource(snapshotOf(), request(cases[1]!), NOW), [])
    t2.match(checkPvcDanglingDataSource(snapshotOf(), request(cases[2]!), NOW)[0]?.message, /^PersistentVolumeClaim \(no namespace\)\/data-<generated>: spec\.dataSource/)
    for (const object of cases) decide(t2, snapshotOf(), request(object))
  })
})

t.test('kopiaPrefixSlash', async (tt) => {
  // The fixture Secret points at s3://volsync-kopia/volsync/media; a stripped-slash mover put the repository at volsync/mediakopia.repository.
  const s3Secret = named('secret-kopia-s3.yaml', 'jellyfin-volsync-s3')
  const stripped: CatalogDiagnostic = {
    code: 'kopia-prefix-without-slash', namespace: 'volsync', pvc: 'media', location: 's3://volsync-kopia/volsync/media',
    s3: { bucket: 'volsync-kopia', prefix: 'volsync/media' }, message: 'found',
  }
  tt.test('the catalog found the stripped-slash repository: warn, naming both places', async (t2) => {
    for (const secret of [s3Secret, asData(s3Secret)]) {
      const [finding] = checkKopiaPrefixSlash(snapshotOf({ diagnostics: [stripped] }), request(secret), NOW)
      t2.equal(finding?.rule, 'kopiaPrefixSlash')
      t2.match(finding?.message, /^Secret media\/jellyfin-volsync-s3: catalog source static found a Kopia repository at s3:\/\/volsync-kopia\/volsync\/mediakopia\.repository .* none at s3:\/\/volsync-kopia\/volsync\/media\/kopia\.repository/)
    }
    const decision = decide(t2, snapshotOf({ diagnostics: [stripped], config: 'validation: { kopiaPrefixSlash: deny }' }), request(s3Secret))
    t2.equal(decision.outcome, 'deny')
  })
  tt.test('a trailing slash in KOPIA_REPOSITORY and a KOPIA_S3_BUCKET override are read as the mover reads them', async (t2) => {
    const slash = withStringData(s3Secret, (d) => { d.KOPIA_REPOSITORY = 's3://volsync-kopia/volsync/media/' })
    t2.equal(checkKopiaPrefixSlash(snapshotOf({ diagnostics: [stripped] }), request(slash), NOW).length, 1)
    const override = withStringData(s3Secret, (d) => { d.KOPIA_REPOSITORY = 's3://other-bucket/volsync/media'; d.KOPIA_S3_BUCKET = 'volsync-kopia' })
    t2.equal(checkKopiaPrefixSlash(snapshotOf({ diagnostics: [stripped] }), request(override), NOW).length, 1, 'the variable names the bucket')
  })
  tt.test('nothing to say: no such diagnostic, another prefix, another bucket, a filesystem repository', async (t2) => {
    t2.same(checkKopiaPrefixSlash(snapshotOf(), request(s3Secret), NOW), [])
    t2.same(checkKopiaPrefixSlash(snapshotOf({ diagnostics: [{ ...stripped, s3: { bucket: 'volsync-kopia', prefix: 'volsync/home' } }] }), request(s3Secret), NOW), [])
    t2.same(checkKopiaPrefixSlash(snapshotOf({ diagnostics: [{ ...stripped, s3: { bucket: 'elsewhere', prefix: 'volsync/media' } }] }), request(s3Secret), NOW), [])
    t2.same(checkKopiaPrefixSlash(snapshotOf({ diagnostics: [stripped] }), request(fsSecret), NOW), [])
  })
})

t.test('kopiaPassword', async (tt) => {
  // Repositories the catalog opened, as data; their verdicts are published beside them, by digest.
  const opened = (where: Partial<OpenedRepository> & { id: string }): OpenedRepository => ({
    kind: 'kopia',
    location: where.s3 ? `s3://${where.s3.bucket}/${where.s3.prefix}/` : '/mnt/kopia/',
    format: { uniqueId: '00'.repeat(32), keyAlgorithm: 'scrypt-65536-8-1', encryption: 'AES256_GCM', encryptedBlockFormat: 'AAAA' },
    openedWithDigest: passwordDigest('correct-horse-battery-staple'),
    ...where,
  })
  const onS3 = opened({ id: 'repo-s3', s3: { bucket: 'volsync-kopia', prefix: 'volsync/media' } })
  const onNfs = opened({ id: 'repo-nfs', filesystem: '/mnt/kopia' })
  const verdicts = EMPTY_PASSWORD_VERDICTS.withMany(['repo-s3', 'repo-nfs', 'repo-other'].flatMap((repository) => [
    { repository, digest: passwordDigest('correct-horse-battery-staple'), verdict: 'opens' as const },
    { repository, digest: passwordDigest('another-long-random-passphrase'), verdict: 'wrong' as const },
  ]))
  const s3Secret = named('secret-kopia-s3.yaml', 'jellyfin-volsync-s3')
  const withPassword = (secret: Obj, password: string) => withStringData(secret, (d) => { d.KOPIA_PASSWORD = password })
  const nfsConfig = 'movers: { repository: { nfs: { server: nas, path: /tank/kopia }, mountPath: /repository } }'

  tt.test('a password the opened repository rejects: warn (or deny), naming the repository, never the password', async (t2) => {
    const wrong = withPassword(s3Secret, 'another-long-random-passphrase')
    for (const secret of [wrong, asData(wrong)]) {
      const { findings: [finding], nudges } = checkKopiaPassword(snapshotOf({ repositories: [onS3], verdicts }), request(secret), NOW)
      t2.equal(finding?.rule, 'kopiaPassword')
      t2.match(finding?.message, /^Secret media\/jellyfin-volsync-s3: KOPIA_PASSWORD does not open the Kopia repository at s3:\/\/volsync-kopia\/volsync\/media\/ \(opened by catalog source static\)/)
      t2.same(nudges, [], 'known: nothing to check')
    }
    const decision = decide(t2, snapshotOf({ repositories: [onS3], verdicts, config: 'validation: { kopiaPassword: deny }' }), request(wrong))
    t2.equal(decision.outcome, 'deny')
    t2.equal(decision.nudge, undefined)
  })
  tt.test('the right password, another repository: nothing to say and nothing to check', async (t2) => {
    t2.same(checkKopiaPassword(snapshotOf({ repositories: [onS3], verdicts }), request(s3Secret), NOW), { findings: [], nudges: [] })
    const elsewhere = withStringData(withPassword(s3Secret, 'another-long-random-passphrase'), (d) => { d.KOPIA_REPOSITORY = 's3://volsync-kopia/volsync/home' })
    t2.same(checkKopiaPassword(snapshotOf({ repositories: [onS3], verdicts }), request(elsewhere), NOW), { findings: [], nudges: [] })
    const decision = decide(t2, snapshotOf({ repositories: [onS3], verdicts }), request(s3Secret))
    t2.same({ outcome: decision.outcome, reasons: decision.reasons, nudge: decision.nudge }, { outcome: 'unchanged', reasons: ['no findings'], nudge: undefined })
  })
  tt.test('a password without a verdict: no finding, and a nudge to check it that never shows the password', async (t2) => {
    const unseen = 'never-seen-before-password'
    const snapshot = snapshotOf({ repositories: [onS3], verdicts })
    const result = checkKopiaPassword(snapshot, request(withPassword(s3Secret, unseen)), NOW)
    t2.same(result.findings, [], 'unknown is not wrong')
    t2.equal(result.nudges.length, 1)
    const [nudge] = result.nudges
    t2.ok(nudge instanceof KopiaPasswordCheckNudge)
    t2.equal(nudge?.type, 'check-kopia-password')
    t2.equal(nudge?.type === 'check-kopia-password' && nudge.repository, 'repo-s3')
    t2.equal(nudge?.type === 'check-kopia-password' && nudge.password, unseen, 'the queue can read it')
    t2.equal(snapshot.passwordVerdicts, verdicts, 'pure: the snapshot is untouched')

    for (const operation of ['CREATE', 'UPDATE'] as const) {
      const decision = decide(t2, snapshot, request(withPassword(s3Secret, unseen), { operation, oldObject: operation === 'UPDATE' ? s3Secret : null }))
      t2.equal(decision.outcome, 'unchanged')
      t2.same(decision.nudge?.type === 'check-kopia-password' && { repository: decision.nudge.repository, password: decision.nudge.password }, { repository: 'repo-s3', password: unseen })
      t2.match(decision.reasons, ['no findings', /^kopiaPassword: no verdict yet for this KOPIA_PASSWORD/])
      const shown = [JSON.stringify(decision), inspect(decision, { depth: null }), JSON.stringify({ ...decision.nudge }), Object.keys(decision.nudge ?? {}).join()]
      for (const text of shown) {
        t2.notOk(text.includes(unseen), `the password is not in ${text.slice(0, 60)}`)
        t2.notOk(text.includes(passwordDigest(unseen)), 'nor its digest')
      }
      t2.same(JSON.parse(JSON.stringify(decision.nudge)), { type: 'check-kopia-password', repository: 'repo-s3' })
    }
    // The stored object's password is not checked on UPDATE: only the one being written matters.
    const update = decide(t2, snapshot, request(s3Secret, { operation: 'UPDATE', oldObject: withPassword(s3Secret, unseen) }))
    t2.equal(update.nudge, undefined)
    // With a finding from another rule, the nudge still goes out.
    const plainHttp = withStringData(withPassword(s3Secret, unseen), (d) => { delete d.AWS_S3_DISABLE_TLS })
    const warned = decide(t2, snapshot, request(plainHttp))
    t2.equal(warned.outcome, 'warn')
    t2.equal(warned.nudge?.type, 'check-kopia-password')
  })
  tt.test('no verdicts published at all (no queue running): unknown, never wrong', async (t2) => {
    const result = checkKopiaPassword(snapshotOf({ repositories: [onS3] }), request(withPassword(s3Secret, 'another-long-random-passphrase')), NOW)
    t2.same(result.findings, [])
    t2.equal(result.nudges.length, 1)
  })
  tt.test('filesystem:///<movers.repository.mountPath> names the one shared repository on NFS', async (t2) => {
    const nfsWrong = withPassword(fsSecret, 'another-long-random-passphrase')
    t2.equal(checkKopiaPassword(snapshotOf({ repositories: [onNfs], verdicts, config: nfsConfig }), request(nfsWrong), NOW).findings.length, 1)
    t2.same(checkKopiaPassword(snapshotOf({ repositories: [onNfs], verdicts }), request(nfsWrong), NOW), { findings: [], nudges: [] }, 'no movers.repository: the path means nothing here')
    t2.same(checkKopiaPassword(snapshotOf({ repositories: [onNfs, opened({ id: 'repo-other', filesystem: '/mnt/other' })], verdicts, config: nfsConfig }), request(nfsWrong), NOW), { findings: [], nudges: [] }, 'two directory repositories: ambiguous, so silent')
  })
})

t.test('dispatch', async (tt) => {
  const snapshot = snapshotOf({ config: 'validation: { kopiaSecretKeys: deny, rdTrigger: deny }' })
  for (const operation of ['DELETE', 'CONNECT'] as const) {
    const decision = decide(tt, snapshot, request(noPassword, { operation, oldObject: noPassword }))
    tt.same({ outcome: decision.outcome, reasons: decision.reasons }, { outcome: 'skip', reasons: [`${operation} is not validated`] })
  }
  const configMap = decide(tt, snapshot, request({ kind: 'ConfigMap', metadata: { name: 'c', namespace: 'x' }, data: { KOPIA_PASSWORD: 'x' } }))
  tt.same({ outcome: configMap.outcome, reasons: configMap.reasons }, { outcome: 'skip', reasons: ['kind ConfigMap is not validated'] })
  const job = decide(tt, snapshot, request({ kind: 'Job' }))
  tt.same(job.reasons, ['kind batch/Job is not validated'])
  tt.equal(decide(tt, snapshot, request(null, { kind: 'Secret' })).outcome, 'skip', 'no object')
  // A Secret-shaped object under an RD kind is judged by the RD rules only.
  const mislabelled = decide(tt, snapshot, request(noPassword, { kind: 'ReplicationDestination' }))
  tt.equal(mislabelled.outcome, 'deny')
  tt.match(mislabelled.denial, /^ReplicationDestination media\/jellyfin-volsync-secret: spec\.trigger is not set/)
})

t.test('never throws on arbitrary objects', async (tt) => {
  const snapshots = [snapshotOf(), snapshotOf({ config: 'validation: { kopiaSecretKeys: deny, s3PlainHttp: deny, rdSourceIdentity: deny, rdTrigger: deny, pvcDanglingDataSource: deny }' })]
  const kubeObject = fc.record({
    metadata: fc.oneof(fc.jsonValue(), fc.record({ name: fc.string(), namespace: fc.string(), generateName: fc.jsonValue() }, { requiredKeys: [] })),
    spec: fc.oneof(fc.jsonValue(), fc.record({
      trigger: fc.jsonValue(),
      kopia: fc.oneof(fc.jsonValue(), fc.record({ username: fc.jsonValue(), hostname: fc.jsonValue(), sourceIdentity: fc.jsonValue() }, { requiredKeys: [] })),
      dataSourceRef: fc.oneof(fc.jsonValue(), fc.record({ apiGroup: fc.constant('volsync.backube'), kind: fc.constant('ReplicationDestination'), name: fc.jsonValue() })),
      dataSource: fc.jsonValue(),
    }, { requiredKeys: [] })),
    data: fc.oneof(fc.jsonValue(), fc.dictionary(fc.constantFrom('KOPIA_REPOSITORY', 'KOPIA_PASSWORD', 'KOPIA_S3_ENDPOINT', 'AWS_S3_DISABLE_TLS', 'X'), fc.oneof(fc.base64String(), fc.jsonValue()))),
    stringData: fc.oneof(fc.jsonValue(), fc.dictionary(fc.constantFrom('KOPIA_REPOSITORY', 'KOPIA_PASSWORD', 'KOPIA_S3_ENDPOINT', 'AWS_S3_ENDPOINT', 'KOPIA_S3_DISABLE_TLS'), fc.oneof(fc.constant('http://h:9000'), fc.string(), fc.jsonValue()))),
  }, { requiredKeys: [] })
  fc.assert(fc.property(
    fc.constantFrom('Secret', 'ReplicationDestination', 'PersistentVolumeClaim'),
    fc.constantFrom('CREATE' as const, 'UPDATE' as const),
    kubeObject, fc.option(kubeObject), fc.nat(1),
    (kind, operation, object, oldObject, which) => {
      const decision = dispatch('validate', snapshots[which]!, request(object as Obj, { kind, operation, oldObject: oldObject as Obj | null }), NOW)
      return ['unchanged', 'warn', 'deny'].includes(decision.outcome) && decision.mutated === undefined
        && (decision.outcome === 'deny') === (decision.denial !== undefined)
    },
  ), { numRuns: 2000 })
  tt.pass('2000 random objects')
})

// The one source of the configuration's shape, types and defaults (design section 7).
// Every key has a safe default; unknown keys are rejected so that a typo is an error, not a no-op.
import { Type, type Static, type TSchema } from '@sinclair/typebox'

const strict = { additionalProperties: false } as const

/** "90s", "10m", "1h", "500ms": parsed by config/duration.ts. */
export const Duration = Type.String({ pattern: '^[0-9]+(ms|s|m|h)$', description: 'a duration such as 500ms, 60s, 10m, 1h' })

const WarnOrDeny = Type.Union([Type.Literal('warn'), Type.Literal('deny')], { default: 'warn' })

/** Kubernetes metav1.LabelSelector. */
export const LabelSelector = Type.Object({
  matchLabels: Type.Optional(Type.Record(Type.String(), Type.String())),
  matchExpressions: Type.Optional(Type.Array(Type.Object({
    key: Type.String({ minLength: 1 }),
    operator: Type.Union([Type.Literal('In'), Type.Literal('NotIn'), Type.Literal('Exists'), Type.Literal('DoesNotExist')]),
    values: Type.Optional(Type.Array(Type.String())),
  }, strict))),
}, strict)
export type LabelSelector = Static<typeof LabelSelector>

function withDefault<T extends TSchema>(schema: T, value: unknown): T {
  return { ...schema, default: value }
}

/**
 * Marks a key whose change takes effect only after a restart (listening sockets, the cluster
 * connection, the Lease). Everything else applies live on reload; the warning a reload gives
 * is derived from these marks (config/restart-required.ts), so the two cannot drift apart.
 */
function restartRequired<T extends TSchema>(schema: T): T {
  return { ...schema, restartRequired: true }
}

/**
 * The server keeps its own CA and serving certificate in a Secret (in kube.namespace), renews the
 * certificate before it expires and writes the CA bundle into the named webhook configurations.
 * Leave it unset to serve certFile/keyFile (e.g. mounted by cert-manager, which then owns the caBundle).
 */
const SelfManagedTls = Type.Object({
  secretName: Type.String({ minLength: 1, default: 'volsync-autorestore-tls' }),
  /** The Service in front of the webhook: the certificate names <service>.<namespace>.svc. */
  serviceName: Type.String({ minLength: 1, default: 'volsync-autorestore' }),
  mutatingWebhookConfigurations: Type.Array(Type.String({ minLength: 1 }), { default: ['volsync-autorestore'] }),
  validatingWebhookConfigurations: Type.Array(Type.String({ minLength: 1 }), { default: ['volsync-autorestore'] }),
}, strict)
export type SelfManagedTlsConfig = Static<typeof SelfManagedTls>

const TlsFiles = Type.Object({
  certFile: Type.String({ minLength: 1, default: 'certs/tls.crt' }),
  keyFile: Type.String({ minLength: 1, default: 'certs/tls.key' }),
  selfManaged: Type.Optional(SelfManagedTls),
  /**
   * Names (DNS, or IP addresses) a certificate read from certFile/keyFile must cover, e.g. the
   * Service's `volsync-autorestore.volsync-system.svc`; a replacement that does not is refused and the
   * served one kept. Default none: only the validity window is checked. (Self-managed TLS always
   * checks the Service's DNS names.)
   */
  dnsNames: Type.Array(Type.String({ minLength: 1 }), { default: [] }),
}, strict)

/**
 * SIGTERM -> exit. Kubernetes keeps sending to a terminating pod until its endpoints update, so /readyz
 * turns 503 at once and the webhook keeps answering (with `Connection: close`) for `drainPeriod`; then
 * it stops accepting, closes idle connections and force-closes the rest `timeout` after SIGTERM, which
 * must stay under the pod's terminationGracePeriodSeconds (30 s by default).
 */
const Shutdown = Type.Object({
  drainPeriod: withDefault(Duration, '5s'),
  timeout: withDefault(Duration, '25s'),
}, strict)

const Server = Type.Object({
  host: Type.String({ default: '0.0.0.0' }),
  /** 0 picks a free port (tests). */
  port: Type.Integer({ minimum: 0, maximum: 65535, default: 8443 }),
  metricsHost: Type.String({ default: '0.0.0.0' }),
  metricsPort: Type.Integer({ minimum: 0, maximum: 65535, default: 9090 }),
  tls: withDefault(TlsFiles, {}),
  /** Create a self-signed development certificate when the files are missing (the embedded default). */
  devCertificate: Type.Boolean({ default: false }),
  shutdown: withDefault(Shutdown, {}),
}, strict)

const State = Type.Object({
  /** Offline cluster state: Kubernetes objects as YAML files. Absent: the API server (see kube). */
  directory: Type.Optional(Type.String({ minLength: 1 })),
}, strict)

/** The API server (when state.directory is absent). */
const Kube = Type.Object({
  /** A kubeconfig file; absent: the in-cluster service account, then $KUBECONFIG or ~/.kube/config. */
  kubeconfig: Type.Optional(Type.String({ minLength: 1 })),
  /** The server's own namespace: where its Lease and its self-managed TLS Secret live. */
  namespace: Type.String({ minLength: 1, default: 'volsync-system' }),
  leaseName: Type.String({ minLength: 1, default: 'volsync-autorestore' }),
  leaseDuration: withDefault(Duration, '15s'),
  renewDeadline: withDefault(Duration, '10s'),
  retryPeriod: withDefault(Duration, '2s'),
  /** This replica's name in the Lease and in Events; default: $HOSTNAME (the pod name). */
  identity: Type.Optional(Type.String({ minLength: 1 })),
}, strict)

const Pvc = Type.Object({
  selector: withDefault(LabelSelector, { matchExpressions: [{ key: 'backup', operator: 'Exists' }] }),
  destinationName: Type.String({ minLength: 1, default: '{{pvc}}-dst', pattern: '^[a-z0-9{}.-]+$' }),
  /**
   * The name a PVC's backups are filed under (the ReplicationSource's name, hence the Kopia username
   * after VolSync's sanitizing, volsync/names.ts): `{{pvc}}`, `{{namespace}}` and `{{label "KEY"}}`
   * (the PVC's label KEY), for apps whose PVC is named differently from their backups.
   */
  backupName: Type.String({
    minLength: 1,
    default: '{{pvc}}',
    pattern: '^(?:[^{}]|\\{\\{pvc\\}\\}|\\{\\{namespace\\}\\}|\\{\\{\\s*label\\s+"[^"]+"\\s*\\}\\})+$',
    description: 'a name template using only {{pvc}}, {{namespace}} and {{label "KEY"}}, e.g. "{{pvc}}" or \'{{label "app.kubernetes.io/instance"}}\'',
  }),
  whenBackupNotReady: Type.Union([Type.Literal('wait'), Type.Literal('deny'), Type.Literal('fresh')], { default: 'wait' }),
  whenCatalogUnknown: Type.Union([Type.Literal('fresh'), Type.Literal('deny')], { default: 'fresh' }),
}, strict)

const Jitter = Type.Object({
  enabled: Type.Boolean({ default: true }),
  maxSeconds: Type.Integer({ minimum: 0, maximum: 86400, default: 300 }),
  image: Type.String({ minLength: 1, default: 'busybox:1.37' }),
}, strict)

const Repository = Type.Object({
  nfs: Type.Optional(Type.Object({ server: Type.String({ minLength: 1 }), path: Type.String({ pattern: '^/' }) }, strict)),
  pvc: Type.Optional(Type.Object({ claimName: Type.String({ minLength: 1 }) }, strict)),
  mountPath: Type.String({ pattern: '^/', default: '/repository' }),
}, strict)
export type RepositoryConfig = Static<typeof Repository>

const Movers = Type.Object({
  jitter: withDefault(Jitter, {}),
  repository: Type.Optional(Repository),
}, strict)

const StaticBackup = Type.Object({
  namespace: Type.String({ minLength: 1 }),
  pvc: Type.String({ minLength: 1 }),
  snapshots: Type.Integer({ minimum: 0, default: 1 }),
  newest: Type.Optional(Type.String({ pattern: '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+(Z|[+-][0-9]{2}:[0-9]{2})$', description: 'an RFC 3339 time' })),
  sizeBytes: Type.Optional(Type.Integer({ minimum: 0 })),
}, strict)

const SourceName = Type.String({ minLength: 1, pattern: '^[a-zA-Z0-9._-]+$' })

/** Backups declared by hand. */
const StaticSource = Type.Object({
  name: SourceName,
  type: Type.Literal('static'),
  backups: Type.Array(StaticBackup, { default: [] }),
}, strict)
export type StaticSourceConfig = Static<typeof StaticSource>

/** An S3 bucket (AWS, MinIO, Garage, RustFS, Ceph RGW). Credentials: the *File keys (mounted Secret), inline keys, or the SDK's default chain (env). */
const S3Location = Type.Object({
  endpoint: Type.Optional(Type.String({ pattern: '^https?://[^/]+/?$', description: 'an http(s)://host:port URL without a path' })),
  bucket: Type.String({ minLength: 3, maxLength: 63, pattern: '^[a-z0-9][a-z0-9.-]+[a-z0-9]$', description: 'an S3 bucket name' }),
  // '^([^/]|$)' says '^(?!/)' without a lookahead, which helm's RE2 validator (values.schema.json) rejects.
  /** Key prefix below the bucket. s3-prefix and restic sources treat it as a folder (a missing trailing '/' is added); kopia uses it verbatim, as kopia does. */
  prefix: Type.String({ default: '', pattern: '^([^/]|$)', description: 'a key prefix, not starting with /' }),
  region: Type.String({ minLength: 1, default: 'us-east-1' }),
  forcePathStyle: Type.Boolean({ default: true }),
  accessKeyIdFile: Type.Optional(Type.String({ minLength: 1 })),
  secretAccessKeyFile: Type.Optional(Type.String({ minLength: 1 })),
  accessKeyId: Type.Optional(Type.String({ minLength: 1 })),
  secretAccessKey: Type.Optional(Type.String({ minLength: 1 })),
  /** Per request, including reading the body. */
  requestTimeout: withDefault(Duration, '30s'),
  /** Attempts per request, the first included (the SDK's backoff between them). */
  maxAttempts: Type.Integer({ minimum: 1, maximum: 10, default: 3 }),
}, strict)
export type S3LocationConfig = Static<typeof S3Location>

/** A directory: an NFS-mounted repository, or a local one. */
const FilesystemLocation = Type.Object({ path: Type.String({ minLength: 1 }) }, strict)
export type FilesystemLocationConfig = Static<typeof FilesystemLocation>

/** Where a source reads: exactly one of s3 / filesystem (checked in load.ts). */
const Location = {
  s3: Type.Optional(S3Location),
  filesystem: Type.Optional(FilesystemLocation),
}

/** Per-PVC repositories at <prefix><namespace>/<pvc>/, restic or Kopia. */
const S3PrefixSource = Type.Object({
  name: SourceName,
  type: Type.Literal('s3-prefix'),
  ...Location,
  /** Optional: exact snapshot times, hosts and paths; without it the listing alone counts snapshots. */
  resticPasswordFile: Type.Optional(Type.String({ minLength: 1 })),
  /** Optional: per-PVC Kopia repositories are opened with it; without it they count as "unknown". */
  kopiaPasswordFile: Type.Optional(Type.String({ minLength: 1 })),
  /** Repositories examined at once. */
  concurrency: Type.Integer({ minimum: 1, maximum: 256, default: 16 }),
}, strict)
export type S3PrefixSourceConfig = Static<typeof S3PrefixSource>

/**
 * How a snapshot's identity maps to namespace/pvc: each field is a pattern with {{namespace}}
 * and/or {{pvc}}; a snapshot belongs to a PVC when every given field matches.
 */
const ResticIdentity = Type.Object({
  hostname: Type.Optional(Type.String({ minLength: 1 })),
  username: Type.Optional(Type.String({ minLength: 1 })),
  /** Matches when any tag of the snapshot matches. */
  tag: Type.Optional(Type.String({ minLength: 1 })),
  /** Matches when any path of the snapshot matches. */
  path: Type.Optional(Type.String({ minLength: 1 })),
}, strict)
export type ResticIdentityConfig = Static<typeof ResticIdentity>

/** One shared restic repository whose snapshots map to PVCs by identity. */
const ResticSource = Type.Object({
  name: SourceName,
  type: Type.Literal('restic'),
  ...Location,
  passwordFile: Type.String({ minLength: 1 }),
  identity: withDefault(ResticIdentity, { hostname: '{{namespace}}', tag: '{{pvc}}' }),
}, strict)
export type ResticSourceConfig = Static<typeof ResticSource>

/**
 * How a Kopia source `username@hostname:/path` maps to namespace/pvc. VolSync's Kopia mover sets
 * username = the ReplicationSource's name and hostname = the namespace; the ReplicationSource is
 * commonly named after its PVC.
 */
const KopiaIdentity = Type.Object({
  username: Type.Optional(Type.String({ minLength: 1 })),
  hostname: Type.Optional(Type.String({ minLength: 1 })),
  path: Type.Optional(Type.String({ minLength: 1 })),
}, strict)
export type KopiaIdentityConfig = Static<typeof KopiaIdentity>

/** One shared Kopia repository, read natively. */
const KopiaSource = Type.Object({
  name: SourceName,
  type: Type.Literal('kopia'),
  ...Location,
  passwordFile: Type.String({ minLength: 1 }),
  identity: withDefault(KopiaIdentity, { username: '{{pvc}}', hostname: '{{namespace}}' }),
}, strict)
export type KopiaSourceConfig = Static<typeof KopiaSource>

export const CATALOG_SOURCE_TYPES = [StaticSource, S3PrefixSource, ResticSource, KopiaSource] as const
const SourceUnion = Type.Union([...CATALOG_SOURCE_TYPES])
export type CatalogSourceConfig = Static<typeof SourceUnion>
/**
 * oneOf with a discriminator, not anyOf: ajv then validates (and fills defaults from) only the
 * branch the `type` names, and its errors point into that branch.
 */
export const CatalogSourceConfig = Type.Unsafe<CatalogSourceConfig>({ oneOf: [...CATALOG_SOURCE_TYPES], discriminator: { propertyName: 'type' } })

const Catalog = Type.Object({
  interval: withDefault(Duration, '60s'),
  staleAfter: withDefault(Duration, '10m'),
  /**
   * s3-prefix sources: how often a repository with a known backup is examined again (its snapshots
   * listed or read), spread evenly over the polls. Between, its last answer stands; a repository
   * without one (and a new or removed one) is seen every poll. "0s": every repository every poll.
   * Applies on reload without a restart.
   */
  backupRecheckInterval: withDefault(Duration, '10m'),
  sources: Type.Array(CatalogSourceConfig, { default: [] }),
}, strict)

const Prewarm = Type.Object({
  enabled: Type.Boolean({ default: true }),
  requireSecret: Type.Optional(Type.String({ minLength: 1 })),
  template: Type.Record(Type.String(), Type.Unknown(), { default: {} }),
}, strict)

const Guard = Type.Object({ pauseSource: Type.Boolean({ default: false }) }, strict)

/** A Secret data key, as the API server accepts one. */
const SecretKey = Type.String({ minLength: 1, maxLength: 253, pattern: '^[-._a-zA-Z0-9]+$', description: 'a Secret data key ([-._a-zA-Z0-9]+)' })

/**
 * The repository Secret per app (controllers/backup-secret-plan.ts), what the seeds' Kyverno generate
 * policy made from shared credentials: for every participating PVC, a Secret `name` in its namespace with
 * `keys` copied byte for byte from the Secret `from` in kube.namespace, and `values` rendered per PVC
 * (a value wins over a copied key of the same name). Only Secrets the server created (its managed-by
 * label) are ever updated; values are never logged. Absent: off.
 */
const BackupSecret = Type.Object({
  /** The Secret's name in the PVC's namespace: {{pvc}}, {{namespace}}, {{label "KEY"}}. */
  name: Type.String({
    minLength: 1,
    default: '{{pvc}}-volsync-secret',
    pattern: '^(?:[^{}]|\\{\\{pvc\\}\\}|\\{\\{namespace\\}\\}|\\{\\{\\s*label\\s+"[^"]+"\\s*\\}\\})+$',
    description: 'a name template using only {{pvc}}, {{namespace}} and {{label "KEY"}}',
  }),
  /** The Secret in the server's own namespace (kube.namespace) holding the shared credentials. */
  from: Type.String({ minLength: 1, pattern: '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$', description: 'a Secret name' }),
  /** Keys of `from` copied into every app Secret, byte for byte (a missing key stops the copy: no half Secret). */
  keys: Type.Array(SecretKey, { default: [] }),
  /** Keys set per app from a template ({{pvc}}, {{namespace}}, {{label "KEY"}}), e.g. KOPIA_REPOSITORY: s3://bucket/{{namespace}}/{{pvc}}/. */
  values: Type.Record(Type.String({ minLength: 1, maxLength: 253, pattern: '^[-._a-zA-Z0-9]+$' }), Type.String(), { default: {}, additionalProperties: false }),
}, strict)
export type BackupSecretConfig = Static<typeof BackupSecret>

/**
 * The backup side (design section 5, "Backup generation"): the leader keeps a ReplicationSource per
 * participating PVC (controllers/backup-plan.ts). Off by default.
 */
const Backup = Type.Object({
  enabled: Type.Boolean({ default: false }),
  /**
   * The ReplicationSource's name, hence the Kopia username its backups are written under: keep it
   * equal to pvc.backupName so that the catalog and pre-warm find what it writes.
   */
  sourceName: Type.String({
    minLength: 1,
    default: '{{pvc}}',
    pattern: '^(?:[^{}]|\\{\\{pvc\\}\\}|\\{\\{namespace\\}\\}|\\{\\{\\s*label\\s+"[^"]+"\\s*\\}\\})+$',
    description: 'a name template using only {{pvc}}, {{namespace}} and {{label "KEY"}}',
  }),
  /**
   * The PVC label whose value picks the schedule (`backup: hourly`). Default: the key of pvc.selector's
   * first matchExpressions entry, else of its first matchLabels entry (`backup` with the default selector).
   */
  scheduleLabel: Type.Optional(Type.String({ minLength: 1 })),
  /**
   * Label value -> cron for spec.trigger.schedule; `H` is a value hashed from namespace/PVC over the
   * field's range and `H(a-b)` over a..b (Jenkins' notation, volsync/schedule.ts). A PVC's annotation
   * volsync-autorestore.io/schedule overrides it with a literal cron.
   */
  schedules: Type.Record(Type.String({ minLength: 1 }), Type.String({ minLength: 1 }), { default: { hourly: 'H * * * *', daily: 'H H(0-5) * * *', weekly: 'H H(0-5) * * H' } }),
  /** Fields merged into every generated ReplicationSource spec ({{pvc}} and {{namespace}} rendered), e.g. the kopia: or restic: block. */
  template: Type.Record(Type.String(), Type.Unknown(), { default: {} }),
  /** The repository Secret per app (off when absent); see BackupSecret. */
  secret: Type.Optional(BackupSecret),
}, strict)

/** One key per validation rule (design section 5): warn (default) or deny. */
const Validation = Type.Object({
  kopiaSecretKeys: WarnOrDeny,
  s3PlainHttp: WarnOrDeny,
  rdSourceIdentity: WarnOrDeny,
  rdTrigger: WarnOrDeny,
  /** An RD participating PVCs are restored from that can never give the volume populator an image (copyMethod not Snapshot, destinationPVC the PVC itself, a mover that cannot read the backup's repository). */
  rdNeverReady: WarnOrDeny,
  pvcDanglingDataSource: WarnOrDeny,
  /** A Kopia Secret whose S3 repository the catalog found at <prefix>kopia.repository (needs a catalog source over that bucket). */
  kopiaPrefixSlash: WarnOrDeny,
  /** A Kopia Secret whose KOPIA_PASSWORD cannot open the repository the catalog opened at its KOPIA_REPOSITORY. */
  kopiaPassword: WarnOrDeny,
}, strict)
export type ValidationRuleName = keyof Static<typeof Validation>

export const Config = Type.Object({
  mode: Type.Union([Type.Literal('enforce'), Type.Literal('audit')], { default: 'enforce' }),
  server: restartRequired(withDefault(Server, {})),
  state: restartRequired(withDefault(State, {})),
  kube: restartRequired(withDefault(Kube, {})),
  pvc: withDefault(Pvc, {}),
  movers: withDefault(Movers, {}),
  catalog: withDefault(Catalog, {}),
  prewarm: withDefault(Prewarm, {}),
  guard: withDefault(Guard, {}),
  backup: withDefault(Backup, {}),
  validation: withDefault(Validation, {}),
  log: withDefault(Type.Object({
    level: Type.Union([Type.Literal('fatal'), Type.Literal('error'), Type.Literal('warn'), Type.Literal('info'), Type.Literal('debug'), Type.Literal('trace'), Type.Literal('silent')], { default: 'info' }),
  }, strict), {}),
}, strict)
export type Config = Static<typeof Config>

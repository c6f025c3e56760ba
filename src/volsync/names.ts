// How VolSync names things, defined once: a ReplicationSource's name <-> the Kopia identity
// (username@hostname) its mover writes snapshots under <-> the ReplicationDestination that restores
// them (its own name, `sourceIdentity`, or explicit username+hostname). Used by the catalog (which
// name a Kopia snapshot source is filed under), the PVC lookup, pre-warm and the missed-restore
// guard, so that all four agree on where a PVC's backups are.
//
// Upstream: the perfectra1n VolSync fork, internal/controller/mover/kopia/builder.go (>= v0.15.40):
// sanitizeForIdentifier, generateUsername, generateHostname, FromDestination's resolution order
// (volsync-reference.md section 3). Pure: no I/O, safe to import from admission/.

/** builder.go maxUsernameLength: the cut applied after sanitizing a username. */
export const KOPIA_MAX_USERNAME = 50
/** builder.go defaultUsername: the username (and last-resort hostname) when sanitizing leaves nothing. */
export const KOPIA_DEFAULT_IDENTITY = 'volsync-default'

/**
 * One Kopia username as generateUsername produces it from a Kubernetes object name (lowercase, so a
 * laptop's `Root@host` is not taken for an RS), as a regular-expression fragment: at most 50 characters,
 * never starting with `-`/`_`, but possibly ending in one (the fork trims before it cuts).
 */
export const KOPIA_USERNAME_PATTERN = `[a-z0-9][a-z0-9_-]{0,${KOPIA_MAX_USERNAME - 1}}`
/** One Kopia hostname as generateHostname produces it from a namespace, as a regular-expression fragment. */
export const KOPIA_HOSTNAME_PATTERN = '[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?'

/** A name of only `[A-Za-z0-9_-]` that starts and ends with a letter or digit: kopiaUsername keeps it whole (before the cut). */
const KEPT_WHOLE = /^[A-Za-z0-9](?:[A-Za-z0-9_-]*[A-Za-z0-9])?$/

/**
 * The fork's default Kopia username of an RS or RD named `objectName` (generateUsername with no explicit
 * `spec.kopia.username`): keep `[A-Za-z0-9_-]`, drop every other character, trim leading/trailing `-`
 * and `_`, fall back to `volsync-default` when nothing is left, then cut to 50 characters. The trim comes
 * before the cut, so a cut username can end in `-` ("kube-...-prometheus-" stays so). The namespace is not
 * part of it (fork >= v0.15.40).
 */
export function kopiaUsername(objectName: string): string {
  // Most names keep every character and need no trim: one test instead of two replacements per admission.
  if (KEPT_WHOLE.test(objectName)) return objectName.slice(0, KOPIA_MAX_USERNAME)
  const kept = objectName.replace(/[^A-Za-z0-9_-]/g, '').replace(/^[-_]+|[-_]+$/g, '')
  return kept === '' ? KOPIA_DEFAULT_IDENTITY : kept.slice(0, KOPIA_MAX_USERNAME)
}

/** generateHostname's sanitizer (sanitizeForHostname): keep `[A-Za-z0-9.-]`, `_` becomes `-`, trim `-` and `.`. */
function sanitizeHostname(text: string): string {
  return text.replace(/_/g, '-').replace(/[^A-Za-z0-9.-]/g, '').replace(/^[-.]+|[-.]+$/g, '')
}

/**
 * The fork's default Kopia hostname (generateHostname with no explicit `spec.kopia.hostname`): the
 * sanitized namespace, else the sanitized object name, else `volsync-default`. Not cut. The PVC name
 * is not used (the parameter is unused upstream). A Kubernetes namespace is already a valid hostname,
 * so for every real namespace this is the namespace itself.
 */
export function kopiaHostname(namespace: string, objectName: string): string {
  return sanitizeHostname(namespace) || sanitizeHostname(objectName) || KOPIA_DEFAULT_IDENTITY
}

/** A Kopia snapshot source's owner as VolSync writes it: `username@hostname`. */
export interface KopiaIdentity {
  readonly username: string
  readonly hostname: string
}

/** The identity a ReplicationSource named `sourceName` in `namespace` backs up under (no explicit username/hostname). */
export function kopiaIdentityOfSource(sourceName: string, namespace: string): KopiaIdentity {
  return { username: kopiaUsername(sourceName), hostname: kopiaHostname(namespace, sourceName) }
}

/** "zigbee2mqttdata@home". */
export function describeKopiaIdentity(identity: KopiaIdentity): string {
  return `${identity.username}@${identity.hostname}`
}

/**
 * What a ReplicationDestination's `spec.kopia` needs to restore `identity`: `sourceIdentity`
 * (sourceName, sourceNamespace) when VolSync maps those back to exactly this identity (FromDestination:
 * username = generateUsername(sourceName), hostname = generateHostname(sourceNamespace)), which also lets
 * VolSync discover the live RS's sourcePathOverride and repository; otherwise explicit `username` and
 * `hostname`, which the fork uses as they are (both together, or the RD is rejected). The second case is
 * a username the sanitizer would change again, e.g. a 50-character cut ending in `-`, which
 * `sourceName` would lose to the trim.
 */
export function destinationIdentityFields(identity: KopiaIdentity): { sourceIdentity: { sourceName: string; sourceNamespace: string } } | { username: string; hostname: string } {
  const roundTrips = kopiaUsername(identity.username) === identity.username && kopiaHostname(identity.hostname, identity.username) === identity.hostname
  return roundTrips
    ? { sourceIdentity: { sourceName: identity.username, sourceNamespace: identity.hostname } }
    : { username: identity.username, hostname: identity.hostname }
}

/**
 * The names under which the catalog may have filed the backups of a PVC whose backup name (the RS name,
 * `pvc.backupName`) is `backupName`: the name itself (restic, per-PVC repositories, static) and, when it
 * differs, the Kopia username VolSync derives from it (a shared Kopia repository, whose snapshot sources
 * the catalog files under their username). First the name itself.
 */
export function catalogNamesOf(backupName: string): { readonly name: string; readonly kopiaUsername: string | null } {
  const username = kopiaUsername(backupName)
  return { name: backupName, kopiaUsername: username === backupName ? null : username }
}

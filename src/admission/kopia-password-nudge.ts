// The nudge a pure admission rule returns for a Kopia password it has no verdict for: "check this
// password against that repository". It has to carry the password (the check needs it), so
// `password` is an own non-enumerable property and `toJSON` leaves it out: JSON (every logger),
// pino's redaction clone (own enumerable keys only), util.inspect, spreading and Object.keys never
// see it; the verdict queue reads it by name. A getter or a #private field would not do: pino's
// redaction clones the object with its prototype and reads `password` on the clone, and a getter
// reading a private field throws there.
import { inspect } from 'node:util'

/** Ask the catalog's verdict queue to check a password against a repository it opened. */
export class KopiaPasswordCheckNudge {
  readonly type = 'check-kopia-password' as const
  /** OpenedRepository.id of the repository to check against. */
  readonly repository: string
  /** The password to check. Never log it, never put it into a Decision's reasons or warnings. */
  declare readonly password: string

  constructor(repository: string, password: string) {
    this.repository = repository
    Object.defineProperty(this, 'password', { value: password, enumerable: false, writable: false, configurable: false })
    Object.freeze(this)
  }

  /** What logs and JSON show: the type and the repository, never the password. */
  toJSON(): { type: 'check-kopia-password'; repository: string } {
    return { type: this.type, repository: this.repository }
  }

  [inspect.custom](): string {
    return `KopiaPasswordCheckNudge { repository: ${JSON.stringify(this.repository)} }`
  }
}

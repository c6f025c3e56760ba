// Which passwords open which Kopia repository the catalog opened, as immutable data in the
// snapshot: repository id -> sha256 of a password -> 'opens' | 'wrong'. A password is never kept
// here, only its digest; a digest that is absent is 'unknown'. Written only by the derivation queue
// (catalog/password-verdicts.ts); read by the kopiaPassword validation rule.
import { createHash } from 'node:crypto'

/** What a check found; 'unknown' when no check has finished (or none can be made). */
export type PasswordVerdict = 'opens' | 'wrong' | 'unknown'

/** A finished check. */
export type KnownPasswordVerdict = Exclude<PasswordVerdict, 'unknown'>

/** Lowercase hex sha256 of the password's UTF-8 bytes: how a password is named in verdicts. */
export function passwordDigest(password: string): string {
  return createHash('sha256').update(password, 'utf8').digest('hex')
}

// Every distinct wrong password someone writes into a Secret would otherwise stay forever; the
// oldest wrong verdicts go first (at most one password opens a repository, so 'opens' is never
// the one that crowds the others out).
export const MAX_WRONG_PER_REPOSITORY = 256

/**
 * An immutable verdict map. Every change returns a new instance (or this one when nothing
 * changed), so a snapshot holding one never sees it change.
 */
export class PasswordVerdicts {
  readonly #byRepository: ReadonlyMap<string, ReadonlyMap<string, KnownPasswordVerdict>>

  constructor(byRepository: ReadonlyMap<string, ReadonlyMap<string, KnownPasswordVerdict>> = new Map()) {
    this.#byRepository = byRepository
    Object.freeze(this)
  }

  /** The verdict for the password with this digest on this repository; 'unknown' when absent. */
  verdictOf(repository: string, digest: string): PasswordVerdict {
    return this.#byRepository.get(repository)?.get(digest) ?? 'unknown'
  }

  /** Repositories with at least one verdict. */
  get repositories(): readonly string[] {
    return [...this.#byRepository.keys()]
  }

  /** Verdicts held, over all repositories. */
  get size(): number {
    let size = 0
    for (const verdicts of this.#byRepository.values()) size += verdicts.size
    return size
  }

  /** With one more verdict (see `withMany`). */
  with(repository: string, digest: string, verdict: KnownPasswordVerdict): PasswordVerdicts {
    return this.withMany([{ repository, digest, verdict }])
  }

  /**
   * With these verdicts added (one copy however many: the catalog may hold thousands of
   * repositories); this instance when none changes anything. Beyond MAX_WRONG_PER_REPOSITORY wrong
   * verdicts on a repository, its oldest wrong ones are forgotten.
   */
  withMany(additions: Iterable<{ readonly repository: string; readonly digest: string; readonly verdict: KnownPasswordVerdict }>): PasswordVerdicts {
    let next: Map<string, ReadonlyMap<string, KnownPasswordVerdict>> | undefined
    const copied = new Map<string, Map<string, KnownPasswordVerdict>>()
    for (const { repository, digest, verdict } of additions) {
      if ((next ?? this.#byRepository).get(repository)?.get(digest) === verdict) continue
      next ??= new Map(this.#byRepository)
      let verdicts = copied.get(repository)
      if (verdicts === undefined) {
        verdicts = new Map(next.get(repository))
        copied.set(repository, verdicts)
        next.set(repository, verdicts)
      }
      verdicts.delete(digest)
      verdicts.set(digest, verdict)
    }
    if (next === undefined) return this
    for (const verdicts of copied.values()) forgetOldestWrong(verdicts)
    return new PasswordVerdicts(next)
  }

  /** Only the verdicts of these repositories (the ones still in the catalog). */
  retainOnly(repositories: ReadonlySet<string>): PasswordVerdicts {
    if (this.repositories.every((id) => repositories.has(id))) return this
    return new PasswordVerdicts(new Map([...this.#byRepository].filter(([id]) => repositories.has(id))))
  }

  /** For /status or debugging: counts only, never digests (a digest of a weak password can be guessed). */
  toJSON(): { repositories: number; verdicts: number } {
    return { repositories: this.#byRepository.size, verdicts: this.size }
  }
}

function forgetOldestWrong(verdicts: Map<string, KnownPasswordVerdict>): void {
  let wrong = 0
  for (const verdict of verdicts.values()) if (verdict === 'wrong') wrong++
  for (const [digest, verdict] of verdicts) {
    if (wrong <= MAX_WRONG_PER_REPOSITORY) break
    if (verdict === 'wrong') {
      verdicts.delete(digest)
      wrong--
    }
  }
}

export const EMPTY_PASSWORD_VERDICTS = new PasswordVerdicts()

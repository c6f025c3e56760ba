// The Event names a leader has seen created (or already there) for the problems it still reports. Only
// an optimisation: without it every pass POSTs again and the API server answers 409, so nothing is
// reported twice either way; with it a steady problem costs no request per pass.

/** Event names reported by this process, kept only while their problem is current. */
export class ReportedEvents {
  readonly #names = new Set<string>()

  /** Forgets every name not in `current` (a problem that went away may come back and be reported anew). */
  keepOnly(current: ReadonlySet<string>): void {
    for (const name of this.#names) if (!current.has(name)) this.#names.delete(name)
  }

  /** Whether `name` was created, or found existing, since it became current. */
  has(name: string): boolean {
    return this.#names.has(name)
  }

  /** Records that the Event `name` exists (created now, or answered 409). */
  add(name: string): void {
    this.#names.add(name)
  }
}

// Repositories a source keeps open across polls (their derived keys and decoded snapshots with
// them), by name: reused while the password from the Secret stays the same, reopened when it
// changes (a rotated Secret), dropped when opening or reading fails.

/**
 * Opened repositories of one source by key (`namespace/pvc`, or '' for a shared repository), each with the
 * password it was opened with. Not shared between sources; in memory only.
 */
export class OpenedRepositories<T> {
  readonly #opened = new Map<string, { readonly password: string; readonly value: T }>()

  /** The repository under `key`, opened with `open` unless it is already open with this password. */
  async get(key: string, password: string, open: () => Promise<T>): Promise<T> {
    const cached = this.#opened.get(key)
    if (cached?.password === password) return cached.value
    this.#opened.delete(key)
    const value = await open()
    this.#opened.set(key, { password, value })
    return value
  }

  /** Whether `key` is open with this password, so `get` would cost no open (and no key derivation). */
  isOpen(key: string, password: string): boolean {
    return this.#opened.get(key)?.password === password
  }

  /** Drops `key`: its next `get` opens it again. */
  forget(key: string): void {
    this.#opened.delete(key)
  }
}

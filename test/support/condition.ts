// Waits on client-side state (an informer's cache, a supervisor's objects) without polling: the
// code under test calls notify() when something changed, and until() resolves once its predicate holds.

export class Condition {
  #waiters = new Set<{ predicate: () => boolean; resolve: () => void }>()

  notify = (): void => {
    for (const w of [...this.#waiters]) {
      if (w.predicate()) {
        this.#waiters.delete(w)
        w.resolve()
      }
    }
  }

  until(predicate: () => boolean): Promise<void> {
    if (predicate()) return Promise.resolve()
    return new Promise((resolve) => this.#waiters.add({ predicate, resolve }))
  }
}

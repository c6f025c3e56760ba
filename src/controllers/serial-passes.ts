// Reconcile passes of one controller, one after another: a pass asked for while one runs starts
// when it ends, so two passes never read the same snapshot and write the same object at once.

/** A queue of passes run strictly in order; a failed pass does not stop the next. */
export class SerialPasses {
  #running: Promise<void> = Promise.resolve()

  /** Runs `pass` after every pass queued before it; settles when `pass` has. Reads and writes nothing itself. */
  run(pass: () => Promise<void>): Promise<void> {
    this.#running = this.#running.then(pass, pass)
    return this.#running
  }
}

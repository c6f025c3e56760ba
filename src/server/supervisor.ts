// Starts, stops, leads and reconfigures the loops: what controller-runtime's manager does for its
// Runnables. Loops that need leadership run only while this replica holds the Lease and get a
// signal that aborts the moment it is lost, before anything else happens.
import type { Config } from '../config/schema.ts'
import type { Log } from '../log.ts'
import type { Loop, LoopHealth } from '../loop.ts'

/** Leader election, e.g. the Lease: campaigns until `signal` aborts. */
export interface LeaderElector {
  /**
   * Settles once stopped (after `signal` aborted and the Lease was released). Calls `lead` each
   * time leadership is gained, with a signal that aborts when it is lost; the promise `lead`
   * returns is awaited before the Lease is released, so no write outlives it.
   */
  run(signal: AbortSignal, lead: (leading: AbortSignal) => Promise<void>): Promise<void>
  readonly isLeader: boolean
}

export interface SupervisorOptions {
  readonly loops: readonly Loop[]
  /** Absent (offline state directory): one replica, no Lease; leader-only loops run from the start. */
  readonly elector?: LeaderElector
  readonly log: Log
}

/**
 * Runs the server's loops: the others from `start`, the leader-only ones each time `elector` grants
 * leadership (from the start without one), with a signal that aborts when it is lost or on `stop`. A loop
 * that rejects or cannot apply a new config is logged at error with `{ err }`, never fatal.
 */
export class Supervisor {
  readonly #loops: readonly Loop[]
  readonly #elector: LeaderElector | undefined
  readonly #log: Log
  readonly #stop = new AbortController()
  readonly #running: Promise<void>[] = []
  #started = false

  constructor(options: SupervisorOptions) {
    this.#loops = options.loops
    this.#elector = options.elector
    this.#log = options.log
  }

  /** Whether this replica runs the leader-only loops now (always, without an elector). */
  get isLeader(): boolean {
    return this.#elector ? this.#elector.isLeader : this.#started && !this.#stop.signal.aborted
  }

  /** Starts every loop that needs no leadership, and the election for the others. Idempotent. */
  start(): void {
    if (this.#started) return
    this.#started = true
    const signal = this.#stop.signal
    for (const loop of this.#loops.filter((l) => !l.leaderOnly)) this.#running.push(this.#runLoop(loop, signal))
    if (this.#elector) this.#running.push(this.#elector.run(signal, (leading) => this.#lead(leading)))
    else this.#running.push(this.#lead(signal))
  }

  /** Stops every loop (leaders first, through the election) and settles when all have stopped. */
  async stop(): Promise<void> {
    this.#stop.abort()
    await Promise.allSettled(this.#running)
  }

  /** Hands a new valid config to every loop that can apply it live. */
  reconfigure(config: Config): void {
    for (const loop of this.#loops) {
      try {
        loop.reconfigure?.(config)
      } catch (err) {
        this.#log.error({ err, loop: loop.name }, 'a loop could not apply the new configuration; it keeps the previous one')
      }
    }
  }

  /** Every loop's health, in the order the loops were given. */
  health(): LoopHealth[] {
    return this.#loops.map((l) => l.health())
  }

  #lead(leading: AbortSignal): Promise<void> {
    const signal = AbortSignal.any([leading, this.#stop.signal])
    const leaders = this.#loops.filter((l) => l.leaderOnly)
    if (leaders.length > 0 && this.#elector) this.#log.info({ loops: leaders.map((l) => l.name) }, 'leading: starting the leader-only loops')
    return Promise.allSettled(leaders.map((loop) => this.#runLoop(loop, signal))).then(() => undefined)
  }

  async #runLoop(loop: Loop, signal: AbortSignal): Promise<void> {
    try {
      await loop.run(signal)
    } catch (err) {
      // The contract says run() does not reject; a loop that does is a bug, reported, not fatal.
      this.#log.error({ err, loop: loop.name }, 'a loop stopped with an error')
    }
  }
}

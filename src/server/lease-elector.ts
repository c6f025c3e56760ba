// The Lease (controllers/leader-lease.ts) as the supervisor's LeaderElector.
import { LeaderLease, type LeaderLeaseOptions } from '../controllers/leader-lease.ts'
import type { Log } from '../log.ts'
import type { LeaderElector } from './supervisor.ts'
import { untilAborted } from '../loop.ts'

/** Campaigns for the Lease while run() runs; releases it on stop after the leader's work settled. */
export function leaseElector(options: Omit<LeaderLeaseOptions, 'onStartedLeading' | 'onStoppedLeading' | 'log'> & { readonly log: Log }): LeaderElector {
  let lead: ((leading: AbortSignal) => Promise<void>) | undefined
  const lease = new LeaderLease({
    ...options,
    onStartedLeading: (signal) => {
      options.log.info({ identity: options.identity }, 'leading')
      return lead?.(signal)
    },
    onStoppedLeading: () => options.log.warn({ identity: options.identity }, 'not leading any more: leader-only loops stopped'),
  })
  return {
    get isLeader() {
      return lease.isLeader
    },
    async run(signal, leadFn) {
      lead = leadFn
      lease.start()
      await untilAborted(signal)
      await lease.stop()
    },
  }
}

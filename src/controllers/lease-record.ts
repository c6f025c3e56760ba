// The Lease records a candidate writes, as client-go's leaderelection writes them. Times are
// MicroTime: RFC 3339 with exactly six fractional digits, the only form the API server accepts.
import { V1MicroTime, type V1Lease } from '@kubernetes/client-node'

/** Whole seconds, at least 1: leaseDurationSeconds is an integer. */
export function leaseDurationSeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000))
}

/**
 * The Lease a candidate creates when none exists: held by `identity` from `now` (epoch ms, written as
 * MicroTime), `durationSeconds` long, no transitions yet.
 */
export function newLease(namespace: string, name: string, identity: string, durationSeconds: number, now: number): V1Lease {
  return {
    metadata: { name, namespace },
    spec: { holderIdentity: identity, leaseDurationSeconds: durationSeconds, acquireTime: microTime(now), renewTime: microTime(now), leaseTransitions: 0 },
  }
}

/** Renewal keeps acquireTime and leaseTransitions; a takeover counts one more transition. Keeps the resourceVersion read. */
export function claimedLease(current: V1Lease, identity: string, durationSeconds: number, now: number): V1Lease {
  const spec = current.spec ?? {}
  const renewal = spec.holderIdentity === identity
  return {
    ...current,
    spec: {
      ...spec,
      holderIdentity: identity,
      leaseDurationSeconds: durationSeconds,
      acquireTime: renewal && spec.acquireTime ? spec.acquireTime : microTime(now),
      renewTime: microTime(now),
      leaseTransitions: renewal ? (spec.leaseTransitions ?? 0) : (spec.leaseTransitions ?? 0) + 1,
    },
  }
}

/** As client-go's release: no holder and a 1 s duration, so a candidate takes over at its next try. */
export function releasedLease(current: V1Lease, now: number): V1Lease {
  return { ...current, spec: { ...current.spec, holderIdentity: '', leaseDurationSeconds: 1, acquireTime: microTime(now), renewTime: microTime(now) } }
}

/** The holder's own duration counts: it is what that holder promised to renew within. */
export function leaseDurationMs(lease: V1Lease, fallbackMs: number): number {
  const seconds = lease.spec?.leaseDurationSeconds
  return seconds !== undefined && seconds > 0 ? seconds * 1000 : fallbackMs
}

function microTime(ms: number): V1MicroTime {
  return new V1MicroTime(ms)
}

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const

/**
 * The longest delay a Node timer (setTimeout, AbortSignal.timeout) honours: 2^31-1 ms, about 24.8
 * days. A longer one fires after 1 ms, so a config duration that feeds a timer must stay below it
 * (24 days, checked at load), and code that scales such a duration up clamps it here.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1

/** What a config duration that feeds a timer may be at most: 24 days (576h), under MAX_TIMER_MS. */
export const MAX_TIMER_DURATION = '576h'

/** Milliseconds of a duration string the schema already accepted ("60s", "10m"). */
export function durationMs(text: string): number {
  const match = /^([0-9]+)(ms|s|m|h)$/.exec(text)
  if (!match) throw new Error(`not a duration: ${JSON.stringify(text)} (use e.g. 500ms, 60s, 10m, 1h)`)
  return Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS]
}

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const

/** Milliseconds of a duration string the schema already accepted ("60s", "10m"). */
export function durationMs(text: string): number {
  const match = /^([0-9]+)(ms|s|m|h)$/.exec(text)
  if (!match) throw new Error(`not a duration: ${JSON.stringify(text)} (use e.g. 500ms, 60s, 10m, 1h)`)
  return Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS]
}

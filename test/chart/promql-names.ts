// The metric names a PromQL expression reads, for checking alerts and dashboard panels against what
// the server exports. A small lexer, not a parser: it drops what cannot hold a metric name (string
// literals, label matchers, range and subquery brackets, the label lists of by/without/on/ignoring/
// group_left/group_right, Grafana's $variables) and keeps the identifiers that are not followed by
// `(` (functions and aggregations) and are not PromQL keywords. Enough for the expressions of this
// chart; `promtool check rules` checks their syntax.

const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset', 'atan2', 'inf', 'nan'])

/** Removes every `open ... close` span, innermost first (so nesting is handled). */
function dropBracketed(text: string, open: string, close: string): string {
  let previous: string
  let current = text
  const pattern = new RegExp(`\\${open}[^\\${open}\\${close}]*\\${close}`, 'g')
  do {
    previous = current
    current = current.replace(pattern, ' ')
  } while (current !== previous)
  return current
}

/**
 * The metric names read by one PromQL expression (Grafana variables such as `$job` or
 * `$__rate_interval` allowed), in order of first appearance. Throws on an unterminated string.
 */
export function metricNamesIn(expr: string): string[] {
  let text = expr.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, ' ')
  if (/["'`]/.test(text)) throw new Error(`unterminated string in ${JSON.stringify(expr)}`)
  text = text.replace(/#[^\n]*/g, ' ')
  text = text.replace(/\$\{?[A-Za-z_][A-Za-z0-9_]*\}?/g, ' ')
  text = dropBracketed(text, '{', '}')
  text = dropBracketed(text, '[', ']')
  text = text.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)/g, ' ')
  const names: string[] = []
  for (const match of text.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const name = match[0]
    const start = match.index
    // A number's exponent or a duration's unit (`1e3`, `5m`) is glued to a digit.
    if (start > 0 && /[0-9.]/.test(text[start - 1]!)) continue
    if (/^\s*\(/.test(text.slice(start + name.length))) continue
    if (KEYWORDS.has(name.toLowerCase())) continue
    if (!names.includes(name)) names.push(name)
  }
  return names
}

/**
 * The metric family names exposed by a Prometheus text scrape (from its `# TYPE` lines), with the
 * series names of histograms and summaries (`_bucket`, `_sum`, `_count`) added. A family with no
 * sample yet (a labelled counter nothing incremented) still counts: the server exports it.
 */
export function exposedNames(scrape: string): Set<string> {
  const names = new Set<string>()
  for (const [, name = '', type = ''] of scrape.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    names.add(name)
    if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(`${name}${suffix}`)
    if (type === 'summary') for (const suffix of ['_sum', '_count']) names.add(`${name}${suffix}`)
  }
  return names
}

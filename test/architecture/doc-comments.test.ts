// The house rule "every exported function and class has a doc comment", checked on the source:
// every top-level `export function`, `export async function`, `export class` and exported const
// whose value is a function (`export const f = (`, `= async (`, `= function`, `= x =>`, or typed,
// `export const f: SomeFnType = (...) =>`) in src/**/*.ts must be directly preceded by a `/** ... */`
// block: the line right above the declaration closes it, no blank line, no `//` comment between.
// Limited to top-level exports: methods of exported classes are not checked (whether a public
// method is obvious is a reviewer's call, not a regex's). Exported types, interfaces and non-function
// consts are not checked either, nor a const whose `=` and value are not on the declaration's line.
import { globSync, readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')

const FUNCTION_OR_CLASS = /^export\s+(?:default\s+)?(?:async\s+function\*?|function\*?|(?:abstract\s+)?class)\s+([A-Za-z_$][\w$]*)/
const EXPORTED_CONST = /^export\s+const\s+([A-Za-z_$][\w$]*)/
// The `=` that starts the initializer: not part of `=>`, `==`, `<=`, `>=`, `!=`.
const ASSIGNMENT = /(?<![=!<>])=(?![=>])/
const FUNCTION_VALUE = /^\s*(?:async\b\s*)?(?:\(|<|function\b|[A-Za-z_$][\w$]*\s*=>)/

/** The exported function or class a line declares (its name), or undefined. */
function declaredName(line: string): string | undefined {
  const direct = FUNCTION_OR_CLASS.exec(line)
  if (direct) return direct[1]
  const constant = EXPORTED_CONST.exec(line)
  if (!constant) return undefined
  const rest = line.slice(constant[0].length)
  const assignment = ASSIGNMENT.exec(rest)
  if (!assignment) return undefined
  return FUNCTION_VALUE.test(rest.slice(assignment.index + 1)) ? constant[1] : undefined
}

/** Whether the lines right above `index` end with a block that opens with `/**`. */
function hasDocComment(lines: readonly string[], index: number): boolean {
  const above = index - 1
  if (above < 0 || !lines[above]!.trimEnd().endsWith('*/')) return false
  // The block opens on the nearest line above that starts with `/*`: a `/*` inside the text (as in
  // `*\/*`) opens nothing.
  for (let i = above; i >= 0; i--) {
    const line = lines[i]!.trimStart()
    if (line.startsWith('/*')) return line.startsWith('/**')
  }
  return false
}

/** `line: name` of every exported function or class in `text` without a doc comment above it. */
function undocumentedExports(text: string): { name: string; line: number }[] {
  const lines = text.split('\n')
  const missing: { name: string; line: number }[] = []
  lines.forEach((line, index) => {
    const name = declaredName(line)
    if (name !== undefined && !hasDocComment(lines, index)) missing.push({ name, line: index + 1 })
  })
  return missing
}

function countExports(text: string): number {
  return text.split('\n').filter((line) => declaredName(line) !== undefined).length
}

t.test('every exported function and class in src/ has a doc comment', async (t) => {
  const files = globSync('src/**/*.ts', { cwd: ROOT }).sort()
  t.ok(files.length > 50, `found the source files (${files.length})`)
  let total = 0
  const missing: string[] = []
  for (const file of files) {
    const text = readFileSync(join(ROOT, file), 'utf8')
    total += countExports(text)
    for (const { name, line } of undocumentedExports(text)) missing.push(`${file}:${line} ${name}`)
  }
  t.ok(total > 100, `found the exported functions and classes (${total})`)
  t.strictSame(missing, [], `${missing.length} of ${total} exported functions and classes have no doc comment`)
})

t.test('the scanner itself catches a missing doc comment', async (t) => {
  const text = [
    '/** Documented: the block closes right above. */',
    'export function documented(): void {}',
    '',
    'export function bare(): void {}',
    '/** A blank line breaks the link. */',
    '',
    'export async function separated(): Promise<void> {}',
    '// a line comment is not a doc comment',
    'export class Commented {}',
    '/* neither is a plain block */',
    'export const plain = (x: number) => x',
    '/**',
    ' * Several lines.',
    ' */',
    'export const typed: (x: number) => number = (x) => x',
    'export const arrow = async () => {}',
    'export const bareArrow = x => x',
    'export const typedRule: Rule = (snapshot, input) => {',
    'export const NOT_A_FUNCTION = 3',
    'export const COMPARED: boolean = a <= b',
    'export interface NotChecked {}',
    '/**',
    ' * Mentions curl\'s `*\\/*` inside the text.',
    ' */',
    'export function mentionsGlob(): void {}',
    '  export function notTopLevel() {}',
  ].join('\n')
  t.strictSame(undocumentedExports(text).map((m) => `${m.line} ${m.name}`), [
    '4 bare',
    '7 separated',
    '9 Commented',
    '11 plain',
    '16 arrow',
    '17 bareArrow',
    '18 typedRule',
  ])
})

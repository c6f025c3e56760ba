// The README's RBAC table is permissions(config) rendered: for a config with every optional
// grant on, the README must carry exactly these rows, so the docs cannot drift from the code.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { parseConfig } from '../../src/config/load.ts'
import { permissions, type Permission } from '../../src/server/permissions.ts'
import { ROOT } from '../support/live-webhook.ts'

/** Every optional grant on: Secrets for pre-warm, pausing sources, generating sources, self-managed TLS. */
const EVERYTHING = parseConfig('prewarm: { requireSecret: "{{pvc}}-volsync" }\nguard: { pauseSource: true }\nbackup: { enabled: true, secret: { from: volsync-credentials, keys: [KOPIA_PASSWORD] } }\nserver: { tls: { selfManaged: {} } }\n', 'everything')

function row(g: Permission): string {
  const group = g.rule.apiGroups[0] === '' ? '' : `.${g.rule.apiGroups[0]}`
  const names = g.rule.resourceNames ? ` (\`resourceNames\`: ${g.rule.resourceNames.map((n) => `\`${n}\``).join(', ')})` : ''
  return `| ${g.scope === 'cluster' ? 'ClusterRole' : 'Role'} | \`${g.rule.resources.join(', ')}${group}\` | ${g.rule.verbs.join(', ')}${names} | ${g.loop}${g.leaderOnly ? ' (leader)' : ''} | ${g.why} |`
}

t.test('the README lists exactly what permissions(config) grants', async (t) => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
  const expected = permissions(EVERYTHING).grants.map(row)
  const section = readme.slice(readme.indexOf('## Permissions (RBAC)'), readme.indexOf('## Container'))
  const rows = section.split('\n').filter((line) => /^\| (ClusterRole|Role) \|/.test(line))
  t.strictSame(rows, expected, `README.md "Permissions (RBAC)" must list, in order:\n${expected.join('\n')}`)
})

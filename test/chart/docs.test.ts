// The install docs (docs/*.md) are checked, not trusted: every manifest in a yaml block is validated
// against its schema (kubernetes-models, Flux and Argo CD models), and every set of chart values in
// them (a `# values.yaml` block, a HelmRelease's spec.values, an Application's helm.valuesObject) is
// rendered by real helm, which applies values.schema.json (the server's config schema).
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { parseAllDocuments } from 'yaml'
import { helmTemplate, ROOT } from './helm.ts'
import { validateObject } from './models.ts'

const DOCS = join(ROOT, 'docs')

interface Manifest { apiVersion: string; kind: string; metadata: { name: string; namespace?: string }; spec?: Record<string, unknown> }

/** Every ```yaml block of a markdown file, in order. */
function yamlBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/^```yaml\n([\s\S]*?)^```$/gm)].map((m) => m[1] ?? '')
}

const blocks = readdirSync(DOCS).filter((f) => f.endsWith('.md')).flatMap((file) => yamlBlocks(readFileSync(join(DOCS, file), 'utf8')).map((text, i) => ({ where: `${file} block ${i + 1}`, text })))

t.test('every manifest in the docs is valid, and every chart values in them renders', async (t) => {
  const seen = new Map<string, number>()
  const renders: Promise<unknown>[] = []
  for (const { where, text } of blocks) {
    const docs = parseAllDocuments(text).map((d) => d.toJS() as unknown)
    if (text.startsWith('# values.yaml')) {
      renders.push(t.resolves(helmTemplate(docs[0]), `${where}: the chart renders with these values`))
      seen.set('values', (seen.get('values') ?? 0) + 1)
      continue
    }
    for (const doc of docs as Manifest[]) {
      seen.set(doc.kind, (seen.get(doc.kind) ?? 0) + 1)
      await t.resolves(validateObject(doc), `${where}: ${doc.kind} ${doc.metadata.name} is valid`)
      if (doc.kind === 'HelmRelease') {
        renders.push(t.resolves(helmTemplate(doc.spec?.values ?? {}, { release: doc.metadata.name, ...(doc.metadata.namespace ? { namespace: doc.metadata.namespace } : {}) }), `${where}: the HelmRelease's values render`))
      }
      if (doc.kind === 'Application') {
        const source = doc.spec?.source as { helm?: { releaseName?: string; valuesObject?: unknown } } | undefined
        const destination = doc.spec?.destination as { namespace?: string } | undefined
        renders.push(t.resolves(helmTemplate(source?.helm?.valuesObject ?? {}, { release: source?.helm?.releaseName ?? doc.metadata.name, ...(destination?.namespace ? { namespace: destination.namespace } : {}) }), `${where}: the Application's values render`))
      }
    }
  }
  await Promise.all(renders)
  for (const kind of ['values', 'HelmRelease', 'GitRepository', 'Kustomization', 'Application']) {
    t.ok((seen.get(kind) ?? 0) > 0, `the docs show a ${kind}`)
  }
})

t.test('a manifest the models refuse fails (the check can fail)', async (t) => {
  await t.rejects(validateObject({ apiVersion: 'helm.toolkit.fluxcd.io/v2', kind: 'HelmRelease', metadata: { name: 'x' }, spec: { interval: 30 } } as Manifest), 'a HelmRelease with a numeric interval and no chart')
  await t.rejects(validateObject({ apiVersion: 'argoproj.io/v1alpha1', kind: 'Application', metadata: { name: 'x' }, spec: { destination: {} } } as Manifest), 'an Application without its source and project')
})

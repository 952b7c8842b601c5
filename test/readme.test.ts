import { readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { INPUT_NAMES } from '../src/inputs.js'
import * as versions from '../src/versions.js'
import { repoRoot } from './harness/tools.js'

interface ActionYml {
  inputs: Record<string, { description: string; required?: boolean; default?: string }>
  outputs: Record<string, { description: string }>
  runs: { using: string; main: string; post: string }
}

const action = parse(readFileSync(path.join(repoRoot, 'action.yml'), 'utf8')) as ActionYml
const readmePath = path.join(repoRoot, 'README.md')

/** Inputs whose default lives in the versions table rather than in action.yml. */
const versionDefaults: Record<string, string> = {
  'kind-version': versions.kind.version,
  'kubernetes-version': versions.kubernetesVersion,
  'tekton-pipelines-version': versions.tektonPipelinesVersion,
  'tekton-chains-version': versions.tektonChainsVersion,
  'ec-version': versions.ecVersion,
}

const cell = (text: string) => text.replace(/\s+/g, ' ').trim().replace(/\|/g, '\\|')

function inputsTable(): string {
  const rows = Object.entries(action.inputs).map(([name, input]) => {
    const fallback = versionDefaults[name] ?? input.default ?? ''
    const shown = input.required ? 'required' : fallback ? `\`${fallback}\`` : ''
    return `| \`${name}\` | ${shown} | ${cell(input.description)} |`
  })
  return ['| name | default | description |', '| --- | --- | --- |', ...rows].join('\n')
}

function outputsTable(): string {
  const rows = Object.entries(action.outputs).map(
    ([name, output]) => `| \`${name}\` | ${cell(output.description)} |`,
  )
  return ['| name | description |', '| --- | --- |', ...rows].join('\n')
}

function versionsList(): string {
  const sums = (pin: versions.PinnedBinary) =>
    Object.entries(pin.sha256)
      .map(([platform, sum]) => `${platform} \`${sum}\``)
      .join(', ')
  return [
    `- kind ${versions.kind.version} (sha256 ${sums(versions.kind)})`,
    ...versions.otherKindReleases.map((pin) => `- kind ${pin.version} (sha256 ${sums(pin)})`),
    ...Object.entries(versions.kindNodeImages).map(
      ([k8s, image]) =>
        `- Kubernetes ${k8s}${k8s === versions.kubernetesVersion ? ' (default)' : ''}: \`${image}\``,
    ),
    `- Tekton Pipelines ${versions.tektonPipelinesVersion}`,
    `- Tekton Chains ${versions.tektonChainsVersion}`,
    `- Enterprise Contract (conforma/cli) ${versions.ecVersion}`,
    `- Embedded registry: \`${versions.registryImage}\``,
    versions.trainerImage
      ? `- Trainer image: \`${versions.trainerImage}\``
      : '- Trainer image: none published yet (built from `Containerfile` on the runner, or give `trainer-image`)',
  ].join('\n')
}

/** Replaces the text between `<!-- NAME:start ... -->` and `<!-- NAME:end -->`. */
function fill(readme: string, name: string, body: string): string {
  const pattern = new RegExp(`(<!-- ${name}:start[^>]*-->\\n)[\\s\\S]*?(<!-- ${name}:end -->)`)
  if (!pattern.test(readme)) throw new Error(`README.md has no ${name}:start/${name}:end markers`)
  return readme.replace(pattern, `$1\n${body}\n\n$2`)
}

function generated(readme: string): string {
  return fill(
    fill(fill(readme, 'inputs', inputsTable()), 'outputs', outputsTable()),
    'versions',
    versionsList(),
  )
}

describe('README and action.yml', () => {
  it('documents every input and output of action.yml, with its default', () => {
    const readme = readFileSync(readmePath, 'utf8')
    const expected = generated(readme)
    if (process.env.UPDATE_README === '1') writeFileSync(readmePath, expected)
    else expect(readme, 'README tables are stale: run `npm run readme`').toBe(expected)
  })

  it('declares exactly the inputs the code reads', () => {
    expect(Object.keys(action.inputs).sort()).toEqual([...INPUT_NAMES].sort())
  })

  it('runs the one bundle on node24 for main and post', () => {
    expect(action.runs).toEqual({ using: 'node24', main: 'dist/index.js', post: 'dist/index.js' })
  })

  it('shows the two commands a newcomer needs', () => {
    const readme = readFileSync(readmePath, 'utf8')
    expect(readme).toContain('npm ci && npm test')
    expect(readme).toMatch(/node dist\/cli\/index\.js provenance/)
  })
})

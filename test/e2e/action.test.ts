import { readFileSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { verifyImageAttachments } from '../../src/cosign/attached.js'
import { connect } from '../../src/kube/client.js'
import { RegistryClient } from '../../src/oci/client.js'
import { parseReference } from '../../src/oci/reference.js'
import { runActionStep, type ActionStep } from '../harness/action.js'
import { startActionEnvironment, type ActionEnvironment } from '../harness/action-env.js'
import { repoRoot } from '../harness/tools.js'
import { STAND_IN_TRAINER_IMAGE } from '../harness/standins/tekton.js'

// The committed bundle (dist/index.js), run as the runner runs it, end to end
// against an existing cluster: the real API server, registry, cosign and
// trainer, with stand-ins only for what needs containers (see
// test/harness/action-env.ts). ec is the one real part missing: it cannot be
// built or downloaded here (test/fixtures/ec/README.md), so every run that
// gets that far ends at the policy phase with verdict error. The runs that
// reach a pass or fail verdict are the e2e workflow's, on real kind.

const fixtureKeys = path.join(repoRoot, 'test/fixtures/cosign-keys')
const errorLines = (stdout: string) => stdout.split('\n').filter((l) => l.startsWith('::error'))
const noStack = (text: string) => expect(text).not.toMatch(/\n\s+at /)
/** The log as a reader sees it: `::add-mask::` commands are consumed by the runner. */
const visible = (stdout: string) =>
  stdout
    .split('\n')
    .filter((l) => !l.startsWith('::add-mask::'))
    .join('\n')
/** What the run says when it reaches the policy phase here. */
const EC_UNREACHABLE =
  /^::error::download of https:\/\/github\.com\/conforma\/cli\/releases\/download\/v0\.9\.115\/ec_linux_(amd64|arm64).* failed/

let env: ActionEnvironment
let registry: ActionEnvironment['registry']
let cluster: ActionEnvironment['cluster']
let datasetRef: string
let datasetDigest: string
let work: string

beforeAll(async () => {
  env = await startActionEnvironment()
  ;({ registry, cluster, datasetRef, datasetDigest } = env)
  work = await mkdtemp(path.join(os.tmpdir(), 'e2e-'))
}, 120_000)

afterAll(async () => {
  await env?.stop()
  if (work) await rm(work, { recursive: true, force: true })
}, 60_000)

/** Runs the bundle against the existing cluster, the model going to the test registry. */
function runOnCluster(inputs: Record<string, string>): Promise<ActionStep> {
  return runActionStep(
    {
      cluster: 'existing',
      kubeconfig: cluster.kube.kubeconfigPath,
      image: `${registry.host}/models/iris`,
      'allowed-dataset-prefixes': `${registry.host}/datasets/`,
      'trainer-image': STAND_IN_TRAINER_IMAGE,
      ...inputs,
    },
    { env: { RUNNER_TOOL_CACHE: env.dirs.toolCache } },
  )
}

describe('the action, end to end on an existing cluster', () => {
  it('trains, and Chains signs, the model; without ec it ends with verdict error and a summary', async () => {
    const step = await runOnCluster({ dataset: datasetRef })
    expect(step.outputs['dataset-digest']).toBe(datasetDigest)
    const publicKey = step.outputs['public-key']
    expect(publicKey).toMatch(/^-----BEGIN PUBLIC KEY-----\n/)
    // The generated password and private key were masked before anything else.
    const masks = step.stdout.split('\n').filter((l) => l.startsWith('::add-mask::'))
    expect(masks.length).toBeGreaterThanOrEqual(2)
    expect(visible(step.stdout)).not.toContain('PRIVATE KEY')
    // Tekton from the tool cache, Chains holding the key the output names.
    expect(step.stdout).toMatch(
      /Tekton pipeline v1\.15\.0: installed from .* \(sha256 [0-9a-f]{64}, checked when it was cached\)/,
    )
    const kube = connect(cluster.kube.kubeconfig)
    const secret = await kube.core.readNamespacedSecret({
      name: 'signing-secrets',
      namespace: 'tekton-chains',
    })
    expect(Buffer.from(secret.data?.['cosign.pub'] ?? '', 'base64').toString()).toBe(publicKey)
    await kube.core.readNamespacedServiceAccount({
      name: 'oml-chains-pipeline',
      namespace: 'oml-chains',
    })
    // The model the PipelineRun trained is the one the registry serves.
    const served = await new RegistryClient({ insecure: () => true }).getManifest(
      parseReference(`${registry.host}/models/iris:run-1001-1`),
    )
    expect(step.outputs.digest).toBe(served.digest)
    expect(step.outputs.image).toBe(`${registry.host}/models/iris@${served.digest}`)
    expect(step.outputs.pipelinerun).toMatch(/^oml-chains\/oml-chains-\w+$/)
    // The step's log was followed live, folded per task.
    expect(step.stdout).toMatch(/^::group::task train\n\[train\/train\] /m)
    // Chains (the stand-in, signing with real cosign and the run's key) signed
    // the model; the phase checked it and wrote the PipelineRun's provenance.
    const provenance = JSON.parse(step.files.provenance!) as {
      subject: { digest: { sha256: string } }[]
    }
    expect(provenance.subject.map((s) => `sha256:${s.digest.sha256}`)).toContain(served.digest)
    // Each phase is logged with its duration.
    for (const phase of [
      'Signing key',
      'Cluster',
      'Dataset',
      'Tekton',
      'Registry credentials',
      'Pipeline',
      'Chains',
    ]) {
      expect(step.stdout).toMatch(new RegExp(`^${phase}: done in \\d`, 'm'))
    }
    // ec cannot be downloaded here (no internet), and no stand-in plays it:
    // the run ends in verdict error, saying why, with what it knows.
    expect(step.stdout).toMatch(/^Enterprise Contract: failed in /m)
    expect(step.code).toBe(1)
    expect(step.outputs.verdict).toBe('error')
    expect(step.outputs.violations).toBeUndefined()
    expect(errorLines(step.stdout)).toEqual([expect.stringMatching(EC_UNREACHABLE)])
    expect(step.summary).toMatch(/^## oml-chains: ERROR\n/)
    expect(step.summary).toContain(step.outputs.image!)
    expect(step.summary).toContain(publicKey)
    expect(step.state.isPost).toBe('true')
    // On an existing cluster the post step removes nothing.
    const post = await runActionStep({ dataset: datasetRef }, { state: step.state })
    expect(post.code).toBe(0)
    expect(post.stdout).toMatch(/nothing to clean up/)
  })

  it('uses the given signing key, masking its password, and exposes its public key', async () => {
    const password = readFileSync(path.join(fixtureKeys, 'chains-testdata-cosign.password'), 'utf8')
    const step = await runOnCluster({
      dataset: datasetRef,
      'signing-key': path.join(fixtureKeys, 'chains-testdata-cosign.key'),
      'signing-key-password': password,
    })
    const pub = readFileSync(path.join(fixtureKeys, 'chains-testdata-cosign.pub'), 'utf8')
    expect(step.outputs['public-key']?.trim()).toBe(pub.trim())
    expect(step.stdout).toContain(`::add-mask::${password}`)
    // Chains signed the model with that key: its attestation verifies with it.
    const image = parseReference(step.outputs.image!)
    const client = new RegistryClient({ insecure: () => true })
    const attached = await verifyImageAttachments(client, { ...image, digest: image.digest! }, pub)
    expect(attached.attestations.length).toBeGreaterThan(0)
    expect(errorLines(step.stdout)).toEqual([expect.stringMatching(EC_UNREACHABLE)])
  })

  it("a broken pipeline step: verdict error, with the failing step's log in the error", async () => {
    const pipeline = path.join(work, 'broken.yaml')
    await writeFile(
      pipeline,
      [
        'apiVersion: tekton.dev/v1',
        'kind: Pipeline',
        'metadata: {name: broken}',
        'spec:',
        '  results:',
        '    - {name: IMAGE_URL, value: $(tasks.train.results.IMAGE_URL)}',
        '    - {name: IMAGE_DIGEST, value: $(tasks.train.results.IMAGE_DIGEST)}',
        '  tasks:',
        '    - name: train',
        '      taskSpec:',
        '        results: [{name: IMAGE_URL}, {name: IMAGE_DIGEST}]',
        '        steps:',
        '          - name: fit',
        '            image: registry.local:5000/tools/sh@sha256:' + '2'.repeat(64),
        '            script: |',
        '              echo "reading the dataset"',
        '              echo "boom: column petal_width is missing" >&2',
        '              exit 3',
        '',
      ].join('\n'),
    )
    const step = await runOnCluster({ dataset: datasetRef, pipeline })
    expect(step.code).toBe(1)
    expect(step.outputs.verdict).toBe('error')
    expect(step.outputs.digest).toBeUndefined()
    const [error] = errorLines(step.stdout)
    expect(errorLines(step.stdout)).toHaveLength(1)
    expect(error).toMatch(/^::error::PipelineRun oml-chains\/oml-chains-\w+ failed: /)
    // Annotation text escapes newlines as %0A.
    expect(error).toContain('failing task: train, step: fit')
    expect(error).toContain('boom: column petal_width is missing')
    expect(step.summary).toMatch(/^## oml-chains: ERROR\n/)
    expect(step.summary).toContain('boom: column petal_width is missing')
    // Fails as soon as the run does: not held by the ec download still under way.
    expect(step.stdout).not.toMatch(/^Enterprise Contract:/m)
  })

  it('names signing-key when the key does not open with its password', async () => {
    const step = await runOnCluster({
      dataset: datasetRef,
      'signing-key': path.join(fixtureKeys, 'chains-testdata-cosign.key'),
      'signing-key-password': 'not-the-password',
    })
    expect(step.code).toBe(1)
    expect(errorLines(step.stdout)).toEqual([
      expect.stringMatching(
        /^::error::input 'signing-key': .*chains-testdata-cosign.key does not open with signing-key-password: .*wrong password/,
      ),
    ])
    expect(step.stdout).toContain('::add-mask::not-the-password')
    expect(visible(step.stdout) + step.stderr).not.toContain('not-the-password')
    noStack(step.stdout + step.stderr)
  })

  it('fails in seconds, naming the dataset, when it does not exist', async () => {
    const step = await runOnCluster({ dataset: `${registry.host}/datasets/missing:data` })
    expect(step.code).toBe(1)
    expect(errorLines(step.stdout)).toEqual([
      expect.stringMatching(
        new RegExp(
          `^::error::dataset ${registry.host}/datasets/missing:data cannot be resolved: .*404`,
        ),
      ),
    ])
    expect(step.outputs.verdict).toBe('error')
  })
})

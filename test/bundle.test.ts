import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { promisify } from 'node:util'
import * as tc from '@actions/tool-cache'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { applyManifests } from '../src/kube/apply.js'
import { connect } from '../src/kube/client.js'
import { parseManifests } from '../src/kube/objects.js'
import { RegistryClient } from '../src/oci/client.js'
import { parseReference } from '../src/oci/reference.js'
import { runActionStep, type ActionStep } from './harness/action.js'
import { startTestCluster, type TestCluster } from './harness/cluster.js'
import { startRegistry, type TestRegistry } from './harness/registry.js'
import { useRunnerDirs, type RunnerDirs } from './harness/runner-dirs.js'
import { startKubeletStandIn, type KubeletStandIn } from './harness/standins/kubelet.js'
import { startChainsStandIn, type ChainsStandIn } from './harness/standins/chains.js'
import { startTektonStandIn, type TektonStandIn } from './harness/standins/tekton.js'
import { repoRoot } from './harness/tools.js'
import { publishDataset } from './harness/trainer.js'

// These run the committed bundles: an ESM/CJS mix-up builds fine and only
// fails when the bundle starts.

const fixtureKeys = path.join(repoRoot, 'test/fixtures/cosign-keys')
const errorLines = (stdout: string) => stdout.split('\n').filter((l) => l.startsWith('::error'))
const noStack = (text: string) => expect(text).not.toMatch(/\n\s+at /)
/** The log as a reader sees it: `::add-mask::` commands are consumed by the runner. */
const visible = (stdout: string) =>
  stdout
    .split('\n')
    .filter((l) => !l.startsWith('::add-mask::'))
    .join('\n')

let registry: TestRegistry
let datasetRef: string
let datasetDigest: string
// An existing cluster: the real API server, stand-ins for what needs containers.
let cluster: TestCluster
let kubelet: KubeletStandIn
let tekton: TektonStandIn
let chains: ChainsStandIn
let dirs: RunnerDirs

/** Any image by digest: the Tekton stand-in runs the repository's trainer in its place. */
const TRAINER = `registry.local:5000/oml-chains/trainer@sha256:${'1'.repeat(64)}`

/** Runs the bundle against the existing cluster, the model going to the test registry. */
function runOnCluster(inputs: Record<string, string>): Promise<ActionStep> {
  return runActionStep(
    {
      cluster: 'existing',
      kubeconfig: cluster.kube.kubeconfigPath,
      image: `${registry.host}/models/iris`,
      'allowed-dataset-prefixes': `${registry.host}/datasets/`,
      'trainer-image': TRAINER,
      ...inputs,
    },
    { env: { RUNNER_TOOL_CACHE: dirs.toolCache } },
  )
}

beforeAll(async () => {
  ;[registry, cluster, dirs] = await Promise.all([
    startRegistry(),
    startTestCluster(),
    useRunnerDirs(),
  ])
  // The runner's tool cache already holds the (release-shaped) Tekton
  // manifests, as after an earlier run: nothing is fetched from the internet.
  const manifests = path.join(repoRoot, 'test/harness/manifests')
  await tc.cacheFile(
    path.join(manifests, 'tekton-pipelines-release.yaml'),
    'release.yaml',
    'tekton-pipeline-release',
    'v1.15.0',
  )
  await tc.cacheFile(
    path.join(manifests, 'tekton-chains-release.yaml'),
    'release.yaml',
    'tekton-chains-release',
    'v0.29.2',
  )
  datasetRef = `${registry.host}/datasets/iris:data`
  datasetDigest = await publishDataset(datasetRef)
  // Tekton's CRDs are in place before its stand-in watches them (the action
  // applies them again); the stand-ins run the PipelineRun's step as a process.
  const release = parseManifests(
    await readFile(path.join(manifests, 'tekton-pipelines-release.yaml'), 'utf8'),
    'tekton-pipelines-release.yaml',
  )
  const kube = connect(cluster.kube.kubeconfig)
  await applyManifests(
    kube,
    release.filter((o) => o.kind === 'CustomResourceDefinition'),
    Date.now() + 60_000,
  )
  kubelet = await startKubeletStandIn(cluster.kube.kubeconfig)
  ;[tekton, chains] = await Promise.all([
    startTektonStandIn(cluster.kube.kubeconfig, { kubelet }),
    startChainsStandIn(cluster.kube.kubeconfig, { kubelet }),
  ])
}, 120_000)

afterAll(async () => {
  await chains?.stop()
  await tekton?.stop()
  await kubelet?.stop()
  await Promise.all([cluster?.stop(), registry?.stop()])
  await dirs?.restore()
}, 60_000)

describe('dist/index.js (the action)', () => {
  it('rejects a malformed dataset with one ::error:: line naming the input', async () => {
    const step = await runActionStep({ dataset: 'not a ref' })
    expect(step.code).toBe(1)
    const errors = errorLines(step.stdout)
    expect(errors).toHaveLength(1)
    expect(errors[0]).toMatch(/^::error::input 'dataset': 'not a ref' is not a valid OCI reference/)
    noStack(step.stdout + step.stderr)
    expect(step.outputs.verdict).toBe('error')
    // Nothing was made: no key, no dataset lookup.
    expect(step.outputs['public-key']).toBeUndefined()
    expect(step.outputs['dataset-digest']).toBeUndefined()
  })

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
    expect(errorLines(step.stdout)).toEqual([
      expect.stringMatching(
        /^::error::download of https:\/\/github\.com\/conforma\/cli\/releases\/download\/v0\.9\.115\/ec_linux_(amd64|arm64).* failed/,
      ),
    ])
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

  it('runs the post step from the saved state', async () => {
    const main = await runActionStep({ dataset: 'not a ref' })
    const post = await runActionStep({ dataset: 'not a ref' }, { state: main.state })
    expect(post.code).toBe(0)
    expect(post.stdout).toMatch(/nothing to clean up/)
  })
})

describe('dist/cli/index.js (oml-chains)', () => {
  const cli = path.join(repoRoot, 'dist', 'cli', 'index.js')

  it('prints its help', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [cli, '--help'])
    expect(stdout).toMatch(/^Usage: oml-chains <command>/m)
    for (const command of ['keygen', 'key-check', 'provenance']) expect(stdout).toContain(command)
  })
})

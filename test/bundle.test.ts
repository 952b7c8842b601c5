import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import * as tc from '@actions/tool-cache'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connect } from '../src/kube/client.js'
import { RegistryClient } from '../src/oci/client.js'
import { MediaType } from '../src/oci/types.js'
import { runActionStep, type ActionStep } from './harness/action.js'
import { startTestCluster, type TestCluster } from './harness/cluster.js'
import { startRegistry, type TestRegistry } from './harness/registry.js'
import { useRunnerDirs, type RunnerDirs } from './harness/runner-dirs.js'
import { repoRoot } from './harness/tools.js'

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
let dirs: RunnerDirs

/** Runs the bundle against the existing cluster, the model going to the test registry. */
function runOnCluster(inputs: Record<string, string>): Promise<ActionStep> {
  return runActionStep(
    {
      cluster: 'existing',
      kubeconfig: cluster.kube.kubeconfigPath,
      image: `${registry.host}/models/iris`,
      'allowed-dataset-prefixes': `${registry.host}/datasets/`,
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
  // A dataset-like artifact (oras-style config and one layer) to pin by digest.
  const client = new RegistryClient({ insecure: () => true })
  const repo = { registry: registry.host, repository: 'datasets/iris' }
  const config = await client.pushBlob(repo, Buffer.from('{}'))
  const layer = await client.pushBlob(repo, Buffer.from('X_train bytes'))
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: { mediaType: MediaType.unknownConfig, ...config },
      layers: [{ mediaType: MediaType.ociLayerTar, ...layer }],
    }),
  )
  const pushed = await client.pushManifest(
    { ...repo, tag: 'data' },
    manifest,
    MediaType.ociManifest,
  )
  datasetRef = `${registry.host}/datasets/iris:data`
  datasetDigest = pushed.digest
}, 120_000)

afterAll(async () => {
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

  it('readies the cluster: Tekton and Chains with our key, then stops with verdict error', async () => {
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
    // Each phase is logged with its duration.
    for (const phase of ['Signing key', 'Cluster', 'Dataset', 'Tekton', 'Registry credentials']) {
      expect(step.stdout).toMatch(new RegExp(`^${phase}: done in \\d`, 'm'))
    }
    // This build cannot train: it says so rather than report a model.
    expect(step.code).toBe(1)
    expect(step.outputs.verdict).toBe('error')
    expect(errorLines(step.stdout)).toEqual([
      expect.stringMatching(/^::error::this build of oml-chains-action .* no verdict was reached$/),
    ])
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

import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { RegistryClient } from '../src/oci/client.js'
import { MediaType } from '../src/oci/types.js'
import { runActionStep } from './harness/action.js'
import { startRegistry, type TestRegistry } from './harness/registry.js'
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

beforeAll(async () => {
  registry = await startRegistry()
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
})

afterAll(async () => {
  await registry?.stop()
})

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

  it('pins the dataset and makes a key pair, then stops with verdict error', async () => {
    const step = await runActionStep({ dataset: datasetRef, 'allowed-dataset-prefixes': 'x/' })
    expect(step.outputs['dataset-digest']).toBe(datasetDigest)
    expect(step.outputs['public-key']).toMatch(/^-----BEGIN PUBLIC KEY-----\n/)
    // The generated password and private key were masked before anything else.
    const masks = step.stdout.split('\n').filter((l) => l.startsWith('::add-mask::'))
    expect(masks.length).toBeGreaterThanOrEqual(2)
    expect(visible(step.stdout)).not.toContain('PRIVATE KEY')
    // This build cannot train: it says so rather than report a model.
    expect(step.code).toBe(1)
    expect(step.outputs.verdict).toBe('error')
    expect(errorLines(step.stdout)).toEqual([
      expect.stringMatching(/^::error::this build of oml-chains-action .* no verdict was reached$/),
    ])
    expect(step.state.isPost).toBe('true')
  })

  it('uses the given signing key, masking its password, and exposes its public key', async () => {
    const password = readFileSync(path.join(fixtureKeys, 'chains-testdata-cosign.password'), 'utf8')
    const step = await runActionStep({
      dataset: datasetRef,
      'signing-key': path.join(fixtureKeys, 'chains-testdata-cosign.key'),
      'signing-key-password': password,
    })
    const pub = readFileSync(path.join(fixtureKeys, 'chains-testdata-cosign.pub'), 'utf8')
    expect(step.outputs['public-key']?.trim()).toBe(pub.trim())
    expect(step.stdout).toContain(`::add-mask::${password}`)
  })

  it('names signing-key when the key does not open with its password', async () => {
    const step = await runActionStep({
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
    const step = await runActionStep({ dataset: `${registry.host}/datasets/missing:data` })
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

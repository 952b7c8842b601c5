import { describe, expect, it } from 'vitest'
import { InputError } from './errors.js'
import { readPlan, type InputName, type InputSource } from './inputs.js'
import { EMBEDDED_REGISTRY } from './plan.js'
import * as versions from './versions.js'

const KEY_PEM =
  '-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nabc\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n'

/** An InputSource over plain values and an in-memory file system. */
function source(
  inputs: Partial<Record<InputName, string>>,
  options: { env?: Record<string, string>; files?: Record<string, string> } = {},
): InputSource & { masked: string[] } {
  const files = options.files ?? {}
  const masked: string[] = []
  return {
    get: (name) => inputs[name] ?? (name === 'trainer-image' ? trainer : ''),
    env: options.env ?? { GITHUB_RUN_ID: '42', GITHUB_RUN_ATTEMPT: '2' },
    readFile(file) {
      const content = files[file]
      if (content === undefined) {
        throw Object.assign(new Error(`ENOENT: ${file}`), { code: 'ENOENT' })
      }
      return content
    },
    exists: (file) => file in files,
    homedir: '/home/runner',
    mask: (value) => masked.push(value),
    masked,
  }
}

const dataset = 'quay.io/mmortari/ml-iris:data'
/** No trainer image is published yet, so every run names one (see versions.trainerImage). */
const trainer = 'ghcr.io/acme/trainer@sha256:' + 'c'.repeat(64)

function inputError(inputs: Partial<Record<InputName, string>>, files?: Record<string, string>) {
  try {
    readPlan(source(inputs, { files }))
  } catch (err) {
    expect(err).toBeInstanceOf(InputError)
    return err as InputError
  }
  throw new Error('readPlan accepted the inputs')
}

describe('readPlan', () => {
  it('fills every default from the versions table for a dataset alone', () => {
    const { plan, warnings } = readPlan(source({ dataset }))
    expect(plan.dataset).toMatchObject({
      registry: 'quay.io',
      repository: 'mmortari/ml-iris',
      tag: 'data',
    })
    expect(plan.image).toMatchObject({
      registry: EMBEDDED_REGISTRY,
      repository: 'oml-chains/model',
      tag: 'run-42-2',
    })
    expect(plan.embeddedRegistry).toBe(true)
    expect(plan.cluster).toEqual({
      mode: 'kind',
      name: 'oml-chains',
      kindVersion: versions.kind.version,
      kubernetesVersion: versions.kubernetesVersion,
      nodeImage: versions.kindNodeImages[versions.kubernetesVersion],
    })
    expect(plan.tektonPipelinesVersion).toBe(versions.tektonPipelinesVersion)
    expect(plan.tektonChainsVersion).toBe(versions.tektonChainsVersion)
    expect(plan.ecVersion).toBe(versions.ecVersion)
    expect(plan.failOnViolation).toBe(true)
    expect(plan.keepCluster).toBe(false)
    expect(plan.timeoutMs).toBe(30 * 60_000)
    expect(plan.params).toEqual({})
    expect(plan.signingKey).toBeUndefined()
    expect(plan.minAccuracy).toBeUndefined()
    expect(plan.trainerImage.digest).toBe('sha256:' + 'c'.repeat(64))
    // No prefixes means the policy permits no dataset: say so before the run.
    expect(warnings.join('\n')).toMatch(/allowed-dataset-prefixes is empty/)
  })

  it('asks for trainer-image while no trainer image is pinned as the default', () => {
    expect(versions.trainerImage).toBeUndefined()
    const err = inputError({ dataset, 'trainer-image': '' })
    expect(err.message).toMatch(
      /^input 'trainer-image': is required: this build of the action has no published trainer image/,
    )
  })

  it('reads a complete set of inputs', () => {
    const { plan, warnings } = readPlan(
      source(
        {
          dataset: 'ghcr.io/acme/iris@sha256:' + 'a'.repeat(64),
          image: 'ghcr.io/acme/model',
          'registry-username': 'bot',
          'registry-password': 's3cret',
          'kubernetes-version': 'v1.34.8',
          'trainer-image': 'ghcr.io/acme/trainer@sha256:' + 'b'.repeat(64),
          params: 'EPOCHS=3\n# a comment\n\nNOTE = two words',
          'allowed-dataset-prefixes': 'ghcr.io/acme/\nquay.io/mmortari/',
          'min-accuracy': '0.9',
          'signing-key': '/keys/cosign.key',
          'signing-key-password': 'pw',
          'fail-on-violation': 'false',
          'keep-cluster': 'True',
          timeout: '1h30m',
          pipeline: 'ci/pipeline.yaml',
          policy: 'ci/policy.yaml',
        },
        {
          files: {
            '/keys/cosign.key': KEY_PEM,
            'ci/pipeline.yaml': 'kind: Pipeline',
            'ci/policy.yaml': 'sources: []',
            '/home/runner/.docker/config.json': '{}',
          },
        },
      ),
    )
    expect(warnings).toEqual([])
    expect(plan.image).toMatchObject({
      registry: 'ghcr.io',
      repository: 'acme/model',
      tag: 'run-42-2',
    })
    expect(plan.embeddedRegistry).toBe(false)
    expect(plan.registryAuth).toEqual({
      explicit: { registry: 'ghcr.io', username: 'bot', password: 's3cret' },
      dockerConfigPath: '/home/runner/.docker/config.json',
    })
    expect(plan.cluster).toMatchObject({ kubernetesVersion: 'v1.34.8' })
    expect(plan.params).toEqual({ EPOCHS: '3', NOTE: 'two words' })
    expect(plan.allowedDatasetPrefixes).toEqual(['ghcr.io/acme/', 'quay.io/mmortari/'])
    expect(plan.minAccuracy).toBe(0.9)
    expect(plan.signingKey).toEqual({ pem: KEY_PEM, password: 'pw', source: '/keys/cosign.key' })
    expect(plan.failOnViolation).toBe(false)
    expect(plan.keepCluster).toBe(true)
    expect(plan.timeoutMs).toBe(90 * 60_000)
    expect(plan.pipelinePath).toBe('ci/pipeline.yaml')
    expect(plan.policyPath).toBe('ci/policy.yaml')
  })

  it('masks a signing key read from a file before returning it', () => {
    const src = source(
      { dataset, 'signing-key': '/k', 'signing-key-password': 'pw' },
      { files: { '/k': KEY_PEM } },
    )
    readPlan(src)
    expect(src.masked).toContain(KEY_PEM)
  })

  it('masks a signing key given inline, but not a path to one', () => {
    const inline = source({ dataset, 'signing-key': KEY_PEM, 'signing-key-password': 'pw' })
    readPlan(inline)
    expect(inline.masked).toEqual([KEY_PEM.trim()])
    const fromFile = source(
      { dataset, 'signing-key': '/k', 'signing-key-password': 'pw' },
      { files: { '/k': KEY_PEM } },
    )
    readPlan(fromFile)
    expect(fromFile.masked).not.toContain('/k')
  })

  it('takes an existing cluster from $KUBECONFIG or from kubeconfig content', () => {
    const kubeconfig = 'apiVersion: v1\nkind: Config\n'
    const fromEnv = readPlan(
      source(
        { dataset, cluster: 'existing', image: 'ghcr.io/acme/model:v1' },
        { env: { KUBECONFIG: '/kube/a:/kube/b' }, files: { '/kube/a': kubeconfig } },
      ),
    ).plan
    expect(fromEnv.cluster).toEqual({ mode: 'existing', kubeconfig, kubeconfigSource: '/kube/a' })
    expect(fromEnv.image.tag).toBe('v1')
    // Outside GitHub Actions the run id is a timestamp.
    expect(fromEnv.runId).toMatch(/^local-\d{8}t\d{6}$/)

    const inline = readPlan(
      source({ dataset, cluster: 'existing', image: 'ghcr.io/acme/model', kubeconfig }),
    ).plan
    expect(inline.cluster).toMatchObject({
      kubeconfig: kubeconfig.trim(),
      kubeconfigSource: 'the kubeconfig input',
    })
  })

  it.each<[string, Partial<Record<InputName, string>>, RegExp]>([
    ['dataset', { dataset: '' }, /input 'dataset': is required/],
    ['dataset', { dataset: 'not a ref' }, /input 'dataset'/],
    ['dataset', { dataset: 'Quay.io/UPPER/Case' }, /input 'dataset'/],
    ['image', { image: 'ghcr.io/a/b@sha256:' + 'c'.repeat(64) }, /input 'image': .* has a digest/],
    ['image', { image: 'ghcr.io/a/b:bad tag' }, /input 'image'/],
    [
      'image',
      { cluster: 'existing', kubeconfig: 'apiVersion: v1\n' },
      /input 'image': is required with cluster: existing/,
    ],
    [
      'image',
      {
        cluster: 'existing',
        kubeconfig: 'apiVersion: v1\n',
        image: 'registry.local:5000/oml/model',
      },
      /input 'image': registry.local:5000 is the embedded registry, which exists only with cluster: kind/,
    ],
    [
      'cluster',
      { cluster: 'minikube' },
      /input 'cluster': "minikube" is not accepted; use kind or existing/,
    ],
    [
      'kubeconfig',
      { cluster: 'existing', image: 'ghcr.io/a/b' },
      /input 'kubeconfig': is required/,
    ],
    [
      'kubeconfig',
      { cluster: 'existing', image: 'ghcr.io/a/b', kubeconfig: '/nope' },
      /input 'kubeconfig': file \/nope does not exist/,
    ],
    ['cluster-name', { 'cluster-name': 'My_Cluster' }, /input 'cluster-name'/],
    [
      'kind-version',
      { 'kind-version': '0.32' },
      /input 'kind-version': "0.32" is not a release version; use the form v1.2.3/,
    ],
    [
      'kubernetes-version',
      { 'kubernetes-version': 'v1.20.0' },
      /input 'kubernetes-version': v1.20.0 has no pinned kind node image; accepted: v1.36.1/,
    ],
    [
      'min-accuracy',
      { 'min-accuracy': 'high' },
      /input 'min-accuracy': "high" is not accepted; use a number from 0 to 1/,
    ],
    ['min-accuracy', { 'min-accuracy': '90' }, /input 'min-accuracy'/],
    ['min-accuracy', { 'min-accuracy': '0x1' }, /input 'min-accuracy'/],
    [
      'signing-key-password',
      { 'signing-key': KEY_PEM },
      /input 'signing-key-password': is required with signing-key/,
    ],
    [
      'signing-key',
      { 'signing-key-password': 'pw' },
      /input 'signing-key': is required with signing-key-password/,
    ],
    [
      'signing-key',
      { 'signing-key': '/missing.key', 'signing-key-password': 'pw' },
      /input 'signing-key': file \/missing.key does not exist/,
    ],
    [
      'registry-password',
      { 'registry-username': 'bot' },
      /input 'registry-password': is required with registry-username/,
    ],
    ['registry-username', { 'registry-password': 'pw' }, /input 'registry-username'/],
    ['params', { params: 'no-equals-sign' }, /input 'params': "no-equals-sign" is not key=value/],
    ['params', { params: 'IMAGE=x' }, /input 'params': IMAGE is set by the 'image' input/],
    ['params', { params: 'A=1\nA=2' }, /input 'params': A is given twice/],
    [
      'allowed-dataset-prefixes',
      { 'allowed-dataset-prefixes': 'quay.io/a quay.io/b' },
      /one prefix per line/,
    ],
    [
      'fail-on-violation',
      { 'fail-on-violation': 'yes' },
      /input 'fail-on-violation': "yes" is not accepted; use true or false/,
    ],
    ['keep-cluster', { 'keep-cluster': '1' }, /input 'keep-cluster'/],
    [
      'timeout',
      { timeout: 'ten minutes' },
      /input 'timeout': "ten minutes" is not accepted; use a duration such as 30m/,
    ],
    ['timeout', { timeout: '0m' }, /input 'timeout'/],
    [
      'pipeline',
      { pipeline: 'missing.yaml' },
      /input 'pipeline': file missing.yaml does not exist/,
    ],
    ['policy', { policy: 'missing.yaml' }, /input 'policy': file missing.yaml does not exist/],
  ])('rejects a bad %s with one message naming it', (name, inputs, message) => {
    const err = inputError({ dataset, ...inputs })
    expect(err.input).toBe(name)
    expect(err.message).toMatch(message)
    expect(err.message).not.toContain('\n')
  })

  it('never quotes a password in an error', () => {
    const err = inputError({ dataset, 'registry-password': 'hunter2-secret' })
    expect(err.message).not.toContain('hunter2-secret')
  })
})

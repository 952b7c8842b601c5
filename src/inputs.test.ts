import { describe, expect, it } from 'vitest'
import type { InputError } from './errors.js'
import { InputErrors, readPlan, type InputName, type InputSource } from './inputs.js'
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
    get: (name) => inputs[name] ?? '',
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
const trainer = 'ghcr.io/acme/trainer@sha256:' + 'c'.repeat(64)
/** An existing cluster's inputs: it needs an image and a trainer image of its own. */
const existing = {
  cluster: 'existing',
  kubeconfig: 'apiVersion: v1\n',
  image: 'ghcr.io/acme/model',
  'trainer-image': trainer,
}

/** A user's Pipeline file: the results Chains needs, and params of its own. */
const userPipeline = `apiVersion: tekton.dev/v1
kind: Pipeline
metadata:
  name: my-train
spec:
  params:
    - name: IMAGE
    - name: DATASET
    - name: TRAINER_IMAGE
    - name: EPOCHS
      default: '1'
    - name: NOTE
      default: ''
  results:
    - name: IMAGE_URL
      value: x
    - name: IMAGE_DIGEST
      value: y
`

/** Every input error of a run, which must be rejected. */
function inputErrors(
  inputs: Partial<Record<InputName, string>>,
  files?: Record<string, string>,
): InputError[] {
  try {
    readPlan(source(inputs, { files }))
  } catch (err) {
    expect(err).toBeInstanceOf(InputErrors)
    return [...(err as InputErrors).errors]
  }
  throw new Error('readPlan accepted the inputs')
}

/** The one input error of a run with exactly one bad input. */
function inputError(inputs: Partial<Record<InputName, string>>, files?: Record<string, string>) {
  const errors = inputErrors(inputs, files)
  expect(errors.map((e) => e.message)).toHaveLength(1)
  return errors[0]!
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
      repository: 'oml-chains/run-42-2/model',
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
    // No trainer image is published yet: next to a kind cluster the action builds one.
    expect(versions.trainerImage).toBeUndefined()
    expect(plan.trainer).toEqual({ source: 'build' })
    expect(plan.runsEmbeddedRegistry).toBe(true)
    // No prefixes means the policy permits no dataset: say so before the run.
    expect(warnings.join('\n')).toMatch(/allowed-dataset-prefixes is empty/)
  })

  it('asks for trainer-image on an existing cluster, where the action builds none', () => {
    const err = inputError({ dataset, ...existing, 'trainer-image': '' })
    expect(err.input).toBe('trainer-image')
    expect(err.message).toMatch(
      /^input 'trainer-image': is required with cluster: existing \(the action builds the trainer image only next to a kind cluster/,
    )
  })

  it('builds the trainer from a base image given, and only when it builds', () => {
    const { plan } = readPlan(
      source({ dataset, 'trainer-base-image': 'mirror.example/python:3.11' }),
    )
    expect(plan.trainer).toEqual({ source: 'build', baseImage: 'mirror.example/python:3.11' })
    const err = inputError({ dataset, 'trainer-image': trainer, 'trainer-base-image': 'x/y:1' })
    expect(err.message).toBe(
      "input 'trainer-base-image': applies only when the action builds the trainer image; leave it empty with trainer-image",
    )
    expect(inputError({ dataset, 'trainer-base-image': 'Not A Ref' }).input).toBe(
      'trainer-base-image',
    )
  })

  it("runs the embedded registry for the model, or for a trainer image that may be the runner's own", () => {
    const plan = (inputs: Partial<Record<InputName, string>>) =>
      readPlan(source({ dataset, ...inputs })).plan
    const external = { image: 'ghcr.io/acme/model' }
    expect(plan({ ...external }).runsEmbeddedRegistry).toBe(true) // built trainer
    expect(plan({ ...external, 'trainer-image': 'trainer:dev' }).runsEmbeddedRegistry).toBe(true)
    expect(plan({ ...external, 'trainer-image': trainer }).runsEmbeddedRegistry).toBe(false)
    expect(plan({ 'trainer-image': trainer }).runsEmbeddedRegistry).toBe(true) // the model
    expect(plan({ ...existing }).runsEmbeddedRegistry).toBe(false)
    expect(plan({ ...existing, 'trainer-image': 'trainer:dev' }).runsEmbeddedRegistry).toBe(false)
    expect(plan({ 'trainer-image': 'trainer:dev' }).trainer).toEqual({
      source: 'input',
      image: { registry: 'docker.io', repository: 'library/trainer', tag: 'dev' },
    })
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
            'ci/pipeline.yaml': userPipeline,
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
        { dataset, cluster: 'existing', image: 'ghcr.io/acme/model:v1', 'trainer-image': trainer },
        { env: { KUBECONFIG: '/kube/a:/kube/b' }, files: { '/kube/a': kubeconfig } },
      ),
    ).plan
    expect(fromEnv.cluster).toEqual({ mode: 'existing', kubeconfig, kubeconfigSource: '/kube/a' })
    expect(fromEnv.image.tag).toBe('v1')
    // Outside GitHub Actions the run id is a timestamp.
    expect(fromEnv.runId).toMatch(/^local-\d{8}t\d{6}$/)

    const inline = readPlan(source({ ...existing, dataset, kubeconfig })).plan
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
    ['image', { ...existing, image: '' }, /input 'image': is required with cluster: existing/],
    [
      'cluster',
      { cluster: 'minikube' },
      /input 'cluster': "minikube" is not accepted; use kind or existing/,
    ],
    ['kubeconfig', { ...existing, kubeconfig: '' }, /input 'kubeconfig': is required/],
    [
      'kubeconfig',
      { ...existing, kubeconfig: '/nope' },
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
      'params',
      { params: 'MIN_ACCURACY=0.5\nEPOCH=3' },
      /^input 'params': EPOCH is not a param of Pipeline oml-train; it declares MIN_ACCURACY \(IMAGE, DATASET, TRAINER_IMAGE come from the action's inputs\)$/,
    ],
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

  it('checks params against the params a pipeline file declares', () => {
    const files = { 'p.yaml': userPipeline }
    const typo = inputError({ dataset, pipeline: 'p.yaml', params: 'EPOCHS=2\nNOTES=x' }, files)
    expect(typo.message).toBe(
      "input 'params': NOTES is not a param of Pipeline my-train; it declares EPOCHS, NOTE (IMAGE, DATASET, TRAINER_IMAGE come from the action's inputs)",
    )
    const required = userPipeline.replace(
      "    - name: NOTE\n      default: ''\n",
      '    - name: NOTE\n',
    )
    const unset = inputError({ dataset, pipeline: 'p.yaml' }, { 'p.yaml': required })
    expect(unset.message).toBe(
      "input 'params': Pipeline my-train needs NOTE (no default): set it as KEY=value lines",
    )
    expect(
      readPlan(
        source(
          { dataset, pipeline: 'p.yaml', params: 'NOTE=hi' },
          { files: { 'p.yaml': required } },
        ),
      ).plan.params,
    ).toEqual({ NOTE: 'hi' })
  })

  it('reports a broken pipeline file and bad params together', () => {
    const errors = inputErrors(
      { dataset, pipeline: 'p.yaml', params: 'no-equals-sign' },
      { 'p.yaml': 'kind: Pipeline\n' },
    )
    expect(errors.map((e) => e.message)).toEqual([
      "input 'pipeline': file p.yaml: document 1 is not a Kubernetes object (needs apiVersion, kind and metadata.name)",
      `input 'params': "no-equals-sign" is not key=value with a Tekton param name as key`,
    ])
  })

  it('rejects a pipeline file that is not one Pipeline with the results Chains signs', () => {
    const configMap = 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n'
    const other = inputError(
      { dataset, pipeline: 'p.yaml' },
      { 'p.yaml': `${userPipeline}---\n${configMap}` },
    )
    expect(other.message).toBe(
      "input 'pipeline': file p.yaml may hold only Tasks and one Pipeline, not ConfigMap c",
    )
    const noResults = userPipeline.replace(/ {2}results:[\s\S]*$/, '')
    expect(inputError({ dataset, pipeline: 'p.yaml' }, { 'p.yaml': noResults }).message).toBe(
      "input 'pipeline': file p.yaml: Pipeline my-train must declare the results IMAGE_URL and IMAGE_DIGEST (missing IMAGE_URL, IMAGE_DIGEST): Tekton Chains signs the image they name",
    )
  })

  it('reports every bad input at once, one error each, in the order of action.yml', () => {
    const errors = inputErrors({
      dataset,
      'min-accuracy': '2',
      timeout: 'soon',
      params: 'FOO=1',
      'cluster-name': 'Bad_Name',
      'kubernetes-version': 'v1.0.0',
      // Read before the versions, listed after them in action.yml.
      'trainer-base-image': 'Not A Ref',
      'ec-version': 'latest',
    })
    expect(errors.map((e) => e.input)).toEqual([
      'cluster-name',
      'kubernetes-version',
      'ec-version',
      'trainer-base-image',
      'params',
      'min-accuracy',
      'timeout',
    ])
    for (const error of errors) {
      expect(error.message.startsWith(`input '${error.input}': `)).toBe(true)
      expect(error.message).not.toContain('\n')
    }
  })

  it('never quotes a password in an error', () => {
    const err = inputError({ dataset, 'registry-password': 'hunter2-secret' })
    expect(err.message).not.toContain('hunter2-secret')
  })
})

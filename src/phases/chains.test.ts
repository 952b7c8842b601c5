import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestCluster, type TestCluster } from '../../test/harness/cluster.js'
import { startRegistry, type TestRegistry } from '../../test/harness/registry.js'
import {
  startChainsStandIn,
  type ChainsMode,
  type ChainsStandIn,
} from '../../test/harness/standins/chains.js'
import { startKubeletStandIn, type KubeletStandIn } from '../../test/harness/standins/kubelet.js'
import {
  startTektonStandIn,
  type TektonStandIn,
  STAND_IN_TRAINER_IMAGE,
} from '../../test/harness/standins/tekton.js'
import { repoRoot } from '../../test/harness/tools.js'
import { publishDataset } from '../../test/harness/trainer.js'
import { verifyImageAttachments } from '../cosign/attached.js'
import { envelopePayload, parseDsseEnvelope } from '../cosign/dsse.js'
import { generateKeyPair, type CosignKeyPair } from '../cosign/keys.js'
import { applyManifests } from '../kube/apply.js'
import { CHAINS_RETRIES, CHAINS_SIGNED } from '../kube/chains-annotations.js'
import { connect, type Kube } from '../kube/client.js'
import { parseManifests, type KubeObject } from '../kube/objects.js'
import { RegistryClient } from '../oci/client.js'
import { parseReference, withDigest, type Reference } from '../oci/reference.js'
import { SLSA_PROVENANCE_V02, STATEMENT_V01, type SlsaV02Predicate } from '../provenance/types.js'
import { waitForChains, type ChainsInputs } from './chains.js'
import { runPipeline, type PipelineOutcome } from './pipeline.js'
import {
  CHAINS_CONFIG,
  CHAINS_NAMESPACE,
  SIGNING_SECRET,
  chainsConfig,
  signingSecretData,
} from './tekton.js'
import { recordFault } from '../../test/harness/faults/record.js'

// The phase against the real API server, registry and cosign: the Tekton
// stand-in trains for real, the Chains stand-in signs and attests with real
// cosign and the key the action puts in the signing secret, and writes its
// log lines where the API server serves them from.
const NAMESPACE = 'oml-chains'
const tektonDir = path.join(repoRoot, 'tekton')
const silent = { info: () => undefined, startGroup: () => undefined, endGroup: () => undefined }

let cluster: TestCluster
let kube: Kube
let kubelet: KubeletStandIn
let tekton: TektonStandIn
let chains: ChainsStandIn
let registry: TestRegistry
let client: RegistryClient
let dataset: Reference
let key: CosignKeyPair
let dir: string
/** How the Chains stand-in handles the runs a test starts next. */
let mode: ChainsMode = 'sign'

/** The Chains release's namespace, signing secret and config, with the action's settings in them. */
async function chainsSettings(): Promise<KubeObject[]> {
  const file = path.join(repoRoot, 'test/harness/manifests/tekton-chains-release.yaml')
  const release = parseManifests(await readFile(file, 'utf8'), file)
  const find = (kind: string, name: string) =>
    release.find((o) => o.kind === kind && o.metadata.name === name)!
  const configMap = find('ConfigMap', CHAINS_CONFIG)
  return [
    find('Namespace', CHAINS_NAMESPACE),
    { ...find('Secret', SIGNING_SECRET), data: signingSecretData({ ...key, generated: true }) },
    { ...configMap, data: { ...(configMap.data as object), ...chainsConfig(true) } },
  ]
}

beforeAll(async () => {
  ;[cluster, registry, key, dir] = await Promise.all([
    startTestCluster(),
    startRegistry(),
    generateKeyPair(),
    mkdtemp(path.join(tmpdir(), 'chains-phase-')),
  ])
  kube = connect(cluster.kube.kubeconfig)
  client = new RegistryClient({ insecure: () => true })
  const file = path.join(repoRoot, 'test/harness/manifests/tekton-pipelines-release.yaml')
  const release = parseManifests(await readFile(file, 'utf8'), file)
  await applyManifests(kube, [...release, ...(await chainsSettings())], Date.now() + 60_000)
  kubelet = await startKubeletStandIn(cluster.kube.kubeconfig)
  tekton = await startTektonStandIn(cluster.kube.kubeconfig, { kubelet })
  chains = await startChainsStandIn(cluster.kube.kubeconfig, { kubelet, mode: () => mode })
  await kube.core.createNamespace({ body: { metadata: { name: NAMESPACE } } })
  const digest = await publishDataset(`${registry.host}/ml/iris:data`)
  dataset = parseReference(`${registry.host}/ml/iris@${digest}`, 'dataset')
}, 120_000)

afterAll(async () => {
  await chains?.stop()
  await tekton?.stop()
  await kubelet?.stop()
  await cluster?.stop()
  await registry?.stop()
  if (dir) await rm(dir, { recursive: true, force: true })
})

/** Trains a model into its own repository (the same dataset gives the same digest). */
async function train(
  repository: string,
): Promise<{ outcome: PipelineOutcome; inputs: ChainsInputs }> {
  const repo = { registry: registry.host, repository: `ml/${repository}` }
  const outcome = await runPipeline(
    {
      image: parseReference(`${registry.host}/ml/${repository}:v1`),
      dataset,
      trainerImage: parseReference(STAND_IN_TRAINER_IMAGE, 'trainer-image'),
      params: {},
      namespace: NAMESPACE,
      serviceAccount: 'oml-chains-pipeline',
    },
    { kube, deadline: Date.now() + 60_000, output: silent, tektonDir },
  )
  return {
    outcome,
    inputs: {
      pipelineRun: outcome.pipelineRun,
      image: withDigest(repo, outcome.imageDigest),
      publicKeyPem: key.publicKeyPem,
      provenancePath: path.join(dir, repository, 'provenance.json'),
    },
  }
}

async function annotationsOf(kind: string, name: string): Promise<Record<string, string>> {
  const found = await kube.objects.read({
    apiVersion: 'tekton.dev/v1',
    kind,
    metadata: { name, namespace: NAMESPACE },
  })
  return found.metadata?.annotations ?? {}
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- walked by key paths only
type Shape = any

/** The sorted keys of the object at a path (array elements by index). */
function keysAt(value: Shape, at: (string | number)[]): string[] {
  const found: unknown = at.reduce((v: Shape, k) => v?.[k], value)
  return Object.keys(found as object).sort()
}

function buildType(statement: { predicate: unknown }): unknown {
  return (statement.predicate as { buildType?: unknown }).buildType
}

const deps = (seconds: number) => ({
  kube,
  registry: client,
  deadline: Date.now() + seconds * 1000,
})

describe('waitForChains', () => {
  it('verifies what Chains signed and writes the provenance of the run', async () => {
    mode = 'sign'
    const { outcome, inputs } = await train('model-signed')
    const name = outcome.pipelineRun.split('/')[1]!
    const result = await waitForChains(inputs, deps(60))

    // One .sig (the TaskRun's image) and two attestations (TaskRun and PipelineRun).
    expect(result.signatures).toBe(1)
    expect(result.attestations).toBe(2)
    expect(await annotationsOf('PipelineRun', name)).toMatchObject({ [CHAINS_SIGNED]: 'true' })
    expect(await annotationsOf('TaskRun', `${name}-train`)).toMatchObject({
      [CHAINS_SIGNED]: 'true',
    })

    // The file holds the PipelineRun's Statement about this model.
    const written: unknown = JSON.parse(await readFile(inputs.provenancePath, 'utf8'))
    expect(written).toEqual(result.statement)
    const statement = result.statement as typeof result.statement & {
      predicate: SlsaV02Predicate
    }
    expect(statement._type).toBe(STATEMENT_V01)
    expect(statement.predicateType).toBe(SLSA_PROVENANCE_V02)
    expect(statement.subject).toContainEqual({
      name: `${registry.host}/ml/model-signed`,
      digest: { sha256: outcome.imageDigest.slice('sha256:'.length) },
    })
    expect(statement.predicate.buildType).toBe('tekton.dev/v1/PipelineRun')
    expect(statement.predicate.builder.id).toBe('https://tekton.dev/chains/v2')
    expect(statement.predicate.materials).toContainEqual({
      uri: `oci://${STAND_IN_TRAINER_IMAGE.split('@')[0]}`,
      digest: { sha256: '1'.repeat(64) },
    })
    expect(statement.predicate.materials).toContainEqual({
      uri: outcome.results.DATASET_URL,
      digest: { sha256: String(outcome.results.DATASET_DIGEST).slice('sha256:'.length) },
    })

    // What a user reads from it matches what the run reported.
    const { provenance } = result
    expect(provenance.dataset).toEqual({
      url: outcome.results.DATASET_URL,
      digest: outcome.results.DATASET_DIGEST,
    })
    expect(provenance.dataset?.digest).toBe(dataset.digest)
    expect(provenance.accuracy).toBe(Number(outcome.results.ACCURACY))
    expect(provenance.trainerImage).toBe(STAND_IN_TRAINER_IMAGE)
    expect(provenance.image).toEqual({ url: outcome.imageUrl, digest: outcome.imageDigest })

    // The TaskRun attestation has the shape of the one real Chains made for the seed's run.
    const { attestations } = await verifyImageAttachments(client, inputs.image, key.publicKeyPem)
    const taskRun = attestations.find((a) => buildType(a.statement) === 'tekton.dev/v1/TaskRun')
    expect(taskRun).toBeDefined()
    const ours = taskRun!.statement as Shape
    const real = JSON.parse(
      envelopePayload(
        parseDsseEnvelope(
          await readFile(
            path.join(repoRoot, 'test/fixtures/chains-real/taskrun-attestation.dsse.json'),
          ),
        ),
      ).toString('utf8'),
    ) as Shape
    for (const at of [
      [],
      ['predicate'],
      ['predicate', 'invocation'],
      ['predicate', 'metadata'],
      ['predicate', 'metadata', 'completeness'],
      ['predicate', 'buildConfig', 'steps', 0],
      ['predicate', 'buildConfig', 'steps', 0, 'environment'],
      ['predicate', 'materials', 0],
    ]) {
      expect(keysAt(ours, at), at.join('.')).toEqual(keysAt(real, at))
    }
    expect(ours.predicate.buildConfig.steps[0].environment.image).toBe(
      `oci://${STAND_IN_TRAINER_IMAGE}`,
    )

    // Another key: nothing verifies, and the error says which key to suspect.
    const other = await generateKeyPair()
    await expect(
      waitForChains({ ...inputs, publicKeyPem: other.publicKeyPem }, deps(10)),
    ).rejects.toThrow(/no signature verifies with the public key .*another key/)
  }, 120_000)

  it('names the Chains bug when signed=true left nothing in the registry (empty signing secret)', async () => {
    mode = 'sign'
    // As the Chains release ships it: the secret exists, without a key.
    await kube.core.patchNamespacedSecret(
      { name: SIGNING_SECRET, namespace: CHAINS_NAMESPACE, body: { data: null } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    )
    try {
      const { outcome, inputs } = await train('model-unsigned')
      const name = outcome.pipelineRun.split('/')[1]!
      const err = await waitForChains(inputs, deps(60)).catch((e: unknown) => e as Error)
      expect(err).toBeInstanceOf(Error)
      const message = (err as Error).message
      expect(message).toContain(
        `Tekton Chains marked PipelineRun ${NAMESPACE}/${name} signed (${CHAINS_SIGNED}: true), but ${registry.host}/ml/model-unsigned@${outcome.imageDigest} has no .sig (signature) and no .att (attestations)`,
      )
      expect(message).toContain(`Secret ${CHAINS_NAMESPACE}/${SIGNING_SECRET} holds cosign.key`)
      // The controller's own words, read through the API server.
      expect(message).toMatch(/lines of the Chains controller's log .* about this run:\n/)
      expect(message).toContain('warn error configuring x509 signer: no valid private key found')
      expect(message).toContain('warn No signer x509 configured for tekton-pipeline-run')
    } finally {
      await applyManifests(kube, await chainsSettings(), Date.now() + 30_000)
    }
    recordFault('Chains: no signer (signed=true, nothing pushed)', 'reported')
  }, 120_000)

  it('names the Chains bug when Chains marks signed without a signer (mode signed-without-signing)', async () => {
    mode = 'signed-without-signing'
    const { inputs } = await train('model-withheld')
    await expect(waitForChains(inputs, deps(60))).rejects.toThrow(
      /has no \.sig \(signature\) and no \.att \(attestations\) .*could not load a signer/s,
    )
    recordFault('Chains: marks signed without signing', 'reported')
  }, 120_000)

  it('says so when no PipelineRun attestation names the model', async () => {
    mode = 'sign'
    // PipelineRun provenance switched off: only the TaskRun's attestation lands in .att.
    await kube.core.patchNamespacedConfigMap(
      {
        name: CHAINS_CONFIG,
        namespace: CHAINS_NAMESPACE,
        body: { data: { 'artifacts.pipelinerun.storage': '' } },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    )
    try {
      const { inputs } = await train('model-no-pipelinerun')
      await expect(waitForChains(inputs, deps(60))).rejects.toThrow(
        `${registry.host}/ml/model-no-pipelinerun@${inputs.image.digest} has 1 attestation(s) that verify (tekton.dev/v1/TaskRun), but none is a PipelineRun attestation with the model among its subjects`,
      )
    } finally {
      await applyManifests(kube, await chainsSettings(), Date.now() + 30_000)
    }
  }, 120_000)

  it('fails with the controller log lines when Chains marks the run failed', async () => {
    mode = 'fail'
    const { outcome, inputs } = await train('model-failed')
    const name = outcome.pipelineRun.split('/')[1]!
    const err = await waitForChains(inputs, deps(60)).catch((e: unknown) => e as Error)
    const message = (err as Error).message
    expect(message.split('\n')[0]).toBe(
      `Tekton Chains failed to sign PipelineRun ${NAMESPACE}/${name} (${CHAINS_RETRIES}: 3), ` +
        `TaskRun ${NAMESPACE}/${name}-train (${CHAINS_RETRIES}: 3) (${CHAINS_SIGNED}: failed)`,
    )
    expect(message).toMatch(
      /\nlast \d+ lines of the Chains controller's log \(pods app=tekton-chains-controller in tekton-chains\) about this run:\n/,
    )
    expect(message).toContain(
      "error Reconcile error: signing payload for tekton: simulated failure (Chains stand-in mode 'fail')",
    )
    // Only lines about this run: each shown line is one the controller logged
    // for this PipelineRun or its TaskRun (keyed to it), made readable.
    const shown = message.split('about this run:\n')[1]!.split('\n')
    const keys = [`${NAMESPACE}/${name}`, `${NAMESPACE}/${name}-train`]
    const aboutThisRun = chains
      .lines()
      .map((line) => JSON.parse(line) as Record<string, string>)
      .filter((entry) => keys.includes(entry['knative.dev/key']!))
      .map((e) => `${e.ts} ${e.level} ${e.msg}${e.error ? `: ${e.error}` : ''}`)
    expect(shown.length).toBeGreaterThan(0)
    for (const line of shown) expect(aboutThisRun).toContain(line)
    recordFault('Chains: signed=failed', 'reported')
  }, 120_000)

  it('times out naming the runs Chains has not signed', async () => {
    mode = 'never'
    const { outcome, inputs } = await train('model-never')
    const name = outcome.pipelineRun.split('/')[1]!
    const started = Date.now()
    const err = await waitForChains(inputs, deps(2)).catch((e: unknown) => e as Error)
    expect((err as Error).message).toMatch(
      new RegExp(
        `^timed out after \\d+\\.\\ds waiting for Tekton Chains to sign PipelineRun ${NAMESPACE}/${name} and its TaskRuns; ` +
          `last seen: not signed: PipelineRun ${NAMESPACE}/${name}, TaskRun ${NAMESPACE}/${name}-train\\. ` +
          // The stand-in plays the controller outside the cluster: no Deployment.
          `There is no Deployment tekton-chains/tekton-chains-controller: is Tekton Chains installed\\?\n` +
          `\\(no line of the Chains controller's log .* mentions ${name}\\)$`,
      ),
    )
    expect(Date.now() - started).toBeLessThan(15_000)
    recordFault('Chains: never signs (Chains phase times out)', 'reported')
  }, 120_000)
})

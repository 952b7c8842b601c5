/**
 * The action's Tekton and Chains phases with real Tekton Chains on a real
 * node: the release built here from Chains' module (v0.26.3, the newest the
 * Go module proxy serves; test/harness/releases/tekton-chains.ts), installed
 * by the action's Tekton phase with `tekton-chains-version` set to it, next
 * to real Tekton Pipelines (as in tekton-pipeline.test.ts). The bundled
 * pipeline trains with the trainer image built from the Containerfile; the
 * real Chains controller signs and attests the model into registry.local:5000;
 * the action's Chains phase checks what it wrote.
 *
 * Then what an existing Chains may hold that would make it sign with another
 * key or store elsewhere: a chains-config with a kms signer and another
 * repository, and an x509.pem in signing-secrets. Tekton is installed once,
 * before the tests; each test sets up its own fault and trains into its own
 * repository, so that only what this run made is in its `.sig` and `.att`.
 */
import { generateKeyPairSync } from 'node:crypto'
import path from 'node:path'
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { verifyImageAttachments } from '../../src/cosign/attached.js'
import { parseDsseEnvelope } from '../../src/cosign/dsse.js'
import { chainsKeyId } from '../../src/cosign/keyid.js'
import { CHAINS_CONTROLLER_LABEL } from '../../src/kube/chains-annotations.js'
import { waitFor } from '../../src/kube/wait.js'
import { RegistryClient } from '../../src/oci/client.js'
import { parseReference, type Reference } from '../../src/oci/reference.js'
import type { Digest } from '../../src/oci/types.js'
import { waitForChains } from '../../src/phases/chains.js'
import { prepareRunNamespace } from '../../src/phases/credentials.js'
import { runPipeline } from '../../src/phases/pipeline.js'
import { prepareSigningKey, type SigningKey } from '../../src/phases/signing.js'
import {
  CHAINS_CONFIG,
  CHAINS_CONTROLLER,
  CHAINS_NAMESPACE,
  chainsConfig,
  installTekton,
  SIGNING_SECRET,
  type TektonResult,
  waitUntilAvailable,
} from '../../src/phases/tekton.js'
import { fetchTektonRelease } from '../../src/tools/tekton/release.js'
import { startNodeCluster, type NodeCluster } from '../harness/node/cluster.js'
import { buildTrainerImage } from '../harness/node/trainer-image.js'
import { startReleaseHost, type ReleaseHost } from '../harness/release-host.js'
import type { BuiltRelease } from '../harness/releases/built-release.js'
import { RELEASES_PATH, serveTektonRelease } from '../harness/releases/serve.js'
import { tektonChains } from '../harness/releases/tekton-chains.js'
import { pushTektonPipelineRelease } from '../harness/releases/tekton-pipeline.js'
import { useRunnerDirs, type RunnerDirs } from '../harness/runner-dirs.js'
import { recordFault } from '../harness/faults/record.js'
import { publishDataset } from '../harness/trainer.js'

const target = { namespace: 'oml-chains', serviceAccount: 'oml-chains-pipeline' }
/** Who configured the existing Chains before the action came: another field manager. */
const OTHER_MANAGER = 'platform-team'

let cluster: NodeCluster
let host: ReleaseHost
let dirs: RunnerDirs
let pipelines: BuiltRelease
let chains: BuiltRelease
let client: RegistryClient
let trainer: Reference
let dataset: Reference
/** The first install: the key it put in, what it returned and logged. */
let first: { key: SigningKey; result: TektonResult; log: string[] }

/** Runs `call` and returns what it wrote to stdout (core.info, core.warning), line by line. */
async function captured<T>(call: () => Promise<T>): Promise<{ value: T; log: string[] }> {
  const write = process.stdout.write.bind(process.stdout)
  const text: string[] = []
  const spy = vi
    .spyOn(process.stdout, 'write')
    .mockImplementation((chunk: string | Uint8Array, ...rest: unknown[]) => {
      text.push(String(chunk))
      return (write as (c: string | Uint8Array, ...r: unknown[]) => boolean)(chunk, ...rest)
    })
  try {
    const value = await call()
    return { value, log: text.join('').split('\n') }
  } finally {
    spy.mockRestore()
  }
}

/** The action's Tekton phase, fetching from the release host as from infra.tekton.dev and GitHub. */
async function install(key: SigningKey) {
  const sources = { manifestBase: host.url + RELEASES_PATH, githubApi: host.url }
  return captured(() =>
    installTekton(
      {
        tektonPipelinesVersion: pipelines.version,
        tektonChainsVersion: chains.version,
        embeddedRegistry: true,
      },
      key,
      {
        kube: cluster.client,
        deadline: Date.now() + 300_000,
        fetchRelease: (component, version) => fetchTektonRelease(component, version, sources),
      },
    ),
  )
}

beforeAll(async () => {
  dirs = await useRunnerDirs()
  ;[cluster, host] = await Promise.all([startNodeCluster(), startReleaseHost()])
  client = new RegistryClient({ insecure: () => true })
  ;[pipelines, chains] = await Promise.all([
    pushTektonPipelineRelease(cluster.registry.host),
    tektonChains.push(cluster.registry.host),
  ])
  for (const release of [pipelines, chains]) {
    serveTektonRelease(
      { manifests: host, api: host },
      { component: release.component, version: release.version, manifest: release.manifest },
    )
  }
  const key = await prepareSigningKey({})
  const [installed, built, datasetDigest] = await Promise.all([
    install(key),
    buildTrainerImage(cluster.registry, dirs.temp),
    publishDataset(`${cluster.registry.host}/datasets/iris:data`),
  ])
  first = { key, result: installed.value, log: installed.log }
  trainer = built
  dataset = parseReference(`${cluster.registry.name}/datasets/iris@${datasetDigest}`)
  await prepareRunNamespace(cluster.client, target, Date.now() + 60_000)
}, 900_000)

afterAll(async () => {
  await cluster?.stop()
  await host?.close()
  await dirs?.restore()
})

/**
 * The bundled pipeline trains into `repository` of the embedded registry,
 * then the action's Chains phase waits for real Chains and checks its
 * `.sig` and `.att` with `key`.
 */
async function trainAndCheck(repository: string, key: SigningKey) {
  const image = parseReference(`${cluster.registry.name}/${repository}:trained`)
  const run = await runPipeline(
    { image, dataset, trainerImage: trainer, params: {}, ...target },
    { kube: cluster.client, deadline: Date.now() + 300_000, output: quiet },
  )
  const model = { ...image, tag: undefined, digest: run.imageDigest as Digest }
  const outcome = await waitForChains(
    {
      pipelineRun: run.pipelineRun,
      image: model,
      publicKeyPem: key.publicKeyPem,
      provenancePath: path.join(dirs.temp, `${repository.replace(/\//g, '-')}.json`),
    },
    { kube: cluster.client, registry: client, deadline: Date.now() + 180_000 },
  )
  return { run, model, outcome }
}

/** Every layer of the model's `.sig` and `.att` verifies with `key`: nothing signed with another. */
async function expectOnlySignedWith(model: Reference & { digest: Digest }, key: SigningKey) {
  const attachments = await verifyImageAttachments(client, model, key.publicKeyPem)
  expect(attachments.rejected).toEqual([])
  // One simple-signing signature, from the TaskRun that pushed the model.
  expect(attachments.signatures).toHaveLength(1)
  return attachments
}

async function signingSecretKeys(): Promise<Record<string, string>> {
  const secret = await cluster.client.core.readNamespacedSecret({
    name: SIGNING_SECRET,
    namespace: CHAINS_NAMESPACE,
  })
  return Object.fromEntries(
    Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]),
  )
}

/** The pipeline's step log: not shown (the pipeline phase's own tests check it). */
const quiet = { info: () => undefined, startGroup: () => undefined, endGroup: () => undefined }

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch)

describe('real Tekton Chains installed by the action', () => {
  it("runs from the image built here, signs the run's model with the run's key, and the Chains phase passes", async () => {
    expect(first.result.chains).toMatchObject({
      component: 'chains',
      version: chains.version,
      action: 'installed',
    })
    expect(first.result.chains.release?.sha256).toBe(chains.sha256)
    // v0.26.3 reaches registry.local:5000 only by go-containerregistry's `.local` rule.
    expect(first.log.some((l) => l.startsWith(`::warning::Tekton Chains ${chains.version} `))).toBe(
      true,
    )

    // The controller's pod runs the image of the release built here, by digest.
    const selector = Object.entries(CHAINS_CONTROLLER_LABEL)
      .map(([k, v]) => `${k}=${v}`)
      .join(',')
    const pods = await cluster.client.core.listNamespacedPod({
      namespace: CHAINS_NAMESPACE,
      labelSelector: selector,
    })
    expect(pods.items).toHaveLength(1)
    const [pod] = pods.items
    expect(pod!.status?.phase).toBe('Running')
    const image = pod!.spec!.containers[0]!.image!
    expect(chains.images).toContain(image)
    expect(pod!.status?.containerStatuses?.[0]?.imageID).toMatch(
      new RegExp(`${image.slice(image.indexOf('@'))}$`),
    )

    const config = await cluster.client.core.readNamespacedConfigMap({
      name: CHAINS_CONFIG,
      namespace: CHAINS_NAMESPACE,
    })
    expect(config.data).toMatchObject(chainsConfig(true))

    const { run, model, outcome } = await trainAndCheck('models/iris', first.key)
    expect(outcome.signatures).toBe(1)
    // The TaskRun's and the PipelineRun's attestations.
    expect(outcome.attestations).toBe(2)
    expect(outcome.statement.subject.map((s) => `sha256:${s.digest.sha256}`)).toContain(
      run.imageDigest,
    )
    await expectOnlySignedWith(model, first.key)

    // Chains names the key in each DSSE signature by its SSH fingerprint.
    const { attestations } = await client.findCosignAttachments(model, model.digest)
    const manifest = attestations!.manifest as { layers: { digest: string; size: number }[] }
    const keyids = await Promise.all(
      manifest.layers.map(async (layer) => {
        const envelope = parseDsseEnvelope(await client.getBlob(model, layer.digest, layer.size))
        return envelope.signatures.map((s) => s.keyid)
      }),
    )
    expect(keyids).toEqual([
      [chainsKeyId(first.key.publicKeyPem)],
      [chainsKeyId(first.key.publicKeyPem)],
    ])
  })

  it('an existing Chains with a kms signer and another repository: the run still signs with its key in the image’s repository, and the log says what changed', async () => {
    const elsewhere = `${cluster.registry.name}/elsewhere`
    await cluster.client.core.patchNamespacedConfigMap(
      {
        name: CHAINS_CONFIG,
        namespace: CHAINS_NAMESPACE,
        fieldManager: OTHER_MANAGER,
        body: {
          data: {
            'artifacts.taskrun.signer': 'kms',
            'artifacts.pipelinerun.signer': 'kms',
            'artifacts.oci.signer': 'kms',
            'signers.kms.kmsref': 'hashivault://transit/keys/platform',
            'signers.x509.fulcio.enabled': 'true',
            'storage.oci.repository': elsewhere,
            'storage.oci.encoding-format': 'sigstore-bundle',
          },
        },
      },
      mergePatch,
    )
    const key = await prepareSigningKey({})
    const installed = await install(key)

    const { model } = await trainAndCheck('models/iris-kms', key)
    await expectOnlySignedWith(model, key)
    // Nothing went to the other repository.
    expect(
      await client.findCosignAttachments(parseReference(`${elsewhere}:x`), model.digest),
    ).toEqual({})

    expect(installed.value.chains).toMatchObject({ version: chains.version, action: 'kept' })
    const changes = installed.log.filter((l) => l.startsWith(`${CHAINS_CONFIG} `))
    expect(changes.sort()).toEqual(
      [
        `${CHAINS_CONFIG} artifacts.oci.signer: "kms" → "x509"`,
        `${CHAINS_CONFIG} artifacts.pipelinerun.signer: "kms" → "x509"`,
        `${CHAINS_CONFIG} artifacts.taskrun.signer: "kms" → "x509"`,
        `${CHAINS_CONFIG} signers.x509.fulcio.enabled: "true" → "false"`,
        `${CHAINS_CONFIG} storage.oci.encoding-format: "sigstore-bundle" → "dsse"`,
        `${CHAINS_CONFIG} storage.oci.repository: "${elsewhere}" → ""`,
      ].sort(),
    )
  })

  it('signing-secrets holding an x509.pem: the action leaves only its own key there, and the run’s signature verifies with it', async () => {
    // A real ECDSA P-256 key in PKCS#8, as Chains' x509 signer reads it.
    const x509 = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const pem = x509.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
    await cluster.client.core.patchNamespacedSecret(
      {
        name: SIGNING_SECRET,
        namespace: CHAINS_NAMESPACE,
        fieldManager: OTHER_MANAGER,
        body: { data: { 'x509.pem': Buffer.from(pem).toString('base64') } },
      },
      mergePatch,
    )
    expect(Object.keys(await signingSecretKeys())).toContain('x509.pem')
    const key = await prepareSigningKey({})
    await install(key)

    const { model } = await trainAndCheck('models/iris-x509', key)
    await expectOnlySignedWith(model, key)

    const data = await signingSecretKeys()
    expect(Object.keys(data).sort()).toEqual(['cosign.key', 'cosign.password', 'cosign.pub'])
    expect(data['cosign.pub']).toBe(key.publicKeyPem)
  })

  it('Chains scaled to zero: the Chains phase gives up at its deadline, saying so; scaled up again, Chains signs the run that ended meanwhile', async () => {
    const scale = (replicas: number) =>
      cluster.client.apps.patchNamespacedDeployment(
        { name: CHAINS_CONTROLLER, namespace: CHAINS_NAMESPACE, body: { spec: { replicas } } },
        mergePatch,
      )
    await scale(0)
    try {
      // No controller pod is left to sign what is trained next.
      await waitFor<{ metadata?: { name?: string; labels?: Record<string, string> } }>(
        cluster.client,
        { apiVersion: 'v1', kind: 'Pod', namespace: CHAINS_NAMESPACE },
        (pods) => !pods.some((p) => p.metadata?.labels?.app === CHAINS_CONTROLLER_LABEL.app),
        { deadline: Date.now() + 90_000, what: 'the Chains controller pod to be gone' },
      )
      const image = parseReference(`${cluster.registry.name}/models/unsigned:trained`)
      const run = await runPipeline(
        { image, dataset, trainerImage: trainer, params: {}, ...target },
        { kube: cluster.client, deadline: Date.now() + 300_000, output: quiet },
      )
      const model = { ...image, tag: undefined, digest: run.imageDigest as Digest }
      const signed = {
        pipelineRun: run.pipelineRun,
        image: model,
        publicKeyPem: first.key.publicKeyPem,
        provenancePath: path.join(dirs.temp, 'unsigned.json'),
      }
      const failure = waitForChains(signed, {
        kube: cluster.client,
        registry: client,
        deadline: Date.now() + 10_000,
      })
      await expect(failure).rejects.toThrow(
        new RegExp(
          `^timed out after [\\d.]+s waiting for Tekton Chains to sign PipelineRun ${run.pipelineRun} and its TaskRuns; last seen: not signed: .*\\. The Tekton Chains controller is scaled to zero \\(Deployment tekton-chains/tekton-chains-controller has 0 replicas\\)\\.`,
        ),
      )
      recordFault('Chains scaled to zero (real Chains)', 'reported')

      // A controller that starts after a run ended signs it: why the training
      // need not wait for a Chains installed new (TektonInstall.chainsIsNew).
      // With the key the tests before left in signing-secrets; the phase
      // checks the .sig and both .att layers with it.
      await scale(1)
      const { 'cosign.pub': publicKeyPem } = await signingSecretKeys()
      const late = await waitForChains(
        {
          ...signed,
          publicKeyPem: publicKeyPem!,
          provenancePath: path.join(dirs.temp, 'late.json'),
        },
        { kube: cluster.client, registry: client, deadline: Date.now() + 180_000 },
      )
      expect(late.signatures).toBe(1)
      expect(late.attestations).toBe(2)
    } finally {
      await scale(1)
      await waitUntilAvailable(
        cluster.client,
        CHAINS_NAMESPACE,
        CHAINS_CONTROLLER,
        Date.now() + 120_000,
      )
    }
  }, 600_000)
})

/**
 * The whole action, from the committed bundle (dist/index.js, and the
 * `oml-chains run` command), on the cluster from real parts: `cluster:
 * existing` on the real node, the action's own phases installing real Tekton
 * Pipelines and real Tekton Chains (both built here from their modules, served
 * where the action downloads them), the trainer image built from Containerfile,
 * the seed-shaped dataset and the model in registry.local:5000. Real Chains
 * signs and attests the model; the action checks both with the run's key and
 * reads the provenance from the real PipelineRun attestation. Only ec is a
 * stand-in (it cannot be had here): it replays one of ec's own reports.
 */
import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { chainsKeyId } from '../../src/cosign/keyid.js'
import { parseDsseEnvelope } from '../../src/cosign/dsse.js'
import { verifyImageAttachments } from '../../src/cosign/attached.js'
import { RegistryClient } from '../../src/oci/client.js'
import {
  formatReference,
  parseReference,
  withDigest,
  type Reference,
} from '../../src/oci/reference.js'
import { isIndex } from '../../src/oci/types.js'
import { runActionStep, type ActionStep } from '../harness/action.js'
import { bursts, startApiProxy } from '../harness/faults/api-proxy.js'
import { recordFault } from '../harness/faults/record.js'
import { EC_FIXTURES, publishEcStandIn } from '../harness/action-env.js'
import { startInternetStandIn, type InternetStandIn } from '../harness/internet.js'
import { NODE_IP, startNodeCluster, type NodeCluster } from '../harness/node/cluster.js'
import { buildTrainerImage } from '../harness/node/trainer-image.js'
import { tektonChains } from '../harness/releases/tekton-chains.js'
import { publishTektonPipelineRelease } from '../harness/releases/tekton-pipeline.js'
import { useRunnerDirs, type RunnerDirs } from '../harness/runner-dirs.js'
import { repoRoot } from '../harness/tools.js'
import { publishDataset } from '../harness/trainer.js'

const fixtureKeys = path.join(repoRoot, 'test/fixtures/cosign-keys')

let cluster: NodeCluster
let internet: InternetStandIn
let dirs: RunnerDirs
let chainsVersion: string
let chainsImages: string[]
let trainer: string
let datasetDigest: string
/** The registry as the host reaches it; the action and the pods name it registry.local:5000. */
let client: RegistryClient

beforeAll(async () => {
  dirs = await useRunnerDirs()
  ;[cluster, internet] = await Promise.all([startNodeCluster(), startInternetStandIn()])
  client = new RegistryClient({ insecure: () => true })
  await publishEcStandIn(internet)
  await publishTektonPipelineRelease(internet, cluster.registry.host)
  const chains = await tektonChains.publish(internet, cluster.registry.host)
  chainsVersion = chains.version
  chainsImages = chains.images
  trainer = formatReference(await buildTrainerImage(cluster.registry, dirs.temp))
  datasetDigest = await publishDataset(`${cluster.registry.host}/datasets/iris:data`)
}, 900_000)

afterAll(async () => {
  await cluster?.stop()
  await internet?.stop()
  await dirs?.restore()
})

/**
 * The runner's environment: its tool cache, the internet stand-in (Tekton's
 * releases, GitHub's API, ec's release), and the ec report to replay. The API
 * server and registry.local are on this machine, not behind the proxy.
 */
function runEnv(ecReport: string): Record<string, string> {
  return {
    RUNNER_TOOL_CACHE: dirs.toolCache,
    ...internet.env,
    NO_PROXY: `${internet.env.NO_PROXY},${NODE_IP},registry.local`,
    EC_STAND_IN_REPORT: path.join(EC_FIXTURES, ecReport),
  }
}

/** The inputs a user of an existing cluster gives, each run into a repository of its own. */
function inputs(repository: string): Record<string, string> {
  return {
    cluster: 'existing',
    kubeconfig: cluster.kube.kubeconfigPath,
    dataset: `${cluster.registry.name}/datasets/iris:data`,
    image: `${cluster.registry.name}/models/${repository}`,
    'trainer-image': trainer,
    'tekton-chains-version': chainsVersion,
    'allowed-dataset-prefixes': `${cluster.registry.name}/datasets/`,
  }
}

/** The model as the host reaches it (127.0.0.1:5000), by digest. */
function onHost(image: string): Reference & { digest: `sha256:${string}` } {
  const ref = parseReference(image.replace(cluster.registry.name, cluster.registry.host))
  return withDigest(ref, ref.digest!)
}

/** The keyids of the DSSE envelopes in the model's `.att`. */
async function attestationKeyIds(model: Reference & { digest: string }): Promise<string[]> {
  const { attestations } = await client.findCosignAttachments(model, model.digest)
  if (!attestations || isIndex(attestations.manifest)) return []
  const ids: string[] = []
  for (const layer of attestations.manifest.layers) {
    const envelope = parseDsseEnvelope(await client.getBlob(model, layer.digest, layer.size))
    ids.push(...envelope.signatures.map((s) => s.keyid ?? ''))
  }
  return ids
}

/** What a run shows, checked the same way for each: outputs, real Chains' artifacts, provenance. */
async function expectSignedByRealChains(step: ActionStep, repository: string) {
  expect(step.code, step.stdout.slice(-3000)).toBe(0)
  expect(step.outputs.verdict).toBe('pass')
  expect(step.outputs['dataset-digest']).toBe(datasetDigest)
  const image = step.outputs.image!
  expect(image).toMatch(
    new RegExp(`^registry\\.local:5000/models/${repository}@sha256:[0-9a-f]{64}$`),
  )
  const model = onHost(image)
  const served = await client.resolve(
    parseReference(`${cluster.registry.host}/models/${repository}:run-1001-1`),
  )
  expect(step.outputs.digest).toBe(served.digest)

  // Real Chains wrote the .sig and the .att; each verifies with the run's key,
  // and the .att holds the TaskRun's and the PipelineRun's attestations.
  const publicKey = step.outputs['public-key']!
  const attached = await verifyImageAttachments(client, model, publicKey)
  // One simple-signing signature, from the TaskRun that pushed the model.
  expect(attached.signatures).toHaveLength(1)
  expect(attached.rejected).toEqual([])
  const buildTypes = attached.attestations.map(
    (a) => (a.statement.predicate as { buildType?: string }).buildType,
  )
  expect(buildTypes).toEqual(
    expect.arrayContaining(['tekton.dev/v1/TaskRun', 'tekton.dev/v1/PipelineRun']),
  )
  // Chains' keyid: the key's SSH SHA256 fingerprint.
  expect(await attestationKeyIds(model)).toContain(chainsKeyId(publicKey))

  // The provenance the action wrote is the PipelineRun's, naming the model,
  // with the dataset by digest among its materials.
  const provenance = JSON.parse(step.files.provenance!) as {
    subject: { digest: { sha256: string } }[]
    predicate: { buildType: string; materials: { uri: string; digest: { sha256: string } }[] }
  }
  expect(provenance.predicate.buildType).toBe('tekton.dev/v1/PipelineRun')
  expect(provenance.subject.map((s) => `sha256:${s.digest.sha256}`)).toContain(served.digest)
  expect(provenance.predicate.materials).toContainEqual({
    uri: expect.stringMatching(/registry\.local:5000\/datasets\/iris$/),
    digest: { sha256: datasetDigest.slice('sha256:'.length) },
  })
  // Every box of the summary's chain made.
  expect(step.summary).toMatch(/^ {2}class dataset,pipelinerun,model,signature,verdict ok$/m)
}

describe('the whole action on the cluster from real parts, with real Tekton and real Chains', () => {
  // The first run on the fresh node pulls every image of Tekton, Chains and the
  // trainer: about 35 s on a quick machine, over a minute on a slow disk. The
  // timeout only guards against a hang; `npm run bench` measures the time.
  it('installs both, trains, and passes on what real Chains signed and attested with the run key', async () => {
    const step = await runActionStep(inputs('iris-run'), { env: runEnv('happy-day.json') })
    await expectSignedByRealChains(step, 'iris-run')
    expect(step.stdout).toMatch(new RegExp(`^Tekton chains ${chainsVersion}: installed from `, 'm'))
    // The Chains controller runs from the image built here.
    const pods = await cluster.client.core.listNamespacedPod({ namespace: 'tekton-chains' })
    const images = pods.items.flatMap((p) => p.spec!.containers.map((c) => c.image!))
    expect(images.length).toBeGreaterThan(0)
    for (const image of images) expect(chainsImages).toContain(image)
  }, 240_000)

  it('through an API server that throttles, fails and cuts watches: still passes, each retry said', async () => {
    const proxy = await startApiProxy(cluster.kube, {
      failing: bursts(14, 2),
      cutWatchesAfterMs: 0,
    })
    try {
      const step = await runActionStep(
        { ...inputs('iris-faults'), kubeconfig: proxy.kubeconfigPath },
        { env: runEnv('happy-day.json') },
      )
      await expectSignedByRealChains(step, 'iris-faults')
      expect(proxy.stats.throttled).toBeGreaterThan(0)
      expect(proxy.stats.unavailable).toBeGreaterThan(0)
      expect(proxy.stats.watchesCut).toBeGreaterThan(0)
      expect(step.stdout).toMatch(
        /^Kubernetes API [A-Z]+ \/\S+: HTTP 429: too many requests, please try again later; retry 1 of 4 in 1\.0 s$/m,
      )
      recordFault('API server: 429 and 503 in bursts, watches cut (real node)', 'survived')
    } finally {
      await proxy.stop()
    }
  })

  it("signs with the user's key when one is given", async () => {
    const password = (
      await readFile(path.join(fixtureKeys, 'chains-testdata-cosign.password'), 'utf8')
    ).trim()
    const step = await runActionStep(
      {
        ...inputs('iris-user-key'),
        'signing-key': path.join(fixtureKeys, 'chains-testdata-cosign.key'),
        'signing-key-password': password,
      },
      { env: runEnv('happy-day.json') },
    )
    const publicKey = await readFile(path.join(fixtureKeys, 'chains-testdata-cosign.pub'), 'utf8')
    expect(step.outputs['public-key']?.trim()).toBe(publicKey.trim())
    await expectSignedByRealChains(step, 'iris-user-key')
  })

  it('`oml-chains run` does the same from a terminal: JSON on stdout, exit 0', async () => {
    const flags = Object.entries(inputs('iris-cli')).flatMap(([name, value]) =>
      name === 'allowed-dataset-prefixes'
        ? ['--allowed-dataset-prefix', value]
        : [`--${name}`, value],
    )
    const cli = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        [path.join(repoRoot, 'dist/cli/index.js'), 'run', ...flags],
        {
          env: {
            PATH: process.env.PATH ?? '',
            HOME: dirs.temp,
            RUNNER_TEMP: dirs.temp,
            ...runEnv('happy-day.json'),
          },
          maxBuffer: 64 * 1024 * 1024,
          timeout: 600_000,
        },
        (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
      )
    })
    expect(cli.code, cli.stderr.slice(-3000)).toBe(0)
    const result = JSON.parse(cli.stdout) as { verdict: string; image: string; publicKey: string }
    expect(result.verdict).toBe('pass')
    const attached = await verifyImageAttachments(client, onHost(result.image), result.publicKey)
    expect(attached.signatures).toHaveLength(1)
    // The TaskRun's and the PipelineRun's.
    expect(attached.attestations).toHaveLength(2)
  })
})

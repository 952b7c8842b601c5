import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestCluster, type TestCluster } from '../../test/harness/cluster.js'
import { startReleaseHost, type ReleaseHost } from '../../test/harness/release-host.js'
import { useRunnerDirs, type RunnerDirs } from '../../test/harness/runner-dirs.js'
import { repoRoot } from '../../test/harness/tools.js'
import { openPrivateKey } from '../cosign/keys.js'
import { connect, type Kube } from '../kube/client.js'
import { fetchTektonRelease, type ReleaseSources } from '../tools/tekton/release.js'
import { prepareSigningKey, type SigningKey } from './signing.js'
import {
  CHAINS_CONFIG,
  CHAINS_CONTROLLER,
  CHAINS_NAMESPACE,
  chainsCompatible,
  installTekton,
  SIGNING_SECRET,
  waitUntilAvailable,
} from './tekton.js'

// A real kube-apiserver with the real deployment controller. Stand-ins play
// what needs containers: pods becoming ready (the kubelet) and Tekton's
// admission webhook starting to serve. The release manifests are shaped like
// Tekton's and served by a stand-in release host with a GitHub-like API.

const manifests = path.join(repoRoot, 'test/harness/manifests')
let cluster: TestCluster
let kube: Kube
let host: ReleaseHost
let dirs: RunnerDirs
let sources: ReleaseSources
const stalled = new Set<string>()

async function publish(component: 'pipeline' | 'chains', version: string, file: string) {
  const bytes = await readFile(path.join(manifests, file))
  host.asset(`/${component}/previous/${version}/release.yaml`, bytes)
  const digest = createHash('sha256').update(bytes).digest('hex')
  host.route(`/repos/tektoncd/${component}/releases/tags/${version}`, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ assets: [{ name: 'release.yaml', digest: `sha256:${digest}` }] }))
  })
  return digest
}

beforeAll(async () => {
  ;[cluster, host, dirs] = await Promise.all([
    startTestCluster({
      stall: (namespace, name) =>
        stalled.has(`${namespace}/${name}`)
          ? { reason: 'ImagePullBackOff', message: 'Back-off pulling image "busybox"' }
          : undefined,
      // Admission starts to work a little after the webhook Deployment exists.
      webhookReadyAfterMs: 1_500,
    }),
    startReleaseHost(),
    useRunnerDirs(),
  ])
  kube = connect(cluster.kube.kubeconfig)
  sources = { manifestBase: host.url, githubApi: host.url }
}, 120_000)

afterAll(async () => {
  await Promise.all([cluster?.stop(), host?.close()])
  await dirs?.restore()
})

const plan = {
  tektonPipelinesVersion: 'v1.15.0',
  tektonChainsVersion: 'v0.29.2',
  embeddedRegistry: true,
}
const fetchRelease: typeof fetchTektonRelease = (component, version) =>
  fetchTektonRelease(component, version, sources)

/** Records Secret and Deployment events in tekton-chains, in the order the API server sent them. */
async function recordChainsEvents() {
  const events: { kind: string; type: string; name: string; keys: string[] }[] = []
  const controllers = await Promise.all(
    (['secrets', 'deployments'] as const).map((resource) =>
      kube.watch.watch(
        `/${resource === 'secrets' ? 'api/v1' : 'apis/apps/v1'}/namespaces/${CHAINS_NAMESPACE}/${resource}`,
        {},
        (type: string, object: { kind?: string; metadata: { name: string }; data?: object }) =>
          events.push({
            kind: resource,
            type,
            name: object.metadata.name,
            keys: Object.keys(object.data ?? {}),
          }),
        () => undefined,
      ),
    ),
  )
  return { events, stop: () => controllers.forEach((c) => c.abort()) }
}

describe('installTekton', () => {
  let key: SigningKey

  it('installs both releases, Chains holding our key and config before its controller starts', async () => {
    const [pipelineDigest, chainsDigest] = await Promise.all([
      publish('pipeline', 'v1.15.0', 'tekton-pipelines-release.yaml'),
      publish('chains', 'v0.29.2', 'tekton-chains-release.yaml'),
    ])
    key = await prepareSigningKey({})
    // The namespace does not exist yet: watch from the moment it does.
    const recorder = await recordChainsEvents()

    const result = await installTekton(plan, key, {
      kube,
      deadline: Date.now() + 90_000,
      fetchRelease,
    })

    recorder.stop()
    expect(result.pipelines).toMatchObject({
      action: 'installed',
      version: 'v1.15.0',
      release: { sha256: pipelineDigest, verifiedBy: "the digest of GitHub's release asset" },
    })
    expect(result.chains).toMatchObject({ action: 'installed', release: { sha256: chainsDigest } })

    const config = await kube.core.readNamespacedConfigMap({
      name: CHAINS_CONFIG,
      namespace: CHAINS_NAMESPACE,
    })
    expect(config.data).toMatchObject({
      'artifacts.taskrun.format': 'slsa/v1',
      'artifacts.taskrun.storage': 'oci',
      'artifacts.pipelinerun.format': 'slsa/v1',
      'artifacts.pipelinerun.storage': 'oci',
      'artifacts.oci.storage': 'oci',
      'transparency.enabled': 'false',
      'storage.oci.repository.insecure': 'true',
    })
    const secret = await kube.core.readNamespacedSecret({
      name: SIGNING_SECRET,
      namespace: CHAINS_NAMESPACE,
    })
    const data = (name: string) => Buffer.from(secret.data?.[name] ?? '', 'base64').toString()
    const opened = await openPrivateKey(data('cosign.key'), data('cosign.password'))
    expect(opened.publicKeyPem).toBe(key.publicKeyPem)
    expect(data('cosign.pub')).toBe(key.publicKeyPem)

    // The Secret was never empty while the Chains Deployment existed: it was
    // created with the key, and the Deployment only after it.
    const signing = recorder.events.filter((e) => e.kind === 'secrets' && e.name === SIGNING_SECRET)
    expect(signing[0]).toMatchObject({
      type: 'ADDED',
      keys: ['cosign.key', 'cosign.password', 'cosign.pub'],
    })
    expect(signing.every((e) => e.keys.length === 3)).toBe(true)
    const firstSecret = recorder.events.indexOf(signing[0]!)
    const firstController = recorder.events.findIndex(
      (e) => e.kind === 'deployments' && e.name === CHAINS_CONTROLLER,
    )
    expect(firstController).toBeGreaterThan(firstSecret)

    // Tekton's webhook admitted the dry-run Task: admission works, not only pods.
    expect(cluster.webhook.admitted()).toBeGreaterThan(0)
  })

  it('applying again is idempotent and keeps what is running', async () => {
    const before = await kube.apps.readNamespacedDeployment({
      name: CHAINS_CONTROLLER,
      namespace: CHAINS_NAMESPACE,
    })
    const again = await installTekton(plan, key, {
      kube,
      deadline: Date.now() + 60_000,
      fetchRelease,
    })
    expect(again.pipelines.action).toBe('kept')
    expect(again.chains.action).toBe('kept')
    // The same key: the controller is restarted anyway (mounted secrets update slowly).
    const after = await kube.apps.readNamespacedDeployment({
      name: CHAINS_CONTROLLER,
      namespace: CHAINS_NAMESPACE,
    })
    expect(after.metadata?.generation).toBeGreaterThan(before.metadata?.generation ?? 0)
  })

  it('puts a new key into a running Chains and waits for the restarted controller', async () => {
    const next = await prepareSigningKey({})
    await installTekton(plan, next, { kube, deadline: Date.now() + 60_000, fetchRelease })
    const secret = await kube.core.readNamespacedSecret({
      name: SIGNING_SECRET,
      namespace: CHAINS_NAMESPACE,
    })
    expect(Buffer.from(secret.data?.['cosign.pub'] ?? '', 'base64').toString()).toBe(
      next.publicKeyPem,
    )
    const controller = await kube.apps.readNamespacedDeployment({
      name: CHAINS_CONTROLLER,
      namespace: CHAINS_NAMESPACE,
    })
    expect(controller.status?.observedGeneration).toBe(controller.metadata?.generation)
    expect(controller.status?.conditions?.find((c) => c.type === 'Available')?.status).toBe('True')
  })
})

describe('waitUntilAvailable', () => {
  it('names a stalled Deployment and shows what its pod is waiting for', async () => {
    stalled.add('default/stuck')
    await kube.apps.createNamespacedDeployment({
      namespace: 'default',
      body: {
        metadata: { name: 'stuck' },
        spec: {
          selector: { matchLabels: { app: 'stuck' } },
          template: {
            metadata: { labels: { app: 'stuck' } },
            spec: { containers: [{ name: 'main', image: 'busybox' }] },
          },
        },
      },
    })
    const err = await waitUntilAvailable(kube, 'default', 'stuck', Date.now() + 4_000).catch(
      (e: unknown) => e as Error,
    )
    expect(err).toBeInstanceOf(Error)
    expect((err as Error).message).toMatch(
      /^timed out after .* waiting for Deployment default\/stuck to be Available; last seen: Available=False.*pod stuck-[a-z0-9-]+ Pending \(ImagePullBackOff: Back-off pulling image "busybox"\)/,
    )
  })
})

describe('Chains versions', () => {
  it.each([
    ['v0.29.2', true],
    ['v0.28.0', true],
    ['v0.27.6', true],
    ['v0.27.5', false],
    ['v0.26.9', false],
    ['devel', false],
  ])('%s compatible: %s', (version, compatible) =>
    expect(chainsCompatible(version)).toBe(compatible),
  )
})

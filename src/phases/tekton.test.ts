import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { startTestCluster, type TestCluster } from '../../test/harness/cluster.js'
import { startReleaseHost, type ReleaseHost } from '../../test/harness/release-host.js'
import { useRunnerDirs, type RunnerDirs } from '../../test/harness/runner-dirs.js'
import { repoRoot } from '../../test/harness/tools.js'
import { stringify } from 'yaml'
import { connect, type Kube } from '../kube/client.js'
import { parseManifests } from '../kube/objects.js'
import { fetchTektonRelease, type ReleaseSources } from '../tools/tekton/release.js'
import { prepareSigningKey, type SigningKey } from './signing.js'
import {
  CHAINS_CONFIG,
  CHAINS_NAMESPACE,
  chainsConfig,
  chainsSupport,
  type ChainsSupport,
  installTekton,
  SIGNING_SECRET,
  waitUntilAvailable,
  withPromptReadiness,
} from './tekton.js'
import type { KubeObject } from '../kube/objects.js'
import type { TektonRelease } from '../tools/tekton/release.js'
import { tektonPipeline } from '../../test/harness/releases/tekton-pipeline.js'
import { recordFault } from '../../test/harness/faults/record.js'

// What real Tekton cannot be made to do on demand, on the stand-ins: a
// webhook that refuses admission after its Deployment is Available, and a
// Deployment whose pods never get ready; and what needs no Tekton running: a
// broken release, and which Chains versions are kept. The install itself, its
// idempotence and a new key for a running Chains run on real Tekton on a real
// node: test/node/tekton-pipeline.test.ts.
//
// Here: a real kube-apiserver with the real deployment controller; stand-ins
// for pods becoming ready (the kubelet) and Tekton's admission webhook. The
// release manifests are shaped like Tekton's and served by a stand-in release
// host with a GitHub-like API. Each describe block starts the cluster its
// tests need and has a tool cache of its own, so each test runs the same alone
// or in any order.

const manifests = path.join(repoRoot, 'test/harness/manifests')
let host: ReleaseHost
let sources: ReleaseSources
const stalled = new Set<string>()

async function publish(component: 'pipeline' | 'chains', version: string, bytes: Uint8Array) {
  host.asset(`/${component}/previous/${version}/release.yaml`, bytes)
  const digest = createHash('sha256').update(bytes).digest('hex')
  host.route(`/repos/tektoncd/${component}/releases/tags/${version}`, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ assets: [{ name: 'release.yaml', digest: `sha256:${digest}` }] }))
  })
  return digest
}

beforeAll(async () => {
  host = await startReleaseHost()
  sources = { manifestBase: host.url, githubApi: host.url }
  await Promise.all([
    readFile(path.join(manifests, 'tekton-pipelines-release.yaml')).then((bytes) =>
      publish('pipeline', 'v1.15.0', bytes),
    ),
    readFile(path.join(manifests, 'tekton-chains-release.yaml')).then((bytes) =>
      publish('chains', 'v0.29.2', bytes),
    ),
  ])
})

afterAll(async () => {
  await host?.close()
})

/**
 * A cluster and a runner tool cache for one describe block: made before its
 * tests, removed after them.
 */
function useCluster() {
  const handle: { cluster: TestCluster; kube: Kube; dirs: RunnerDirs } = {} as never
  beforeAll(async () => {
    handle.dirs = await useRunnerDirs()
    handle.cluster = await startTestCluster({
      stall: (namespace, name) =>
        stalled.has(`${namespace}/${name}`)
          ? { reason: 'ImagePullBackOff', message: 'Back-off pulling image "busybox"' }
          : undefined,
      // Admission starts to work a little after the webhook Deployment exists.
      webhookReadyAfterMs: 1_500,
    })
    handle.kube = connect(handle.cluster.kube.kubeconfig)
  }, 120_000)
  afterAll(async () => {
    await handle.cluster?.stop()
    await handle.dirs?.restore()
  })
  return handle
}

const plan = {
  tektonPipelinesVersion: 'v1.15.0',
  tektonChainsVersion: 'v0.29.2',
  embeddedRegistry: true,
}
const fetchRelease: typeof fetchTektonRelease = (component, version) =>
  fetchTektonRelease(component, version, sources)

describe('installTekton when the webhook refuses Tasks after it reports Ready', () => {
  const at = useCluster()
  let installedKey: SigningKey
  beforeAll(async () => {
    installedKey = await prepareSigningKey({})
    await installTekton(plan, installedKey, {
      kube: at.kube,
      deadline: Date.now() + 90_000,
      fetchRelease,
    })
  }, 120_000)

  it("says Tekton does not admit Tasks when its webhook refuses them, with the webhook's words", async () => {
    const { kube, cluster } = at
    cluster.webhook.deny('the webhook of this test refuses every Task')
    try {
      const failure = installTekton(plan, installedKey, {
        kube,
        deadline: Date.now() + 30_000,
        fetchRelease,
      })
      await expect(failure).rejects.toThrow(
        /^Tekton does not admit Tasks \(server-side dry-run create of a Task in namespace default\): .*the webhook of this test refuses every Task/,
      )
    } finally {
      cluster.webhook.deny(undefined)
    }
    recordFault('Tekton webhook: refuses admission', 'reported')
  })

  it('waits out a webhook that is unavailable for a while after Ready, saying each time what it retries and why', async () => {
    const { kube, cluster } = at
    const logged: string[] = []
    const log = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
      logged.push(String(chunk))
      return true
    })
    cluster.webhook.unavailable(true)
    const lifted = setTimeout(() => cluster.webhook.unavailable(false), 1_500)
    try {
      await installTekton(plan, installedKey, { kube, deadline: Date.now() + 30_000, fetchRelease })
    } finally {
      clearTimeout(lifted)
      cluster.webhook.unavailable(false)
      log.mockRestore()
    }
    const retries = logged.filter((l) => l.startsWith('asking Tekton to admit a Task (dry run): '))
    expect(retries.length).toBeGreaterThan(0)
    expect(retries[0]).toMatch(
      /^asking Tekton to admit a Task \(dry run\): HTTP 500: Internal error occurred: failed calling webhook .*; retrying in [\d.]+ s\n$/,
    )
    recordFault('Tekton webhook: unavailable for a while after Ready', 'survived')
  })
})

// On a fresh cluster: both releases are checked before either is applied.
describe('installTekton with a broken Chains release', () => {
  const at = useCluster()

  it.each([
    ['ConfigMap', CHAINS_CONFIG, 'v0.29.1'],
    ['Secret', SIGNING_SECRET, 'v0.29.0'],
  ])(
    'refuses a Chains release without its %s %s, naming the release, and applies nothing',
    async (kind, name, version) => {
      const { kube } = at
      const file = path.join(manifests, 'tekton-chains-release.yaml')
      const objects = parseManifests(await readFile(file, 'utf8'), file).filter(
        (o) => !(o.kind === kind && o.metadata.name === name),
      )
      await publish('chains', version, Buffer.from(objects.map((o) => stringify(o)).join('---\n')))
      const url = `${host.url}/chains/previous/${version}/release.yaml`

      const failure = installTekton(
        { ...plan, tektonChainsVersion: version },
        await prepareSigningKey({}),
        { kube, deadline: Date.now() + 30_000, fetchRelease },
      )

      await expect(failure).rejects.toThrow(
        `${url} has no ${kind} ${name} in ${CHAINS_NAMESPACE}: is it a Tekton Chains release?`,
      )
      const namespaces = (await kube.core.listNamespace()).items.map((n) => n.metadata?.name)
      expect(namespaces).not.toContain(CHAINS_NAMESPACE)
      expect(namespaces).not.toContain('tekton-pipelines')
    },
  )
})

// What a removed Chains may leave behind (its namespace, signing-secrets,
// chains-config, without chains-info): a fresh install keeps none of it. The
// same on a Chains that is kept, with real Chains signing: test/node/chains.test.ts.
describe('installTekton where an earlier Chains left its secret and config', () => {
  const at = useCluster()

  it('replaces the signing secret whole and sets every key that decides how and where Chains signs', async () => {
    const { kube } = at
    const metadata = { name: SIGNING_SECRET, namespace: CHAINS_NAMESPACE }
    await kube.core.createNamespace({ body: { metadata: { name: CHAINS_NAMESPACE } } })
    const b64 = (text: string) => Buffer.from(text).toString('base64')
    await kube.core.createNamespacedSecret({
      namespace: CHAINS_NAMESPACE,
      fieldManager: 'platform-team',
      body: { metadata, data: { 'x509.pem': b64('-----BEGIN PRIVATE KEY-----\n') } },
    })
    await kube.core.createNamespacedConfigMap({
      namespace: CHAINS_NAMESPACE,
      fieldManager: 'platform-team',
      body: {
        metadata: { ...metadata, name: CHAINS_CONFIG },
        data: { 'artifacts.taskrun.signer': 'kms', 'storage.oci.repository': 'quay.io/elsewhere' },
      },
    })
    const key = await prepareSigningKey({})

    const result = await installTekton(plan, key, {
      kube,
      deadline: Date.now() + 90_000,
      fetchRelease,
    })

    expect(result.chains.action).toBe('installed')
    const secret = await kube.core.readNamespacedSecret(metadata)
    expect(Object.keys(secret.data ?? {}).sort()).toEqual([
      'cosign.key',
      'cosign.password',
      'cosign.pub',
    ])
    const config = await kube.core.readNamespacedConfigMap({ ...metadata, name: CHAINS_CONFIG })
    expect(config.data).toMatchObject(chainsConfig(true))
  })
})

describe('waitUntilAvailable', () => {
  const at = useCluster()

  it('names a stalled Deployment and shows what its pod is waiting for', async () => {
    const { kube } = at
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
    recordFault('Tekton: a Deployment never ready (install times out)', 'reported')
  })
})

// Read in tektoncd/chains (chainsSupport's comment): v0.20.0 is the first
// to watch tekton.dev/v1 runs; `storage.oci.repository.insecure` covers the
// image a .sig/.att is pushed for from v0.28.0 and v0.27.6; before, only the
// `*.local` rule of go-containerregistry up to v0.21.5 (v0.26.8 and earlier,
// v0.27.0–v0.27.5) lets Chains read registry.local:5000's images over plain
// HTTP, and v0.26.9 (go-containerregistry v0.21.7) reads them over HTTPS.
describe('Chains versions', () => {
  it.each([
    ['v0.29.2', 'ok', 'ok'],
    ['v0.28.0', 'ok', 'ok'],
    ['v1.0.0', 'ok', 'ok'],
    ['v0.27.6', 'ok', 'ok'],
    ['v0.27.5', 'ok', 'warns'],
    ['v0.27.0', 'ok', 'warns'],
    ['v0.26.9', 'ok', 'refused'],
    ['v0.26.8', 'ok', 'warns'],
    ['v0.26.3', 'ok', 'warns'],
    ['v0.20.0', 'ok', 'warns'],
    ['v0.19.1', 'refused', 'refused'],
    ['devel', 'refused', 'refused'],
  ])('%s: %s with a registry of the user, %s with the embedded one', (version, user, embedded) => {
    const verdict = (support: ChainsSupport) =>
      !support.ok ? 'refused' : support.warning ? 'warns' : 'ok'
    expect(verdict(chainsSupport(version, false))).toBe(user)
    expect(verdict(chainsSupport(version, true))).toBe(embedded)
  })

  it('refuses to install a version that cannot sign, naming the input and what is accepted, before touching the cluster', async () => {
    const unreachable = { core: {}, objects: {} } as unknown as Kube
    const failure = installTekton(
      { ...plan, tektonChainsVersion: 'v0.26.9' },
      await prepareSigningKey({}),
      { kube: unreachable, deadline: Date.now() + 5_000, fetchRelease },
    )
    await expect(failure).rejects.toThrow(
      "input 'tekton-chains-version': Tekton Chains v0.26.9 cannot sign this run's image: it reads the image it signs over HTTPS from the embedded registry registry.local:5000",
    )
    await expect(failure).rejects.toThrow(
      '; accepted: v0.20.0 or later; with the embedded registry (registry.local:5000) not v0.26.9',
    )
  })
})

describe('withPromptReadiness, on the Tekton Pipelines release built here', () => {
  type Container = { name: string; readinessProbe?: object; livenessProbe?: object }
  const containersOf = (o: KubeObject) =>
    ((o.spec as { template: { spec: { containers: Container[] } } }).template.spec.containers ??
      []) as Container[]

  it('probes readiness every second, unready as late as before; changes nothing else', async () => {
    const release = await tektonPipeline.read()
    const prompt = withPromptReadiness({ ...release, url: 'u', verifiedBy: 'v' } as TektonRelease)
    const probed = release.objects.filter(
      (o) => o.kind === 'Deployment' && containersOf(o).some((c) => c.readinessProbe),
    )
    // The controller, the webhook and the events controller.
    expect(probed.map((o) => o.metadata.name).sort()).toEqual([
      'tekton-events-controller',
      'tekton-pipelines-controller',
      'tekton-pipelines-webhook',
    ])
    for (const [i, before] of release.objects.entries()) {
      const after = prompt.objects[i]!
      if (!probed.includes(before)) {
        expect(after).toBe(before)
        continue
      }
      for (const [j, container] of containersOf(before).entries()) {
        const changed = containersOf(after)[j]!
        expect(changed.livenessProbe).toEqual(container.livenessProbe)
        expect(changed.readinessProbe).toEqual({
          ...container.readinessProbe,
          initialDelaySeconds: 1,
          periodSeconds: 1,
          // The release's 10 s × 3 failures.
          failureThreshold: 30,
        })
      }
    }
  })
})

import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startKube, type TestKube } from '../../test/harness/kube.js'
import { repoRoot } from '../../test/harness/tools.js'
import { applyManifests } from './apply.js'
import { connect, type Kube } from './client.js'
import { parseManifests, type KubeObject } from './objects.js'
import { waitFor, WaitTimeoutError } from './wait.js'

// Against a real kube-apiserver + etcd (+ controller manager, so a Deployment
// really gets a ReplicaSet and a Pod; with no nodes the Pod stays Pending).

let cluster: TestKube
let kube: Kube
let manifest: KubeObject[]

beforeAll(async () => {
  cluster = await startKube({ controllerManager: true })
  kube = connect(cluster.kubeconfig)
  const file = path.join(repoRoot, 'test/harness/manifests/release-shaped.yaml')
  manifest = parseManifests(await readFile(file, 'utf8'), file)
}, 120_000)

afterAll(async () => {
  await cluster?.stop()
})

const soon = (ms = 30_000) => Date.now() + ms

async function resourceVersions(): Promise<Record<string, string | undefined>> {
  const versions: Record<string, string | undefined> = {}
  for (const object of manifest) {
    const live = await kube.objects.read(object)
    versions[`${object.kind}/${object.metadata.name}`] = live.metadata?.resourceVersion
  }
  return versions
}

describe('applyManifests', () => {
  it('applies namespaces, then CRDs (Established), then the rest, whatever the file order', async () => {
    // The file lists the Widget first; it can only be created once its CRD is established.
    expect(manifest[0]?.kind).toBe('Widget')
    await applyManifests(kube, manifest, soon())
    const widget = await kube.objects.read({
      apiVersion: 'example.oml-chains.dev/v1',
      kind: 'Widget',
      metadata: { name: 'first-widget', namespace: 'widgets-system' },
    })
    expect(widget.metadata?.managedFields?.map((f) => f.manager)).toContain('oml-chains-action')
  })

  it('is idempotent: applying the same manifest again changes nothing', async () => {
    const before = await resourceVersions()
    await applyManifests(kube, manifest, soon())
    expect(await resourceVersions()).toEqual(before)
  })

  it('names the object when the server refuses it, without retrying', async () => {
    const bad = structuredClone(manifest.find((o) => o.kind === 'Widget')!)
    bad.metadata.name = 'bad-widget'
    ;(bad.spec as { size: unknown }).size = 'three'
    const started = Date.now()
    // Server-side apply answers a schema mismatch with a 500 that is not worth retrying.
    await expect(applyManifests(kube, [bad], soon())).rejects.toThrow(
      /^applying Widget widgets-system\/bad-widget failed: HTTP 500: .*\.spec\.size: expected numeric/,
    )
    expect(Date.now() - started).toBeLessThan(5_000)
  })
})

describe('applyObject', () => {
  it('keeps schema keys the typed client models spell differently (x-kubernetes-preserve-unknown-fields)', async () => {
    const crd = parseManifests(
      `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.example.oml-chains.dev
spec:
  group: example.oml-chains.dev
  scope: Namespaced
  names: { kind: Gadget, plural: gadgets, singular: gadget }
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              x-kubernetes-preserve-unknown-fields: true
`,
      'gadget CRD',
    )
    const gadget = {
      apiVersion: 'example.oml-chains.dev/v1',
      kind: 'Gadget',
      metadata: { name: 'g', namespace: 'widgets-system' },
      spec: { steps: [{ name: 'train', script: 'python train.py' }] },
    }
    // Tekton's CRDs rely on this: without the key, the API server prunes every spec.
    await applyManifests(kube, [...crd, gadget], soon())
    const stored = await kube.objects.read(gadget)
    expect((stored as typeof gadget).spec).toEqual(gadget.spec)
  })
})

describe('waitFor', () => {
  it('sees an object created after the wait began (a watch, not a poll)', async () => {
    const waiting = waitFor(
      kube,
      { apiVersion: 'v1', kind: 'ConfigMap', namespace: 'widgets-system', name: 'late' },
      (found) => found.length === 1,
      { deadline: soon(), what: 'ConfigMap late' },
    )
    await kube.objects.create({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'late', namespace: 'widgets-system' },
      data: { a: 'b' },
    })
    const [found] = await waiting
    expect(found?.metadata?.name).toBe('late')
  })

  it('times out naming what it waited for and what it saw last', async () => {
    type Deployment = KubeObject & { status?: { conditions?: { type: string; status: string }[] } }
    const started = Date.now()
    const err = await waitFor<Deployment>(
      kube,
      {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        namespace: 'widgets-system',
        name: 'widgets-controller',
      },
      ([d]) =>
        d?.status?.conditions?.some((c) => c.type === 'Available' && c.status === 'True') ?? false,
      {
        deadline: soon(3_000),
        what: 'Deployment widgets-system/widgets-controller to be Available',
        diagnose: async ([d]) =>
          (d?.status?.conditions ?? []).map((c) => `${c.type}=${c.status}`).join(', ') ||
          'no conditions',
      },
    ).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(WaitTimeoutError)
    expect((err as Error).message).toMatch(
      /^timed out after \d+\.\ds waiting for Deployment widgets-system\/widgets-controller to be Available; last seen: .*Available=False/,
    )
    // It waited for the deadline, not much longer.
    expect(Date.now() - started).toBeLessThan(8_000)
  })
})

describe('parseManifests', () => {
  it('skips empty documents and rejects something that is not an object', () => {
    expect(
      parseManifests('---\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n', 'x'),
    ).toHaveLength(1)
    expect(() => parseManifests('apiVersion: v1\nkind: Namespace\n', 'release.yaml')).toThrow(
      'release.yaml: document 1 is not a Kubernetes object (needs apiVersion, kind and metadata.name)',
    )
    expect(() => parseManifests('a: [1,\n', 'release.yaml')).toThrow(
      /^release.yaml: document 1 is not valid YAML/,
    )
  })
})

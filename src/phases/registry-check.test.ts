/**
 * The registry check pod on the real API server, its container run from the
 * real trainer image (built from Containerfile) by the Docker engine, through
 * the pod-runner stand-in in the kubelet's place: the check's own Python
 * decides what was reached.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { trainerBaseImage } from '../../test/harness/docker.js'
import { startKube, type TestKube } from '../../test/harness/kube.js'
import { startRegistry, type TestRegistry } from '../../test/harness/registry.js'
import {
  startPodRunnerStandIn,
  type PodRunnerStandIn,
} from '../../test/harness/standins/pod-runner.js'
import { repoRoot } from '../../test/harness/tools.js'
import { connect, type Kube } from '../kube/client.js'
import { RegistryClient } from '../oci/client.js'
import { parseReference, type Reference } from '../oci/reference.js'
import { Docker } from '../tools/docker.js'
import { prepareRunNamespace } from './credentials.js'
import { checkRegistriesFromPod, registryCheckPod, registryUrl } from './registry-check.js'
import { prepareTrainerImage } from './trainer-image.js'

const target = { namespace: 'oml-chains', serviceAccount: 'oml-chains-pipeline' }

let cluster: TestKube
let kube: Kube
let registry: TestRegistry
let runner: PodRunnerStandIn
let work: string
/** The trainer image in the test registry, by digest (where pods pull it from). */
let trainer: Reference

beforeAll(async () => {
  ;[cluster, registry] = await Promise.all([startKube(), startRegistry()])
  kube = connect(cluster.kubeconfig, 'the test kubeconfig')
  work = await mkdtemp(path.join(os.tmpdir(), 'registry-check-'))
  const built = await prepareTrainerImage(
    { source: 'build', baseImage: trainerBaseImage() },
    {
      docker: new Docker(),
      registry: new RegistryClient({ insecure: () => true }),
      embeddedRegistry: Promise.resolve({ host: 'registry.local:5000' }),
      runTag: 'check',
      actionRoot: repoRoot,
      workDir: work,
      loopback: registry.host,
      log: () => undefined,
    },
  )
  trainer = {
    registry: registry.host,
    repository: built.image.repository,
    digest: built.image.digest,
  }
  await prepareRunNamespace(kube, target, Date.now() + 30_000)
  runner = await startPodRunnerStandIn(cluster.kubeconfig, target.namespace)
}, 600_000)

afterAll(async () => {
  await runner?.stop()
  await Promise.all([cluster?.stop(), registry?.stop()])
  if (work) await rm(work, { recursive: true, force: true })
})

const deadline = () => Date.now() + 120_000

async function podsLeft(): Promise<string[]> {
  const list = await kube.core.listNamespacedPod({ namespace: target.namespace })
  return list.items
    .filter((p) => p.metadata?.deletionTimestamp === undefined)
    .map((p) => p.metadata!.name!)
}

describe('checkRegistriesFromPod', () => {
  it('reports what each registry answered, and removes its pod', async () => {
    const answers = await checkRegistriesFromPod(
      { image: trainer, registries: [registry.host, registry.host], ...target },
      { kube, deadline: deadline() },
    )
    expect(answers).toEqual([{ url: `http://${registry.host}/v2/`, status: 200 }])
    expect(runner.ran.at(-1)).toMatch(/^oml-chains-registry-check-/)
    expect(await podsLeft()).toEqual([])
  })

  it('names the registry a pod cannot connect to', async () => {
    const check = checkRegistriesFromPod(
      { image: trainer, registries: [registry.host, '127.0.0.1:1'], ...target },
      { kube, deadline: deadline() },
    )
    await expect(check).rejects.toThrow(
      /^pods in the cluster cannot reach http:\/\/127\.0\.0\.1:1\/v2\/ \(no connection: \[Errno 111\] Connection refused\); the training would fail to pull the dataset or push the model \(checked from pod oml-chains\/oml-chains-registry-check-\w+ \(image 127\.0\.0\.1:\d+\/oml-chains\/trainer@sha256:[0-9a-f]{64}\)\)$/,
    )
    expect(await podsLeft()).toEqual([])
  })

  it('says when the node cannot pull the trainer image', async () => {
    const missing = { ...trainer, repository: 'oml-chains/no-such-trainer' }
    const check = checkRegistriesFromPod(
      { image: missing, registries: [registry.host], ...target },
      { kube, deadline: deadline() },
    )
    await expect(check).rejects.toThrow(
      /^the node cannot pull the trainer image 127\.0\.0\.1:\d+\/oml-chains\/no-such-trainer@sha256:[0-9a-f]{64} for the registry check: ErrImagePull: .*no-such-trainer not found/,
    )
    expect(await podsLeft()).toEqual([])
  })
})

describe('registryCheckPod', () => {
  it('asks plain-HTTP registries over HTTP, others over HTTPS, Docker Hub at its API host', () => {
    expect(registryUrl('registry.local:5000')).toBe('http://registry.local:5000/v2/')
    expect(registryUrl('127.0.0.1:5000')).toBe('http://127.0.0.1:5000/v2/')
    expect(registryUrl('quay.io')).toBe('https://quay.io/v2/')
    expect(registryUrl('docker.io')).toBe('https://registry-1.docker.io/v2/')
  })

  it('runs the trainer image as the pipeline step does: non-root, no privileges, no token', () => {
    const pod = registryCheckPod({
      image: parseReference(`registry.local:5000/oml-chains/trainer@sha256:${'a'.repeat(64)}`),
      registries: ['quay.io', 'registry.local:5000', 'quay.io'],
      ...target,
    })
    const spec = pod.spec as {
      serviceAccountName: string
      automountServiceAccountToken: boolean
      restartPolicy: string
      securityContext: Record<string, unknown>
      containers: { image: string; command: string[]; securityContext: Record<string, unknown> }[]
    }
    expect(spec.serviceAccountName).toBe('oml-chains-pipeline')
    expect(spec.automountServiceAccountToken).toBe(false)
    expect(spec.restartPolicy).toBe('Never')
    expect(spec.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 65532 })
    const [container] = spec.containers
    expect(container!.image).toBe(`registry.local:5000/oml-chains/trainer@sha256:${'a'.repeat(64)}`)
    expect(container!.command.slice(0, 2)).toEqual(['python', '-c'])
    expect(container!.command.slice(3)).toEqual([
      'https://quay.io/v2/',
      'http://registry.local:5000/v2/',
    ])
    expect(container!.securityContext).toEqual({
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
    })
  })
})

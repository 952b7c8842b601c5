/**
 * The registry check pod on the real node: the real kubelet pulls the trainer
 * image (built from Containerfile) from registry.local:5000 and runs the
 * check's own Python in a real pod on the node's network, so what a pod
 * reaches and how a failed pull is reported are the real ones.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Reference } from '../../src/oci/reference.js'
import { prepareRunNamespace } from '../../src/phases/credentials.js'
import { checkRegistriesFromPod } from '../../src/phases/registry-check.js'
import { startNodeCluster, type NodeCluster } from '../harness/node/cluster.js'
import { buildTrainerImage } from '../harness/node/trainer-image.js'
import { useRunnerDirs, type RunnerDirs } from '../harness/runner-dirs.js'

const target = { namespace: 'oml-chains', serviceAccount: 'oml-chains-pipeline' }

let cluster: NodeCluster
let dirs: RunnerDirs
/** The trainer image as pods pull it: registry.local:5000/oml-chains/trainer@sha256:…. */
let trainer: Reference

beforeAll(async () => {
  dirs = await useRunnerDirs()
  cluster = await startNodeCluster()
  trainer = await buildTrainerImage(cluster.registry, dirs.temp)
  await prepareRunNamespace(cluster.client, target, Date.now() + 60_000)
}, 600_000)

afterAll(async () => {
  await cluster?.stop()
  await dirs?.restore()
})

const deadline = () => Date.now() + 120_000

async function podsLeft(): Promise<string[]> {
  const list = await cluster.client.core.listNamespacedPod({ namespace: target.namespace })
  return list.items
    .filter((p) => p.metadata?.deletionTimestamp === undefined)
    .map((p) => p.metadata!.name!)
}

describe('checkRegistriesFromPod on the real node', () => {
  it('reports what each registry answered, and removes its pod', async () => {
    const registry = cluster.registry.name
    const answers = await checkRegistriesFromPod(
      { image: trainer, registries: [registry, registry], ...target },
      { kube: cluster.client, deadline: deadline() },
    )
    expect(answers).toEqual([{ url: 'http://registry.local:5000/v2/', status: 200 }])
    expect(await podsLeft()).toEqual([])
  })

  it('names the registry a pod cannot connect to', async () => {
    // registry.local resolves in pods; nothing listens on its port 1.
    const check = checkRegistriesFromPod(
      { image: trainer, registries: [cluster.registry.name, 'registry.local:1'], ...target },
      { kube: cluster.client, deadline: deadline() },
    )
    await expect(check).rejects.toThrow(
      /^pods in the cluster cannot reach https:\/\/registry\.local:1\/v2\/ \(no connection: \[Errno 111\] Connection refused\); the training would fail to pull the dataset or push the model \(checked from pod oml-chains\/oml-chains-registry-check-\w+ \(image registry\.local:5000\/oml-chains\/trainer@sha256:[0-9a-f]{64}\)\)$/,
    )
    expect(await podsLeft()).toEqual([])
  })

  it('says when the node cannot pull the trainer image, in the kubelet’s words', async () => {
    const missing = { ...trainer, repository: 'oml-chains/no-such-trainer' }
    const check = checkRegistriesFromPod(
      { image: missing, registries: [cluster.registry.name], ...target },
      { kube: cluster.client, deadline: deadline() },
    )
    await expect(check).rejects.toThrow(
      /^the node cannot pull the trainer image registry\.local:5000\/oml-chains\/no-such-trainer@sha256:[0-9a-f]{64} for the registry check: ErrImagePull: .*no-such-trainer.*not found/,
    )
    expect(await podsLeft()).toEqual([])
  })
})

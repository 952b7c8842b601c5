import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestCluster, type TestCluster } from '../../test/harness/cluster.js'
import { startRegistry, type TestRegistry } from '../../test/harness/registry.js'
import { startKubeletStandIn, type KubeletStandIn } from '../../test/harness/standins/kubelet.js'
import {
  startTektonStandIn,
  type TektonStandIn,
  STAND_IN_TRAINER_IMAGE,
} from '../../test/harness/standins/tekton.js'
import { repoRoot } from '../../test/harness/tools.js'
import { publishDataset } from '../../test/harness/trainer.js'
import { applyManifests } from '../kube/apply.js'
import { connect, type Kube } from '../kube/client.js'
import { parseManifests } from '../kube/objects.js'
import { parseReference, type Reference } from '../oci/reference.js'
import { loadPipeline, runPipeline, type LogOutput, type PipelineInputs } from './pipeline.js'
import { recordFault } from '../../test/harness/faults/record.js'

// Only what the real node cannot be made to show on demand: the kubelet
// dropping a log stream midway (the stand-in kubelet's disconnect()). So this
// file keeps the stand-ins: Tekton's controller running the step as a local
// process (the real trainer), the kubelet serving its log. Everything else
// the pipeline phase does runs on real Tekton on a real node:
// test/node/tekton-pipeline.test.ts.
const NAMESPACE = 'oml-chains'
const tektonDir = path.join(repoRoot, 'tekton')

let cluster: TestCluster
let kube: Kube
let kubelet: KubeletStandIn
let tekton: TektonStandIn
let registry: TestRegistry
let dataset: Reference

beforeAll(async () => {
  ;[cluster, registry] = await Promise.all([startTestCluster(), startRegistry()])
  kube = connect(cluster.kube.kubeconfig)
  const file = path.join(repoRoot, 'test/harness/manifests/tekton-pipelines-release.yaml')
  const release = parseManifests(await readFile(file, 'utf8'), file)
  await applyManifests(kube, release, Date.now() + 60_000)
  kubelet = await startKubeletStandIn(cluster.kube.kubeconfig)
  tekton = await startTektonStandIn(cluster.kube.kubeconfig, { kubelet })
  await kube.core.createNamespace({ body: { metadata: { name: NAMESPACE } } })
  const digest = await publishDataset(`${registry.host}/ml/iris:data`)
  dataset = parseReference(`${registry.host}/ml/iris@${digest}`, 'dataset')
}, 120_000)

afterAll(async () => {
  await tekton?.stop()
  await kubelet?.stop()
  await cluster?.stop()
  await registry?.stop()
})

function inputs(tag: string, more: Partial<PipelineInputs> = {}): PipelineInputs {
  return {
    image: parseReference(`${registry.host}/ml/model:${tag}`),
    dataset,
    trainerImage: parseReference(STAND_IN_TRAINER_IMAGE, 'trainer-image'),
    params: {},
    namespace: NAMESPACE,
    serviceAccount: 'oml-chains-pipeline',
    ...more,
  }
}

/** Records what the phase prints: lines, and `::group::`/`::endgroup::` for folds. */
function recordOutput(onLine: (line: string) => void = () => undefined) {
  const lines: string[] = []
  const output: LogOutput = {
    info: (line) => {
      lines.push(line)
      onLine(line)
    },
    startGroup: (name) => lines.push(`::group::${name}`),
    endGroup: () => lines.push('::endgroup::'),
  }
  return { lines, output }
}

describe('runPipeline when the kubelet drops a log stream', () => {
  it('keeps every log line exactly once when the kubelet drops the stream midway', async () => {
    let dropped = 0
    const { lines, output } = recordOutput((line) => {
      // Cut the stream as soon as the first step line has come through it.
      if (line.startsWith('[train/train] ') && dropped === 0) dropped = kubelet.disconnect() || -1
    })
    const outcome = await runPipeline(inputs('run2'), {
      kube,
      deadline: Date.now() + 60_000,
      output,
      tektonDir,
    })
    const [, name] = outcome.pipelineRun.split('/')
    const pod = `${name}-train-pod`
    const got = lines
      .filter((l) => l.startsWith('[train/train] '))
      .map((l) => l.slice('[train/train] '.length))
    expect(got).toEqual(kubelet.lines(NAMESPACE, pod, 'step-train'))
    // The follower was really cut off and came back (a second log request).
    expect(dropped).toBe(1)
    expect(kubelet.requests(NAMESPACE, pod, 'step-train')).toBeGreaterThanOrEqual(2)
    recordFault("a step's log stream dropped", 'survived')
  }, 180_000)
})

describe('loadPipeline', () => {
  let dir: string
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'pipeline-file-'))
  })
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true })
  })

  it('takes the bundled Task and Pipeline by default', async () => {
    const { objects, pipelineName } = await loadPipeline(undefined, tektonDir)
    expect(objects.map((o) => `${o.kind}/${o.metadata.name}`)).toEqual([
      'Task/oml-train',
      'Pipeline/oml-train',
    ])
    expect(pipelineName).toBe('oml-train')
  })

  it("rejects a user's Pipeline without IMAGE_URL and IMAGE_DIGEST results, naming the file", async () => {
    const file = path.join(dir, 'pipeline.yaml')
    await writeFile(
      file,
      'apiVersion: tekton.dev/v1\nkind: Pipeline\nmetadata: {name: mine}\nspec:\n  results:\n    - {name: IMAGE_URL, value: x}\n  tasks: []\n',
    )
    await expect(loadPipeline(file, tektonDir)).rejects.toThrow(
      `pipeline ${file}: Pipeline mine must declare the results IMAGE_URL and IMAGE_DIGEST (missing IMAGE_DIGEST)`,
    )
    await writeFile(file, 'apiVersion: tekton.dev/v1\nkind: Task\nmetadata: {name: t}\n')
    await expect(loadPipeline(file, tektonDir)).rejects.toThrow(
      `pipeline ${file} must hold exactly one tekton.dev/v1 Pipeline (found none)`,
    )
  })

  it("rejects a user's pipeline file that holds other kinds than Tasks and a Pipeline", async () => {
    const file = path.join(dir, 'with-configmap.yaml')
    await writeFile(
      file,
      [
        'apiVersion: tekton.dev/v1',
        'kind: Pipeline',
        'metadata: {name: mine}',
        'spec:',
        '  results: [{name: IMAGE_URL, value: x}, {name: IMAGE_DIGEST, value: y}]',
        '  tasks: []',
        '---',
        'apiVersion: v1',
        'kind: ConfigMap',
        'metadata: {name: settings}',
        'data: {a: b}',
        '',
      ].join('\n'),
    )
    await expect(loadPipeline(file, tektonDir)).rejects.toThrow(
      `pipeline ${file} may hold only Tasks and one Pipeline, not ConfigMap settings`,
    )
  })
})

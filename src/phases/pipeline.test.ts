import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { stringify } from 'yaml'
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
import { parseManifests, type KubeObject } from '../kube/objects.js'
import { RegistryClient } from '../oci/client.js'
import { parseReference, type Reference } from '../oci/reference.js'
import { loadPipeline, runPipeline, type LogOutput, type PipelineInputs } from './pipeline.js'

// The phase against the real API server with Tekton's CRDs, the real trainer
// (run by the Tekton stand-in as the Task's step) and the real registry; the
// step's output reaches the phase through the API server's pod log endpoint.
const NAMESPACE = 'oml-chains'
const tektonDir = path.join(repoRoot, 'tekton')

let cluster: TestCluster
let kube: Kube
let kubelet: KubeletStandIn
let tekton: TektonStandIn
let registry: TestRegistry
let dataset: Reference
/** Set by a test: the next PipelineRun's step never starts. */
let stallNext = false

beforeAll(async () => {
  ;[cluster, registry] = await Promise.all([startTestCluster(), startRegistry()])
  kube = connect(cluster.kube.kubeconfig)
  const file = path.join(repoRoot, 'test/harness/manifests/tekton-pipelines-release.yaml')
  const release = parseManifests(await readFile(file, 'utf8'), file)
  await applyManifests(kube, release, Date.now() + 60_000)
  kubelet = await startKubeletStandIn(cluster.kube.kubeconfig)
  tekton = await startTektonStandIn(cluster.kube.kubeconfig, {
    kubelet,
    stall: () => {
      const stall = stallNext
      stallNext = false
      return stall
    },
  })
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

describe('runPipeline', () => {
  it('trains for real: the results carry the model digest the registry serves', async () => {
    const { lines, output } = recordOutput()
    const outcome = await runPipeline(inputs('run1'), {
      kube,
      deadline: Date.now() + 60_000,
      output,
      tektonDir,
    })
    const served = await new RegistryClient({ insecure: () => true }).getManifest(
      parseReference(`${registry.host}/ml/model:run1`),
    )
    expect(outcome.imageDigest).toBe(served.digest)
    expect(outcome.imageUrl).toBe(`${registry.host}/ml/model:run1`)
    expect(outcome.results.DATASET_DIGEST).toBe(dataset.digest)
    // The object result, whole: Chains makes it a material of the PipelineRun attestation.
    expect(outcome.results.DATASET_ARTIFACT_INPUTS).toEqual({
      uri: `${registry.host}/ml/iris`,
      digest: dataset.digest,
    })
    expect(Number(outcome.results.ACCURACY)).toBeGreaterThan(0.9)
    // The step's output arrived through the API server, prefixed with task and step.
    const stepLines = lines.filter((l) => l.startsWith('[train/train] '))
    expect(stepLines.length).toBeGreaterThan(0)
    const [, name] = outcome.pipelineRun.split('/')
    expect(stepLines.map((l) => l.slice('[train/train] '.length))).toEqual(
      kubelet.lines(NAMESPACE, `${name}-train-pod`, 'step-train'),
    )
    // Folded: one group for the task, around all of its lines.
    const first = lines.indexOf(stepLines[0]!)
    expect(lines[first - 1]).toBe('::group::task train')
    expect(lines.slice(first, first + stepLines.length)).toEqual(stepLines)
    expect(lines[first + stepLines.length]).toBe('::endgroup::')
    expect(lines.filter((l) => l.startsWith('::group::'))).toHaveLength(1)
    // The stand-in ran the PipelineRun's params, as Tekton substitutes them.
    const taskRun = await kube.objects.read({
      apiVersion: 'tekton.dev/v1',
      kind: 'TaskRun',
      metadata: { name: `${name}-train`, namespace: NAMESPACE },
    })
    expect(JSON.stringify((taskRun as { spec?: unknown }).spec)).toContain(STAND_IN_TRAINER_IMAGE)
  }, 180_000)

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
  }, 180_000)

  it('fails with the reason, the failing task and step, and the tail of its log', async () => {
    const missing = parseReference(`${registry.host}/ml/iris@sha256:${'0'.repeat(64)}`, 'dataset')
    const err = await runPipeline(inputs('run3', { dataset: missing }), {
      kube,
      deadline: Date.now() + 60_000,
      output: recordOutput().output,
      tektonDir,
    }).catch((e: unknown) => e as Error)
    expect(err).toBeInstanceOf(Error)
    const message = (err as Error).message
    expect(message).toMatch(/^PipelineRun oml-chains\/oml-chains-\w+ failed: Failed: /)
    expect(message).toContain('failing task: train, step: train')
    expect(message).toMatch(/last \d+ lines of train\/train:\n/)
    // The trainer's own words about the missing dataset are in the tail.
    expect(message).toMatch(/0000000000000000/)
  }, 180_000)

  it('times out on a run that never finishes, and cancels it', async () => {
    stallNext = true
    const started = Date.now()
    const err = await runPipeline(inputs('run4'), {
      kube,
      deadline: Date.now() + 4_000,
      output: recordOutput().output,
      tektonDir,
    }).catch((e: unknown) => e as Error)
    expect((err as Error).message).toMatch(
      /^timed out after \d+\.\ds waiting for PipelineRun oml-chains\/oml-chains-\w+ to finish; last seen: Running: .*; the PipelineRun was cancelled$/,
    )
    expect(Date.now() - started).toBeLessThan(30_000)
    const name = /PipelineRun oml-chains\/(oml-chains-\w+)/.exec((err as Error).message)![1]!
    const run = await kube.objects.read({
      apiVersion: 'tekton.dev/v1',
      kind: 'PipelineRun',
      metadata: { name, namespace: NAMESPACE },
    })
    expect((run as { spec?: { status?: string } }).spec?.status).toBe('Cancelled')
  })
})

describe('runPipeline: what a user pipeline reports, and a run that cannot start', () => {
  let dir: string
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'pipeline-results-'))
  })
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true })
  })

  /** A user's Pipeline whose one step writes `url` and `digest` as IMAGE_URL and IMAGE_DIGEST. */
  async function pipelineReporting(name: string, url: string, digest: string): Promise<string> {
    const file = path.join(dir, `${name}.yaml`)
    await writeFile(
      file,
      [
        'apiVersion: tekton.dev/v1',
        'kind: Pipeline',
        `metadata: {name: ${name}}`,
        'spec:',
        '  params: [{name: IMAGE}, {name: DATASET}, {name: TRAINER_IMAGE}]',
        '  results:',
        '    - {name: IMAGE_URL, value: $(tasks.push.results.IMAGE_URL)}',
        '    - {name: IMAGE_DIGEST, value: $(tasks.push.results.IMAGE_DIGEST)}',
        '  tasks:',
        '    - name: push',
        '      params: [{name: IMAGE, value: $(params.IMAGE)}]',
        '      taskSpec:',
        '        params: [{name: IMAGE}]',
        '        results: [{name: IMAGE_URL}, {name: IMAGE_DIGEST}]',
        '        steps:',
        '          - name: push',
        `            image: registry.local:5000/tools/sh@sha256:${'2'.repeat(64)}`,
        '            script: |',
        `              printf '%s' "${url}" > $(results.IMAGE_URL.path)`,
        `              printf '%s' "${digest}" > $(results.IMAGE_DIGEST.path)`,
        '',
      ].join('\n'),
    )
    return file
  }

  const run = (more: Partial<PipelineInputs>, tag: string) =>
    runPipeline(inputs(tag, more), {
      kube,
      deadline: Date.now() + 60_000,
      output: recordOutput().output,
      tektonDir,
    })

  it('refuses an IMAGE_DIGEST that is not a sha256 digest', async () => {
    const pipelinePath = await pipelineReporting('short-digest', '$(params.IMAGE)', 'sha256:abc')
    await expect(run({ pipelinePath }, 'run5')).rejects.toThrow(
      /^PipelineRun oml-chains\/oml-chains-\w+ succeeded but its IMAGE_DIGEST result is "sha256:abc", not sha256:<64 hex digits>$/,
    )
  })

  it('refuses an IMAGE_URL other than the image asked for: the model went elsewhere', async () => {
    const elsewhere = 'quay.io/someone-else/model:v1'
    const pipelinePath = await pipelineReporting('elsewhere', elsewhere, `sha256:${'a'.repeat(64)}`)
    const err = await run({ pipelinePath }, 'run6').catch((e: unknown) => e as Error)
    expect((err as Error).message).toMatch(
      new RegExp(
        `^PipelineRun oml-chains/oml-chains-\\w+ succeeded but its IMAGE_URL result is "${elsewhere}", ` +
          `not the image asked for \\(${registry.host}/ml/model:run6\\)$`,
      ),
    )
  })

  it('says why the PipelineRun cannot be created: an identity that may not create one', async () => {
    // On a shared cluster the action may hold a Role without `create` on
    // PipelineRuns: the real API server's RBAC refuses the create.
    const namespace = 'no-pipelineruns'
    const account = 'runner'
    await kube.core.createNamespace({ body: { metadata: { name: namespace } } })
    await kube.core.createNamespacedServiceAccount({
      namespace,
      body: { metadata: { name: account } },
    })
    const rules = [
      { resources: ['tasks', 'pipelines'], verbs: ['get', 'list', 'create', 'patch', 'update'] },
      { resources: ['pipelineruns', 'taskruns'], verbs: ['get', 'list', 'watch'] },
    ].map((rule) => ({ apiGroups: ['tekton.dev'], ...rule }))
    const rbac = 'rbac.authorization.k8s.io/v1'
    await kube.objects.create({
      apiVersion: rbac,
      kind: 'Role',
      metadata: { name: 'no-runs', namespace },
      rules,
    } as KubeObject)
    await kube.objects.create({
      apiVersion: rbac,
      kind: 'RoleBinding',
      metadata: { name: 'no-runs', namespace },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'no-runs' },
      subjects: [{ kind: 'ServiceAccount', name: account, namespace }],
    } as KubeObject)
    const issued = await kube.core.createNamespacedServiceAccountToken({
      name: account,
      namespace,
      body: { spec: { audiences: ['https://kubernetes.default.svc.cluster.local'] } },
    })
    const limited = connect(
      stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [
          {
            name: 'test',
            cluster: {
              server: cluster.kube.server,
              'certificate-authority-data': Buffer.from(cluster.kube.ca).toString('base64'),
            },
          },
        ],
        users: [{ name: account, user: { token: issued.status?.token } }],
        contexts: [{ name: account, context: { cluster: 'test', user: account } }],
        'current-context': account,
      }),
    )

    const err = await runPipeline(inputs('run7', { namespace }), {
      kube: limited,
      deadline: Date.now() + 30_000,
      output: recordOutput().output,
      tektonDir,
    }).catch((e: unknown) => e as Error)
    expect((err as Error).message).toBe(
      'creating the PipelineRun failed: HTTP 403: pipelineruns.tekton.dev is forbidden: ' +
        `User "system:serviceaccount:${namespace}:${account}" cannot create resource "pipelineruns" ` +
        `in API group "tekton.dev" in the namespace "${namespace}"`,
    )
  })
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

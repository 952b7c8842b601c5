import * as core from '@actions/core'
import { PatchStrategy } from '@kubernetes/client-node'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { bundledFile } from '../bundled.js'
import { UserError } from '../errors.js'
import { applyObject } from '../kube/apply.js'
import { apiMessage, type Kube } from '../kube/client.js'
import { containerFinished, followContainerLog, watchPods } from '../kube/logs.js'
import { conditionOf, parseManifests, type KubeObject } from '../kube/objects.js'
import {
  OWN_PARAMS,
  parsePipelineFile,
  TEKTON_API as TEKTON,
  type PipelineDefinition,
} from '../pipeline-definition.js'
import { withRetry } from '../kube/retry.js'
import { waitFor, WaitTimeoutError } from '../kube/wait.js'
import { formatReference, type Reference } from '../oci/reference.js'
import type { Digest } from '../oci/types.js'

/** How many lines of the failing step's log the error shows. */
const TAIL_LINES = 20
/** Lines kept per step for that. */
const KEEP_LINES = 200

export interface PipelineInputs {
  /** Where the model goes (the IMAGE param; IMAGE_URL must name it). */
  image: Reference
  /** The dataset pinned by digest (the DATASET param). */
  dataset: Reference
  /** The trainer image (TRAINER_IMAGE); the caller supplies the pinned default. */
  trainerImage: Reference
  /** The user's Pipeline file; undefined means the bundled one. */
  pipelinePath?: string
  /** Extra PipelineRun params (the `params` input). */
  params: Record<string, string>
  namespace: string
  serviceAccount: string
}

export interface PipelineDeps {
  kube: Kube
  /** Epoch ms by which the PipelineRun must have finished. */
  deadline: number
  /** Where the step logs go (default: the Actions log, through @actions/core). */
  output?: LogOutput
  /** The folder with the bundled task.yaml and pipeline.yaml (default: found next to the code). */
  tektonDir?: string
}

/** The part of @actions/core the step logs are written with. */
export interface LogOutput {
  info(line: string): void
  startGroup(name: string): void
  endGroup(): void
}

export interface PipelineOutcome {
  /** `namespace/name` of the PipelineRun. */
  pipelineRun: string
  /** The PipelineRun's results by name (object results as parsed JSON). */
  results: Record<string, unknown>
  imageUrl: string
  imageDigest: Digest
}

interface PipelineRunObject extends KubeObject {
  status?: {
    conditions?: { type: string; status: string; reason?: string; message?: string }[]
    results?: { name: string; value: unknown }[]
    childReferences?: { name: string; pipelineTaskName?: string }[]
  }
}

interface TaskRunObject extends KubeObject {
  status?: {
    podName?: string
    conditions?: { type: string; status: string; reason?: string; message?: string }[]
    steps?: { name: string; container?: string; terminated?: { exitCode?: number } }[]
  }
}

/** The bundled `tekton/` folder (task.yaml and pipeline.yaml). */
export function bundledTektonDir(): string {
  return path.dirname(bundledFile('tekton/pipeline.yaml'))
}

/** Reads the Task and Pipeline to apply: the bundled Task always, the user's Pipeline file or the bundled one. */
export async function loadPipeline(
  pipelinePath: string | undefined,
  tektonDir: string,
): Promise<{ objects: KubeObject[]; pipelineName: string }> {
  const task = parseManifests(
    await readFile(path.join(tektonDir, 'task.yaml'), 'utf8'),
    'bundled task.yaml',
  )
  let definition: PipelineDefinition
  if (pipelinePath) {
    let text: string
    try {
      text = await readFile(pipelinePath, 'utf8')
    } catch (err) {
      throw new UserError(`pipeline ${pipelinePath} cannot be read: ${(err as Error).message}`)
    }
    definition = parsePipelineFile(text, `pipeline ${pipelinePath}`)
  } else {
    const text = await readFile(path.join(tektonDir, 'pipeline.yaml'), 'utf8')
    definition = parsePipelineFile(text, 'the bundled pipeline.yaml')
  }
  return { objects: [...task, ...definition.objects], pipelineName: definition.pipelineName }
}

/** The PipelineRun's params: ours, then the `params` input (which may not override ours). */
export function pipelineParams(inputs: PipelineInputs): { name: string; value: string }[] {
  const clash = Object.keys(OWN_PARAMS).filter((p) => p in inputs.params)
  if (clash.length > 0) {
    throw new UserError(
      `params sets ${clash.join(', ')}, which the action sets from its own inputs (${Object.values(OWN_PARAMS).join(', ')})`,
    )
  }
  const own: Record<keyof typeof OWN_PARAMS, string> = {
    IMAGE: formatReference(inputs.image),
    DATASET: formatReference(inputs.dataset),
    TRAINER_IMAGE: formatReference(inputs.trainerImage),
  }
  return Object.entries({ ...own, ...inputs.params }).map(([name, value]) => ({ name, value }))
}

/**
 * Runs the training pipeline: applies the Task and Pipeline, creates a
 * PipelineRun, streams its step logs (`[task/step] line`) while waiting for
 * it to succeed or fail within the deadline, and returns its results once
 * IMAGE_URL names the image asked for and IMAGE_DIGEST is a sha256 digest.
 */
export async function runPipeline(
  inputs: PipelineInputs,
  deps: PipelineDeps,
): Promise<PipelineOutcome> {
  const { kube, deadline, namespace } = { ...deps, namespace: inputs.namespace }
  const output = deps.output ?? core
  const params = pipelineParams(inputs)
  const { objects, pipelineName } = await loadPipeline(
    inputs.pipelinePath,
    deps.tektonDir ?? bundledTektonDir(),
  )
  await Promise.all(
    objects.map((o) =>
      applyObject(kube, { ...o, metadata: { ...o.metadata, namespace } }, deadline),
    ),
  )

  let created: KubeObject
  try {
    created = await withRetry(
      () =>
        kube.objects.create({
          apiVersion: TEKTON,
          kind: 'PipelineRun',
          metadata: { generateName: 'oml-chains-', namespace, name: undefined as never },
          spec: {
            pipelineRef: { name: pipelineName },
            params,
            taskRunTemplate: { serviceAccountName: inputs.serviceAccount },
          },
        } as KubeObject),
      deadline,
      `creating a PipelineRun in ${namespace}`,
    )
  } catch (err) {
    throw new UserError(`creating the PipelineRun failed: ${apiMessage(err)}`)
  }
  const name = String(created.metadata?.name)
  const where = `PipelineRun ${namespace}/${name}`
  output.info(`${where} started (Pipeline ${pipelineName})`)

  const logs = new StepLogs(kube, namespace, output)
  const stopWatching = new AbortController()
  const selector = `tekton.dev/pipelineRun=${name}`
  const podWatch = watchPods(
    kube,
    namespace,
    selector,
    (pod) => logs.follow(pod),
    stopWatching.signal,
  )

  let run: PipelineRunObject | undefined
  try {
    ;[run] = await waitFor<PipelineRunObject>(
      kube,
      { apiVersion: TEKTON, kind: 'PipelineRun', namespace, name },
      ([found]) => {
        const status = conditionOf(found, 'Succeeded')?.status
        return status === 'True' || status === 'False'
      },
      {
        deadline,
        what: `${where} to finish`,
        diagnose: async ([found]) => {
          const c = conditionOf(found, 'Succeeded')
          const state = c ? `${c.reason ?? c.status}: ${c.message ?? ''}` : 'not started by Tekton'
          return state + (await waitingContainers(kube, namespace, selector))
        },
      },
    )
  } catch (err) {
    stopWatching.abort()
    await cancel(kube, namespace, name)
    await logs.finish(podWatch)
    if (err instanceof WaitTimeoutError) {
      throw new UserError(`${err.message}; the PipelineRun was cancelled`)
    }
    throw err
  }
  // Pods the watch had not reported yet still get their logs read once.
  stopWatching.abort()
  try {
    const pods = await kube.core.listNamespacedPod({ namespace, labelSelector: selector })
    for (const pod of pods.items) logs.follow(pod)
  } catch {
    // Logs are a courtesy; the verdict comes from the PipelineRun.
  }
  await logs.finish(podWatch)

  const succeeded = conditionOf(run, 'Succeeded')
  if (succeeded?.status !== 'True') {
    throw new UserError(await failureMessage(kube, where, run!, logs))
  }
  return checkResults(where, run!, formatReference(inputs.image))
}

/**
 * One follower per step container; keeps each step's last lines for error
 * messages. Lines are folded per task: a group opens when a task's line comes
 * after another task's (tasks that run side by side fold in turns).
 */
class StepLogs {
  private readonly followers = new Map<string, Promise<void>>()
  private readonly tails = new Map<string, string[]>()
  private readonly stop = new AbortController()
  private openGroup: string | undefined

  constructor(
    private readonly kube: Kube,
    private readonly namespace: string,
    private readonly output: LogOutput,
  ) {}

  private print(task: string, label: string, line: string): void {
    if (this.openGroup !== task) {
      if (this.openGroup !== undefined) this.output.endGroup()
      this.output.startGroup(`task ${task}`)
      this.openGroup = task
    }
    this.output.info(`[${label}] ${line}`)
  }

  follow(pod: {
    metadata?: { name?: string; labels?: Record<string, string> }
    spec?: { containers: { name: string }[] }
  }): void {
    const podName = pod.metadata?.name
    if (!podName) return
    const task = pod.metadata?.labels?.['tekton.dev/pipelineTask'] ?? podName
    for (const { name: container } of pod.spec?.containers ?? []) {
      if (!container.startsWith('step-')) continue
      const key = `${podName}/${container}`
      if (this.followers.has(key)) continue
      const label = `${task}/${container.slice('step-'.length)}`
      const tail: string[] = []
      this.tails.set(label, tail)
      this.followers.set(
        key,
        followContainerLog(this.kube, {
          namespace: this.namespace,
          pod: podName,
          container,
          onLine: (line) => {
            tail.push(line)
            if (tail.length > KEEP_LINES) tail.shift()
            this.print(task, label, line)
          },
          isFinished: () => containerFinished(this.kube, this.namespace, podName, container),
          stop: this.stop.signal,
        }).catch((err: unknown) => core.debug(`log of ${key}: ${apiMessage(err)}`)),
      )
    }
  }

  tail(task: string, step: string): string[] {
    return (this.tails.get(`${task}/${step}`) ?? []).slice(-TAIL_LINES)
  }

  /** Tells the followers the run is over: each reads what is left once, then stops. */
  async finish(podWatch: Promise<void>): Promise<void> {
    this.stop.abort()
    await podWatch
    // A log read that hangs must not hold the run: the verdict is already known.
    let timer: NodeJS.Timeout | undefined
    await Promise.race([
      Promise.allSettled(this.followers.values()),
      new Promise((resolve) => (timer = setTimeout(resolve, 15_000))),
    ])
    clearTimeout(timer)
    if (this.openGroup !== undefined) this.output.endGroup()
    this.openGroup = undefined
  }
}

/**
 * `; pod P: container C waiting (ErrImagePull: ...)` for each container of
 * the run's pods that has not started: what keeps a run from going on (an
 * image the node cannot pull, a pod still being created), as the kubelet
 * says it; and `; pod P is on node N, which is not Ready (...)` for a pod
 * whose node stopped answering, where nothing the kubelet says is news.
 */
async function waitingContainers(kube: Kube, namespace: string, selector: string): Promise<string> {
  try {
    const pods = await kube.core.listNamespacedPod({ namespace, labelSelector: selector })
    const waiting: string[] = []
    const notReady = await nodesNotReady(
      kube,
      pods.items.map((p) => p.spec?.nodeName),
    )
    for (const pod of pods.items) {
      const node = pod.spec?.nodeName
      const why = node === undefined ? undefined : notReady.get(node)
      if (why)
        waiting.push(`pod ${pod.metadata?.name} is on node ${node}, which is not Ready (${why})`)
      const statuses = [
        ...(pod.status?.initContainerStatuses ?? []),
        ...(pod.status?.containerStatuses ?? []),
      ]
      for (const status of statuses) {
        const reason = status.state?.waiting?.reason
        if (!reason) continue
        const message = status.state?.waiting?.message
        waiting.push(
          `pod ${pod.metadata?.name}: container ${status.name} waiting (${reason}${message ? `: ${message}` : ''})`,
        )
      }
    }
    return waiting.map((w) => `; ${w}`).join('')
  } catch {
    return '' // Diagnostics only: the timeout is reported anyway.
  }
}

/** The nodes among `names` whose Ready condition is not True, with the condition's reason and message. */
async function nodesNotReady(
  kube: Kube,
  names: (string | undefined)[],
): Promise<Map<string, string>> {
  const found = new Map<string, string>()
  for (const name of new Set(names.filter((n): n is string => n !== undefined))) {
    // Reading nodes may not be allowed (cluster: existing): then no word on them.
    const node = await kube.core.readNode({ name }).catch(() => undefined)
    if (!node) continue
    const ready = node.status?.conditions?.find((c) => c.type === 'Ready')
    if (ready?.status === 'True') continue
    const since = ready?.lastTransitionTime
      ? ` since ${new Date(ready.lastTransitionTime).toISOString()}`
      : ''
    found.set(
      name,
      ready
        ? `Ready=${ready.status}${since}: ${ready.reason ?? ''}${ready.message ? `, ${ready.message}` : ''}`
        : 'no Ready condition',
    )
  }
  return found
}

async function cancel(kube: Kube, namespace: string, name: string): Promise<void> {
  try {
    await kube.objects.patch(
      {
        apiVersion: TEKTON,
        kind: 'PipelineRun',
        metadata: { name, namespace },
        spec: { status: 'Cancelled' },
      },
      undefined,
      undefined,
      'oml-chains-action-cancel',
      undefined,
      PatchStrategy.MergePatch,
    )
  } catch (err) {
    core.warning(`cancelling PipelineRun ${namespace}/${name} failed: ${apiMessage(err)}`)
  }
}

/** Reason and message of the run, the failing task and step, and that step's last log lines. */
async function failureMessage(
  kube: Kube,
  where: string,
  run: PipelineRunObject,
  logs: StepLogs,
): Promise<string> {
  const c = conditionOf(run, 'Succeeded')
  let text = `${where} failed: ${c?.reason ?? 'Failed'}: ${c?.message ?? 'no message'}`
  try {
    const taskRuns = await kube.objects.list<TaskRunObject>(
      TEKTON,
      'TaskRun',
      run.metadata.namespace,
      undefined,
      undefined,
      undefined,
      undefined,
      `tekton.dev/pipelineRun=${run.metadata.name}`,
    )
    const failed = taskRuns.items.find((t) => conditionOf(t, 'Succeeded')?.status === 'False')
    if (failed) {
      const task = failed.metadata.labels?.['tekton.dev/pipelineTask'] ?? failed.metadata.name
      const step = failed.status?.steps?.find(
        (s) => s.terminated?.exitCode !== undefined && s.terminated.exitCode !== 0,
      )
      text += `\nfailing task: ${task}${step ? `, step: ${step.name}` : ''}`
      const tc = conditionOf(failed, 'Succeeded')
      if (tc?.message) text += ` (${tc.reason ?? 'Failed'}: ${tc.message})`
      const tail = step ? logs.tail(task, step.name) : []
      if (tail.length > 0) {
        text += `\nlast ${tail.length} lines of ${task}/${step!.name}:\n${tail.join('\n')}`
      }
    }
  } catch (err) {
    text += `\n(the TaskRuns could not be read: ${apiMessage(err)})`
  }
  return text
}

/** The results, with IMAGE_URL naming the image asked for and IMAGE_DIGEST a sha256 digest. */
export function checkResults(
  where: string,
  run: PipelineRunObject,
  image: string,
): PipelineOutcome {
  const results: Record<string, unknown> = {}
  for (const r of run.status?.results ?? []) results[r.name] = r.value
  const imageUrl = results.IMAGE_URL
  const imageDigest = results.IMAGE_DIGEST
  if (typeof imageDigest !== 'string' || !/^sha256:[0-9a-f]{64}$/.test(imageDigest.trim())) {
    throw new UserError(
      `${where} succeeded but its IMAGE_DIGEST result is ${JSON.stringify(imageDigest)}, not sha256:<64 hex digits>`,
    )
  }
  if (typeof imageUrl !== 'string' || imageUrl.trim() !== image) {
    throw new UserError(
      `${where} succeeded but its IMAGE_URL result is ${JSON.stringify(imageUrl)}, not the image asked for (${image})`,
    )
  }
  return {
    pipelineRun: `${run.metadata.namespace}/${run.metadata.name}`,
    results,
    imageUrl: imageUrl.trim(),
    imageDigest: imageDigest.trim() as Digest,
  }
}

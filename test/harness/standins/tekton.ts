/**
 * Stand-in for the Tekton Pipelines controller (and the pods it starts),
 * which needs containers. It watches PipelineRuns (tekton.dev/v1, from the
 * release's CRDs) and does what the controller (v1.x) and a node would:
 *
 * - resolves the Pipeline (pipelineRef or pipelineSpec) and each Task, with
 *   the PipelineRun's params merged over the Pipeline's defaults and each
 *   pipeline task's params over the Task's defaults (tekton-specs.ts);
 * - labels the PipelineRun `tekton.dev/pipeline`, and creates a TaskRun per
 *   pipeline task, owned by the PipelineRun and labelled as Tekton labels it
 *   (the PipelineRun's labels, `tekton.dev/pipelineRun`, `pipelineRunUID`,
 *   `pipelineTask`, `memberOf`, `task`, `app.kubernetes.io/managed-by:
 *   tekton-pipelines`), and a Pod record `<taskrun>-pod` bound to the stand-in
 *   kubelet's Node (the TaskRun's labels plus `tekton.dev/taskRun`,
 *   `taskRunUID`), one container `step-<name>` per step;
 * - runs each step's `script`, or `command` + `args`, as a local process
 *   (tekton-steps.ts: the step's image is not run; `resolveCommand` maps an
 *   image's command to a local one, by default `python /app/train.py` to the
 *   test Python and `trainer/train.py`), with `$(params.X)` and
 *   `$(results.X.path)` substituted and the `/tekton/results` mount replaced
 *   by a temp results directory, and the step's `env` set; its output is the
 *   container's log in the kubelet stand-in, so it is read through the real
 *   API server;
 * - writes statuses as Tekton does (tekton-status.ts): the Pod's container
 *   states; the TaskRun's `podName`, `startTime`, `completionTime`, resolved
 *   `taskSpec`, Succeeded condition (Succeeded / Failed), `results` (object
 *   results parsed as JSON) and `steps` (name, container, `imageID`,
 *   terminated state); the PipelineRun's `startTime`, `completionTime`,
 *   `pipelineSpec`, condition, `results` mapped from the Pipeline's
 *   `$(tasks.X.results.Y)` and `childReferences` (apiVersion, kind, name,
 *   pipelineTaskName).
 *
 * A step's `imageID` is its image by digest; nothing is pulled, so an image
 * given only by tag keeps its reference as imageID (see `imageIdOf`).
 * Not played: `finally` tasks, `when`, retries, timeouts, cancelling,
 * workspaces, sidecars, `$(context.*)`.
 *
 * Real Tekton (built here, on the real node) runs the bundled pipeline in
 * test/node/. This stand-in stays for what needs a kubelet that can be told
 * to fail: a log stream dropped midway (src/phases/pipeline.test.ts), and the
 * end-to-end runs of the bundle (test/e2e, test/cli-run.test.ts), which need
 * the Chains stand-in: it plays what the pinned Chains v0.29.2 does and the
 * real v0.26.3 on the node does not, and the Chains faults.
 */
import { CustomObjectsApi } from '@kubernetes/client-node'
import { apiMessage, connect } from '../../../src/kube/client.js'
import type { KubeObject } from '../../../src/kube/objects.js'
import { withRetry } from '../../../src/kube/retry.js'
import type { KubeletStandIn } from './kubelet.js'
import {
  asText,
  paramValues,
  pipelineRunLabels,
  podLabels,
  resolvePipelineSpec,
  resolveTaskSpec,
  substitute,
  taskRunLabels,
  type PipelineRun,
  type PipelineSpec,
  type TaskSpec,
} from './tekton-specs.js'
import { condition, now, setPipelineRunLabels, setStatus, type Kube } from './tekton-status.js'
import { runTask, type StepsContext } from './tekton-steps.js'
import { watchAll, type Watched } from './watch.js'

export { defaultResolveCommand } from './tekton-steps.js'

/**
 * A trainer image by digest for tests: never pulled or run, since the
 * stand-in runs the repository's trainer for the step's command.
 */
export const STAND_IN_TRAINER_IMAGE = `registry.local:5000/oml-chains/trainer@sha256:${'1'.repeat(64)}`

const TEKTON = 'tekton.dev/v1'

export interface TektonStandInOptions {
  kubelet: KubeletStandIn
  /** Maps a step's command (after substitution) to a local one. */
  resolveCommand?: (argv: string[]) => string[]
  log?: (message: string) => void
}

export interface TektonStandIn {
  stop(): Promise<void>
}

export async function startTektonStandIn(
  kubeconfig: string,
  options: TektonStandInOptions,
): Promise<TektonStandIn> {
  const base = connect(kubeconfig, 'tekton stand-in kubeconfig')
  const kube = { ...base, custom: base.config.makeApiClient(CustomObjectsApi) }
  const log = options.log ?? ((message) => console.error(`tekton stand-in: ${message}`))
  const started = new Set<string>()
  const running = new Set<Promise<void>>()
  let stopped = false
  const ctx: Context = {
    kube,
    kubelet: options.kubelet,
    resolveCommand: options.resolveCommand,
    children: new Set(),
    isStopped: () => stopped,
  }

  // A CRD applied just before answers 429 "storage is (re)initializing" for a moment.
  const watched: Watched<PipelineRun> = await withRetry(
    () =>
      watchAll<PipelineRun>(kube, TEKTON, 'PipelineRun', (type, run) => {
        if (type === 'delete' || stopped) return
        const uid = run.metadata.uid ?? `${run.metadata.namespace}/${run.metadata.name}`
        if (started.has(uid) || run.status?.conditions?.some((c) => c.status !== 'Unknown')) return
        started.add(uid)
        const work = reconcile(ctx, run)
          .catch((err: unknown) => log(`${run.metadata.name}: ${apiMessage(err)}`))
          .finally(() => running.delete(work))
        running.add(work)
      }),
    Date.now() + 30_000,
    'watching PipelineRuns',
    () => undefined,
  )
  return {
    async stop() {
      stopped = true
      await watched.stop()
      for (const child of ctx.children) child.kill('SIGKILL')
      await Promise.allSettled([...running])
    },
  }
}

interface Context extends StepsContext {
  isStopped(): boolean
}

/** A Pipeline's or Task's spec and labels. */
async function readSpec<T>(
  kube: Kube,
  kind: 'Pipeline' | 'Task',
  namespace: string,
  name: string,
): Promise<{ spec: T; labels: Record<string, string> }> {
  const found = await kube.objects.read({ apiVersion: TEKTON, kind, metadata: { name, namespace } })
  return { spec: (found as unknown as { spec: T }).spec, labels: found.metadata?.labels ?? {} }
}

async function reconcile(ctx: Context, run: PipelineRun): Promise<void> {
  const { kube } = ctx
  const namespace = run.metadata.namespace
  const prName = run.metadata.name
  const declared = run.spec.pipelineSpec
    ? { spec: run.spec.pipelineSpec, labels: {} }
    : await readSpec<PipelineSpec>(kube, 'Pipeline', namespace, run.spec.pipelineRef!.name)
  const pipeline = resolvePipelineSpec(
    declared.spec,
    paramValues(declared.spec.params, run.spec.params),
  )
  const runLabels = pipelineRunLabels(run, declared.labels)
  await setPipelineRunLabels(kube, namespace, prName, runLabels)
  await setStatus(kube, 'PipelineRun', namespace, prName, {
    startTime: now(),
    pipelineSpec: pipeline,
    conditions: [
      condition(
        'Unknown',
        'Running',
        'Tasks Completed: 0 (Failed: 0, Cancelled 0), Incomplete: 1, Skipped: 0',
      ),
    ],
  })

  const childReferences: unknown[] = []
  const taskResults: Record<string, Record<string, unknown>> = {}
  for (const pipelineTask of pipeline.tasks) {
    const declaredTask = pipelineTask.taskSpec
      ? { spec: pipelineTask.taskSpec, labels: {} }
      : await readSpec<TaskSpec>(kube, 'Task', namespace, pipelineTask.taskRef!.name)
    const task = resolveTaskSpec(
      declaredTask.spec,
      paramValues(declaredTask.spec.params, pipelineTask.params),
    )
    const taskRunName = `${prName}-${pipelineTask.name}`
    const podName = `${taskRunName}-pod`
    const serviceAccountName = run.spec.taskRunTemplate?.serviceAccountName ?? 'default'
    const taskRun = await kube.objects.create({
      apiVersion: TEKTON,
      kind: 'TaskRun',
      metadata: {
        name: taskRunName,
        namespace,
        labels: taskRunLabels(run, runLabels, pipelineTask, declaredTask.labels),
        ownerReferences: [
          {
            apiVersion: TEKTON,
            kind: 'PipelineRun',
            name: prName,
            uid: run.metadata.uid!,
            controller: true,
            blockOwnerDeletion: true,
          },
        ],
      },
      spec: {
        ...(pipelineTask.taskRef
          ? { taskRef: { name: pipelineTask.taskRef.name, kind: 'Task' } }
          : {}),
        ...(pipelineTask.taskSpec ? { taskSpec: pipelineTask.taskSpec } : {}),
        params: pipelineTask.params ?? [],
        serviceAccountName,
      },
    } as KubeObject)
    const taskRunUid = String(taskRun.metadata?.uid ?? '')
    childReferences.push({
      apiVersion: TEKTON,
      kind: 'TaskRun',
      name: taskRunName,
      pipelineTaskName: pipelineTask.name,
    })
    await setStatus(kube, 'PipelineRun', namespace, prName, { childReferences })
    await kube.core.createNamespacedPod({
      namespace,
      body: {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: {
          name: podName,
          namespace,
          labels: podLabels(taskRunName, taskRunUid, taskRun.metadata?.labels ?? {}),
          ownerReferences: [
            {
              apiVersion: TEKTON,
              kind: 'TaskRun',
              name: taskRunName,
              uid: taskRunUid,
              controller: true,
              blockOwnerDeletion: true,
            },
          ],
        },
        spec: {
          nodeName: ctx.kubelet.nodeName,
          restartPolicy: 'Never',
          serviceAccountName,
          containers: task.steps.map((s) => ({
            name: `step-${s.name}`,
            image: s.image ?? 'scratch',
          })),
        },
      },
    })
    await setStatus(kube, 'TaskRun', namespace, taskRunName, {
      podName,
      startTime: now(),
      taskSpec: task,
      conditions: [
        condition('Unknown', 'Running', 'Not all Steps in the Task have finished executing'),
      ],
    })
    const outcome = await runTask(ctx, namespace, podName, task)
    if (ctx.isStopped()) return
    await setStatus(kube, 'TaskRun', namespace, taskRunName, {
      completionTime: now(),
      conditions: [
        outcome.failed
          ? condition('False', 'Failed', outcome.failed)
          : condition('True', 'Succeeded', 'All Steps have completed executing'),
      ],
      results: outcome.results,
      steps: outcome.steps,
    })
    if (outcome.failed) {
      await setStatus(kube, 'PipelineRun', namespace, prName, {
        completionTime: now(),
        conditions: [
          condition(
            'False',
            'Failed',
            `Tasks Completed: 1 (Failed: 1, Cancelled 0), Skipped: 0; task ${pipelineTask.name} failed: ${outcome.failed}`,
          ),
        ],
      })
      return
    }
    taskResults[pipelineTask.name] = Object.fromEntries(
      outcome.results.map((r) => [r.name, r.value]),
    )
  }
  const resultValues: Record<string, string> = {}
  const wholeObjects: Record<string, unknown> = {}
  for (const [task, results] of Object.entries(taskResults)) {
    for (const [name, value] of Object.entries(results)) {
      resultValues[`tasks.${task}.results.${name}`] = asText(value)
      // `$(tasks.X.results.Y[*])` is a whole object (or array) result, as Tekton resolves it.
      wholeObjects[`$(tasks.${task}.results.${name}[*])`] = value
    }
  }
  await setStatus(kube, 'PipelineRun', namespace, prName, {
    completionTime: now(),
    conditions: [
      condition(
        'True',
        'Succeeded',
        `Tasks Completed: ${pipeline.tasks.length} (Failed: 0, Cancelled 0), Skipped: 0`,
      ),
    ],
    results: (pipeline.results ?? []).map((r) => ({
      name: r.name,
      value: r.value in wholeObjects ? wholeObjects[r.value] : substitute(r.value, resultValues),
    })),
  })
}

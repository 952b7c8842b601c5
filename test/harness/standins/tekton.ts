/**
 * Stand-in for the Tekton Pipelines controller (and the pods it starts),
 * which needs containers. It watches PipelineRuns (tekton.dev/v1, from the
 * release's CRDs) and does what the controller and a node would:
 *
 * - resolves the Pipeline (pipelineRef or pipelineSpec) and each Task, with
 *   the PipelineRun's params merged over the Pipeline's defaults and each
 *   pipeline task's params over the Task's defaults;
 * - creates a TaskRun per pipeline task (labels `tekton.dev/pipelineRun`,
 *   `tekton.dev/pipelineTask`, owned by the PipelineRun) and a Pod record
 *   `<taskrun>-pod` bound to the stand-in kubelet's Node, one container
 *   `step-<name>` per step;
 * - runs each step's `script`, or `command` + `args`, as a local process
 *   (the step's image is not run: `resolveCommand` maps an image's command to
 *   a local one, by default `python /app/train.py` to the test Python and
 *   `trainer/train.py`), with `$(params.X)`, `$(results.X.path)` and the
 *   `/tekton/results` mount replaced by a temp results directory, and the
 *   step's `env` set; its output is the container's log in the kubelet
 *   stand-in, so it is read through the real API server;
 * - writes statuses as Tekton does: the Pod's container states, the TaskRun's
 *   Succeeded condition (Succeeded / Failed) and `results` (object results
 *   parsed as JSON), then the PipelineRun's condition, `results` mapped from
 *   the Pipeline's `$(tasks.X.results.Y)` and `childReferences`.
 *
 * `stall` keeps a PipelineRun running forever (its step never starts).
 */
import {
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
  type V1Pod,
} from '@kubernetes/client-node'
import { spawn } from 'node:child_process'
import { chmod, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { apiMessage, connect } from '../../../src/kube/client.js'
import type { KubeObject } from '../../../src/kube/objects.js'
import { withRetry } from '../../../src/kube/retry.js'
import { repoRoot, toolPath } from '../tools.js'
import type { KubeletStandIn } from './kubelet.js'
import { watchAll, type Watched } from './watch.js'

const TEKTON = 'tekton.dev/v1'
const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch)
const now = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z')

interface TaskRef {
  namespace: string
  pipelineRun: string
  task: string
}

export interface TektonStandInOptions {
  kubelet: KubeletStandIn
  /** Maps a step's command (after substitution) to a local one. */
  resolveCommand?: (argv: string[]) => string[]
  /** PipelineRuns that never finish (their step never starts). */
  stall?: (namespace: string, name: string) => boolean
  log?: (message: string) => void
}

export interface TektonStandIn {
  stop(): Promise<void>
}

/** `python /app/train.py ...` (the trainer image's program) -> the test Python and the repo's trainer. */
export function defaultResolveCommand(argv: string[]): string[] {
  const [program, script, ...rest] = argv
  if (program === 'python' && script === '/app/train.py') {
    return [toolPath('python3'), path.join(repoRoot, 'trainer', 'train.py'), ...rest]
  }
  return argv
}

interface Param {
  name: string
  default?: unknown
  value?: unknown
}
interface Step {
  name: string
  image?: string
  script?: string
  command?: string[]
  args?: string[]
  env?: { name: string; value?: string }[]
}
interface TaskSpec {
  params?: Param[]
  results?: { name: string; type?: string }[]
  steps: Step[]
}
interface PipelineTask {
  name: string
  taskRef?: { name: string }
  taskSpec?: TaskSpec
  params?: Param[]
}
interface PipelineSpec {
  params?: Param[]
  results?: { name: string; value: string }[]
  tasks: PipelineTask[]
}
type PipelineRun = KubeObject & {
  metadata: KubeObject['metadata'] & { uid?: string; namespace: string }
  spec: {
    pipelineRef?: { name: string }
    pipelineSpec?: PipelineSpec
    params?: Param[]
    taskRunTemplate?: { serviceAccountName?: string }
  }
  status?: { conditions?: { type: string; status: string }[] }
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
  const children = new Set<ReturnType<typeof spawn>>()

  // A CRD applied just before answers 429 "storage is (re)initializing" for a moment.
  const watched: Watched<PipelineRun> = await withRetry(
    () =>
      watchAll<PipelineRun>(kube, TEKTON, 'PipelineRun', (type, run) => {
        if (type === 'delete' || stopped) return
        const uid = run.metadata.uid ?? `${run.metadata.namespace}/${run.metadata.name}`
        if (started.has(uid) || run.status?.conditions?.some((c) => c.status !== 'Unknown')) return
        started.add(uid)
        const work = reconcile({ kube, options, children, isStopped: () => stopped }, run)
          .catch((err: unknown) => log(`${run.metadata.name}: ${apiMessage(err)}`))
          .finally(() => running.delete(work))
        running.add(work)
      }),
    Date.now() + 30_000,
  )
  return {
    async stop() {
      stopped = true
      await watched.stop()
      for (const child of children) child.kill('SIGKILL')
      await Promise.allSettled([...running])
    },
  }
}

type Kube = ReturnType<typeof connect> & { custom: CustomObjectsApi }

interface Context {
  kube: Kube
  options: TektonStandInOptions
  children: Set<ReturnType<typeof spawn>>
  isStopped(): boolean
}

function paramValues(declared: Param[] | undefined, given: Param[] | undefined) {
  const values: Record<string, unknown> = {}
  for (const p of declared ?? []) if (p.default !== undefined) values[p.name] = p.default
  for (const p of given ?? []) values[p.name] = p.value
  return values
}

function substitute(text: string, values: Record<string, string>): string {
  return text.replace(/\$\(([^)]+)\)/g, (whole, key: string) => values[key] ?? whole)
}

async function reconcile(ctx: Context, run: PipelineRun): Promise<void> {
  const { kube } = ctx
  const namespace = run.metadata.namespace
  const prName = run.metadata.name
  const pipeline: PipelineSpec =
    run.spec.pipelineSpec ??
    (
      (await kube.objects.read({
        apiVersion: TEKTON,
        kind: 'Pipeline',
        metadata: { name: run.spec.pipelineRef!.name, namespace },
      })) as unknown as { spec: PipelineSpec }
    ).spec
  const pipelineParams = paramValues(pipeline.params, run.spec.params)
  const asText = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v))
  const pipelineValues = Object.fromEntries(
    Object.entries(pipelineParams).map(([k, v]) => [`params.${k}`, asText(v)]),
  )
  await setStatus(kube, 'PipelineRun', namespace, prName, {
    startTime: now(),
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
    const task: TaskSpec =
      pipelineTask.taskSpec ??
      (
        (await kube.objects.read({
          apiVersion: TEKTON,
          kind: 'Task',
          metadata: { name: pipelineTask.taskRef!.name, namespace },
        })) as unknown as { spec: TaskSpec }
      ).spec
    const given = (pipelineTask.params ?? []).map((p) => ({
      name: p.name,
      value: typeof p.value === 'string' ? substitute(p.value, pipelineValues) : p.value,
    }))
    const params = paramValues(task.params, given)
    const taskRunName = `${prName}-${pipelineTask.name}`
    const podName = `${taskRunName}-pod`
    const taskRun = await kube.objects.create({
      apiVersion: TEKTON,
      kind: 'TaskRun',
      metadata: {
        name: taskRunName,
        namespace,
        labels: {
          'tekton.dev/pipelineRun': prName,
          'tekton.dev/pipelineTask': pipelineTask.name,
          'tekton.dev/pipeline': run.spec.pipelineRef?.name ?? prName,
        },
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
        params: given,
        serviceAccountName: run.spec.taskRunTemplate?.serviceAccountName ?? 'default',
      },
    } as KubeObject)
    childReferences.push({
      apiVersion: TEKTON,
      kind: 'TaskRun',
      name: taskRunName,
      pipelineTaskName: pipelineTask.name,
    })
    await kube.core.createNamespacedPod({
      namespace,
      body: {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: {
          name: podName,
          namespace,
          labels: {
            'tekton.dev/taskRun': taskRunName,
            'tekton.dev/pipelineRun': prName,
            'tekton.dev/pipelineTask': pipelineTask.name,
          },
          ownerReferences: [
            {
              apiVersion: TEKTON,
              kind: 'TaskRun',
              name: taskRunName,
              uid: String(taskRun.metadata?.uid ?? ''),
              controller: true,
              blockOwnerDeletion: true,
            },
          ],
        },
        spec: {
          nodeName: ctx.options.kubelet.nodeName,
          restartPolicy: 'Never',
          serviceAccountName: run.spec.taskRunTemplate?.serviceAccountName ?? 'default',
          containers: task.steps.map((s) => ({
            name: `step-${s.name}`,
            image: substitute(
              s.image ?? 'scratch',
              Object.fromEntries(
                Object.entries(params).map(([k, v]) => [`params.${k}`, asText(v)]),
              ),
            ),
          })),
        },
      },
    })
    await setStatus(kube, 'TaskRun', namespace, taskRunName, {
      podName,
      startTime: now(),
      conditions: [
        condition('Unknown', 'Running', 'Not all Steps in the Task have finished executing'),
      ],
    })
    if (ctx.options.stall?.(namespace, prName)) {
      await setPodStatus(kube, namespace, podName, 'Pending', task.steps, {})
      return
    }
    const outcome = await runTask(
      ctx,
      { namespace, pipelineRun: prName, task: pipelineTask.name },
      podName,
      task,
      params,
    )
    if (ctx.isStopped()) return
    await setStatus(kube, 'TaskRun', namespace, taskRunName, {
      podName,
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
        childReferences,
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
    childReferences,
  })
}

interface TaskOutcome {
  /** The failure message, when a step failed. */
  failed?: string
  results: { name: string; type: string; value: unknown }[]
  steps: unknown[]
}

async function runTask(
  ctx: Context,
  where: TaskRef,
  podName: string,
  task: TaskSpec,
  params: Record<string, unknown>,
): Promise<TaskOutcome> {
  const { kube, options } = ctx
  const resultsDir = await mkdtemp(path.join(tmpdir(), 'tekton-results-'))
  const values: Record<string, string> = {}
  for (const [k, v] of Object.entries(params)) {
    values[`params.${k}`] = typeof v === 'string' ? v : JSON.stringify(v)
  }
  for (const r of task.results ?? [])
    values[`results.${r.name}.path`] = path.join(resultsDir, r.name)
  // `/tekton/results` is where Tekton mounts the results volume in the step.
  const sub = (text: string) => substitute(text, values).replaceAll('/tekton/results', resultsDir)
  const states: Record<string, unknown> = {}
  const steps: unknown[] = []
  try {
    for (const step of task.steps) {
      const container = `step-${step.name}`
      const startedAt = now()
      states[container] = { running: { startedAt } }
      await setPodStatus(kube, where.namespace, podName, 'Running', task.steps, states)
      let argv: string[]
      if (step.script) {
        const file = path.join(resultsDir, `.script-${step.name}`)
        const body = sub(step.script)
        await writeFile(file, body.startsWith('#!') ? body : `#!/bin/sh\nset -e\n${body}`)
        await chmod(file, 0o700)
        argv = [file]
      } else {
        argv = (options.resolveCommand ?? defaultResolveCommand)(
          [...(step.command ?? []), ...(step.args ?? [])].map(sub),
        )
      }
      const env: Record<string, string> = {}
      for (const e of step.env ?? []) env[e.name] = sub(e.value ?? '')
      options.kubelet.start(where.namespace, podName, container)
      const exitCode = await runProcess(ctx, argv, env, (text) =>
        options.kubelet.write(where.namespace, podName, container, text),
      )
      options.kubelet.end(where.namespace, podName, container)
      const terminated = {
        exitCode,
        reason: exitCode === 0 ? 'Completed' : 'Error',
        startedAt,
        finishedAt: now(),
      }
      states[container] = { terminated }
      steps.push({ name: step.name, container, terminated })
      if (exitCode !== 0) {
        await setPodStatus(kube, where.namespace, podName, 'Failed', task.steps, states)
        return {
          failed: `"${container}" exited with code ${exitCode}`,
          results: [],
          steps,
        }
      }
    }
    await setPodStatus(kube, where.namespace, podName, 'Succeeded', task.steps, states)
    const results: TaskOutcome['results'] = []
    const present = new Set(await readdir(resultsDir))
    for (const r of task.results ?? []) {
      if (!present.has(r.name)) continue
      const text = await readFile(path.join(resultsDir, r.name), 'utf8')
      const type = r.type ?? 'string'
      results.push({ name: r.name, type, value: type === 'string' ? text : JSON.parse(text) })
    }
    return { results, steps }
  } finally {
    await rm(resultsDir, { recursive: true, force: true })
  }
}

function runProcess(
  ctx: Context,
  argv: string[],
  env: Record<string, string>,
  output: (text: string) => void,
): Promise<number> {
  return new Promise((resolve) => {
    const [file, ...args] = argv
    const child = spawn(file!, args, {
      env: { ...process.env, PYTHONUNBUFFERED: '1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    ctx.children.add(child)
    for (const stream of [child.stdout, child.stderr]) {
      stream.setEncoding('utf8')
      stream.on('data', output)
    }
    child.once('error', (err) => {
      output(`stand-in could not start ${file}: ${err.message}\n`)
      resolve(127)
    })
    child.once('close', (code) => {
      ctx.children.delete(child)
      resolve(code ?? 137)
    })
  })
}

function condition(status: string, reason: string, message: string) {
  return { type: 'Succeeded', status, reason, message, lastTransitionTime: now() }
}

async function setStatus(
  kube: Kube,
  kind: string,
  namespace: string,
  name: string,
  status: Record<string, unknown>,
): Promise<void> {
  // The CRDs have a status subresource: status is written there, as the controller does.
  await kube.custom.patchNamespacedCustomObjectStatus(
    {
      group: 'tekton.dev',
      version: 'v1',
      namespace,
      plural: kind === 'PipelineRun' ? 'pipelineruns' : 'taskruns',
      name,
      body: { status },
    },
    mergePatch,
  )
}

async function setPodStatus(
  kube: Kube,
  namespace: string,
  name: string,
  phase: string,
  steps: Step[],
  states: Record<string, unknown>,
): Promise<void> {
  const status: V1Pod['status'] = {
    phase,
    hostIP: '127.0.0.1',
    containerStatuses: steps.map((s) => {
      const container = `step-${s.name}`
      return {
        name: container,
        image: s.image ?? 'scratch',
        imageID: '',
        ready: false,
        restartCount: 0,
        state: (states[container] ?? { waiting: { reason: 'PodInitializing' } }) as never,
      }
    }),
  }
  await kube.core.patchNamespacedPodStatus({ name, namespace, body: { status } }, mergePatch)
}

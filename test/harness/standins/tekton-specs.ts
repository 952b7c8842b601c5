/**
 * Pipelines and Tasks as the Tekton stand-in resolves them: the shapes it
 * reads, param values over declared defaults, the specs Tekton stores in a
 * run's status, and the labels Tekton puts on the objects it creates.
 */
import type { KubeObject } from '../../../src/kube/objects.js'

export interface Param {
  name: string
  default?: unknown
  value?: unknown
}
export interface Step {
  name: string
  image?: string
  script?: string
  command?: string[]
  args?: string[]
  env?: { name: string; value?: string }[]
}
export interface TaskSpec {
  params?: Param[]
  results?: { name: string; type?: string }[]
  steps: Step[]
}
export interface PipelineTask {
  name: string
  taskRef?: { name: string }
  taskSpec?: TaskSpec
  params?: Param[]
}
export interface PipelineSpec {
  params?: Param[]
  results?: { name: string; value: string }[]
  tasks: PipelineTask[]
}
export type PipelineRun = KubeObject & {
  metadata: KubeObject['metadata'] & { uid?: string; namespace: string }
  spec: {
    pipelineRef?: { name: string }
    pipelineSpec?: PipelineSpec
    params?: Param[]
    taskRunTemplate?: { serviceAccountName?: string }
  }
  status?: { conditions?: { type: string; status: string }[] }
}

/** Where a Task's results are mounted in its steps. */
export const RESULTS_DIR = '/tekton/results'
const MANAGED_BY = 'app.kubernetes.io/managed-by'

export function paramValues(declared: Param[] | undefined, given: Param[] | undefined) {
  const values: Record<string, unknown> = {}
  for (const p of declared ?? []) if (p.default !== undefined) values[p.name] = p.default
  for (const p of given ?? []) values[p.name] = p.value
  return values
}

export const asText = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v))

export function substitute(text: string, values: Record<string, string>): string {
  return text.replace(/\$\(([^)]+)\)/g, (whole, key: string) => values[key] ?? whole)
}

/** `$(…)` replaced in every string of a JSON value. */
function substituteAll<T>(value: T, values: Record<string, string>): T {
  if (typeof value === 'string') return substitute(value, values) as T
  if (Array.isArray(value)) return value.map((v: unknown) => substituteAll(v, values)) as T
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, substituteAll(v, values)]),
    ) as T
  }
  return value
}

function paramTexts(params: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(Object.entries(params).map(([k, v]) => [`params.${k}`, asText(v)]))
}

/**
 * The Pipeline as Tekton stores it in the PipelineRun's `status.pipelineSpec`:
 * the run's params in its tasks' params (task results stay references).
 */
export function resolvePipelineSpec(
  spec: PipelineSpec,
  params: Record<string, unknown>,
): PipelineSpec {
  const values = paramTexts(params)
  return {
    ...spec,
    tasks: spec.tasks.map((task) => ({
      ...task,
      params: (task.params ?? []).map((p) => ({
        name: p.name,
        value: substituteAll(p.value, values),
      })),
    })),
  }
}

/**
 * The Task as Tekton stores it in the TaskRun's `status.taskSpec` and runs
 * it: params and `$(results.X.path)` substituted in the steps.
 */
export function resolveTaskSpec(spec: TaskSpec, params: Record<string, unknown>): TaskSpec {
  const values = paramTexts(params)
  for (const r of spec.results ?? []) values[`results.${r.name}.path`] = `${RESULTS_DIR}/${r.name}`
  return { ...spec, steps: spec.steps.map((step) => substituteAll(step, values)) }
}

type Labels = Record<string, string>

/** A PipelineRun's labels once Tekton resolved its Pipeline: the Pipeline's, its own, the Pipeline's name. */
export function pipelineRunLabels(run: PipelineRun, pipelineLabels: Labels = {}): Labels {
  const own = run.metadata.labels ?? {}
  const pipeline = run.spec.pipelineRef?.name ?? own['tekton.dev/pipeline'] ?? run.metadata.name
  return { ...pipelineLabels, ...own, 'tekton.dev/pipeline': pipeline }
}

/**
 * A pipeline task's TaskRun labels: the Task's, under the PipelineRun's
 * (Tekton copies them), the run and task names, and the default managed-by.
 */
export function taskRunLabels(
  run: PipelineRun,
  runLabels: Labels,
  task: PipelineTask,
  taskLabels: Labels = {},
): Labels {
  return {
    ...taskLabels,
    [MANAGED_BY]: 'tekton-pipelines',
    ...runLabels,
    'tekton.dev/pipelineRun': run.metadata.name,
    'tekton.dev/pipelineRunUID': run.metadata.uid ?? '',
    'tekton.dev/pipelineTask': task.name,
    'tekton.dev/memberOf': 'tasks',
    ...(task.taskRef && { 'tekton.dev/task': task.taskRef.name }),
  }
}

/** A TaskRun's Pod labels: the TaskRun's, its name and uid; managed-by is always Tekton's. */
export function podLabels(taskRunName: string, taskRunUid: string, labels: Labels): Labels {
  return {
    ...labels,
    'tekton.dev/taskRun': taskRunName,
    'tekton.dev/taskRunUID': taskRunUid,
    [MANAGED_BY]: 'tekton-pipelines',
  }
}

/**
 * Chains' slsa/v1 provenance of a TaskRun or PipelineRun: an in-toto
 * Statement v0.1 with a SLSA v0.2 predicate. Built, as Chains builds it, from
 * what Tekton wrote in the runs' status only (`taskSpec`, `pipelineSpec`,
 * step `imageID`, times, results), never from the Task, Pipeline or Pod.
 */
import {
  CHAINS_ANNOTATION_PREFIX,
  CHAINS_REPRODUCIBLE,
} from '../../../src/kube/chains-annotations.js'
import {
  appendMaterials,
  appendSubjects,
  gitMaterials,
  imageMaterial,
  inputMaterials,
  subjectsOf,
  type Material,
  type Subject,
} from './chains-artifacts.js'
import type { ChainsConfig } from './chains-config.js'
import {
  TEKTON,
  type Param,
  type PipelineTask,
  type Run,
  type RunResult,
  type StepState,
} from './chains-run.js'

interface StepAttestation {
  entryPoint: string
  arguments: string[] | null
  environment: { image: string; container: string }
  annotations: null
}
interface Invocation {
  configSource: Record<string, never>
  parameters: Record<string, unknown>
  environment?: { annotations?: Record<string, string>; labels?: Record<string, string> }
}
interface TaskAttestation {
  name: string
  after?: string[]
  ref: Record<string, unknown>
  startedOn: string
  finishedOn: string
  serviceAccountName?: string
  status: string
  steps?: StepAttestation[]
  invocation: Invocation
  results?: RunResult[]
}
/** The SLSA v0.2 predicate of Chains' slsa/v1 format, fields in Chains' order. */
export interface Predicate {
  builder: { id: string }
  buildType: string
  invocation: Invocation
  buildConfig: { steps: StepAttestation[] } | { tasks: TaskAttestation[] }
  metadata: {
    buildStartedOn?: string
    buildFinishedOn?: string
    completeness: { parameters: boolean; environment: boolean; materials: boolean }
    reproducible: boolean
  }
  materials: Material[]
}
export interface Provenance {
  subjects: Subject[]
  predicate: Predicate
}

function invocation(run: Run, params: Param[] | undefined, specs: Param[] | undefined): Invocation {
  const parameters: Record<string, unknown> = {}
  for (const p of specs ?? []) if (p.default !== undefined) parameters[p.name] = p.default
  for (const p of params ?? []) parameters[p.name] = p.value
  const environment: NonNullable<Invocation['environment']> = {}
  const annotations = Object.fromEntries(
    Object.entries(run.metadata.annotations ?? {}).filter(
      ([name]) =>
        !name.startsWith(CHAINS_ANNOTATION_PREFIX) &&
        name !== 'kubectl.kubernetes.io/last-applied-configuration',
    ),
  )
  if (Object.keys(annotations).length > 0) environment.annotations = annotations
  const labels = run.metadata.labels ?? {}
  if (Object.keys(labels).length > 0) environment.labels = labels
  return {
    configSource: {},
    parameters,
    ...(Object.keys(environment).length > 0 && { environment }),
  }
}

/** RFC 3339 in UTC, seconds as Kubernetes keeps them. */
function utc(time: string | undefined): string | undefined {
  return time ? new Date(time).toISOString().replace(/\.000Z$/, 'Z') : undefined
}

function metadata(run: Run): Predicate['metadata'] {
  return {
    buildStartedOn: utc(run.status?.startTime),
    buildFinishedOn: utc(run.status?.completionTime),
    completeness: { parameters: false, environment: false, materials: false },
    reproducible: run.metadata.labels?.[CHAINS_REPRODUCIBLE] === 'true',
  }
}

/** The image a step ran, as Tekton recorded it (Docker's `docker-pullable://` dropped). */
function imageIdOf(state: StepState): string {
  return (state.imageID ?? '').replace(/^docker-pullable:\/\//, '')
}

function stepMaterials(run: Run): Material[] {
  return appendMaterials(
    [],
    (run.status?.steps ?? []).map((state) => imageMaterial(imageIdOf(state))),
  )
}

function stepAttestations(run: Run): StepAttestation[] {
  return (run.status?.steps ?? []).map((state) => {
    const step = run.status?.taskSpec?.steps.find((s) => s.name === state.name)
    return {
      entryPoint: step?.script ?? (step?.command ?? []).join(' '),
      arguments: step?.args ?? null,
      environment: { image: `oci://${imageIdOf(state)}`, container: state.name },
      annotations: null,
    }
  })
}

export function taskRunProvenance(run: Run, config: ChainsConfig): Provenance {
  const spec = run.status?.taskSpec
  const results = run.status?.results ?? []
  const materials = appendMaterials(
    stepMaterials(run),
    gitMaterials([spec?.params ?? [], run.spec.params ?? [], results]),
  )
  appendMaterials(materials, inputMaterials(results))
  return {
    subjects: subjectsOf(results),
    predicate: {
      builder: { id: config.builderId },
      buildType: `${TEKTON}/TaskRun`,
      invocation: invocation(run, run.spec.params, spec?.params),
      buildConfig: { steps: stepAttestations(run) },
      metadata: metadata(run),
      materials,
    },
  }
}

/** Pipeline tasks whose results this task's params or `when` refer to. */
function resultRefs(task: PipelineTask): string[] {
  const text = JSON.stringify([task.params ?? [], task.when ?? []])
  return [...text.matchAll(/\$\(tasks\.([^.)]+)\.results\./g)].map((m) => m[1]!)
}

function taskStatus(run: Run): string {
  const first = run.status?.conditions?.[0]
  if (!first) return ''
  return first.status === 'True' ? 'Succeeded' : first.status === 'False' ? 'Failed' : 'Running'
}

/** `taskRuns`: the run's TaskRuns, found from its `childReferences` as Chains finds them. */
export function pipelineRunProvenance(run: Run, taskRuns: Run[], config: ChainsConfig): Provenance {
  const spec = run.status?.pipelineSpec
  const tasks: TaskAttestation[] = []
  const materials: Material[] = []
  let subjects: Subject[] = []
  const inspected: Material[] = []
  const pipelineTasks = [...(spec?.tasks ?? []), ...(spec?.finally ?? [])]
  let last = ''
  for (const [index, task] of pipelineTasks.entries()) {
    const runs = taskRuns.filter(
      (t) => t.metadata.labels?.['tekton.dev/pipelineTask'] === task.name,
    )
    for (const taskRun of runs) {
      if (!taskRun.status?.completionTime) continue
      const taskSpec = taskRun.status.taskSpec
      appendMaterials(materials, stepMaterials(taskRun))
      const results = taskRun.status.results ?? []
      if (config.pipelinerun.deepInspection) {
        subjects = appendSubjects(subjects, subjectsOf(results))
        appendMaterials(
          inspected,
          gitMaterials([taskSpec?.params ?? [], taskRun.spec.params ?? [], results]),
        )
        appendMaterials(inspected, inputMaterials(results))
      }
      if (!taskSpec || taskSpec.steps.length !== (taskRun.status.steps ?? []).length) continue
      const after = [...(task.runAfter ?? [])]
      for (const ref of resultRefs(task)) if (!after.includes(ref)) after.push(ref)
      // A finally task without runAfter ran after the last task that ran.
      if (after.length === 0 && index >= (spec?.tasks.length ?? 0) && last) after.push(last)
      const serviceAccountName = run.spec.taskRunTemplate?.serviceAccountName
      const steps = stepAttestations(taskRun)
      tasks.push({
        name: task.name,
        ...(after.length > 0 && { after }),
        ref: task.taskRef ?? {},
        startedOn: utc(taskRun.status.startTime) ?? '',
        finishedOn: utc(taskRun.status.completionTime) ?? '',
        ...(serviceAccountName && { serviceAccountName }),
        status: taskStatus(taskRun),
        ...(steps.length > 0 && { steps }),
        invocation: invocation(taskRun, taskRun.spec.params, taskSpec.params),
        ...(results.length > 0 && { results }),
      })
    }
    if (index < (spec?.tasks.length ?? 0)) last = task.name
  }
  const results = run.status?.results ?? []
  appendMaterials(materials, inputMaterials(results))
  appendMaterials(materials, inspected)
  appendMaterials(materials, gitMaterials([spec?.params ?? [], run.spec.params ?? [], results]))
  return {
    subjects: appendSubjects(subjects, subjectsOf(results)),
    predicate: {
      builder: { id: config.builderId },
      buildType: `${TEKTON}/PipelineRun`,
      invocation: invocation(run, run.spec.params, spec?.params),
      buildConfig: { tasks },
      metadata: metadata(run),
      materials,
    },
  }
}

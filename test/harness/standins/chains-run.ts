/**
 * The parts of Tekton's TaskRuns and PipelineRuns (tekton.dev/v1) the Chains
 * stand-in reads, and how it reads them: live from the API server.
 */
import { statusOf, type Kube } from '../../../src/kube/client.js'
import type { KubeObject } from '../../../src/kube/objects.js'

export const TEKTON = 'tekton.dev/v1'

export interface RunKey {
  kind: 'TaskRun' | 'PipelineRun'
  namespace: string
  name: string
}

export interface Param {
  name: string
  value?: unknown
  default?: unknown
}
export interface StepSpec {
  name: string
  image?: string
  script?: string
  command?: string[]
  args?: string[]
}
export interface TaskSpec {
  params?: Param[]
  steps: StepSpec[]
}
export interface PipelineTask {
  name: string
  taskRef?: Record<string, unknown> & { name?: string }
  taskSpec?: TaskSpec
  params?: Param[]
  runAfter?: string[]
  when?: unknown[]
}
export interface PipelineSpec {
  params?: Param[]
  tasks: PipelineTask[]
  finally?: PipelineTask[]
}
export interface RunResult {
  name: string
  type?: string
  value: unknown
}
export interface StepState {
  name: string
  container?: string
  imageID?: string
}
export type Run = KubeObject & {
  metadata: KubeObject['metadata'] & {
    namespace: string
    uid?: string
    annotations?: Record<string, string>
  }
  spec: {
    params?: Param[]
    taskRunTemplate?: { serviceAccountName?: string }
  }
  status?: {
    conditions?: { type: string; status: string }[]
    startTime?: string
    completionTime?: string
    results?: RunResult[]
    steps?: StepState[]
    podName?: string
    /** The resolved spec Tekton ran: what Chains reads, never the Task itself. */
    taskSpec?: TaskSpec
    pipelineSpec?: PipelineSpec
    childReferences?: { name: string; kind?: string; pipelineTaskName?: string }[]
  }
}

export async function readRun(kube: Kube, key: RunKey): Promise<Run | undefined> {
  try {
    return (await kube.objects.read({
      apiVersion: TEKTON,
      kind: key.kind,
      metadata: { name: key.name, namespace: key.namespace },
    })) as Run
  } catch (err) {
    if (statusOf(err) === 404) return undefined
    throw err
  }
}

/** Done: Tekton set a final Succeeded condition (Chains signs failed runs too). */
export function isDone(run: Run): boolean {
  const succeeded = run.status?.conditions?.find((c) => c.type === 'Succeeded')
  return succeeded !== undefined && succeeded.status !== 'Unknown'
}

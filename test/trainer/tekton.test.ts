import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { repoRoot } from '../harness/tools.js'

// Loose shapes: the test asserts on what it reads.
type Doc = {
  apiVersion: string
  kind: string
  metadata: { name: string }
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  spec: Record<string, any>
}

const load = async (file: string): Promise<Doc> =>
  parse(await readFile(path.join(repoRoot, 'tekton', file), 'utf8')) as Doc

const params = ['IMAGE', 'DATASET', 'MIN_ACCURACY', 'TRAINER_IMAGE']
const pipelineResults = ['IMAGE_URL', 'IMAGE_DIGEST', 'DATASET_URL', 'DATASET_DIGEST', 'ACCURACY']

describe('tekton resources', () => {
  it('Task: params, results, a non-root step with an explicit command', async () => {
    const task = await load('task.yaml')
    expect([task.apiVersion, task.kind]).toEqual(['tekton.dev/v1', 'Task'])
    expect(task.spec.params.map((p: { name: string }) => p.name)).toEqual(params)
    expect(task.spec.params.find((p: { name: string }) => p.name === 'MIN_ACCURACY').default).toBe(
      '',
    )
    const results = Object.fromEntries(task.spec.results.map((r: { name: string }) => [r.name, r]))
    expect(Object.keys(results).sort()).toEqual(
      [...pipelineResults, 'DATASET_ARTIFACT_INPUTS'].sort(),
    )
    expect(results.DATASET_ARTIFACT_INPUTS.type).toBe('object')
    expect(Object.keys(results.DATASET_ARTIFACT_INPUTS.properties).sort()).toEqual([
      'digest',
      'uri',
    ])
    expect(task.spec.steps).toHaveLength(1)
    const step = task.spec.steps[0]
    expect(step.image).toBe('$(params.TRAINER_IMAGE)')
    expect(step.command ?? step.script).toBeTruthy()
    expect(step.securityContext.runAsNonRoot).toBe(true)
    expect(step.securityContext.runAsUser).toBeGreaterThan(0)
    const env = Object.fromEntries(
      step.env.map((e: { name: string; value: string }) => [e.name, e.value]),
    )
    for (const name of ['IMAGE', 'DATASET', 'MIN_ACCURACY'])
      expect(env[name]).toBe(`$(params.${name})`)
  })

  it('Pipeline: one task, pipeline results mapped from it', async () => {
    const task = await load('task.yaml')
    const pipeline = await load('pipeline.yaml')
    expect([pipeline.apiVersion, pipeline.kind]).toEqual(['tekton.dev/v1', 'Pipeline'])
    expect(pipeline.spec.params.map((p: { name: string }) => p.name)).toEqual(params)
    expect(pipeline.spec.tasks).toHaveLength(1)
    const [only] = pipeline.spec.tasks
    expect(only.taskRef.name).toBe(task.metadata.name)
    expect(only.params.map((p: { name: string; value: string }) => [p.name, p.value])).toEqual(
      params.map((n) => [n, `$(params.${n})`]),
    )
    expect(
      pipeline.spec.results.map((r: { name: string; value: string }) => [r.name, r.value]),
    ).toEqual([
      ...pipelineResults.map((n) => [n, `$(tasks.${only.name}.results.${n})`]),
      // The whole object, so the PipelineRun attestation lists the dataset as a material.
      ['DATASET_ARTIFACT_INPUTS', `$(tasks.${only.name}.results.DATASET_ARTIFACT_INPUTS[*])`],
    ])
    expect(pipeline.spec.results.at(-1).type).toBe('object')
  })
})

import { execFile } from 'node:child_process'
import path from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { runActionStep } from './harness/action.js'
import { repoRoot } from './harness/tools.js'

// These run the committed bundles: an ESM/CJS mix-up builds fine and only
// fails when the bundle starts.

const errorLines = (stdout: string) => stdout.split('\n').filter((l) => l.startsWith('::error'))
const noStack = (text: string) => expect(text).not.toMatch(/\n\s+at /)
describe('dist/index.js (the action)', () => {
  it('rejects a malformed dataset with one ::error:: line naming the input', async () => {
    const step = await runActionStep({ dataset: 'not a ref' })
    expect(step.code).toBe(1)
    const errors = errorLines(step.stdout)
    expect(errors).toHaveLength(1)
    expect(errors[0]).toMatch(/^::error::input 'dataset': 'not a ref' is not a valid OCI reference/)
    noStack(step.stdout + step.stderr)
    expect(step.outputs.verdict).toBe('error')
    // Nothing was made: no key, no dataset lookup.
    expect(step.outputs['public-key']).toBeUndefined()
    expect(step.outputs['dataset-digest']).toBeUndefined()
  })

  it('reports every bad input at once, one ::error:: line each, and creates nothing', async () => {
    const step = await runActionStep({
      dataset: 'quay.io/mmortari/ml-iris:data',
      'min-accuracy': '2',
      timeout: 'soon',
      params: 'FOO=1',
    })
    expect(step.code).toBe(1)
    const errors = errorLines(step.stdout)
    expect(errors).toEqual([
      "::error::input 'params': FOO is not a param of Pipeline oml-train; it declares MIN_ACCURACY (IMAGE, DATASET, TRAINER_IMAGE come from the action's inputs)",
      `::error::input 'min-accuracy': "2" is not accepted; use a number from 0 to 1, e.g. 0.9`,
      `::error::input 'timeout': "soon" is not accepted; use a duration such as 30m, 1h or 1h30m`,
    ])
    noStack(step.stdout + step.stderr)
    expect(step.outputs).toEqual({ verdict: 'error' })
  })

  it('runs the post step from the saved state', async () => {
    const main = await runActionStep({ dataset: 'not a ref' })
    const post = await runActionStep({ dataset: 'not a ref' }, { state: main.state })
    expect(post.code).toBe(0)
    expect(post.stdout).toMatch(/nothing to clean up/)
  })
})

describe('dist/cli/index.js (oml-chains)', () => {
  const cli = path.join(repoRoot, 'dist', 'cli', 'index.js')

  it('prints its help', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [cli, '--help'])
    expect(stdout).toMatch(/^Usage: oml-chains <command>/m)
    for (const command of ['keygen', 'key-check', 'provenance']) expect(stdout).toContain(command)
  })
})

import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import type { TimingsDocument } from '../src/timing.js'
import { runActionStep } from './harness/action.js'
import { repoRoot } from './harness/tools.js'

// These run the committed bundles: an ESM/CJS mix-up builds fine and only
// fails when the bundle starts.

const fixtureKey = readFileSync(
  path.join(repoRoot, 'test/fixtures/cosign-keys/chains-testdata-cosign.key'),
  'utf8',
)
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

  // The step's harness searches all it leaves for the secret inputs (test/harness/secret-scan.ts).
  it.each([
    {
      given: 'registry-password without registry-username',
      inputs: { 'registry-password': 'registry-password-1234' },
      named: 'registry-username',
    },
    {
      given: 'registry-username and a password, signing-key-password without signing-key',
      inputs: {
        'registry-username': 'bot',
        'registry-password': 'registry-password-1234',
        'signing-key-password': 'lonely-key-password-5678',
      },
      named: 'signing-key',
    },
    {
      given: 'a signing key, inline, that does not open with its password',
      inputs: { 'signing-key': fixtureKey, 'signing-key-password': 'wrong-key-password-9012' },
      named: 'signing-key',
      failedPhase: 'Signing key',
    },
    {
      given: 'a signing key that is not one',
      inputs: {
        'signing-key': '-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nbm90LWEta2V5LWF0LWFsbA==\n',
        'signing-key-password': 'wrong-key-password-9012',
      },
      named: 'signing-key',
      failedPhase: 'Signing key',
    },
  ] as { given: string; inputs: Record<string, string>; named: string; failedPhase?: string }[])(
    'a bad input next to secrets ($given): one error naming $named, no secret shown',
    async ({ inputs, named, failedPhase }) => {
      const step = await runActionStep({ dataset: 'quay.io/mmortari/ml-iris:data', ...inputs })
      expect(step.code).toBe(1)
      const errors = errorLines(step.stdout)
      expect(errors).toHaveLength(1)
      expect(errors[0]).toMatch(new RegExp(`^::error::input '${named}': `))
      noStack(step.stdout + step.stderr)
      if (!failedPhase) {
        // Refused before anything ran.
        expect(step.outputs).toEqual({ verdict: 'error' })
        return
      }
      // Refused by the phase that reads it: the timings say which.
      expect(step.outputs).toEqual({
        verdict: 'error',
        timings: expect.stringMatching(/timings\.json$/),
      })
      const timings = JSON.parse(step.files.timings!) as TimingsDocument
      expect(timings.phases).toContainEqual(
        expect.objectContaining({ phase: failedPhase, ok: false }),
      )
    },
  )

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

import { readFileSync, writeFileSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { recorder } from '../../test/harness/commands.js'
import { repoRoot } from '../../test/harness/tools.js'
import { recordFault } from '../../test/harness/faults/record.js'
import { commandRunner, type Command } from '../tools/exec.js'
import { verifyModel, type VerifyInputs } from './verify.js'

// ec cannot be built here (see test/fixtures/ec/README.md): these check what
// the phase hands ec. The runner answers with a report real ec printed.
const publicKeyPem = readFileSync(
  path.join(repoRoot, 'test/fixtures/cosign-keys/chains-testdata-cosign.pub'),
  'utf8',
)
const digest = `sha256:${'ab'.repeat(32)}` as const
const inputs: VerifyInputs = {
  image: { registry: 'registry.local:5000', repository: 'oml-chains/model', digest },
  publicKeyPem,
  allowedDatasetPrefixes: ['quay.io/mmortari/', 'registry.local:5000/datasets/'],
  minAccuracy: 0.9,
}

const flag = (command: Command, name: string) => command.args[command.args.indexOf(name) + 1]!

/** Answers like ec on a passing image: the report real ec printed for its "happy day". */
function ecPassing() {
  return recorder((command) => {
    const report = flag(command, '--output').replace(/^json=/, '')
    writeFileSync(report, readFileSync(path.join(repoRoot, 'test/fixtures/ec/happy-day.json')))
    return { exitCode: 0 }
  })
}

let work: string
beforeEach(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'verify-'))
})
afterEach(async () => {
  await rm(work, { recursive: true, force: true })
})

describe('verifyModel', () => {
  it('gives ec the model by digest, the run key, and the bundled policy with the rule data', async () => {
    const bundled = await readFile(path.join(repoRoot, 'policy/config.yaml'), 'utf8')
    const ec = ecPassing()
    const result = await verifyModel(inputs, {
      ec: '/tools/ec',
      workDir: work,
      deadline: Date.now() + 60_000,
      run: ec.run,
    })
    expect(result.verdict).toBe('pass')
    const [command] = ec.commands
    expect(flag(command!, '--image')).toBe(`registry.local:5000/oml-chains/model@${digest}`)
    expect(await readFile(flag(command!, '--public-key'), 'utf8')).toBe(publicKeyPem)
    // The bundled config names ./policy/rules: ec runs where that resolves.
    expect(command!.cwd).toBe(repoRoot)
    const policy = JSON.parse(await readFile(flag(command!, '--policy'), 'utf8')) as {
      sources: { policy: string[]; ruleData: Record<string, unknown> }[]
    }
    expect(policy.sources).toEqual([
      {
        name: 'oml-chains',
        policy: ['./policy/rules'],
        ruleData: {
          allowed_dataset_prefixes: ['quay.io/mmortari/', 'registry.local:5000/datasets/'],
          min_accuracy: 0.9,
        },
      },
    ])
    // The bundled file itself is only read.
    expect(await readFile(path.join(repoRoot, 'policy/config.yaml'), 'utf8')).toBe(bundled)
  })

  it("runs a user's policy from the workspace, without a minimum when none is set", async () => {
    const ec = ecPassing()
    const mine = path.join(work, 'my-policy.yaml')
    await writeFile(mine, 'sources:\n  - policy: [./rules]\n    ruleData: {team: ml}\n')
    await verifyModel(
      { ...inputs, policyPath: mine, minAccuracy: undefined, allowedDatasetPrefixes: [] },
      {
        ec: '/tools/ec',
        workDir: path.join(work, 'out'),
        deadline: Date.now() + 60_000,
        workspace: work,
        run: ec.run,
      },
    )
    const [command] = ec.commands
    expect(command!.cwd).toBe(work)
    const policy = JSON.parse(await readFile(flag(command!, '--policy'), 'utf8')) as {
      sources: { ruleData: Record<string, unknown> }[]
    }
    expect(policy.sources[0]!.ruleData).toEqual({ team: 'ml', allowed_dataset_prefixes: [] })
    expect(await readFile(mine, 'utf8')).not.toContain('allowed_dataset_prefixes')
  })
})

// A broken ec, played by the ec stand-in's fault modes (test/harness/standins/ec.mjs),
// run as a process by the action's own runner: each ends in verdict error, in time.
describe('verifyModel with an ec that breaks', () => {
  const standIn = path.join(repoRoot, 'test/harness/standins/ec.mjs')
  const runWith = (fault: string) =>
    commandRunner({
      env: {
        ...(process.env as Record<string, string>),
        EC_STAND_IN_REPORT: path.join(repoRoot, 'test/fixtures/ec/happy-day.json'),
        EC_STAND_IN_FAULT: fault,
      },
    })

  it.each([
    {
      fault: 'crash',
      error:
        /^ec wrote no report \(exit 2\): ec stand-in: crashing before any report, as EC_STAND_IN_FAULT=crash asks$/,
    },
    {
      fault: 'truncate',
      error:
        /^ec's report .*ec-report\.json is not JSON: .* \(exit 0\): ec stand-in: replaying happy-day\.json/,
    },
  ])('ec that does $fault: verdict error, saying what ec did', async ({ fault, error }) => {
    const result = await verifyModel(inputs, {
      ec: standIn,
      workDir: work,
      deadline: Date.now() + 60_000,
      run: runWith(fault),
    })
    expect(result.verdict).toBe('error')
    expect(result.verdict === 'error' && result.error).toMatch(error)
    recordFault(`ec: ${fault === 'crash' ? 'crashes' : 'writes a truncated report'}`, 'reported')
  })

  it('ec that hangs past its deadline: stopped at the run deadline, verdict error', async () => {
    const started = Date.now()
    const result = await verifyModel(inputs, {
      ec: standIn,
      workDir: work,
      deadline: started + 3_000,
      run: runWith('hang'),
    })
    const took = Date.now() - started
    expect(result.verdict).toBe('error')
    expect(result.verdict === 'error' && result.error).toMatch(
      /^ec did not finish by the run's deadline \(3 s after it started, its own --timeout 3 s\) and was stopped \(exit 143\): ec stand-in: hanging until stopped/,
    )
    expect(took).toBeGreaterThanOrEqual(2_500)
    expect(took).toBeLessThan(8_000)
    recordFault('ec: hangs past its deadline', 'reported')
  })
})

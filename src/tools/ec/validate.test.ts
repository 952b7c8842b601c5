import { readFileSync, writeFileSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { recorder } from '../../../test/harness/commands.js'
import { repoRoot } from '../../../test/harness/tools.js'
import { UserError } from '../../errors.js'
import type { Command, CommandResult } from '../exec.js'
import { ecValidateArgs, validateImage, type ValidateImageOptions } from './validate.js'

/** Bytes real ec printed in its own acceptance tests (test/fixtures/ec/README.md). */
const realEc = (name: string) => readFileSync(path.join(repoRoot, 'test/fixtures/ec', name), 'utf8')

const image = `registry.local:5000/oml/model@sha256:${'ab'.repeat(32)}`

let dir: string
let options: ValidateImageOptions
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'ec-validate-'))
  await writeFile(path.join(dir, 'config.yaml'), 'sources:\n  - policy: [./policy/rules]\n')
  options = {
    ec: '/tools/ec',
    image,
    publicKey: path.join(dir, 'cosign.pub'),
    policy: path.join(dir, 'config.yaml'),
    reportPath: path.join(dir, 'out', 'ec-report.json'),
    retryDelayMs: 0,
  }
})
afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

/** The file ec was told to write its JSON report to (`--output json=<file>`). */
function reportFileOf(command: Command): string {
  const output = command.args[command.args.indexOf('--output') + 1] ?? ''
  return output.replace(/^json=/, '')
}

/**
 * A stand-in for the ec process, one reply per run: it writes `report` (the
 * name of a real ec output in test/fixtures/ec) where ec was told to, and
 * exits as ec did. The mapping under test is the action's; the bytes are ec's.
 */
function ecRuns(...runs: { report?: string; exitCode?: number; stderr?: string }[]) {
  let next = 0
  return recorder((command): Partial<CommandResult> => {
    const { report, exitCode = 0, stderr = '' } = runs[next++] ?? {}
    if (report) writeFileSync(reportFileOf(command), realEc(report))
    return { exitCode, stderr }
  })
}

describe('ec validate image arguments', () => {
  it('validates the image by digest against the key and policy, report as JSON to a file', async () => {
    const ec = ecRuns({ report: 'happy-day.json' })
    await validateImage({ ...options, run: ec.run })
    expect(ec.argv()).toEqual([
      [
        '/tools/ec',
        'validate',
        'image',
        '--image',
        image,
        '--public-key',
        path.join(dir, 'cosign.pub'),
        '--policy',
        path.join(dir, 'config.yaml'),
        '--ignore-rekor',
        '--info',
        '--show-successes',
        '--strict=false',
        '--output',
        `json=${path.join(dir, 'out', 'ec-report.json')}`,
      ],
    ])
    expect(ec.commands[0]?.silent).toBeFalsy() // ec's log belongs in the job log
  })

  it("passes ec's own deadline in whole seconds", () => {
    const args = ecValidateArgs({
      image,
      publicKey: 'k',
      policy: 'p',
      reportPath: 'r',
      timeoutMs: 90_000,
    })
    expect(args.slice(-2)).toEqual(['--timeout', '90s'])
  })

  it('gives ec absolute paths, which it can only read as files', async () => {
    const ec = ecRuns({ report: 'happy-day.json' })
    const cwd = process.cwd()
    process.chdir(dir)
    try {
      await validateImage({
        ...options,
        publicKey: 'cosign.pub',
        policy: 'config.yaml',
        reportPath: 'ec.json',
        run: ec.run,
      })
    } finally {
      process.chdir(cwd)
    }
    const args = ec.commands[0]?.args ?? []
    expect(args[args.indexOf('--public-key') + 1]).toBe(path.join(dir, 'cosign.pub'))
    expect(args[args.indexOf('--policy') + 1]).toBe(path.join(dir, 'config.yaml'))
    expect(reportFileOf(ec.commands[0]!)).toBe(path.join(dir, 'ec.json'))
  })

  it('gives rule data through a copy of the config, never --extra-rule-data, and leaves the file alone', async () => {
    const ec = ecRuns({ report: 'happy-day.json' })
    const ruleData = { allowed_dataset_prefixes: ['quay.io/mmortari/'], min_accuracy: 0.9 }

    const result = await validateImage({ ...options, ruleData, run: ec.run })

    const args = ec.commands[0]?.args ?? []
    expect(args).not.toContain('--extra-rule-data')
    const copy = path.join(dir, 'out', 'config.rule-data.json')
    expect(args[args.indexOf('--policy') + 1]).toBe(copy)
    expect(result.policyPath).toBe(copy)
    expect(JSON.parse(await readFile(copy, 'utf8'))).toEqual({
      sources: [{ policy: ['./policy/rules'], ruleData }],
    })
    expect(await readFile(options.policy, 'utf8')).toBe('sources:\n  - policy: [./policy/rules]\n')
  })

  it('refuses options ec would misread, before running it', async () => {
    const ec = ecRuns()
    const refused = (change: Partial<ValidateImageOptions>) =>
      validateImage({ ...options, ...change, run: ec.run })

    await expect(refused({ image: 'registry.local:5000/oml/model:latest' })).rejects.toThrow(
      'ec validates an image by digest (repo@sha256:<hex>), got registry.local:5000/oml/model:latest',
    )
    await expect(refused({ policy: path.join(dir, 'policy') })).rejects.toThrow(
      'must be named *.yaml, *.yml or *.json',
    )
    await expect(refused({ reportPath: path.join(dir, 'a,b.json') })).rejects.toThrow(
      'must not contain "," or "?"',
    )
    const noDigest = refused({ image: 'x' })
    await expect(noDigest).rejects.toBeInstanceOf(UserError)
    await expect(noDigest).rejects.toThrow(
      'ec validates an image by digest (repo@sha256:<hex>), got x',
    )
    expect(ec.commands).toEqual([])
  })
})

describe('verdict mapping, on reports real ec printed', () => {
  it('success: true is a pass', async () => {
    const result = await validateImage({
      ...options,
      run: ecRuns({ report: 'happy-day.json' }).run,
    })
    expect(result.verdict).toBe('pass')
    if (result.verdict === 'error') return
    expect(result.summary).toEqual({ success: true, violations: [], warnings: [], successes: 4 })
    expect(result.report.components[0]?.name).toBe('Unnamed')
    expect(result.reportPath).toBe(options.reportPath)
    expect(result.attempts).toBe(1)
  })

  it('success: true with warnings is a pass that carries them', async () => {
    const ec = ecRuns({ report: 'future-failure-is-a-warning.json' })
    const result = await validateImage({ ...options, run: ec.run })
    expect(result.verdict).toBe('pass')
    if (result.verdict === 'error') return
    expect(result.summary.warnings.map((w) => w.msg)).toEqual([
      'Fails in 2099. This will become a failure starting on ${TIMESTAMP}',
    ])
  })

  it('success: false is a fail, with the violations (the file ec wrote for --output json=<file>)', async () => {
    const ec = ecRuns({ report: 'format-options-output-file.json' })
    const result = await validateImage({ ...options, run: ec.run })
    expect(result.verdict).toBe('fail')
    if (result.verdict === 'error') return
    expect(result.summary.violations.map((v) => v.code)).toEqual([
      'main.reject_with_term',
      'main.reject_with_term',
      'main.rejector',
    ])
    expect(result.attempts).toBe(1) // a policy's answer is not retried
  })

  it('success: false from the signature checks is a fail too', async () => {
    const ec = ecRuns({ report: 'invalid-image-signature.json' })
    const result = await validateImage({ ...options, run: ec.run })
    expect(result.verdict).toBe('fail')
    expect(ec.commands).toHaveLength(1)
  })

  it("no report is an error with ec's last words", async () => {
    const stderr = realEc('invalid-extra-rule-data.stderr.txt')
    const ec = ecRuns({ exitCode: 1, stderr })
    const result = await validateImage({ ...options, run: ec.run })
    expect(result).toMatchObject({
      verdict: 'error',
      error:
        'ec wrote no report (exit 1): Error: incorrect syntax for --extra-rule-data 0\nincorrect syntax for --extra-rule-data 1',
      exitCode: 1,
      stderr,
      attempts: 1,
    })
  })

  it('a report left by an earlier run does not count', async () => {
    await validateImage({ ...options, run: ecRuns({ report: 'happy-day.json' }).run })
    const stderr = realEc('unsupported-policies.stderr.txt')
    const result = await validateImage({ ...options, run: ecRuns({ exitCode: 1, stderr }).run })
    expect(result.verdict).toBe('error')
    if (result.verdict !== 'error') return
    expect(result.error).toContain('returns an unsupported value, at main.rego:5')
  })

  it('a report cut short is an error', async () => {
    const ec = recorder((command) => {
      const real = realEc('happy-day.json')
      writeFileSync(reportFileOf(command), real.slice(0, real.length / 2))
      return {}
    })
    const result = await validateImage({ ...options, run: ec.run })
    expect(result.verdict).toBe('error')
    if (result.verdict !== 'error') return
    expect(result.error).toMatch(
      /^ec's report .*ec-report\.json is not JSON: .* \(exit 0\), and printed nothing on stderr$/,
    )
  })
})

describe('one retry after a registry or network error', () => {
  // go-containerregistry's form of a refused connection, as ec prints it when it stops.
  const refused =
    'Error: error validating image registry.local:5000/oml/model of component Unnamed: Get "http://registry.local:5000/v2/": dial tcp 127.0.0.1:5000: connect: connection refused'

  it('runs ec again, and the second answer stands', async () => {
    const ec = ecRuns({ exitCode: 1, stderr: refused }, { report: 'happy-day.json' })
    const result = await validateImage({ ...options, run: ec.run })
    expect(result.verdict).toBe('pass')
    expect(result.attempts).toBe(2)
    expect(ec.commands).toHaveLength(2)
  })

  it('only once', async () => {
    const ec = ecRuns({ exitCode: 1, stderr: refused }, { exitCode: 1, stderr: refused })
    const result = await validateImage({ ...options, run: ec.run })
    expect(result).toMatchObject({ verdict: 'error', attempts: 2, stderr: refused })
    expect(ec.commands).toHaveLength(2)
  })
})

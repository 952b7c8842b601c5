/**
 * The EC policy in policy/ under the real OPA: its rego unit tests, a strict
 * compile with the builtins of the OPA inside ec, each rule's METADATA as ec
 * reads it, the rules on the real Chains attestation in test/fixtures, and
 * policy/check.sh's argument handling (with a stand-in ec: the real one cannot
 * be built here).
 */
import { execFile } from 'node:child_process'
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { repoRoot, toolPath } from './harness/tools.js'

const policyDir = path.join(repoRoot, 'policy')
const rulesDir = path.join(policyDir, 'rules')
// The rules' unit tests live apart: ec compiles every .rego in the folder
// config.yaml names, tests included.
const testsDir = path.join(policyDir, 'tests')
const checkScript = path.join(policyDir, 'check.sh')
const realEnvelope = path.join(
  repoRoot,
  'test',
  'fixtures',
  'chains-real',
  'taskrun-attestation.dsse.json',
)

/** Every rule of the policy, by the code its results carry (`<package>.<short_name>`). */
const RULES = [
  { pkg: 'dataset', shortName: 'permitted' },
  { pkg: 'dataset', shortName: 'pinned' },
  { pkg: 'model', shortName: 'accuracy' },
  { pkg: 'trainer', shortName: 'pinned' },
] as const

// ec v0.9.115 is built with OPA v1.15.2; OPA publishes capabilities per
// release and v1.15.1 is the nearest, with the same builtins.
const EC_OPA_CAPABILITIES = 'v1.15.1'

interface Run {
  code: number | null
  stdout: string
  stderr: string
}

/** Runs a program to its end; never throws, the exit code is part of the result. */
function run(
  file: string,
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      file,
      args,
      { cwd: repoRoot, timeout: 60_000, maxBuffer: 16 * 1024 * 1024, ...options },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : null) : 0
        resolve({ code, stdout, stderr })
      },
    )
  })
}

/** `opa eval` of `query` over the rules and their tests' inputs, as JSON. */
async function opaEval(query: string, files: { input?: unknown; data?: unknown } = {}) {
  const args = ['eval', '--format', 'json', '--data', rulesDir, '--data', testsDir]
  if (files.data !== undefined) {
    const file = path.join(work, `data-${evals}.json`)
    await writeFile(file, JSON.stringify(files.data))
    args.push('--data', file)
  }
  if (files.input !== undefined) {
    const file = path.join(work, `input-${evals}.json`)
    await writeFile(file, JSON.stringify(files.input))
    args.push('--input', file)
  }
  evals++
  const result = await run(toolPath('opa'), [...args, query])
  expect(result.stderr).toBe('')
  expect(result.code).toBe(0)
  const output = JSON.parse(result.stdout) as { result: { expressions: { value: unknown }[] }[] }
  return output.result[0]!.expressions[0]!.value
}

interface Denial {
  code: string
  msg: string
}

let work: string
let evals = 0

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'oml-policy-'))
})

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true })
})

describe('policy rules under opa', () => {
  it('pass their rego unit tests, with a passing and a failing case for every rule', async () => {
    const result = await run(toolPath('opa'), [
      'test',
      'policy/rules',
      'policy/tests',
      '--format',
      'json',
    ])
    const tests = JSON.parse(result.stdout) as {
      package: string
      name: string
      fail?: boolean
      error?: unknown
    }[]
    const failed = tests.filter((t) => t.fail || t.error !== undefined)
    expect(failed.map((t) => `${t.package}.${t.name}`)).toEqual([])
    expect(result.code).toBe(0)

    // Test names follow test_<short_name>_{pass,fail}_* in package <package>_test.
    for (const { pkg, shortName } of RULES) {
      const names = tests.filter((t) => t.package === `data.${pkg}_test`).map((t) => t.name)
      expect(names, `${pkg}.${shortName}`).toContainEqual(
        expect.stringMatching(new RegExp(`^test_${shortName}_pass_`)),
      )
      expect(names, `${pkg}.${shortName}`).toContainEqual(
        expect.stringMatching(new RegExp(`^test_${shortName}_fail_`)),
      )
    }
  })

  it('compile in strict mode with the builtins of the OPA inside ec, and are opa-formatted', async () => {
    const check = await run(toolPath('opa'), [
      'check',
      '--strict',
      '--capabilities',
      EC_OPA_CAPABILITIES,
      'policy/rules',
      'policy/tests',
    ])
    expect(check.stderr + check.stdout).toBe('')
    expect(check.code).toBe(0)

    const fmt = await run(toolPath('opa'), [
      'fmt',
      '--list',
      '--fail',
      'policy/rules',
      'policy/tests',
    ])
    expect(fmt.stdout, 'files `opa fmt -w policy/rules policy/tests` would change').toBe('')
    expect(fmt.code).toBe(0)
  })

  it('annotate each rule as ec reads it: title, description, short_name, solution', async () => {
    const result = await run(toolPath('opa'), ['inspect', '-a', 'policy/rules', '--format', 'json'])
    expect(result.code).toBe(0)
    const inspected = JSON.parse(result.stdout) as {
      annotations: {
        annotations: {
          scope: string
          title?: string
          description?: string
          custom?: Record<string, unknown>
        }
        location: { file: string }
        path: { value: string }[]
      }[]
    }
    // ec keys rule annotations by `<package>.<short_name>`; a result is
    // matched to its rule by that code.
    const ruleAnnotations = inspected.annotations.filter((a) => a.annotations.scope === 'rule')
    const codes = ruleAnnotations.map((a) => {
      const segments = a.path.slice(1).map((p) => p.value)
      const kind = segments.pop()
      expect(['deny', 'warn']).toContain(kind)
      const { title, description, custom } = a.annotations
      const shortName = custom?.short_name
      expect(typeof shortName === 'string' && shortName.length > 0, 'custom.short_name').toBe(true)
      expect(title?.trim(), `title of ${String(shortName)}`).toBeTruthy()
      expect(description?.trim(), `description of ${String(shortName)}`).toBeTruthy()
      expect(typeof custom?.solution === 'string' && custom.solution.trim() !== '').toBe(true)
      return `${segments.join('.')}.${String(shortName)}`
    })
    // Exactly one annotated rule per code: ec refuses a second rule with the same code.
    expect(codes.toSorted()).toEqual(RULES.map((r) => `${r.pkg}.${r.shortName}`).toSorted())
  })
})

describe('policy rules on the real Chains TaskRun attestation', () => {
  it('find the trainer pinned, and no dataset or accuracy in a TaskRun provenance', async () => {
    const envelope = JSON.parse(await readFile(realEnvelope, 'utf8')) as { payload: string }
    const statement: unknown = JSON.parse(Buffer.from(envelope.payload, 'base64').toString('utf8'))
    const denials = (await opaEval(
      '{"dataset": data.dataset.deny, "model": data.model.deny, "trainer": data.trainer.deny}',
      {
        input: { attestations: [{ statement }] },
        data: {
          rule_data__configuration__: {
            allowed_dataset_prefixes: ['quay.io/mmortari/'],
            min_accuracy: 0.9,
          },
        },
      },
    )) as Record<string, Denial[]>

    // Chains' slsa/v1 TaskRun provenance records steps (by digest) but no task results.
    expect(denials.trainer).toEqual([])
    expect(denials.dataset).toEqual(
      expect.arrayContaining([
        {
          code: 'dataset.permitted',
          msg: 'The provenance records no dataset: no task result DATASET_URL',
        },
        {
          code: 'dataset.pinned',
          msg: 'The provenance records no dataset digest: no task result DATASET_DIGEST',
        },
      ]),
    )
    expect(denials.dataset).toHaveLength(2)
    expect(denials.model).toEqual([
      {
        code: 'model.accuracy',
        msg: 'The provenance records no model accuracy: no task result ACCURACY',
      },
    ])
  })
})

describe('policy/config.yaml', () => {
  it('names only the local rules, relative to the repository root, and no rule data', async () => {
    const config = parse(await readFile(path.join(policyDir, 'config.yaml'), 'utf8')) as {
      sources: Record<string, unknown>[]
    }
    expect(config.sources).toEqual([{ name: 'oml-chains', policy: ['./policy/rules'] }])
    // ec compiles every .rego in that folder, unit tests and their inputs included.
    const files = await readdir(rulesDir, { recursive: true })
    expect(files.filter((f) => f.endsWith('.rego')).length).toBeGreaterThan(0)
    expect(files.filter((f) => f.endsWith('_test.rego'))).toEqual([])
    // No allowed_dataset_prefixes here: without them every dataset is refused.
    const denials = (await opaEval('data.dataset.deny', {
      input: { attestations: [] },
    })) as Denial[]
    expect(denials).toContainEqual({
      code: 'dataset.permitted',
      msg: 'No dataset location is allowed: the rule data allowed_dataset_prefixes is missing or empty',
    })
  })
})

describe('policy/check.sh', () => {
  let fakeEc: string
  let key: string

  beforeAll(async () => {
    // Records its working directory, its arguments and the prefixes file it is
    // pointed at, writes a report, and exits with FAKE_EC_EXIT.
    fakeEc = path.join(work, 'fake-ec')
    await writeFile(
      fakeEc,
      `#!/usr/bin/env bash
set -eu
out=${JSON.stringify(path.join(work, 'ec-call'))}
{ printf 'cwd=%s\\n' "$PWD"; printf 'arg=%s\\n' "$@"; } >"$out.args"
for a in "$@"; do
  case $a in
    allowed_dataset_prefixes=*) cat "\${a#*=}" >"$out.prefixes" ;;
    json=*) echo '{"success": true}' >"\${a#json=}" ;;
  esac
done
exit "\${FAKE_EC_EXIT:-0}"
`,
    )
    await chmod(fakeEc, 0o755)
    key = path.join(work, 'cosign.pub')
    await writeFile(
      key,
      await readFile(path.join(repoRoot, 'test/fixtures/chains-real/cosign.pub')),
    )
  })

  /** check.sh with the stand-in ec, from the temp dir, with a bare environment. */
  function check(args: string[], exit = 0): Promise<Run> {
    return run('bash', [checkScript, '--ec', fakeEc, ...args], {
      cwd: work,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', FAKE_EC_EXIT: String(exit) },
    })
  }

  it('runs ec validate image from the repository root with the rule data as ec takes it', async () => {
    const image = `registry.local:5000/ml-iris@sha256:${'a'.repeat(64)}`
    const result = await check(
      [
        image,
        'cosign.pub',
        '--allowed-prefix',
        'registry.local:5000/',
        '--allowed-prefix=quay.io/acme/',
        '--min-accuracy',
        '0.9',
      ],
      1,
    )
    // ec's exit status is the script's: 1 for violations.
    expect(result.code).toBe(1)
    const lines = (await readFile(path.join(work, 'ec-call.args'), 'utf8')).trimEnd().split('\n')
    // config.yaml's ./policy/rules is resolved by ec against its working directory.
    expect(lines[0]).toBe(`cwd=${repoRoot}`)
    const args = lines.slice(1).map((l) => l.replace(/^arg=/, ''))
    const prefixesFlag = args.at(-1)!
    expect(args).toEqual([
      'validate',
      'image',
      '--image',
      image,
      '--public-key',
      key,
      '--policy',
      path.join(policyDir, 'config.yaml'),
      '--ignore-rekor',
      '--info',
      '--show-successes',
      '--output',
      `json=${path.join(work, 'ec-report.json')}`,
      '--output',
      'text',
      '--extra-rule-data',
      'min_accuracy=0.9',
      '--extra-rule-data',
      expect.stringMatching(/^allowed_dataset_prefixes=\/[^,]+\.json$/),
    ])
    expect(result.stderr).toContain(`report in ${path.join(work, 'ec-report.json')}`)

    // ec reads that .json file into a string; the rules must take it as the list.
    const prefixesText = await readFile(path.join(work, 'ec-call.prefixes'), 'utf8')
    expect(JSON.parse(prefixesText)).toEqual(['registry.local:5000/', 'quay.io/acme/'])
    expect(prefixesFlag).not.toContain(',')
    // The run's provenance as SLSA v0.2 (Chains slsa/v1) and as SLSA v1 (slsa/v2alpha4).
    for (const statements of ['both', 'both_v1']) {
      const input = `data.oml_inputs.${statements}`
      const denials = (await opaEval(`data.dataset.deny with input as ${input}`, {
        data: { rule_data__configuration__: { allowed_dataset_prefixes: prefixesText } },
      })) as Denial[]
      expect(denials, statements).toEqual([])
      const accuracy = (await opaEval(`data.model.deny with input as ${input}`, {
        data: { rule_data__configuration__: { min_accuracy: '0.99' } },
      })) as Denial[]
      expect(accuracy.map((d) => d.code)).toEqual(['model.accuracy'])
    }
  })

  it("keeps the caller's directory for a config the caller gives", async () => {
    await writeFile(path.join(work, 'mine.yaml'), 'sources: [{policy: [./rules]}]\n')
    const result = await check(['reg.example/m@sha256:' + 'b'.repeat(64), key, 'mine.yaml'])
    expect(result.code).toBe(0)
    const lines = (await readFile(path.join(work, 'ec-call.args'), 'utf8')).split('\n')
    expect(lines[0]).toBe(`cwd=${work}`)
    expect(lines).toContain(`arg=${path.join(work, 'mine.yaml')}`)
    expect(lines.some((l) => l.includes('--extra-rule-data'))).toBe(false)
    expect(result.stderr).toContain('no --allowed-prefix')
  })

  it.each([
    [[], /IMAGE and PUBLIC_KEY are required/],
    [['reg/m@sha256:x'], /IMAGE and PUBLIC_KEY are required/],
    [['reg/m', 'cosign.pub', 'c.yaml', 'extra'], /too many arguments: extra/],
    [
      ['reg/m', 'cosign.pub', '--min-accuracy', '90'],
      /--min-accuracy 90: give a number from 0 to 1/,
    ],
    [['reg/m', 'cosign.pub', '--min-accuracy'], /--min-accuracy needs a value/],
    [['reg/m', 'cosign.pub', '--allowed-prefix', 'a,b'], /--allowed-prefix 'a,b'/],
    [['reg/m', 'cosign.pub', '--frobnicate'], /unknown option --frobnicate/],
    [['reg/m', 'missing.pub'], /public key missing.pub: no such file/],
    [['reg/m', 'cosign.pub', 'missing.yaml'], /policy config missing.yaml: no such file/],
  ])('refuses %j with a clear message and exit status 2', async (args, message) => {
    const result = await check(args)
    expect(result.code).toBe(2)
    expect(result.stderr).toMatch(message)
  })

  it('prints its usage for --help', async () => {
    const result = await check(['--help'])
    expect(result.code).toBe(0)
    expect(result.stdout).toMatch(
      /^Usage: policy\/check\.sh \[options\] IMAGE PUBLIC_KEY \[CONFIG\]/,
    )
  })
})

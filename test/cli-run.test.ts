/**
 * `oml-chains run` from the committed bundle (dist/cli/index.js), as a user
 * runs it: a separate Node 24 process with a bare environment (no
 * GITHUB_ACTIONS), judged by its exit code, stdout, stderr and files. The
 * full runs go against the harness as the action's do: an existing cluster
 * (real API server, stand-ins for what needs containers), a real registry,
 * the real trainer, and ec downloaded from the github.com stand-in: the ec
 * stand-in, replaying the report of ec's that each test picks.
 */
import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import type { RunResult } from '../src/cli/run.js'
import { flagOf } from '../src/cli/run-flags.js'
import { INPUT_NAMES } from '../src/inputs.js'
import { RegistryClient } from '../src/oci/client.js'
import { parseReference } from '../src/oci/reference.js'
import {
  EC_FIXTURES,
  startActionEnvironment,
  type ActionEnvironment,
} from './harness/action-env.js'
import { expectNoSecrets, filesUnder, watchCommandLines } from './harness/secret-scan.js'
import { repoRoot } from './harness/tools.js'
import { STAND_IN_TRAINER_IMAGE } from './harness/standins/tekton.js'

const cliBundle = path.join(repoRoot, 'dist', 'cli', 'index.js')
const fixtureKeys = path.join(repoRoot, 'test', 'fixtures', 'cosign-keys')
const fixtureKey = path.join(fixtureKeys, 'chains-testdata-cosign.key')

interface CliRun {
  code: number | null
  stdout: string
  stderr: string
}

let work: string
let home: string

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'oml-cli-run-'))
  home = path.join(work, 'home')
  await mkdir(home)
})

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true })
})

/**
 * Runs `oml-chains run` with a bare environment: HOME empty (no docker
 * config), temp files under the test's directory, no GITHUB_ACTIONS. Never
 * throws; the exit code is part of the result.
 */
async function run(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  const base = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, TMPDIR: work }
  const commandLines = watchCommandLines()
  let pid = 0
  const cli = await new Promise<CliRun>((resolve) => {
    pid = execFile(
      process.execPath,
      [cliBundle, 'run', ...args],
      { cwd: work, env: { ...base, ...env }, timeout: 170_000, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : null) : 0
        resolve({ code, stdout, stderr })
      },
    ).pid!
  })
  // Its own command line holds what the user typed (a refused secret flag, say); not the rest.
  const started = (await commandLines.stop()).filter((a) => a.name !== `/proc/${pid}/cmdline`)
  expectNoSecrets(`oml-chains run ${args.join(' ')}`, await secretsOf(args, env), [
    { name: 'stdout', text: cli.stdout },
    { name: 'stderr', text: cli.stderr },
    ...(await filesUnder(work)),
    ...started,
  ])
  return cli
}

/** The secrets a command line hands over: from the files its flags name, and the environment. */
async function secretsOf(args: string[], env: Record<string, string>): Promise<string[]> {
  const secrets = [
    env.OML_CHAINS_REGISTRY_PASSWORD ?? '',
    env.OML_CHAINS_SIGNING_KEY_PASSWORD ?? '',
  ]
  for (const flag of ['--registry-password', '--signing-key-password']) {
    const i = args.indexOf(flag)
    if (i >= 0) secrets.push(args[i + 1] ?? '')
  }
  for (const flag of ['--registry-password-file', '--signing-key-password-file', '--signing-key']) {
    const i = args.indexOf(flag)
    if (i >= 0) secrets.push(await readFile(args[i + 1] ?? '', 'utf8').catch(() => ''))
  }
  // A file's one trailing newline is not part of the secret.
  return secrets.map((s) => s.replace(/\n$/, '')).filter((s) => s.trim().length > 0)
}

/** stdout as the one JSON document it must be, or a failure showing what the process said. */
function result(cli: CliRun): RunResult {
  try {
    return JSON.parse(cli.stdout) as RunResult
  } catch {
    throw new Error(
      `stdout is not one JSON document (exit ${cli.code}):\n${cli.stdout}\nstderr:\n${cli.stderr}`,
    )
  }
}

/** A wrong command line: exit 2, one line on stderr, nothing on stdout, no stack. */
function expectUsageError(cli: CliRun): string {
  expect(cli.code).toBe(2)
  expect(cli.stdout).toBe('')
  expect(cli.stderr).toMatch(/^oml-chains run: error: [^\n]+\n$/)
  return cli.stderr
}

describe('oml-chains run: the command line', () => {
  it('--help lists a flag for every input of action.yml, and --summary', async () => {
    const action = parse(await readFile(path.join(repoRoot, 'action.yml'), 'utf8')) as {
      inputs: Record<string, unknown>
    }
    expect([...INPUT_NAMES].sort()).toEqual(Object.keys(action.inputs).sort())
    const cli = await run(['--help'])
    expect(cli.code).toBe(0)
    expect(cli.stdout).toMatch(/^Usage: oml-chains run /)
    for (const input of INPUT_NAMES) {
      expect(cli.stdout).toMatch(new RegExp(`^ {2}--${flagOf(input)}\\b.* \\w`, 'm'))
    }
    expect(cli.stdout).toMatch(/^ {2}--summary FILE /m)
  })

  it('without --dataset: exit 2, one line naming the flag', async () => {
    const runDirs = async () =>
      (await readdir(work)).filter((name) => name.startsWith('oml-chains-run-'))
    const before = await runDirs()
    const stderr = expectUsageError(await run(['--trainer-image', STAND_IN_TRAINER_IMAGE]))
    expect(stderr).toMatch(/^oml-chains run: error: --dataset: is required/)
    // Nothing was made: no temp directory for the run (runs of other tests
    // leave theirs), no tool cache.
    expect(await runDirs()).toEqual(before)
    expect(await readdir(home)).toEqual([])
  })

  it('an unknown flag: exit 2, one line naming it', async () => {
    const stderr = expectUsageError(await run(['--datset', 'quay.io/a/b:c']))
    expect(stderr).toContain("'--datset'")
  })

  it.each(['--registry-password', '--signing-key-password'])(
    'refuses %s on the command line without repeating its value',
    async (flag) => {
      const secret = 'hunter2-on-the-command-line'
      for (const args of [[flag, secret], [`${flag}=${secret}`]]) {
        const cli = await run(['--dataset', 'quay.io/a/b:c', ...args])
        const stderr = expectUsageError(cli)
        expect(stderr).toMatch(new RegExp(`^oml-chains run: error: ${flag}: secrets are not taken`))
        expect(stderr).toContain(`${flag}-file FILE`)
        expect(stderr).not.toContain(secret)
      }
    },
  )
})

describe('oml-chains run against an existing cluster', () => {
  let env: ActionEnvironment
  let registry: ActionEnvironment['registry']
  let cluster: ActionEnvironment['cluster']
  let datasetRef: string
  let datasetDigest: string

  beforeAll(async () => {
    env = await startActionEnvironment()
    ;({ registry, cluster, datasetRef, datasetDigest } = env)
  }, 120_000)

  afterAll(async () => {
    await env?.stop()
  }, 60_000)

  /**
   * The flags every run here shares: the harness cluster, the test registry,
   * and a repository of the run's own (Chains writes no signature next to a
   * model already signed with another key: the model is the same every run).
   */
  const onCluster = (tag: string) => [
    '--cluster',
    'existing',
    '--kubeconfig',
    cluster.kube.kubeconfigPath,
    '--image',
    `${registry.host}/models/${tag}:${tag}`,
    '--allowed-dataset-prefix',
    `${registry.host}/datasets/`,
    '--trainer-image',
    STAND_IN_TRAINER_IMAGE,
    '--dataset',
    datasetRef,
  ]

  it('pass: JSON with verdict pass on stdout, progress on stderr, exit 0', async () => {
    const passwordFile = path.join(fixtureKeys, 'chains-testdata-cosign.password')
    const summary = path.join(work, 'summary.md')
    const cli = await run(
      [
        ...onCluster('cli-run'),
        '--signing-key',
        fixtureKey,
        '--signing-key-password-file',
        passwordFile,
        '--summary',
        summary,
      ],
      env.runEnv('happy-day.json'),
    )
    const r = result(cli)
    expect(cli.stdout.endsWith('}\n')).toBe(true)

    // The model the PipelineRun trained is the one the registry serves.
    const served = await new RegistryClient({ insecure: () => true }).getManifest(
      parseReference(`${registry.host}/models/cli-run:cli-run`),
    )
    expect(r.digest).toBe(served.digest)
    expect(r.image).toBe(`${registry.host}/models/cli-run@${served.digest}`)
    expect(r.datasetDigest).toBe(datasetDigest)
    expect(r.pipelinerun).toMatch(/^oml-chains\/oml-chains-\w+$/)
    // The key of --signing-key, opened with the password from its file.
    const pub = await readFile(path.join(fixtureKeys, 'chains-testdata-cosign.pub'), 'utf8')
    expect(r.publicKey?.trim()).toBe(pub.trim())
    // Chains (the stand-in) signed it; the run checked that and wrote the provenance.
    const provenance = JSON.parse(await readFile(r.provenance ?? '', 'utf8')) as {
      subject: { digest: { sha256: string } }[]
    }
    expect(provenance.subject.map((s) => `sha256:${s.digest.sha256}`)).toContain(served.digest)

    // ec from the github.com stand-in (the ec stand-in, replaying ec's own report).
    expect(env.internet.github.requests(env.ec.asset)).toBe(1)
    expect(env.internet.refused()).toEqual([])
    expect(await readFile(r.report ?? '', 'utf8')).toBe(
      await readFile(path.join(EC_FIXTURES, 'happy-day.json'), 'utf8'),
    )
    expect(cli.code).toBe(0)
    expect(r).toMatchObject({ verdict: 'pass', violations: 0, warnings: 0 })
    expect(r.error).toBeUndefined()

    // Progress went to stderr, as plain text: no workflow commands.
    for (const phase of [
      'Signing key',
      'Cluster',
      'Tekton Pipelines',
      'Tekton Chains',
      'Pipeline',
      'Chains',
    ]) {
      expect(cli.stderr).toMatch(new RegExp(`^${phase}: done in \\d`, 'm'))
    }
    expect(cli.stderr).toMatch(/^-- task train\n\[train\/train\] /m)
    expect(cli.stderr).toMatch(/^Enterprise Contract: done in /m)
    expect(cli.stderr).not.toMatch(/^::/m)
    // On an existing cluster the cleanup after the run removes nothing.
    expect(cli.stderr).toMatch(/nothing to clean up/)
    expect(cli.stderr.trimEnd().split('\n').pop()).toBe('oml-chains run: verdict pass')
    expect(cli.stdout + cli.stderr).not.toContain('PRIVATE KEY')
    expect(cli.stdout + cli.stderr).not.toMatch(/\n\s+at /)

    const written = await readFile(summary, 'utf8')
    expect(written).toMatch(/^## oml-chains: PASS\n/)
    expect(written).toContain(r.image)
  }, 180_000)

  it.each([
    { given: 'the default', flags: [] as string[], code: 1 },
    { given: '--fail-on-violation false', flags: ['--fail-on-violation', 'false'], code: 0 },
  ])(
    'fail, with $given: JSON with verdict fail, a line per violation, exit $code',
    async ({ flags, code }) => {
      const cli = await run(
        [...onCluster(`cli-fail-${code}`), ...flags],
        env.runEnv('detailed-failures.json'),
      )
      const r = result(cli)
      expect(r).toMatchObject({ verdict: 'fail', violations: 3, warnings: 0 })
      expect(r.image).toMatch(
        new RegExp(`^${registry.host}/models/cli-fail-${code}@sha256:[0-9a-f]{64}$`),
      )
      expect(r.error).toBeUndefined()
      expect(await readFile(r.report ?? '', 'utf8')).toBe(
        await readFile(path.join(EC_FIXTURES, 'detailed-failures.json'), 'utf8'),
      )
      expect(cli.stderr).toContain(
        [
          'violation: Reject with term rule: Fails always (term1)',
          'violation: Reject with term rule: Fails always (term2)',
          'violation: Reject rule: Fails always',
        ].join('\n'),
      )
      expect(cli.stderr.trimEnd().split('\n').pop()).toBe(
        'oml-chains run: the model does not meet the policy: 3 violations',
      )
      expect(cli.code).toBe(code)
    },
    180_000,
  )

  it('takes a secret from the environment, never shows it, and names the flag it belongs to', async () => {
    const wrong = 'not-the-password-from-env'
    // Never reaches ec; were it to, the stand-in would replay a pass.
    const cli = await run([...onCluster('cli-wrong-key'), '--signing-key', fixtureKey], {
      ...env.runEnv('happy-day.json'),
      OML_CHAINS_SIGNING_KEY_PASSWORD: wrong,
    })
    expect(cli.code).toBe(1)
    const r = result(cli)
    expect(r.verdict).toBe('error')
    expect(r.error).toMatch(
      /^--signing-key: .*chains-testdata-cosign\.key does not open with signing-key-password: .*wrong password/,
    )
    expect(r.digest).toBeNull()
    expect(cli.stdout + cli.stderr).not.toContain(wrong)
  })
})

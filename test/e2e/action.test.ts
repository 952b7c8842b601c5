import { readFileSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { verifyImageAttachments } from '../../src/cosign/attached.js'
import { connect } from '../../src/kube/client.js'
import { RegistryClient } from '../../src/oci/client.js'
import { parseReference } from '../../src/oci/reference.js'
import type { TimingsDocument } from '../../src/timing.js'
import { ecVersion } from '../../src/versions.js'
import { runActionStep, type ActionStep } from '../harness/action.js'
import { bursts, startApiProxy } from '../harness/faults/api-proxy.js'
import { recordFault } from '../harness/faults/record.js'
import { startAuthFront } from '../harness/token-server.js'
import {
  clusterObjects,
  encodingsOf,
  expectNoSecrets,
  findSecrets,
} from '../harness/secret-scan.js'
import {
  EC_FIXTURES,
  startActionEnvironment,
  type ActionEnvironment,
} from '../harness/action-env.js'
import { repoRoot } from '../harness/tools.js'
import { STAND_IN_TRAINER_IMAGE } from '../harness/standins/tekton.js'

// The committed bundle (dist/index.js), run as the runner runs it, end to end
// against an existing cluster: the real API server, registry, cosign and
// trainer, with stand-ins only for what needs containers (see
// test/harness/action-env.ts). ec is downloaded from the github.com stand-in,
// checked against its .sha256 and cached, as on a runner; what it downloads is
// the ec stand-in (test/harness/standins/ec.mjs), since real ec cannot be built
// or downloaded here. It judges nothing: each test picks which of ec's own
// published reports (test/fixtures/ec/) it replays, so the runs below reach
// every verdict and the gate the action puts on it.

const fixtureKeys = path.join(repoRoot, 'test/fixtures/cosign-keys')
const errorLines = (stdout: string) => stdout.split('\n').filter((l) => l.startsWith('::error'))
const noStack = (text: string) => expect(text).not.toMatch(/\n\s+at /)
/** The log as a reader sees it: `::add-mask::` commands are consumed by the runner. */
const visible = (stdout: string) =>
  stdout
    .split('\n')
    .filter((l) => !l.startsWith('::add-mask::'))
    .join('\n')
/** The annotations of ec's report detailed-failures.json, as the runner reads them. */
const DETAILED_FAILURES = [
  '::error title=Reject with term rule::Fails always (term1)',
  '::error title=Reject with term rule::Fails always (term2)',
  '::error title=Reject rule::Fails always',
]

let env: ActionEnvironment
let registry: ActionEnvironment['registry']
let cluster: ActionEnvironment['cluster']
let datasetRef: string
let datasetDigest: string
let work: string

beforeAll(async () => {
  env = await startActionEnvironment()
  ;({ registry, cluster, datasetRef, datasetDigest } = env)
  work = await mkdtemp(path.join(os.tmpdir(), 'e2e-'))
}, 120_000)

afterAll(async () => {
  await env?.stop()
  if (work) await rm(work, { recursive: true, force: true })
}, 60_000)

/**
 * Runs the bundle against the existing cluster, the model going to the test
 * registry; the ec stand-in replays `ecReport` (a file of test/fixtures/ec/).
 */
/**
 * Each run pushes to a repository of its own: Chains writes no signature next
 * to a model that already has one with the same payload (the model is the
 * same at every run), so a second run with a new key into the same
 * repository gets none (that case has its own test).
 */
let runs = 0
function runOnCluster(inputs: Record<string, string>, ecReport: string): Promise<ActionStep> {
  return runActionStep(
    {
      cluster: 'existing',
      kubeconfig: cluster.kube.kubeconfigPath,
      image: `${registry.host}/models/iris-${++runs}`,
      'allowed-dataset-prefixes': `${registry.host}/datasets/`,
      'trainer-image': STAND_IN_TRAINER_IMAGE,
      ...inputs,
    },
    { env: env.runEnv(ecReport) },
  )
}

/**
 * ec came from the github.com stand-in: downloaded and checked once in this
 * file (by whichever run came first), from the tool cache after that; and the
 * bundle asked the network for nothing else.
 */
function expectEcFromTheReleaseHost(step: ActionStep): void {
  const { ec, internet } = env
  expect(internet.github.requests(ec.asset)).toBe(1)
  expect(internet.github.requests(ec.checksum)).toBe(1)
  expect(internet.refused()).toEqual([])
  expect(step.stdout).toMatch(
    new RegExp(
      `^ec ${ecVersion.replace(/\./g, '\\.')}: (sha256 [0-9a-f]{64} verified \\(published in ${ec.url.replace(/\./g, '\\.')}\\.sha256\\)|from the tool cache, .*)$`,
      'm',
    ),
  )
}

function buildTypeOf(statement: { predicate: unknown }): unknown {
  return (statement.predicate as { buildType?: unknown }).buildType
}

/** The report the run exposes is, byte for byte, the one of ec's that the stand-in replayed. */
async function expectReplayed(step: ActionStep, fixture: string): Promise<void> {
  expect(step.stdout).toContain(`ec stand-in: replaying ${fixture}, a report real ec printed`)
  expect(step.files.report).toBe(await readFile(path.join(EC_FIXTURES, fixture), 'utf8'))
}

/**
 * The summary's opening: its heading, the chain diagram's node classes
 * (`class dataset,... ok`), and the verdict text that follows the diagram.
 */
function opening(summary: string): { heading: string; classes: string[]; text: string } {
  const match = /^(## .*)\n\n```mermaid\n([\s\S]*?)\n```\n\n([\s\S]*)$/.exec(summary)
  if (!match) throw new Error(`the summary does not open with a heading and a diagram:\n${summary}`)
  const classes = [...match[2]!.matchAll(/^ {2}class (\S+) (\w+)$/gm)].map((m) => `${m[1]} ${m[2]}`)
  return { heading: match[1]!, classes, text: match[3]! }
}

/**
 * The signing key and its password are in the cluster once, in Chains'
 * signing secret: every other object of every kind is searched for them.
 */
async function expectSecretsOnlyInSigningSecret(secrets: string[]): Promise<void> {
  const objects = await clusterObjects(cluster.kube)
  const meant = 'Secret tekton-chains/signing-secrets'
  // The search finds each where it is meant to be (the fixture's one-letter
  // password is too short to search for anywhere).
  for (const secret of secrets.filter((s) => encodingsOf(s).length > 0)) {
    expect(
      findSecrets(
        [secret],
        objects.filter((o) => o.name === meant),
      ),
    ).not.toEqual([])
  }
  expectNoSecrets(
    `the cluster's ${objects.length - 1} other objects`,
    secrets,
    objects.filter((o) => o.name !== meant),
  )
}

describe('the action, end to end on an existing cluster: the verdict gate', () => {
  it('pass: the step succeeds, with every output and the summary', async () => {
    const kube = connect(cluster.kube.kubeconfig)
    // The first run on this cluster installs Tekton, later ones keep it.
    const installed = await kube.core
      .readNamespacedConfigMap({ name: 'pipelines-info', namespace: 'tekton-pipelines' })
      .then(
        () => true,
        () => false,
      )
    const step = await runOnCluster({ dataset: datasetRef }, 'happy-day.json')
    expect(step.outputs['dataset-digest']).toBe(datasetDigest)
    const publicKey = step.outputs['public-key']
    expect(publicKey).toMatch(/^-----BEGIN PUBLIC KEY-----\n/)
    // Tekton from the tool cache (or kept), Chains holding the key the output names.
    expect(step.stdout).toMatch(
      installed
        ? /^Tekton pipeline v1\.15\.0: kept$/m
        : /^Tekton pipeline v1\.15\.0: installed from .* \(sha256 [0-9a-f]{64}, checked when it was cached\)$/m,
    )
    const secret = await kube.core.readNamespacedSecret({
      name: 'signing-secrets',
      namespace: 'tekton-chains',
    })
    const held = (key: string) => Buffer.from(secret.data?.[key] ?? '', 'base64').toString()
    expect(held('cosign.pub')).toBe(publicKey)
    // The generated password was masked before anything else was printed, and
    // the private key (and each of its lines) before its phase ended.
    const lines = step.stdout.split('\n')
    expect(lines[0]).toBe(`::add-mask::${held('cosign.password')}`)
    const keyMasks = held('cosign.key')
      .split('\n')
      .filter((l) => l.length >= 4)
      .map((l) => `::add-mask::${l}`)
    const phaseEnd = lines.findIndex((l) => l.startsWith('Signing key: done in '))
    for (const mask of keyMasks) {
      expect(lines.indexOf(mask), mask).toBeGreaterThan(0)
      expect(lines.indexOf(mask), mask).toBeLessThan(phaseEnd)
    }
    expect(visible(step.stdout)).not.toContain('PRIVATE KEY')
    expect(visible(step.stdout)).not.toContain(held('cosign.password'))
    await expectSecretsOnlyInSigningSecret([held('cosign.key'), held('cosign.password')])
    await kube.core.readNamespacedServiceAccount({
      name: 'oml-chains-pipeline',
      namespace: 'oml-chains',
    })
    // The model the PipelineRun trained is the one the registry serves.
    const repository = step.outputs.image!.split('@')[0]!
    expect(repository).toMatch(new RegExp(`^${registry.host}/models/iris-\\d+$`))
    const served = await new RegistryClient({ insecure: () => true }).getManifest(
      parseReference(`${repository}:run-1001-1`),
    )
    expect(step.outputs.digest).toBe(served.digest)
    expect(step.outputs.image).toBe(`${repository}@${served.digest}`)
    expect(step.outputs.pipelinerun).toMatch(/^oml-chains\/oml-chains-\w+$/)
    // The step's log was followed live, folded per task.
    expect(step.stdout).toMatch(/^::group::task train\n\[train\/train\] /m)
    // Chains (the stand-in, signing with real cosign and the run's key) signed
    // the model; the phase checked it and wrote the PipelineRun's provenance.
    const provenance = JSON.parse(step.files.provenance!) as {
      subject: { digest: { sha256: string } }[]
    }
    expect(provenance.subject.map((s) => `sha256:${s.digest.sha256}`)).toContain(served.digest)
    // Each phase is logged with its duration, and written to the timings file
    // with what it waited for; the summary draws them.
    const phases = [
      'Signing key',
      'Cluster',
      'Dataset',
      'Tekton Pipelines',
      'Tekton Chains',
      'Registry credentials',
      'ec install',
      'Pipeline',
      'Chains',
      'Enterprise Contract',
    ]
    for (const phase of phases) {
      expect(step.stdout).toMatch(new RegExp(`^${phase}: done in \\d`, 'm'))
    }
    const timings = JSON.parse(step.files.timings!) as TimingsDocument
    expect(timings.phases.map((p) => p.phase).sort()).toEqual(expect.arrayContaining(phases.sort()))
    const timed = (name: string) => timings.phases.find((p) => p.phase === name)!
    // Each phase started after what it waited for had ended.
    for (const phase of timings.phases) {
      for (const before of phase.after) {
        expect(phase.start, `${phase.phase} after ${before}`).toBeGreaterThanOrEqual(
          timed(before).end,
        )
      }
    }
    expect(timed('Chains').after).toEqual(['Pipeline', 'Tekton Chains'])
    expect(timings.criticalPath.phases.slice(-3)).toEqual([
      'Pipeline',
      'Chains',
      'Enterprise Contract',
    ])
    expect(timings.criticalPath.ms).toBeLessThanOrEqual(timings.wallMs)
    expect(timings.sequentialMs).toBeGreaterThanOrEqual(timings.criticalPath.ms)
    expect(step.summary).toMatch(/^```mermaid\ngantt\n/m)
    // ec: downloaded, checked and cached, then run on the model by digest.
    expectEcFromTheReleaseHost(step)
    expect(step.stdout).toContain(`--image ${step.outputs.image}`)
    await expectReplayed(step, 'happy-day.json')
    // The verdict: pass, the step succeeds, nothing is annotated.
    expect(step.code).toBe(0)
    expect(step.outputs.verdict).toBe('pass')
    expect(step.outputs.violations).toBe('0')
    expect(step.outputs.warnings).toBe('0')
    expect(errorLines(step.stdout)).toEqual([])
    expect(step.stdout).toMatch(/^verdict: pass$/m)
    const summary = opening(step.summary)
    expect(summary.heading).toBe('## oml-chains: PASS')
    expect(summary.classes).toEqual(['dataset,pipelinerun,model,signature,verdict ok'])
    expect(summary.text).toMatch(
      /^Enterprise Contract checked the model against the policy and found no violations\.\n/,
    )
    expect(step.summary).toContain('0 violations, 0 warnings, 4 checks passed.')
    expect(step.summary).toContain(step.outputs.image!)
    expect(step.summary).toContain(publicKey)
    expect(step.state.isPost).toBe('true')
    // On an existing cluster the post step removes nothing.
    const post = await runActionStep({ dataset: datasetRef }, { state: step.state })
    expect(post.code).toBe(0)
    expect(post.stdout).toMatch(/nothing to clean up/)
  })

  it('pass with a warning, signed with the given key: the step succeeds, the warning counted', async () => {
    const password = readFileSync(path.join(fixtureKeys, 'chains-testdata-cosign.password'), 'utf8')
    const step = await runOnCluster(
      {
        dataset: datasetRef,
        'signing-key': path.join(fixtureKeys, 'chains-testdata-cosign.key'),
        'signing-key-password': password,
      },
      'future-failure-is-a-warning.json',
    )
    const pub = readFileSync(path.join(fixtureKeys, 'chains-testdata-cosign.pub'), 'utf8')
    expect(step.outputs['public-key']?.trim()).toBe(pub.trim())
    expect(step.stdout).toContain(`::add-mask::${password}`)
    // Chains signed the model with that key: its signature and both
    // attestations (the TaskRun's and the PipelineRun's) verify with it.
    const image = parseReference(step.outputs.image!)
    const client = new RegistryClient({ insecure: () => true })
    const attached = await verifyImageAttachments(client, { ...image, digest: image.digest! }, pub)
    expect(attached.signatures).toHaveLength(1)
    expect(attached.attestations.map((a) => buildTypeOf(a.statement)).sort()).toEqual([
      'tekton.dev/v1/PipelineRun',
      'tekton.dev/v1/TaskRun',
    ])
    expectEcFromTheReleaseHost(step)
    await expectReplayed(step, 'future-failure-is-a-warning.json')
    expect(step.code).toBe(0)
    expect(step.outputs.verdict).toBe('pass')
    expect(step.outputs.violations).toBe('0')
    expect(step.outputs.warnings).toBe('1')
    expect(errorLines(step.stdout)).toEqual([])
    expect(opening(step.summary).text).toMatch(/^.*found no violations \(1 warning\)\.\n/)
    expect(step.summary).toContain('Fails in 2099.')
    const key = readFileSync(path.join(fixtureKeys, 'chains-testdata-cosign.key'), 'utf8')
    await expectSecretsOnlyInSigningSecret([key, password])
  })

  it('fail with fail-on-violation true (the default): outputs and summary, one annotation per violation, then the step fails', async () => {
    const step = await runOnCluster({ dataset: datasetRef }, 'detailed-failures.json')
    expectEcFromTheReleaseHost(step)
    await expectReplayed(step, 'detailed-failures.json')
    expect(step.outputs.verdict).toBe('fail')
    expect(step.outputs.violations).toBe('3')
    expect(step.outputs.warnings).toBe('0')
    expect(step.outputs.image).toMatch(new RegExp(`^${registry.host}/models/iris-\\d+@sha256:`))
    expect(step.outputs['public-key']).toMatch(/^-----BEGIN PUBLIC KEY-----\n/)
    const summary = opening(step.summary)
    expect(summary.heading).toBe('## oml-chains: FAIL')
    // Made and signed; only the verdict failed.
    expect(summary.classes).toEqual(['dataset,pipelinerun,model,signature ok', 'verdict failed'])
    expect(summary.text).toMatch(
      /^Enterprise Contract found 3 violations: the model does not meet the policy\.\n\nThis step fails \(fail-on-violation: true\)\.\n/,
    )
    for (const msg of ['Fails always (term1)', 'Fails always (term2)', 'Fails always']) {
      expect(step.summary).toContain(msg)
    }
    // One annotation per violation, then the failure that ends the step.
    expect(errorLines(step.stdout)).toEqual([
      ...DETAILED_FAILURES,
      '::error::the model does not meet the policy: 3 violations (see the job summary)',
    ])
    expect(step.code).toBe(1)
    noStack(step.stdout + step.stderr)
  })

  it('fail with fail-on-violation false: the step succeeds with verdict fail, violations still annotated', async () => {
    const step = await runOnCluster(
      { dataset: datasetRef, 'fail-on-violation': 'false' },
      'detailed-failures.json',
    )
    expectEcFromTheReleaseHost(step)
    await expectReplayed(step, 'detailed-failures.json')
    expect(step.outputs.verdict).toBe('fail')
    expect(step.outputs.violations).toBe('3')
    expect(opening(step.summary).text).toMatch(
      /^.*\n\nThis step does not fail \(fail-on-violation: false\): later steps can check the `verdict` output\.\n/,
    )
    expect(errorLines(step.stdout)).toEqual(DETAILED_FAILURES)
    expect(step.stdout).toMatch(/^verdict: fail$/m)
    expect(step.code).toBe(0)
  })
})

// These runs never reach ec; were one to, the stand-in would replay a pass
// and the verdict checks below would fail.
describe('the action, end to end on an existing cluster: runs that end in error', () => {
  it('a second run with a new key into the repository of the first: Chains keeps the first signature, the error says why', async () => {
    const image = `${registry.host}/models/re-signed`
    const first = await runOnCluster({ dataset: datasetRef, image }, 'happy-day.json')
    expect(first.outputs.verdict).toBe('pass')
    // The same dataset trains the same model (same digest); a fresh key signs it.
    const second = await runOnCluster({ dataset: datasetRef, image }, 'happy-day.json')
    expect(second.outputs.digest).toBe(first.outputs.digest)
    expect(second.outputs['public-key']).not.toBe(first.outputs['public-key'])
    expect(second.outputs.verdict).toBe('error')
    expect(second.code).toBe(1)
    expect(errorLines(second.stdout)).toEqual([
      expect.stringMatching(
        new RegExp(
          `^::error::${registry.host}/models/re-signed@sha256:[0-9a-f]{64} was signed before with another key, ` +
            `and Tekton Chains kept that signature instead of writing this run's: its attestations verify with this run's key, its signature does not \\(.*\\)\\. ` +
            `Chains skips writing a signature when one with the same payload already exists, whatever key made it, .* ` +
            `Sign every run with the same key \\(signing-key and signing-key-password\\), or push to a repository that holds no earlier signature of this model`,
        ),
      ),
    ])
  })

  it("a broken pipeline step: verdict error, with the failing step's log in the error", async () => {
    const pipeline = path.join(work, 'broken.yaml')
    await writeFile(
      pipeline,
      [
        'apiVersion: tekton.dev/v1',
        'kind: Pipeline',
        'metadata: {name: broken}',
        'spec:',
        '  results:',
        '    - {name: IMAGE_URL, value: $(tasks.train.results.IMAGE_URL)}',
        '    - {name: IMAGE_DIGEST, value: $(tasks.train.results.IMAGE_DIGEST)}',
        '  tasks:',
        '    - name: train',
        '      taskSpec:',
        '        results: [{name: IMAGE_URL}, {name: IMAGE_DIGEST}]',
        '        steps:',
        '          - name: fit',
        '            image: registry.local:5000/tools/sh@sha256:' + '2'.repeat(64),
        '            script: |',
        '              echo "reading the dataset"',
        '              echo "boom: column petal_width is missing" >&2',
        '              exit 3',
        '',
      ].join('\n'),
    )
    const step = await runOnCluster({ dataset: datasetRef, pipeline }, 'happy-day.json')
    expect(step.code).toBe(1)
    expect(step.outputs.verdict).toBe('error')
    expect(step.outputs.digest).toBeUndefined()
    const [error] = errorLines(step.stdout)
    expect(errorLines(step.stdout)).toHaveLength(1)
    expect(error).toMatch(/^::error::PipelineRun oml-chains\/oml-chains-\w+ failed: /)
    // Annotation text escapes newlines as %0A.
    expect(error).toContain('failing task: train, step: fit')
    expect(error).toContain('boom: column petal_width is missing')
    expect(step.summary).toMatch(/^## oml-chains: ERROR\n/)
    expect(step.summary).toContain('boom: column petal_width is missing')
    // Fails as soon as the run does: not held by the ec download still under way.
    expect(step.stdout).not.toMatch(/^Enterprise Contract:/m)
  })

  it('names signing-key when the key does not open with its password', async () => {
    const step = await runOnCluster(
      {
        dataset: datasetRef,
        'signing-key': path.join(fixtureKeys, 'chains-testdata-cosign.key'),
        'signing-key-password': 'not-the-password',
      },
      'happy-day.json',
    )
    expect(step.code).toBe(1)
    expect(errorLines(step.stdout)).toEqual([
      expect.stringMatching(
        /^::error::input 'signing-key': .*chains-testdata-cosign.key does not open with signing-key-password: .*wrong password/,
      ),
    ])
    expect(step.stdout).toContain('::add-mask::not-the-password')
    expect(visible(step.stdout) + step.stderr).not.toContain('not-the-password')
    noStack(step.stdout + step.stderr)
  })

  it('fails in seconds, naming the dataset, when it does not exist', async () => {
    const started = Date.now()
    const step = await runOnCluster(
      { dataset: `${registry.host}/datasets/missing:data` },
      'happy-day.json',
    )
    // Seconds: the bundle starts, the cluster answers and the registry says 404;
    // nothing is installed or trained.
    expect(Date.now() - started).toBeLessThan(15_000)
    expect(step.stdout).not.toMatch(/^(Tekton|Pipeline):/m)
    expect(step.code).toBe(1)
    expect(errorLines(step.stdout)).toEqual([
      expect.stringMatching(
        new RegExp(
          `^::error::dataset ${registry.host}/datasets/missing:data cannot be resolved: .*404`,
        ),
      ),
    ])
    expect(step.outputs.verdict).toBe('error')
  })
})

describe('the action, end to end, through an API server that throttles, fails and cuts watches', () => {
  it('survives: retries each refused request, saying what and why, watches again, and reaches its verdict', async () => {
    // Two of every sixteen requests refused (429, then 503 the next time), every watch cut after its first event.
    const proxy = await startApiProxy(cluster.kube, {
      failing: bursts(14, 2),
      cutWatchesAfterMs: 0,
    })
    try {
      const step = await runOnCluster(
        { dataset: datasetRef, kubeconfig: proxy.kubeconfigPath },
        'happy-day.json',
      )
      expect(step.code, step.stdout).toBe(0)
      expect(step.outputs.verdict).toBe('pass')
      expect(proxy.stats.throttled).toBeGreaterThan(0)
      expect(proxy.stats.unavailable).toBeGreaterThan(0)
      expect(proxy.stats.watchesCut).toBeGreaterThan(0)
      // Each retry says what it retries and why.
      expect(step.stdout).toMatch(
        /^Kubernetes API [A-Z]+ \/\S+: HTTP 429: too many requests, please try again later; retry 1 of 4 in 1\.0 s$/m,
      )
      expect(step.stdout).toMatch(
        /^Kubernetes API [A-Z]+ \/\S+: HTTP 503: the server is currently unable to handle the request; retry 1 of 4 in 0\.3 s$/m,
      )
      recordFault('API server: 429 and 503 in bursts, watches cut', 'survived')
    } finally {
      await proxy.stop()
    }
  })
})

describe('the action, end to end, with a registry that fails', () => {
  it('survives a burst of 503s: each request retried, saying so', async () => {
    const front = await startAuthFront({ upstream: registry.host, mode: 'none', failFirst: 2 })
    try {
      const dataset = datasetRef.replace(registry.host, front.host)
      const step = await runOnCluster(
        {
          dataset,
          image: `${front.host}/models/through-front`,
          'allowed-dataset-prefixes': `${front.host}/datasets/`,
        },
        'happy-day.json',
      )
      expect(step.code, step.stdout).toBe(0)
      expect(step.outputs['dataset-digest']).toBe(datasetDigest)
      expect(step.stdout).toMatch(
        new RegExp(
          `^registry ${front.host.replace(/\./g, '\\.')}: (GET|HEAD) /v2/datasets/\\S+: HTTP 503; retry 1 of 3 in [\\d.]+ s$`,
          'm',
        ),
      )
      recordFault('registry: a burst of 503s', 'survived')
    } finally {
      await front.stop()
    }
  })

  it('reports a registry that refuses its credentials (401), naming the registry and the inputs to check', async () => {
    const front = await startAuthFront({
      upstream: registry.host,
      mode: 'basic',
      users: { bot: 'the-right-registry-password' },
    })
    try {
      const step = await runOnCluster(
        {
          dataset: datasetRef.replace(registry.host, front.host),
          image: `${front.host}/models/refused`,
          'registry-username': 'bot',
          'registry-password': 'a-wrong-registry-password',
        },
        'happy-day.json',
      )
      expect(step.code).toBe(1)
      expect(step.outputs.verdict).toBe('error')
      const errors = errorLines(step.stdout)
      expect(errors).toHaveLength(1)
      expect(errors[0]).toMatch(
        new RegExp(
          `registry ${front.host.replace(/\./g, '\\.')} rejected the credentials of user 'bot' for /v2/datasets/\\S+ \\(HTTP 401\\): check registry-username and registry-password, or the docker config's auths for it$`,
        ),
      )
      noStack(step.stdout + step.stderr)
      recordFault('registry: credentials refused (401)', 'reported')
    } finally {
      await front.stop()
    }
  })
})

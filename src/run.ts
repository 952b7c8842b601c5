import { mkdtemp, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import * as core from '@actions/core'
import { bundledFile } from './bundled.js'
import { FailFast, settled, unlessFailed } from './concurrency.js'
import { errorMessage, UserError } from './errors.js'
import { actionInputSource, InputErrors, readPlan, type InputSource } from './inputs.js'
import { formatReference } from './oci/reference.js'
import { cleanup, cleanupDeps } from './phases/cleanup.js'
import { clusterDeps, prepareCluster, type CreatedResources } from './phases/cluster.js'
import { linkRegistryCredentials, prepareRunNamespace } from './phases/credentials.js'
import { resolveDataset } from './phases/dataset.js'
import { waitForChains } from './phases/chains.js'
import { runPipeline } from './phases/pipeline.js'
import {
  renderSummary,
  reportOutputs,
  violationAnnotations,
  type RunReport,
} from './phases/report.js'
import { checkRegistriesFromPod } from './phases/registry-check.js'
import { prepareSigningKey } from './phases/signing.js'
import { startTektonInstall, type ComponentResult } from './phases/tekton.js'
import { prepareTrainerImage, type TrainerImage } from './phases/trainer-image.js'
import { ruleDataFor, verifyModel } from './phases/verify.js'
import { EMBEDDED_REGISTRY, PIPELINE_SERVICE_ACCOUNT, RUN_NAMESPACE, type Plan } from './plan.js'
import type { RegistryClient } from './oci/client.js'
import { createRegistryClient } from './registry-client.js'
import {
  loadCreated,
  loadKeepCluster,
  markMainStarted,
  saveCreated,
  saveKeepCluster,
} from './state.js'
import { Timings, type TimingsDocument } from './timing.js'
import { Docker } from './tools/docker.js'
import { installEc } from './tools/ec/install.js'

/**
 * The main step: inputs -> Plan -> phases -> report. Phases run in order (or
 * side by side where independent) and return what they produced; what the
 * run learns goes into one RunReport, which becomes the outputs and the
 * summary also when a phase fails. Only this file sets outputs.
 */
export async function runMain(): Promise<void> {
  markMainStarted()
  const report = await runFlow(actionInputSource(), {
    // Into the step's state: the post step cleans up from there.
    planned: (plan) => saveKeepCluster(plan.keepCluster),
    record: saveCreated,
  })
  await publish(report)
}

/** What a caller of runFlow learns while the flow runs, as it happens. */
export interface FlowHooks {
  /** The inputs were valid: called with the Plan before anything is created. */
  planned?: (plan: Plan) => void
  /**
   * Told everything created so far, each time something is about to be
   * created: a run that fails half-way still knows what to remove.
   */
  record: (created: CreatedResources) => void
}

/**
 * The flow without the Actions-specific ends: reads the inputs from `source`,
 * runs every phase and returns what the run learnt. Never throws: a bad input
 * or a failed phase becomes verdict error with its message (the action and
 * the `oml-chains run` command each publish the report their own way).
 */
export async function runFlow(source: InputSource, hooks: FlowHooks): Promise<RunReport> {
  const report: RunReport = { verdict: 'error', failOnViolation: true }
  const timings = new Timings()
  const run: { workDir?: string } = {}
  try {
    await train(source, hooks, report, timings, run)
  } catch (err) {
    report.verdict = 'error'
    report.error = errorMessage(err)
    if (err instanceof InputErrors) {
      report.inputErrors = err.errors.map(({ input, message }) => ({ input, message }))
    }
    if (!(err instanceof UserError) && err instanceof Error && err.stack) core.debug(err.stack)
  }
  report.timings = timings.document()
  if (run.workDir) report.timingsPath = await writeTimings(run.workDir, report.timings)
  return report
}

/** The timings file next to the run's other files; a run that cannot write it still reports. */
async function writeTimings(
  workDir: string,
  document: TimingsDocument,
): Promise<string | undefined> {
  const file = path.join(workDir, 'timings.json')
  try {
    await writeFile(file, `${JSON.stringify(document, null, 2)}\n`)
    return file
  } catch (err) {
    core.warning(`timings not written to ${file}: ${errorMessage(err)}`)
    return undefined
  }
}

/** Every phase, filling `report` as it learns; throws on the first phase that fails. */
async function train(
  source: InputSource,
  hooks: FlowHooks,
  report: RunReport,
  timings: Timings,
  run: { workDir?: string },
): Promise<void> {
  const { plan, warnings } = readPlan(source)
  for (const warning of warnings) core.warning(warning)
  report.failOnViolation = plan.failOnViolation
  hooks.planned?.(plan)
  const deadline = Date.now() + plan.timeoutMs
  const workDir = await mkdtemp(path.join(process.env.RUNNER_TEMP ?? os.tmpdir(), 'oml-chains-'))
  run.workDir = workDir
  const registry = await createRegistryClient(plan.registryAuth)
  const target = { namespace: RUN_NAMESPACE, serviceAccount: PIPELINE_SERVICE_ACCOUNT }
  const prepared = await prepare(plan, {
    report,
    timings,
    hooks,
    registry,
    workDir,
    deadline,
    target,
  })
  const { signingKey, cluster, dataset, trainer, pipelines, credentials, reached } = prepared
  core.info(`dataset ${formatReference(dataset.reference)}`)
  report.trainerImage = formatReference(trainer.image)
  const kube = cluster.kube

  logTektonComponent(pipelines)
  core.info(trainerLine(trainer))
  if (!trainer.image.digest) {
    core.warning(
      `trainer-image ${formatReference(trainer.image)} is not pinned by digest: the policy's trainer.pinned rule will reject the model`,
    )
  }
  if (reached) {
    core.info(`a pod reached ${reached.map((r) => `${r.url} (HTTP ${r.status})`).join(', ')}`)
  }
  core.info(
    credentials.secret
      ? `registry credentials for ${credentials.registries.join(', ')} in ${RUN_NAMESPACE}/${credentials.secret}`
      : 'no registry the run uses needs credentials',
  )

  // What the training waited for: every phase so far, but a new Chains.
  const before = timings.phases
    .map((t) => t.phase)
    .filter((name) => !(prepared.chainsIsNew && name === 'Tekton Chains'))
  // Downloaded while the pipeline runs; awaited only by the policy phase.
  const ecBinary = timings.phase('ec install', () => installEc(plan.ecVersion), {
    grouped: false,
    after: before,
  })
  ecBinary.catch(() => undefined)
  const trained = await timings.phase(
    'Pipeline',
    () =>
      unlessFailed(
        prepared.chains,
        runPipeline(
          {
            image: plan.image,
            dataset: dataset.reference,
            trainerImage: trainer.image,
            pipelinePath: plan.pipelinePath,
            params: plan.params,
            ...target,
          },
          { kube, deadline },
        ),
      ),
    { after: before },
  )
  logTektonComponent(await prepared.chains)
  const model = {
    registry: plan.image.registry,
    repository: plan.image.repository,
    digest: trained.imageDigest,
  }
  report.model = model
  report.pipelineRun = trained.pipelineRun
  core.info(`model ${formatReference(model)} (PipelineRun ${trained.pipelineRun})`)

  const provenancePath = path.join(workDir, 'provenance.json')
  const signed = await timings.phase(
    'Chains',
    () =>
      waitForChains(
        {
          pipelineRun: trained.pipelineRun,
          image: model,
          publicKeyPem: signingKey.publicKeyPem,
          provenancePath,
        },
        { kube, registry, deadline },
      ),
    { after: ['Pipeline', 'Tekton Chains'] },
  )
  report.provenancePath = signed.provenancePath
  report.trainerImage = signed.provenance.trainerImage ?? report.trainerImage
  report.accuracy = signed.provenance.accuracy

  const verifyInputs = {
    image: model,
    publicKeyPem: signingKey.publicKeyPem,
    policyPath: plan.policyPath,
    allowedDatasetPrefixes: plan.allowedDatasetPrefixes,
    minAccuracy: plan.minAccuracy,
  }
  report.policy = { path: plan.policyPath, ruleData: ruleDataFor(verifyInputs) }
  const ec = await timings.phase(
    'Enterprise Contract',
    async (waitFor) =>
      verifyModel(verifyInputs, {
        ec: await waitFor('ec install', () => ecBinary),
        workDir,
        deadline,
      }),
    { after: ['Chains'] },
  )
  report.ec = ec
  report.verdict = ec.verdict
  if (ec.verdict === 'error') report.error = ec.error
}

interface PrepareContext {
  report: RunReport
  timings: Timings
  hooks: FlowHooks
  registry: RegistryClient
  workDir: string
  deadline: number
  target: { namespace: string; serviceAccount: string }
}

/**
 * Everything the pipeline needs, side by side, each phase as soon as what it
 * needs is there: the key (CPU), the dataset lookup (network), the cluster
 * (minutes), the trainer image build (minutes, pushed once the cluster's
 * registry answers), then Tekton, the run's namespace and, next to kind, the
 * registry check from a pod. Waits for all of them before throwing the first
 * failure (see `settled`).
 */
async function prepare(plan: Plan, ctx: PrepareContext) {
  const { report, timings, hooks, registry, workDir, deadline, target } = ctx
  // What the run learns goes into the report as soon as it is known, so a
  // run that fails later still shows it.
  report.dataset = { url: formatReference(plan.dataset) }
  // The first phase to fail stops every phase that has not started yet (a
  // missing dataset must not wait for Tekton to install); phases under way
  // finish, so that what they create is recorded for the cleanup.
  const failFast = new FailFast()
  // The cluster and trainer phases create things side by side: one record of both.
  const created: CreatedResources = {}
  const record = (change: CreatedResources): void => {
    Object.assign(created, change)
    hooks.record({ ...created })
  }

  const signingKeyPhase = failFast.watched(
    timings.phase(
      'Signing key',
      async () => {
        const key = await prepareSigningKey(plan)
        report.publicKeyPem = key.publicKeyPem
        return key
      },
      { grouped: false },
    ),
  )
  const clusterPhase = failFast.watched(
    timings.phase(
      'Cluster',
      () =>
        prepareCluster(
          plan,
          clusterDeps({
            workDir: process.env.RUNNER_TEMP ?? os.tmpdir(),
            deadline,
            record,
          }),
        ),
      { grouped: false },
    ),
  )
  // A dataset in the embedded registry can only be looked up once that exists.
  const datasetNeedsCluster = plan.dataset.registry === EMBEDDED_REGISTRY
  const datasetPhase = failFast.after(
    datasetNeedsCluster ? clusterPhase : Promise.resolve(undefined),
    () =>
      timings.phase(
        'Dataset',
        async () => {
          const resolved = await resolveDataset(plan, registry)
          report.dataset = { url: formatReference(resolved.requested), digest: resolved.digest }
          return resolved
        },
        { grouped: false, after: datasetNeedsCluster ? ['Cluster'] : [] },
      ),
  )
  // Awaited by the trainer phase only once its image is built: until then a
  // failed cluster must not count as an unhandled rejection.
  const embeddedRegistry = clusterPhase.then((cluster) => cluster.embeddedRegistry)
  embeddedRegistry.catch(() => undefined)
  const trainerPhase = failFast.watched(
    timings.phase(
      'Trainer image',
      (waitFor) =>
        prepareTrainerImage(plan.trainer, {
          docker: new Docker(),
          registry,
          embeddedRegistry: () => waitFor('Cluster', () => embeddedRegistry),
          runTag: plan.runId,
          actionRoot: path.dirname(bundledFile('Containerfile')),
          workDir,
          signal: failFast.signal,
          deadline,
          record: (tag) => record({ trainerTag: tag }),
          log: (line) => core.info(line),
        }),
      { grouped: false },
    ),
  )
  // Both installs start together once both releases are fetched and checked;
  // each is timed as a phase of its own, fetch included (returned in an
  // object, so that `after` does not wait for them).
  const tekton = failFast.after(Promise.all([clusterPhase, signingKeyPhase]), ([cluster, key]) => {
    const install = startTektonInstall(plan, key, { kube: cluster.kube, deadline })
    const options = { grouped: false, after: ['Cluster', 'Signing key'] }
    return Promise.resolve({
      install,
      pipelines: timings.phase('Tekton Pipelines', async () => (await install).pipelines, options),
      chains: timings.phase('Tekton Chains', async () => (await install).chains, options),
    })
  })
  const tektonInstall = tekton.then(({ install }) => install)
  tektonInstall.catch(() => undefined)
  const pipelinesPhase = failFast.watched(tekton.then(({ pipelines }) => pipelines))
  const chainsInstallPhase = failFast.watched(tekton.then(({ chains }) => chains))
  const credentialsPhase = failFast.after(clusterPhase, ({ kube }) =>
    timings.phase(
      'Registry credentials',
      async () => {
        await prepareRunNamespace(kube, target, deadline)
        const registries = [plan.image.registry, plan.dataset.registry]
        return linkRegistryCredentials(kube, target, plan.registryAuth, registries, deadline)
      },
      { grouped: false, after: ['Cluster'] },
    ),
  )
  // Next to kind, a pod checks the registries the training talks to while
  // Tekton installs (the runner and the nodes were checked by the cluster
  // phase), and so pulls the trainer image into the node before the training
  // needs it.
  const registryCheckPhase = failFast.after(
    Promise.all([clusterPhase, trainerPhase, credentialsPhase]),
    async ([cluster, trainer]) =>
      cluster.embeddedRegistry &&
      timings.phase(
        'Registry check',
        () =>
          checkRegistriesFromPod(
            {
              image: trainer.image,
              registries: [plan.dataset.registry, plan.image.registry],
              ...target,
            },
            { kube: cluster.kube, deadline },
          ),
        { grouped: false, after: ['Cluster', 'Trainer image', 'Registry credentials'] },
      ),
  )
  // A new Chains may still be coming up when the training starts (see
  // TektonInstall.chainsIsNew); a Chains that ran before must be done first.
  const chainsIsNew = tektonInstall.then(
    (install) => install.chainsIsNew,
    () => false,
  )
  const chainsFirst = chainsIsNew.then((isNew) => (isNew ? undefined : chainsInstallPhase))
  try {
    const [signingKey, cluster, dataset, trainer, pipelines, credentials, reached] = await settled([
      signingKeyPhase,
      clusterPhase,
      datasetPhase,
      trainerPhase,
      pipelinesPhase,
      credentialsPhase,
      registryCheckPhase,
      chainsFirst,
    ] as const)
    return {
      signingKey,
      cluster,
      dataset,
      trainer,
      pipelines,
      credentials,
      reached,
      chains: chainsInstallPhase,
      chainsIsNew: await chainsIsNew,
    }
  } catch (err) {
    // The Chains install is not left running behind a failed run.
    await Promise.allSettled([chainsInstallPhase])
    throw err
  }
}

/**
 * Outputs, the job summary and one annotation per violation; then the step
 * fails on an error, or on a policy failure with fail-on-violation.
 */
async function publish(report: RunReport): Promise<void> {
  for (const [name, value] of Object.entries(reportOutputs(report))) core.setOutput(name, value)
  try {
    await core.summary.addRaw(renderSummary(report)).write()
  } catch (err) {
    // Outside Actions (no GITHUB_STEP_SUMMARY) there is nowhere to write it.
    core.debug(`job summary not written: ${errorMessage(err)}`)
  }
  for (const { title, message } of violationAnnotations(report)) core.error(message, { title })
  if (report.inputErrors) {
    // One annotation per bad input, each naming it; then the step fails
    // without another message repeating them.
    for (const { message } of report.inputErrors) core.error(message)
    process.exitCode = core.ExitCode.Failure
  } else if (report.verdict === 'error') {
    core.setFailed(report.error ?? 'the run ended without a verdict')
  } else if (report.verdict === 'fail' && report.failOnViolation) {
    const violations = report.ec && 'summary' in report.ec ? report.ec.summary.violations.length : 0
    core.setFailed(
      `the model does not meet the policy: ${violations} violation${violations === 1 ? '' : 's'} (see the job summary)`,
    )
  } else {
    core.info(`verdict: ${report.verdict}`)
  }
}

/** The post step: removes what the main step created; never fails the job. */
export async function runPost(): Promise<void> {
  await cleanUpAfterRun(loadCreated(), loadKeepCluster())
}

/**
 * Removes what a run created (as its `record` hook was told), or only says
 * what is left running with keep-cluster. Logs; never throws.
 */
export async function cleanUpAfterRun(
  created: CreatedResources,
  keepCluster: boolean,
): Promise<void> {
  try {
    const result = await cleanup(created, { keepCluster }, cleanupDeps())
    for (const warning of result.warnings) core.warning(warning)
    if (result.removed.length) core.info(`removed: ${result.removed.join(', ')}`)
    if (result.kept.length) core.info(`left running (keep-cluster): ${result.kept.join(', ')}`)
    if (!result.removed.length && !result.kept.length && !result.warnings.length) {
      core.info('nothing to clean up: this run created no cluster and no registry')
    }
  } catch (err) {
    core.warning(`cleanup: ${errorMessage(err)}`)
  }
}

/** One log line on where the trainer image came from. */
function trainerLine(trainer: TrainerImage): string {
  const image = formatReference(trainer.image)
  switch (trainer.origin) {
    case 'built':
      return `trainer image built from the action's Containerfile as ${trainer.local}, run as ${image}`
    case 'reused':
      return `trainer image ${trainer.local} was in the embedded registry already, run as ${image}`
    case 'pushed':
      return `trainer image ${trainer.local} from the runner's Docker, run as ${image}`
    case 'given':
      return `trainer image ${image}`
  }
}

function logTektonComponent(component: ComponentResult): void {
  const release = component.release
  core.info(
    `Tekton ${component.component} ${component.version}: ${component.action}` +
      (release ? ` from ${release.url} (sha256 ${release.sha256}, ${release.verifiedBy})` : ''),
  )
}

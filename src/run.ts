import { mkdtemp } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import * as core from '@actions/core'
import { errorMessage, UserError } from './errors.js'
import { actionInputSource, readPlan, type InputSource } from './inputs.js'
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
import { prepareSigningKey } from './phases/signing.js'
import { installTekton } from './phases/tekton.js'
import { prepareTrainerImage } from './phases/trainer-image.js'
import { ruleDataFor, verifyModel } from './phases/verify.js'
import { EMBEDDED_REGISTRY, PIPELINE_SERVICE_ACCOUNT, RUN_NAMESPACE, type Plan } from './plan.js'
import { createRegistryClient } from './registry-client.js'
import {
  loadCreated,
  loadKeepCluster,
  markMainStarted,
  saveCreated,
  saveKeepCluster,
} from './state.js'
import { Timings } from './timing.js'
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
  report.timings = timings.phases
  try {
    await train(source, hooks, report, timings)
  } catch (err) {
    report.verdict = 'error'
    report.error = errorMessage(err)
    if (!(err instanceof UserError) && err instanceof Error && err.stack) core.debug(err.stack)
  }
  return report
}

/** Every phase, filling `report` as it learns; throws on the first phase that fails. */
async function train(
  source: InputSource,
  hooks: FlowHooks,
  report: RunReport,
  timings: Timings,
): Promise<void> {
  const { plan, warnings } = readPlan(source)
  for (const warning of warnings) core.warning(warning)
  report.failOnViolation = plan.failOnViolation
  hooks.planned?.(plan)
  const deadline = Date.now() + plan.timeoutMs
  const workDir = await mkdtemp(path.join(process.env.RUNNER_TEMP ?? os.tmpdir(), 'oml-chains-'))
  const registry = await createRegistryClient(plan.registryAuth)
  // A dataset in the embedded registry can only be looked up once that exists.
  const datasetFirst = plan.dataset.registry !== EMBEDDED_REGISTRY

  // Side by side: the key (CPU), the dataset lookup (network), the cluster (minutes).
  const [signingKey, cluster, earlyDataset] = await settled([
    timings.phase('Signing key', () => prepareSigningKey(plan), { grouped: false }),
    timings.phase(
      'Cluster',
      () =>
        prepareCluster(
          plan,
          clusterDeps({
            workDir: process.env.RUNNER_TEMP ?? os.tmpdir(),
            deadline,
            record: hooks.record,
          }),
        ),
      { grouped: false },
    ),
    datasetFirst
      ? timings.phase('Dataset', () => resolveDataset(plan, registry), { grouped: false })
      : Promise.resolve(undefined),
  ] as const)
  report.publicKeyPem = signingKey.publicKeyPem
  const dataset =
    earlyDataset ?? (await timings.phase('Dataset', () => resolveDataset(plan, registry)))
  report.dataset = { url: formatReference(dataset.requested), digest: dataset.digest }
  core.info(`dataset ${formatReference(dataset.reference)}`)

  const kube = cluster.kube
  const target = { namespace: RUN_NAMESPACE, serviceAccount: PIPELINE_SERVICE_ACCOUNT }
  const [tekton, , trainer] = await Promise.all([
    timings.phase('Tekton', () => installTekton(plan, signingKey, { kube, deadline })),
    prepareRunNamespace(kube, target, deadline),
    prepareTrainerImage(plan.trainerImage, cluster.embeddedRegistry, {
      docker: new Docker(),
      registry,
      tag: plan.runId,
    }),
  ])
  for (const component of [tekton.pipelines, tekton.chains]) {
    const release = component.release
    core.info(
      `Tekton ${component.component} ${component.version}: ${component.action}` +
        (release ? ` from ${release.url} (sha256 ${release.sha256}, ${release.verifiedBy})` : ''),
    )
  }
  if (trainer.pushedFrom) {
    core.info(
      `trainer image ${trainer.pushedFrom} from the runner's Docker, run as ${formatReference(trainer.image)}`,
    )
  } else if (!trainer.image.digest) {
    core.warning(
      `trainer-image ${formatReference(trainer.image)} is not pinned by digest: the policy's trainer.pinned rule will reject the model`,
    )
  }
  const registries = [plan.image.registry, plan.dataset.registry]
  const credentials = await timings.phase('Registry credentials', () =>
    linkRegistryCredentials(kube, target, plan.registryAuth, registries, deadline),
  )
  core.info(
    credentials.secret
      ? `registry credentials for ${credentials.registries.join(', ')} in ${RUN_NAMESPACE}/${credentials.secret}`
      : 'no registry the run uses needs credentials',
  )

  // Downloaded while the pipeline runs; awaited only by the policy phase.
  const ecBinary = installEc(plan.ecVersion)
  ecBinary.catch(() => undefined)
  const trained = await timings.phase('Pipeline', () =>
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
  )
  const model = {
    registry: plan.image.registry,
    repository: plan.image.repository,
    digest: trained.imageDigest,
  }
  report.model = model
  report.pipelineRun = trained.pipelineRun
  core.info(`model ${formatReference(model)} (PipelineRun ${trained.pipelineRun})`)

  const provenancePath = path.join(workDir, 'provenance.json')
  const signed = await timings.phase('Chains', () =>
    waitForChains(
      {
        pipelineRun: trained.pipelineRun,
        image: model,
        publicKeyPem: signingKey.publicKeyPem,
        provenancePath,
      },
      { kube, registry, deadline },
    ),
  )
  report.provenancePath = signed.provenancePath
  report.trainerImage = signed.provenance.trainerImage
  report.accuracy = signed.provenance.accuracy

  const verifyInputs = {
    image: model,
    publicKeyPem: signingKey.publicKeyPem,
    policyPath: plan.policyPath,
    allowedDatasetPrefixes: plan.allowedDatasetPrefixes,
    minAccuracy: plan.minAccuracy,
  }
  report.policy = { path: plan.policyPath, ruleData: ruleDataFor(verifyInputs) }
  const ec = await timings.phase('Enterprise Contract', async () =>
    verifyModel(verifyInputs, { ec: await ecBinary, workDir, deadline }),
  )
  report.ec = ec
  report.verdict = ec.verdict
  if (ec.verdict === 'error') report.error = ec.error
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
  if (report.verdict === 'error') {
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

/**
 * Like Promise.all, but waits for every phase to settle before throwing the
 * first failure: a cluster still being created must be recorded for cleanup
 * before the step ends.
 */
async function settled<T extends readonly unknown[]>(
  work: readonly [...{ [K in keyof T]: Promise<T[K]> }],
): Promise<T> {
  const results = await Promise.allSettled(work)
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')
  if (failed) throw failed.reason
  return results.map((r) => (r as PromiseFulfilledResult<unknown>).value) as unknown as T
}

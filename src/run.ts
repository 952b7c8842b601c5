import os from 'node:os'
import * as core from '@actions/core'
import { errorMessage, UserError } from './errors.js'
import { actionInputSource, readPlan } from './inputs.js'
import { formatReference } from './oci/reference.js'
import { cleanup, cleanupDeps } from './phases/cleanup.js'
import { clusterDeps, prepareCluster } from './phases/cluster.js'
import { linkRegistryCredentials, prepareRunNamespace } from './phases/credentials.js'
import { resolveDataset } from './phases/dataset.js'
import { runPipeline } from './phases/pipeline.js'
import { prepareSigningKey } from './phases/signing.js'
import { installTekton } from './phases/tekton.js'
import { EMBEDDED_REGISTRY, PIPELINE_SERVICE_ACCOUNT, RUN_NAMESPACE } from './plan.js'
import { createRegistryClient } from './registry-client.js'
import {
  loadCreated,
  loadKeepCluster,
  markMainStarted,
  saveCreated,
  saveKeepCluster,
} from './state.js'
import { Timings } from './timing.js'

/**
 * The main step: inputs -> Plan -> phases -> outputs. Phases run in order (or
 * side by side where independent) and return what they produced; only this
 * file sets outputs.
 */
export async function runMain(): Promise<void> {
  markMainStarted()
  try {
    const { plan, warnings } = readPlan(actionInputSource())
    for (const warning of warnings) core.warning(warning)
    saveKeepCluster(plan.keepCluster)
    const deadline = Date.now() + plan.timeoutMs
    const timings = new Timings()
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
              record: saveCreated,
            }),
          ),
        { grouped: false },
      ),
      datasetFirst
        ? timings.phase('Dataset', () => resolveDataset(plan, registry), { grouped: false })
        : Promise.resolve(undefined),
    ] as const)
    const dataset =
      earlyDataset ?? (await timings.phase('Dataset', () => resolveDataset(plan, registry)))
    core.setOutput('public-key', signingKey.publicKeyPem)
    core.setOutput('dataset-digest', dataset.digest)
    core.info(`dataset ${formatReference(dataset.reference)}`)

    const kube = cluster.kube
    const target = { namespace: RUN_NAMESPACE, serviceAccount: PIPELINE_SERVICE_ACCOUNT }
    const [tekton] = await Promise.all([
      timings.phase('Tekton', () => installTekton(plan, signingKey, { kube, deadline })),
      prepareRunNamespace(kube, target, deadline),
    ])
    for (const component of [tekton.pipelines, tekton.chains]) {
      const release = component.release
      core.info(
        `Tekton ${component.component} ${component.version}: ${component.action}` +
          (release ? ` from ${release.url} (sha256 ${release.sha256}, ${release.verifiedBy})` : ''),
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

    const trained = await timings.phase('Pipeline', () =>
      runPipeline(
        {
          image: plan.image,
          dataset: dataset.reference,
          trainerImage: plan.trainerImage,
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
    core.setOutput('digest', trained.imageDigest)
    core.setOutput('image', formatReference(model))
    core.setOutput('pipelinerun', trained.pipelineRun)
    core.info(`model ${formatReference(model)} (PipelineRun ${trained.pipelineRun})`)

    // Waiting for Chains and the policy check are not part of this build:
    // stop with an error rather than report a verdict that was never reached.
    throw new UserError(
      'this build of oml-chains-action trains and pushes the model, but cannot yet wait for its signature and attestation or run Enterprise Contract; no verdict was reached',
    )
  } catch (err) {
    core.setOutput('verdict', 'error')
    fail(err)
  }
}

/** The post step: removes what the main step created; never fails the job. */
export async function runPost(): Promise<void> {
  try {
    const result = await cleanup(loadCreated(), { keepCluster: loadKeepCluster() }, cleanupDeps())
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

/** One `::error::` line; the stack only in debug logs (it helps us, not the user). */
function fail(err: unknown): void {
  if (!(err instanceof UserError) && err instanceof Error && err.stack) core.debug(err.stack)
  core.setFailed(errorMessage(err))
}

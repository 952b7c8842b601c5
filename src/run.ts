import * as core from '@actions/core'
import { errorMessage, UserError } from './errors.js'
import { actionInputSource, readPlan } from './inputs.js'
import { formatReference } from './oci/reference.js'
import { resolveDataset } from './phases/dataset.js'
import { prepareSigningKey } from './phases/signing.js'
import { createRegistryClient } from './registry-client.js'
import { markMainStarted } from './state.js'
import { Timings } from './timing.js'

/**
 * The main step: inputs -> Plan -> phases -> outputs. Phases run in order and
 * return what they produced; only this file sets outputs.
 */
export async function runMain(): Promise<void> {
  markMainStarted()
  try {
    const { plan, warnings } = readPlan(actionInputSource())
    for (const warning of warnings) core.warning(warning)

    const timings = new Timings()
    const registry = await createRegistryClient(plan.registryAuth)
    // Independent: key generation (scrypt, CPU) and the dataset lookup (network).
    const [signingKey, dataset] = await Promise.all([
      timings.phase('Signing key', () => prepareSigningKey(plan), { grouped: false }),
      timings.phase('Dataset', () => resolveDataset(plan, registry), { grouped: false }),
    ])
    core.setOutput('public-key', signingKey.publicKeyPem)
    core.setOutput('dataset-digest', dataset.digest)
    core.info(`dataset ${formatReference(dataset.reference)}`)

    // The cluster, pipeline, signing and policy phases are not part of this
    // build: stop with an error rather than report a model that was never made.
    throw new UserError(
      'this build of oml-chains-action prepares the signing key and pins the dataset, but cannot yet train, sign or verify a model; no verdict was reached',
    )
  } catch (err) {
    core.setOutput('verdict', 'error')
    fail(err)
  }
}

/** The post step: removes what the main step created. */
export async function runPost(): Promise<void> {
  // The main step of this build creates nothing outside the runner's temp dir.
  core.info('nothing to clean up: this run created no cluster and no registry')
}

/** One `::error::` line; the stack only in debug logs (it helps us, not the user). */
function fail(err: unknown): void {
  if (!(err instanceof UserError) && err instanceof Error && err.stack) core.debug(err.stack)
  core.setFailed(errorMessage(err))
}

import { mkdir, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { bundledFile } from '../bundled.js'
import { formatReference, type Reference } from '../oci/reference.js'
import type { Digest } from '../oci/types.js'
import type { CommandRunner } from '../tools/exec.js'
import type { RuleData } from '../tools/ec/policy-config.js'
import { validateImage, type EcValidation } from '../tools/ec/validate.js'

export interface VerifyInputs {
  /** The model, by digest. */
  image: Reference & { digest: Digest }
  /** The key the signature and attestations must verify with. */
  publicKeyPem: string
  /** The `policy` input; undefined means the bundled policy/config.yaml. */
  policyPath?: string
  allowedDatasetPrefixes: readonly string[]
  minAccuracy?: number
}

export interface VerifyDeps {
  /** Path of the ec binary (installEc, started while the pipeline ran). */
  ec: string
  /** Folder for the report, the public key file and the policy copy with rule data. */
  workDir: string
  /** Epoch ms by which ec must be done. */
  deadline: number
  /** Where a user's policy config resolves its relative paths (default: the step's cwd). */
  workspace?: string
  run?: CommandRunner
}

/** The policy's rule data from the inputs: names as policy/rules reads them. */
export function ruleDataFor(inputs: VerifyInputs): RuleData {
  return {
    allowed_dataset_prefixes: [...inputs.allowedDatasetPrefixes],
    ...(inputs.minAccuracy === undefined ? {} : { min_accuracy: inputs.minAccuracy }),
  }
}

/**
 * Runs Enterprise Contract on the model with the policy and the run's public
 * key. The verdict (pass, fail, or error when ec gave no report) is in the
 * result; ec's own failures never throw.
 */
export async function verifyModel(inputs: VerifyInputs, deps: VerifyDeps): Promise<EcValidation> {
  await mkdir(deps.workDir, { recursive: true })
  const publicKey = path.join(deps.workDir, 'cosign.pub')
  await writeFile(publicKey, inputs.publicKeyPem)
  // ec resolves a source's relative path against its working directory: the
  // bundled config names ./policy/rules, so it runs from the folder holding
  // policy/; a user's config runs from the workspace, where its paths were written.
  const bundled = inputs.policyPath === undefined
  const policy = inputs.policyPath ?? bundledFile('policy/config.yaml')
  const cwd = bundled ? path.dirname(path.dirname(policy)) : (deps.workspace ?? process.cwd())
  const image = { registry: inputs.image.registry, repository: inputs.image.repository }
  return validateImage({
    ec: deps.ec,
    image: formatReference({ ...image, digest: inputs.image.digest }),
    publicKey,
    policy: path.resolve(cwd, policy),
    reportPath: path.join(deps.workDir, 'ec-report.json'),
    ruleData: ruleDataFor(inputs),
    timeoutMs: Math.max(1_000, deps.deadline - Date.now()),
    cwd,
    run: deps.run,
  })
}

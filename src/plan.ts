import type { Reference } from './oci/reference.js'

/**
 * The host name of the embedded registry, the same from pods, from the nodes
 * and from the runner (DESIGN 3, "Registry reachable from pods...").
 */
export const EMBEDDED_REGISTRY = 'registry.local:5000'

/**
 * The model in the embedded registry when `image` is not given: a repository
 * of the run's own. Chains does not write a signature next to an image that
 * already has one with the same payload (whatever key made it), and a
 * reproducible training gives the same model digest again; in a registry kept
 * from an earlier run, a shared repository would hold that run's signature,
 * which this run's fresh key does not verify.
 */
export function embeddedModelImage(runId: string): string {
  return `${EMBEDDED_REGISTRY}/oml-chains/${runId}/model:${runId}`
}

/** Namespace where the action runs the pipeline (created by it when missing). */
export const RUN_NAMESPACE = 'oml-chains'

/** Service account the PipelineRun runs as; it carries the registry credentials. */
export const PIPELINE_SERVICE_ACCOUNT = 'oml-chains-pipeline'

/** Credentials given as inputs; they apply to one registry only. */
export interface ExplicitCredentials {
  registry: string
  username: string
  password: string
}

export interface RegistryAuth {
  /** From registry-username/registry-password, for the registry of `image`. */
  explicit?: ExplicitCredentials
  /** A docker config file for every other registry, when one exists. */
  dockerConfigPath?: string
}

export type ClusterPlan =
  | {
      mode: 'kind'
      name: string
      kindVersion: string
      kubernetesVersion: string
      /** kind node image pinned by digest. */
      nodeImage: string
    }
  | {
      mode: 'existing'
      /** Kubeconfig content (read from the path when a path was given). */
      kubeconfig: string
      /** Where it came from, for messages: a path or "the kubeconfig input". */
      kubeconfigSource: string
    }

export interface SigningKeyInput {
  /** Encrypted cosign private key PEM. */
  pem: string
  password: string
  /** Where it came from, for messages: a path or "the given key". */
  source: string
}

/** Where the image that runs the training step comes from. */
export type TrainerPlan =
  /** The `trainer-image` input, or the published image pinned in versions.ts. */
  | { source: 'input' | 'published'; image: Reference }
  /**
   * Built on the runner from the action's own Containerfile and trainer/
   * (cluster kind only), from `baseImage` when given (the `trainer-base-image`
   * input), else from the Containerfile's pinned base.
   */
  | { source: 'build'; baseImage?: string }

/** Everything a run does, decided from the inputs before anything is created. */
export interface Plan {
  dataset: Reference
  /** Where the model goes; tagged with the run id when not given. */
  image: Reference
  /** True when `image` is the embedded registry (plain HTTP, started by the action). */
  embeddedRegistry: boolean
  /**
   * True when the run starts (or reuses) the embedded registry: for the model,
   * or for a trainer image from the runner's Docker engine, whatever `image` is.
   */
  runsEmbeddedRegistry: boolean
  registryAuth: RegistryAuth
  cluster: ClusterPlan
  tektonPipelinesVersion: string
  tektonChainsVersion: string
  ecVersion: string
  trainer: TrainerPlan
  /** Path of the user's Pipeline YAML; undefined means the bundled one. */
  pipelinePath?: string
  params: Record<string, string>
  /** Path of the user's EC policy config; undefined means the bundled one. */
  policyPath?: string
  allowedDatasetPrefixes: string[]
  minAccuracy?: number
  /** The user's key; undefined means a fresh key pair for this run. */
  signingKey?: SigningKeyInput
  failOnViolation: boolean
  keepCluster: boolean
  timeoutMs: number
  /** Identifies this run in names and tags (GitHub run id and attempt, or a timestamp). */
  runId: string
}

/**
 * The trainer image phase: which image runs the training step, by digest.
 *
 * - No `trainer-image` and no published default: built on the runner from
 *   the action's own Containerfile and trainer/ (trainer-build.ts), pushed
 *   into the embedded registry, run by digest. Its tag is a hash of the build
 *   inputs; when the registry already has it (a re-run on a kept cluster), the
 *   build is skipped.
 * - `trainer-image` by tag, found in the runner's Docker engine (a workflow's
 *   own `docker build`): pushed into the embedded registry, run by digest.
 * - Anything else (a digest, a tag the runner does not hold): used as given.
 *
 * Pods pull it like any image, and the provenance records it pinned, which
 * the policy's trainer.pinned rule asks for.
 */
import path from 'node:path'
import { RegistryClient } from '../oci/client.js'
import { formatReference, withDigest, type Reference } from '../oci/reference.js'
import type { TrainerPlan } from '../plan.js'
import type { Docker } from '../tools/docker.js'
import { REGISTRY_HOST_ADDRESS, REGISTRY_HOST_PORT, REGISTRY_PORT } from '../tools/kind/config.js'
import { stageBuildContext, trainerBuildContext } from './trainer-build.js'

/** Where the trainer goes in the embedded registry. */
export const TRAINER_REPOSITORY = 'oml-chains/trainer'

export interface TrainerImage {
  /** The image the Task runs: as given, or from the embedded registry by digest. */
  image: Reference
  /**
   * `given`: used as given; `pushed`: a runner-built image pushed for the run;
   * `built`: built from the action's Containerfile and pushed; `reused`: that
   * build was already in the embedded registry.
   */
  origin: 'given' | 'pushed' | 'built' | 'reused'
  /** The runner-side reference that was pushed or built. */
  local?: string
}

export interface TrainerImageDeps {
  docker: Docker
  /** The run's registry client (pushed images are resolved with it). */
  registry: RegistryClient
  /**
   * Settles once the cluster phase is done: the embedded registry when it
   * answers, undefined when the run has none. Called when needed, so that the
   * wait is counted as one (Timings' WaitFor).
   */
  embeddedRegistry: () => Promise<{ host: string } | undefined>
  /** Tag for a pushed runner image (the run id), so concurrent jobs' copies do not collide. */
  runTag: string
  /** The action's own root: Containerfile and trainer/. */
  actionRoot: string
  /** Where the build context is staged (the run's temp folder). */
  workDir: string
  /** The embedded registry as the runner's Docker reaches it (default 127.0.0.1:5000). */
  loopback?: string
  /** Aborted when the run has failed elsewhere: no build or push starts after that. */
  signal?: AbortSignal
  /** Epoch ms by which builds and pushes must be done (the run's deadline). */
  deadline?: number
  /** Told the runner-side tag this phase is about to create, so that the cleanup removes it. */
  record?: (tag: string) => void
  log: (line: string) => void
}

export async function prepareTrainerImage(
  trainer: TrainerPlan,
  deps: TrainerImageDeps,
): Promise<TrainerImage> {
  // Pushed through the loopback address: Docker speaks plain HTTP to it
  // without an insecure-registries entry, unlike to registry.local.
  const loopback = deps.loopback ?? `${REGISTRY_HOST_ADDRESS}:${REGISTRY_PORT}`
  if (trainer.source === 'build') return buildAndPush(trainer.baseImage, loopback, deps)

  const given = trainer.image
  if (given.digest) return { image: given, origin: 'given' }
  if (!(await deps.embeddedRegistry())) return { image: given, origin: 'given' }
  const local = formatReference(given)
  if (!(await deps.docker.hasImage(local))) return { image: given, origin: 'given' }
  const target = { registry: loopback, repository: TRAINER_REPOSITORY, tag: deps.runTag }
  deps.record?.(formatReference(target))
  await deps.docker.tagImage(local, formatReference(target))
  return { image: await push(target, deps), origin: 'pushed', local }
}

async function buildAndPush(
  baseImage: string | undefined,
  loopback: string,
  deps: TrainerImageDeps,
): Promise<TrainerImage> {
  const context = await trainerBuildContext(deps.actionRoot, baseImage)
  const target = { registry: loopback, repository: TRAINER_REPOSITORY, tag: context.tag }
  const local = formatReference(target)
  const found = await lookUp(target)
  if (found) {
    deps.log(`trainer image ${context.tag} is in the embedded registry already: build skipped`)
    return { image: inEmbeddedRegistry(found), origin: 'reused', local }
  }
  deps.log(
    `building the trainer image from ${deps.actionRoot}/Containerfile (${context.files.length} files, tag ${context.tag}` +
      `${baseImage ? `, base ${baseImage}` : ''})`,
  )
  deps.signal?.throwIfAborted()
  const dir = await stageBuildContext(deps.actionRoot, context, deps.workDir)
  deps.record?.(local)
  await deps.docker.buildImage({
    context: dir,
    // Absolute: docker reads a relative --file from its working directory
    // (the user's workspace), not from the context.
    file: path.join(dir, 'Containerfile'),
    tag: local,
    buildArgs: context.buildArgs,
    deadline: deps.deadline,
  })
  return { image: await push(target, deps), origin: 'built', local }
}

/** Pushes a tagged local image once the embedded registry answers; its reference there by digest. */
async function push(target: Reference, deps: TrainerImageDeps): Promise<Reference> {
  if (!(await deps.embeddedRegistry())) {
    // The Plan starts the registry whenever a trainer image is pushed.
    throw new Error('the trainer image needs the embedded registry, and the run has none')
  }
  deps.signal?.throwIfAborted()
  await deps.docker.pushImage(formatReference(target), deps.deadline)
  const pushed = await deps.registry.resolve(target)
  return inEmbeddedRegistry(pushed.digest)
}

/**
 * The digest of a tag in the embedded registry, or undefined when the tag or
 * the registry is not there (yet: on a first run the registry starts with the
 * cluster). One quick try: a miss only means building.
 */
async function lookUp(target: Reference): Promise<string | undefined> {
  const client = new RegistryClient({
    insecure: () => true,
    retry: { attempts: 1 },
    timeoutMs: 5_000,
  })
  try {
    return (await client.resolve(target)).digest
  } catch {
    return undefined
  }
}

/** The image as pods and Chains name it: `registry.local:5000/oml-chains/trainer@sha256:…`. */
function inEmbeddedRegistry(digest: string): Reference {
  return withDigest({ registry: REGISTRY_HOST_PORT, repository: TRAINER_REPOSITORY }, digest)
}
